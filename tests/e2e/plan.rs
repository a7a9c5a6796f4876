//! `patchfleet plan` and the controller cannot disagree: for the same resources and the
//! same SSM state, the operations `patchfleet plan --against` prints are exactly the
//! writes the controller's next pass makes, in the same order, in every account-region.
//!
//! The examples converge first; then a change touching every kind of write is reviewed
//! with `plan -f DIR --output json` (as in a pull request) and applied to the cluster,
//! and the controller's JSON log of its first pass is compared with the plan.

use std::collections::BTreeMap;
use std::path::Path;

use patchfleet_tests::stack::{ALL_KINDS, CONVERGE, Stack};
use serde_json::Value;

type Writes = BTreeMap<(String, String), Vec<String>>;

/// The examples with a change in each: an edited policy (UpdateBaseline), a group moved
/// to another policy (its registrations move, the policy left without groups loses its
/// baselines), a window removed (DeleteWindow), and default baselines named on an account
/// (RegisterDefaultBaseline).
fn edit_examples(into: &Path) {
    let examples = patchfleet_tests::repo_root().join("examples");
    let read = |name: &str| std::fs::read_to_string(examples.join(name)).expect("example");
    let write = |name: &str, text: String| std::fs::write(into.join(name), text).expect("write");
    write("00-namespace.yaml", read("00-namespace.yaml"));
    write("25-frozen-policy.yaml", read("25-frozen-policy.yaml"));
    write(
        "10-system-accounts.yaml",
        read("10-system-accounts.yaml").replacen(
            "  taskRoles: [patchfleet-patching]\n",
            "  taskRoles: [patchfleet-patching]\n  defaultPatchPolicy: {namespace: patching, name: early}\n",
            1,
        ),
    );
    write(
        "20-patch-policies.yaml",
        read("20-patch-policies.yaml").replacen("approveAfterDays: 0", "approveAfterDays: 2", 1),
    );
    let groups = read("30-patch-groups.yaml");
    let moved = groups.replacen(
        "  name: late\n  namespace: patching\nspec:\n  policyRef:\n    name: late\n",
        "  name: late\n  namespace: patching\nspec:\n  policyRef:\n    name: on-time\n",
        1,
    );
    assert_ne!(groups, moved, "the late group follows on-time");
    write("30-patch-groups.yaml", moved);
    let windows: Vec<String> = read("40-maintenance-windows.yaml")
        .split("\n---\n")
        .filter(|doc| !doc.contains("  name: opportunistic\n"))
        .map(str::to_owned)
        .collect();
    write("40-maintenance-windows.yaml", windows.join("\n---\n"));
}

/// `patchfleet plan -f dir --against SIM --output json`: the operations per
/// account-region, as the controller logs its writes.
fn plan(stack: &Stack, dir: &Path) -> Writes {
    let output = stack
        .plan(
            dir,
            &["--cluster-id", &stack.cluster_id, "--output", "json"],
        )
        .expect("patchfleet plan runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let plan: Value = serde_json::from_str(&stdout).expect("plan prints JSON");
    let mut writes = Writes::new();
    for region in plan["accountRegions"].as_array().expect("accountRegions") {
        assert_eq!(region.get("error"), None, "SSM read: {region}");
        let key = (
            region["account"].as_str().unwrap_or_default().to_owned(),
            region["region"].as_str().unwrap_or_default().to_owned(),
        );
        let operations = region["operations"].as_array().expect("operations");
        writes.insert(
            key,
            operations
                .iter()
                .map(|op| op["operation"].as_str().unwrap_or_default().to_owned())
                .collect(),
        );
    }
    writes
}

/// The writes of the controller's first pass over each account-region, from its JSON log:
/// each `ssm` line's `write`, until the line that ends the pass (`applied`, with the
/// number of `writes`).
fn first_pass_writes(log: &str) -> Writes {
    let mut writes = Writes::new();
    let mut done: Vec<(String, String)> = Vec::new();
    for line in log.lines() {
        let Ok(entry) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let spans = entry["spans"].as_array().cloned().unwrap_or_default();
        let field = |name: &str| {
            spans
                .iter()
                .find_map(|s| s[name].as_str())
                .map(str::to_owned)
        };
        let (Some(account), Some(region)) = (field("account"), field("region")) else {
            continue;
        };
        let key = (account, region);
        if done.contains(&key) {
            continue;
        }
        match entry["message"].as_str() {
            Some("ssm") => writes
                .entry(key)
                .or_default()
                .push(entry["write"].as_str().unwrap_or_default().to_owned()),
            // The pass's own line (the edge logs each operation "applied" too, without
            // `writes`).
            Some("applied") if entry.get("writes").is_some() => done.push(key),
            Some("pass failed") => done.push(key),
            _ => {}
        }
    }
    writes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_writes_exactly_what_plan_printed() {
    let mut stack = Stack::start("plan-agrees").await.expect("stack");
    stack.start_controller().expect("controller");
    stack.apply("examples").expect("examples apply");
    stack
        .wait_ready(&ALL_KINDS, CONVERGE)
        .expect("examples converge");
    stack.kill_controller().expect("controller stopped");

    let dir = tempfile_dir();
    edit_examples(&dir);
    stack
        .kubectl(["apply", "--server-side", "-f", &dir.to_string_lossy()])
        .expect("the change applies");
    stack
        .kubectl([
            "delete",
            "mw",
            "opportunistic",
            "-n",
            "patching",
            "--wait=false",
        ])
        .expect("the window is deleted");
    let planned = plan(&stack, &dir);
    let all: Vec<&String> = planned.values().flatten().collect();
    for kind in [
        "UpdateBaseline",
        "DeleteBaseline",
        "RegisterPatchGroup",
        "DeregisterPatchGroup",
        "DeleteWindow",
        "RegisterDefaultBaseline",
    ] {
        assert!(
            all.iter().any(|op| op.starts_with(kind)),
            "the change plans a {kind}: {planned:#?}"
        );
    }

    stack
        .start_replica("after-review", &["--log-format", "json"], &[])
        .expect("controller");
    stack
        .wait_ready(&ALL_KINDS, CONVERGE)
        .expect("the change converges");
    let log = stack.replica_log("after-review").expect("log");
    let written = first_pass_writes(&log);
    let planned: Writes = planned
        .into_iter()
        .filter(|(_, ops)| !ops.is_empty())
        .collect();
    assert_eq!(written, planned, "the controller's first pass is the plan");
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("patchfleet-plan-agrees-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
