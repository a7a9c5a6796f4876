//! docs/dashboard.md end to end: `patchfleet dashboard` on the real API server, over the
//! compliance fleet of tests/src/fleet.rs (two accounts, several platforms and providers)
//! and the simulator's clock. Authorisation with real ServiceAccount tokens (TokenReview,
//! SubjectAccessReview); the pages in headless Chromium: log in, overview, a click through
//! account -> group nodes -> node, and an Install window run on the simulated clock
//! reaching the open overview without a reload. Screenshots: target/dashboard-screenshots.
//! Then the overview's cost with many accounts in status (the benchmark, small here).

use std::time::{Duration, Instant};

use fantoccini::Locator;
use k8s_openapi::api::core::v1::Event;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use patchfleet_api::v1alpha1::{
    AccountNodes, NodeCounts, PatchGroup, RegionNodes, SystemAccount, SystemAccountStatus,
};
use patchfleet_planner::instances::{group_calls, instance_calls};
use patchfleet_tests::e2e::eventually;
use patchfleet_tests::fleet::{account_total, set_clock};
use patchfleet_tests::stack::{ALL_KINDS, Stack, patchfleet_binary};
use patchfleet_tests::web::{Browser, DashboardProcess, get, request, service_account_token};
use serde_json::{Value, json};

const PASS: Duration = Duration::from_secs(120);

/// The users: a fleet administrator (the chart's fleet-viewer rules), one who may get
/// customer-a only, a team that may read its own namespace's groups and windows, and one
/// with no permission at all.
const USERS: &str = r#"apiVersion: v1
kind: Namespace
metadata: {name: viewers}
---
apiVersion: v1
kind: Namespace
metadata: {name: other}
---
apiVersion: patchfleet.io/v1alpha1
kind: PatchGroup
metadata: {name: elsewhere, namespace: other}
spec:
  policyRef: {name: none}
  accountSelector: {matchLabels: {patchfleet.io/nothing: "true"}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: fleet-admin, namespace: viewers}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: viewer-a, namespace: viewers}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: team, namespace: viewers}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: nobody, namespace: viewers}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: test-fleet-viewer}
rules:
  - apiGroups: [patchfleet.io]
    resources: [systemaccounts, patchpolicies, patchgroups, maintenancewindows, patchrollouts]
    verbs: [get, list, watch]
  - apiGroups: [patchfleet.io]
    resources: [systemaccounts/fleet]
    verbs: [get]
  - apiGroups: [""]
    resources: [events]
    verbs: [list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: test-fleet-admin}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: test-fleet-viewer}
subjects: [{kind: ServiceAccount, name: fleet-admin, namespace: viewers}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: test-customer-a}
rules:
  - apiGroups: [patchfleet.io]
    resources: [systemaccounts]
    resourceNames: [customer-a]
    verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: test-viewer-a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: test-customer-a}
subjects: [{kind: ServiceAccount, name: viewer-a, namespace: viewers}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: test-dashboard-viewer}
rules:
  - apiGroups: [patchfleet.io]
    resources: [systemaccounts, patchpolicies, patchgroups, maintenancewindows]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: team, namespace: fleet}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: test-dashboard-viewer}
subjects: [{kind: ServiceAccount, name: team, namespace: viewers}]
"#;

const NODE_1: &str = "i-0a000000000000001";
const NODE_2: &str = "i-0a000000000000002";

/// SSM and STS calls the dashboard made (its AssumeRole session is `dashboard-...`; the
/// controller's compliance pass reads alongside), optionally of one operation prefix.
fn dashboard_calls(stack: &Stack, operation_prefix: &str) -> u64 {
    stack
        .sim
        .sim()
        .counters
        .snapshot()
        .iter()
        .filter(|c| {
            c.key.caller.contains("/dashboard-") && c.key.operation.starts_with(operation_prefix)
        })
        .map(|c| c.count)
        .sum()
}

fn rows<'a>(overview: &'a Value, key: &str) -> Vec<&'a Value> {
    overview[key]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

fn accounts_seen(overview: &Value) -> Vec<String> {
    let mut names: Vec<String> = rows(overview, "accounts")
        .iter()
        .filter_map(|r| r["account"].as_str().map(str::to_owned))
        .collect();
    names.dedup();
    names
}

fn groups_seen(overview: &Value) -> Vec<String> {
    rows(overview, "groups")
        .iter()
        .map(|g| {
            format!(
                "{}/{}",
                g["namespace"].as_str().unwrap_or(""),
                g["name"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// An Event about fleet/web (by its uid), and one about another object of the same kind
/// and name (an earlier fleet/web, deleted since: another uid).
async fn plant_events(stack: &Stack) {
    let client = stack.client().await.expect("client");
    let web: PatchGroup = Api::namespaced(client.clone(), "fleet")
        .get("web")
        .await
        .expect("fleet/web");
    let event = |namespace: &str, name: &str, uid: &str, reason: &str| -> Event {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": {"apiVersion": "patchfleet.io/v1alpha1", "kind": "PatchGroup",
                               "name": "web", "namespace": namespace, "uid": uid},
            "reason": reason, "message": "customer-a (111111111111) eu-west-1: a test event",
            "type": "Normal", "count": 1,
            "firstTimestamp": "2026-11-30T00:00:00Z", "lastTimestamp": "2026-11-30T00:00:00Z",
        }))
        .expect("an Event")
    };
    let uid = web.metadata.uid.clone().unwrap_or_default();
    Api::<Event>::namespaced(client.clone(), "fleet")
        .create(
            &PostParams::default(),
            &event("fleet", "web.tested", &uid, "Tested"),
        )
        .await
        .expect("the Event");
    Api::<Event>::namespaced(client, "fleet")
        .create(
            &PostParams::default(),
            &event(
                "fleet",
                "web.planted",
                "00000000-0000-0000-0000-000000000000",
                "Planted",
            ),
        )
        .await
        .expect("the planted Event");
}

/// The text of the first element `css` finds, waiting up to `timeout` for `want` to hold.
async fn wait_text(
    browser: &Browser,
    css: &str,
    timeout: Duration,
    want: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Ok(element) = browser.client.find(Locator::Css(css)).await
            && let Ok(text) = element.text().await
        {
            if want(&text) {
                return text;
            }
            last = text;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("{css}: {last:?} after {timeout:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_see_what_rbac_allows_and_a_browser_follows_the_fleet() {
    let (stack, scan_at, install_at) =
        patchfleet_tests::fleet::start("dashboard", &ALL_KINDS[..1]).await;
    stack.apply_text("users", USERS).expect("users apply");
    let token = |name: &str| service_account_token(&stack, "viewers", name).expect("a token");
    let (admin, viewer_a, team, nobody) = (
        token("fleet-admin"),
        token("viewer-a"),
        token("team"),
        token("nobody"),
    );

    // The Scan window: three of customer A's nodes lack patches.
    set_clock(&stack, scan_at + 1_800.0);
    eventually("the scan's figures", &stack, PASS, || async {
        account_total(&stack, "customer-a")
            .await
            .is_some_and(|t| (t.instances, t.with_missing) == (7, 3))
    })
    .await;

    let dashboard = DashboardProcess::start(
        &stack,
        "e2e",
        &[
            "--compliance-interval",
            "2s",
            "--refresh-interval",
            "1s",
            "--cache-ttl",
            "60s",
            "--auth-cache-ttl",
            "2s",
        ],
    )
    .expect("the dashboard starts");
    let at = dashboard.address;
    let json = |path: &str, token: &str| {
        let answer = get(at, path, Some(token)).expect("an answer");
        (answer.status, answer.json().unwrap_or(Value::Null))
    };

    // No token, or one the API server does not accept: 401, and the page is the login form.
    assert_eq!(get(at, "/api/overview", None).expect("answer").status, 401);
    let page = get(at, "/", None).expect("answer");
    assert_eq!(page.status, 401);
    assert!(page.body.contains("id=\"token\""), "{}", page.body);
    assert_eq!(
        get(at, "/api/overview", Some("not-a-token"))
            .expect("answer")
            .status,
        401
    );

    // The administrator sees both accounts, every group and window, with the status's
    // figures: customer A's region has 7 nodes, 6 online, 3 missing patches.
    let (status, overview) = json("/api/overview", &admin);
    assert_eq!(status, 200, "{overview}");
    assert_eq!(accounts_seen(&overview), ["customer-a", "customer-b"]);
    let a = rows(&overview, "accounts")[0];
    assert_eq!(
        (
            &a["region"],
            &a["instances"],
            &a["online"],
            &a["missing"],
            &a["provider"]
        ),
        (
            &json!("eu-west-1"),
            &json!(7),
            &json!(6),
            &json!(3),
            &json!("aws")
        ),
        "{a}"
    );
    assert_eq!(a["state"], json!("noncompliant"));
    assert_eq!(
        groups_seen(&overview),
        ["fleet/db", "fleet/web", "other/elsewhere"]
    );
    // Filters: by provider, by label, by state.
    let (_, vmware) = json("/api/overview?provider=vmware", &admin);
    assert_eq!(accounts_seen(&vmware), ["customer-b"]);
    let (_, none) = json(
        "/api/overview?label=patchfleet.io%2Fmanaged%3Dfalse",
        &admin,
    );
    assert!(accounts_seen(&none).is_empty());
    let (_, sorted) = json("/api/overview?sort=instances&order=desc", &admin);
    assert_eq!(accounts_seen(&sorted), ["customer-a", "customer-b"]);

    // A user with no permission: an empty overview, 403 on an account's page.
    let (status, empty) = json("/api/overview", &nobody);
    assert_eq!(status, 200);
    assert!(
        accounts_seen(&empty).is_empty() && groups_seen(&empty).is_empty(),
        "{empty}"
    );
    let (status, refusal) = json("/api/accounts/customer-a", &nobody);
    assert_eq!(status, 403, "{refusal}");
    assert!(
        refusal["error"]
            .as_str()
            .unwrap_or("")
            .contains("get systemaccounts.patchfleet.io customer-a"),
        "{refusal}"
    );

    // Customer A's viewer: only customer-a, and no per-instance detail (no fleet
    // permission), which costs no SSM call.
    let (_, only_a) = json("/api/overview", &viewer_a);
    assert_eq!(accounts_seen(&only_a), ["customer-a"]);
    assert_eq!(json("/api/accounts/customer-a", &viewer_a).0, 200);
    assert_eq!(json("/api/accounts/customer-b", &viewer_a).0, 403);
    let calls_before = dashboard_calls(&stack, "");
    let node_path = format!("/api/nodes/customer-a/eu-west-1/{NODE_1}");
    let (status, refusal) = json(&node_path, &viewer_a);
    assert_eq!(status, 403, "{refusal}");
    assert!(
        refusal["error"]
            .as_str()
            .unwrap_or("")
            .contains("systemaccounts/fleet"),
        "{refusal}"
    );
    assert_eq!(
        get(
            at,
            &format!("/nodes/customer-a/eu-west-1/{NODE_1}"),
            Some(&viewer_a)
        )
        .expect("answer")
        .status,
        403
    );
    assert_eq!(
        dashboard_calls(&stack, "") - calls_before,
        0,
        "a refusal reads nothing from SSM"
    );

    // The team: its namespace's groups and windows, no account, no other namespace.
    let (_, teams) = json("/api/overview", &team);
    assert!(accounts_seen(&teams).is_empty(), "{teams}");
    assert_eq!(groups_seen(&teams), ["fleet/db", "fleet/web"]);
    assert_eq!(rows(&teams, "windows").len(), 3, "{teams}");
    // Events: shown to who may list them where they are, found by the object's uid (an
    // Event written elsewhere about another object of the same name is not shown).
    plant_events(&stack).await;
    let (status, web_page) = json("/api/groups/fleet/web", &team);
    assert_eq!(status, 200);
    assert_eq!(
        web_page["events"],
        json!([]),
        "the team may not list Events"
    );
    let team_text = web_page.to_string();
    assert!(
        !team_text.contains("customer-a") && !team_text.contains("customer-b"),
        "the team may not see the accounts' names: {team_text}"
    );
    let (_, admin_web) = json("/api/groups/fleet/web", &admin);
    let reasons: Vec<&str> = admin_web["events"]
        .as_array()
        .map(|e| e.iter().filter_map(|e| e["reason"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(reasons, ["Tested"], "{admin_web}");
    assert_eq!(json("/api/windows/fleet/install-web", &team).0, 200);
    assert_eq!(json("/api/groups/other/elsewhere", &team).0, 403);
    assert_eq!(json("/api/groups/other/elsewhere", &admin).0, 200);
    assert_eq!(json("/api/accounts/customer-a", &team).0, 403);

    // Per-instance detail for the administrator: exactly the calls the formula gives, and
    // none for a second look within the cache's lifetime.
    let calls_before = dashboard_calls(&stack, "Describe");
    let (status, node) = json(&node_path, &admin);
    assert_eq!(status, 200, "{node}");
    let patches = node["patches"].as_array().cloned().unwrap_or_default();
    let missing = patches.iter().filter(|p| p["state"] == "MISSING").count();
    assert_eq!(missing, 2, "{node}");
    assert_eq!(
        dashboard_calls(&stack, "Describe") - calls_before,
        u64::from(instance_calls(patches.len()))
    );
    assert_eq!(json(&node_path, &admin).0, 200);
    assert_eq!(
        dashboard_calls(&stack, "Describe") - calls_before,
        u64::from(instance_calls(patches.len())),
        "cached"
    );
    let calls_before = dashboard_calls(&stack, "Describe");
    let (status, web) = json("/api/instances/customer-a/eu-west-1/fleet/web", &admin);
    assert_eq!(status, 200, "{web}");
    let nodes = web["instances"].as_array().cloned().unwrap_or_default();
    let ids: Vec<&str> = nodes.iter().filter_map(|n| n["id"].as_str()).collect();
    assert_eq!(ids.len(), 5, "{web}");
    // Worst first: the nodes lacking patches before the compliant ones.
    assert!(
        ids[..2].contains(&NODE_1) && ids[..2].contains(&NODE_2),
        "{ids:?}"
    );
    let reported = nodes.iter().filter(|n| n.get("patches").is_some()).count();
    assert_eq!(
        dashboard_calls(&stack, "Describe") - calls_before,
        u64::from(group_calls(5, reported))
    );
    assert_eq!(
        json(
            "/api/nodes/customer-a/eu-west-1/i-0fffffffffffffff0",
            &admin
        )
        .0,
        404
    );
    assert_eq!(
        json(
            "/api/nodes/customer-a/us-east-2/i-0fffffffffffffff0",
            &admin
        )
        .0,
        404
    );
    // Not an instance id at all: 404 without asking SSM.
    let calls_before = dashboard_calls(&stack, "");
    assert_eq!(
        json("/api/nodes/customer-a/eu-west-1/not-a-node", &admin).0,
        404
    );
    assert_eq!(dashboard_calls(&stack, "") - calls_before, 0);

    // `patchfleet report --instances` and `--node` ask the same API with the user's token.
    let report = |args: &[&str], token: &str| {
        std::process::Command::new(patchfleet_binary().expect("binary"))
            .arg("report")
            .args(args)
            .args(["--dashboard-url", &dashboard.url(""), "--token", token])
            .env_remove("KUBECONFIG")
            .output()
            .expect("report runs")
    };
    let out = report(
        &["--instances", "customer-a/eu-west-1/web", "-n", "fleet"],
        &admin,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("NODE") && text.contains(NODE_2), "{text}");
    let out = report(
        &["--node", &format!("customer-a/eu-west-1/{NODE_1}")],
        &admin,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("MISSING"), "{text}");
    let out = report(
        &["--node", &format!("customer-a/eu-west-1/{NODE_1}")],
        &viewer_a,
    );
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && error.contains("403") && error.contains("systemaccounts/fleet"),
        "{error}"
    );

    // Only GET (and the login form's POST); the security headers on every page.
    assert_eq!(
        request(
            at,
            "POST",
            "/api/overview",
            &[("Authorization", &format!("Bearer {admin}"))],
            ""
        )
        .expect("answer")
        .status,
        405
    );
    let page = get(at, "/", Some(&admin)).expect("answer");
    let csp = page.header("content-security-policy").unwrap_or_default();
    for part in [
        "frame-ancestors 'none'",
        "script-src 'self'",
        "default-src 'none'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert!(
        !page.body.contains("<script>") && !page.body.contains("style="),
        "inline script or style"
    );
    // An unchanged page answers 304 to its ETag. The compliance pass rewrites the figures'
    // time every 2 s here, so a pair of requests may straddle a change: a few tries.
    let bearer = format!("Bearer {admin}");
    let statuses: Vec<u16> = (0..5)
        .map(|_| {
            let first = get(at, "/", Some(&admin)).expect("answer");
            let etag = first.header("etag").expect("an ETag").to_owned();
            request(
                at,
                "GET",
                "/",
                &[("Authorization", &bearer), ("If-None-Match", &etag)],
                "",
            )
            .expect("answer")
            .status
        })
        .collect();
    assert!(statuses.contains(&304), "{statuses:?}");
    assert!(
        statuses.iter().all(|s| [200, 304].contains(s)),
        "{statuses:?}"
    );
    // No token reaches the log (neither its start nor its signature).
    assert_no_token_logged(&dashboard, &admin);

    browse(&stack, &dashboard, &admin, install_at).await;
    assert_no_token_logged(&dashboard, &admin);

    // A rollout's stages: its page and the group's, for who may read the rollout.
    let (status, rollout) = json("/api/rollouts/fleet/critical", &admin);
    assert_eq!(status, 200, "{rollout}");
    let stages: Vec<(&str, &str)> = rollout["stages"]
        .as_array()
        .map(|s| {
            s.iter()
                .map(|s| {
                    (
                        s["name"].as_str().unwrap_or_default(),
                        s["state"].as_str().unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        stages,
        [("first", "Installing"), ("then", "Waiting")],
        "{rollout}"
    );
    assert_eq!(rollout["release"], "r1", "{rollout}");
    let (_, admin_web) = json("/api/groups/fleet/web", &admin);
    assert_eq!(admin_web["rollout"]["rollout"], "critical", "{admin_web}");
    assert_eq!(admin_web["rollout"]["stage"], "first", "{admin_web}");
    // The team may read the group but not the rollout.
    assert_eq!(json("/api/rollouts/fleet/critical", &team).0, 403);
    let (_, team_web) = json("/api/groups/fleet/web", &team);
    assert_eq!(team_web["rollout"], Value::Null, "{team_web}");
}

fn assert_no_token_logged(dashboard: &DashboardProcess, token: &str) {
    let log = dashboard.log_text();
    let signature = &token[token.len().saturating_sub(40)..];
    assert!(
        !log.contains(&token[..40]) && !log.contains(signature),
        "a token was logged"
    );
}

/// The pages in Chromium: log in, the overview, a click through to a node, and a change on
/// the simulated clock reaching the open overview.
/// A rollout of the fleet's policy: web first, then db.
const ROLLOUT: &str = r#"apiVersion: patchfleet.io/v1alpha1
kind: PatchRollout
metadata: {name: critical, namespace: fleet}
spec:
  policyRef: {name: critical}
  release: {token: r1}
  stages:
    - {name: first, patchGroups: [web], soak: 1d}
    - {name: then, patchGroups: [db], approval: Manual}
"#;

async fn browse(stack: &Stack, dashboard: &DashboardProcess, token: &str, install_at: f64) {
    let browser = Browser::start().await.expect("Chromium starts");
    let b = &browser.client;
    b.goto(&dashboard.url("/")).await.expect("the overview");
    b.find(Locator::Id("token"))
        .await
        .expect("the login form")
        .send_keys(token)
        .await
        .expect("typing the token");
    browser.screenshot("login").await.expect("screenshot");
    b.find(Locator::Id("login"))
        .await
        .expect("the button")
        .click()
        .await
        .expect("log in");
    let user = wait_text(&browser, "#user", Duration::from_secs(10), |t| {
        !t.is_empty()
    })
    .await;
    assert_eq!(user, "system:serviceaccount:viewers:fleet-admin");
    // The cookie: HttpOnly (the page's script cannot read it).
    let visible_cookie: Value = b
        .execute("return document.cookie;", vec![])
        .await
        .expect("script runs");
    assert_eq!(visible_cookie, json!(""));

    let cell = |col: &str| {
        format!("tr[data-account=\"customer-a\"][data-region=\"eu-west-1\"] td[data-col=\"{col}\"]")
    };
    assert_eq!(
        wait_text(&browser, &cell("instances"), Duration::from_secs(10), |t| t
            == "7")
        .await,
        "7"
    );
    assert_eq!(
        wait_text(&browser, &cell("missing"), Duration::from_secs(10), |t| t
            == "3")
        .await,
        "3"
    );
    assert!(
        b.find(Locator::Css(
            "tr[data-account=\"customer-a\"] svg.bar rect.missing"
        ))
        .await
        .is_ok()
    );
    browser.screenshot("overview").await.expect("screenshot");

    // Account -> the web group's nodes in eu-west-1 -> a node's patches.
    b.find(Locator::Css(
        "tr[data-account=\"customer-a\"] a[href=\"/accounts/customer-a\"]",
    ))
    .await
    .expect("the account's link")
    .click()
    .await
    .expect("click");
    wait_text(&browser, "h1", Duration::from_secs(10), |t| {
        t.starts_with("customer-a")
    })
    .await;
    browser.screenshot("account").await.expect("screenshot");
    b.find(Locator::Css("tr[data-group=\"fleet/web\"] a.nodes"))
        .await
        .expect("the group's nodes link")
        .click()
        .await
        .expect("click");
    wait_text(
        &browser,
        &format!("tr[data-node=\"{NODE_2}\"] td[data-col=\"missing\"]"),
        Duration::from_secs(20),
        |t| t == "2",
    )
    .await;
    browser.screenshot("group-nodes").await.expect("screenshot");
    b.find(Locator::Css(&format!("tr[data-node=\"{NODE_1}\"] a")))
        .await
        .expect("the node's link")
        .click()
        .await
        .expect("click");
    wait_text(&browser, "h1", Duration::from_secs(20), |t| {
        t.starts_with(NODE_1)
    })
    .await;
    let states = b
        .find_all(Locator::Css("#patches td[data-col=\"state\"]"))
        .await
        .expect("patch rows");
    let mut missing = 0;
    for state in states {
        if state.text().await.unwrap_or_default() == "MISSING" {
            missing += 1;
        }
    }
    assert_eq!(missing, 2);
    browser.screenshot("node").await.expect("screenshot");
    b.goto(&dashboard.url("/groups/fleet/web"))
        .await
        .expect("the group page");
    wait_text(&browser, "h1", Duration::from_secs(10), |t| {
        t.starts_with("fleet/web")
    })
    .await;
    browser.screenshot("group").await.expect("screenshot");

    // The Install windows run on the simulated clock; the open overview shows the failed
    // node without being reloaded.
    b.goto(&dashboard.url("/")).await.expect("the overview");
    wait_text(&browser, &cell("failed"), Duration::from_secs(10), |t| {
        t == "0"
    })
    .await;
    b.execute("window.patchfleetStay = 42; return true;", vec![])
        .await
        .expect("marker");
    set_clock(stack, install_at + 1_800.0);
    wait_text(&browser, &cell("failed"), PASS, |t| t == "1").await;
    let stayed: Value = b
        .execute("return window.patchfleetStay;", vec![])
        .await
        .expect("script runs");
    assert_eq!(
        stayed,
        json!(42),
        "the page was reloaded instead of updated"
    );
    browser
        .screenshot("overview-after-install")
        .await
        .expect("screenshot");

    // A PatchRollout over the fleet's groups: its page shows the stages as they move.
    stack
        .apply_text("rollout", ROLLOUT)
        .expect("the rollout applies");
    b.goto(&dashboard.url("/rollouts/fleet/critical"))
        .await
        .expect("the rollout page");
    wait_text(&browser, "tr[data-stage=first] td.state", PASS, |t| {
        t == "Installing"
    })
    .await;
    browser.screenshot("rollout").await.expect("screenshot");
    let _ = browser.client.clone().close().await;
}

/// The benchmark: the overview's response time and the dashboard's memory with many
/// accounts in status (two regions each). The suite runs 50; `scripts/bench-dashboard`
/// (or PATCHFLEET_DASHBOARD_BENCH_ACCOUNTS=1000) the full size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_with_many_accounts() {
    let accounts: usize = std::env::var("PATCHFLEET_DASHBOARD_BENCH_ACCOUNTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(50);
    let stack = Stack::start("dashboard-bench").await.expect("stack starts");
    let client = stack.client().await.expect("client");
    let api: Api<SystemAccount> = Api::all(client);
    let started = Instant::now();
    let names: Vec<String> = (0..accounts).map(|i| format!("bench-{i:04}")).collect();
    futures_for_each(&names, |name, i| {
        let api = api.clone();
        async move {
            let id = format!("{:012}", 100_000_000_000u64 + i as u64);
            let object = json!({
                "apiVersion": "patchfleet.io/v1alpha1",
                "kind": "SystemAccount",
                "metadata": {"name": name, "labels": {"tier": if i % 2 == 0 { "prod" } else { "dev" }}},
                "spec": {"accountId": id, "roleArn": format!("arn:aws:iam::{id}:role/patchfleet"), "regions": ["eu-west-1", "us-east-1"]},
            });
            let ssa = PatchParams::apply("bench").force();
            api.patch(&name, &ssa, &Patch::Apply(&object)).await.expect("account applies");
            let counts = |n: u32| NodeCounts { instances: n, online: n, compliant: n - 1, non_compliant: 1, with_missing: 1, ..NodeCounts::default() };
            let region = |r: &str| RegionNodes {
                region: r.to_owned(),
                observed_at: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now())),
                counts: counts(10),
                ..RegionNodes::default()
            };
            let status = SystemAccountStatus {
                nodes: Some(AccountNodes { total: counts(20), regions: vec![region("eu-west-1"), region("us-east-1")] }),
                ..SystemAccountStatus::default()
            };
            let patch = json!({"apiVersion": "patchfleet.io/v1alpha1", "kind": "SystemAccount", "status": status});
            api.patch_status(&name, &ssa, &Patch::Apply(&patch)).await.expect("status applies");
        }
    })
    .await;
    println!(
        "bench: {accounts} SystemAccounts with status written in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let admin = stack
        .kubectl([
            "config",
            "view",
            "--raw",
            "-o",
            "jsonpath={.users[0].user.token}",
        ])
        .expect("the admin token");
    let dashboard = DashboardProcess::start(&stack, "bench", &[]).expect("the dashboard starts");
    let rss_idle = dashboard.rss_kib().unwrap_or(0);
    let mut overview = Value::Null;
    let mut times = Vec::new();
    for path in ["/api/overview", "/"] {
        let mut samples = Vec::new();
        for _ in 0..20 {
            let start = Instant::now();
            let answer = get(dashboard.address, path, Some(&admin)).expect("an answer");
            samples.push(start.elapsed());
            assert_eq!(answer.status, 200, "{}", answer.body);
            if path == "/api/overview" {
                overview = answer.json().expect("JSON");
            }
        }
        samples.sort();
        times.push((path, samples[samples.len() / 2], samples[samples.len() - 1]));
    }
    assert_eq!(
        rows(&overview, "accounts").len(),
        2 * accounts,
        "every account-region is a row"
    );
    let rss = dashboard.rss_kib().unwrap_or(0);
    for (path, p50, max) in &times {
        println!(
            "bench: GET {path} with {} account-regions: p50 {:.1} ms, max {:.1} ms",
            2 * accounts,
            p50.as_secs_f64() * 1e3,
            max.as_secs_f64() * 1e3
        );
    }
    println!(
        "bench: dashboard RSS {:.1} MiB idle with {accounts} accounts cached, {:.1} MiB after 40 requests",
        rss_idle as f64 / 1024.0,
        rss as f64 / 1024.0
    );
}

/// Runs `each` over `names` (with their index), eight at a time.
async fn futures_for_each<F, Fut>(names: &[String], each: F)
where
    F: Fn(String, usize) -> Fut,
    Fut: Future<Output = ()>,
{
    use futures::StreamExt;
    futures::stream::iter(names.iter().enumerate().map(|(i, n)| each(n.clone(), i)))
        .buffer_unordered(8)
        .collect::<Vec<()>>()
        .await;
}
