//! What GitOps tools read from the objects the controller really writes: the kstatus
//! library (Flux's health checks, `kubectl wait`-style tooling) and the Argo CD health
//! scripts in docs/argocd/resource_customizations, run in gopher-lua as Argo CD runs them.
//! Both come as commands from tests/gitops (a Go module); their directory is
//! `PATCHFLEET_GITOPS_BIN_DIR` (scripts/test sets it), else `tests/env/gitops-check
//! bin-dir` builds them. The hand-written testdata is checked there; this checks the
//! scripts and the kstatus rules against live objects: converged, Stalled, with a
//! generation the controller has not observed yet, and while converging.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use patchfleet_tests::repo_root;
use patchfleet_tests::stack::{ALL_KINDS, CONVERGE, Stack};

const EVERY_OBJECT: &str = "systemaccounts,patchpolicies,patchgroups,maintenancewindows";

/// The directory holding the `kstatus` and `argohealth` commands.
fn bin_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os("PATCHFLEET_GITOPS_BIN_DIR").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir);
        }
        let script = repo_root().join("tests/env/gitops-check");
        let output = Command::new(&script)
            .arg("bin-dir")
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
        assert!(
            output.status.success(),
            "{} bin-dir failed",
            script.display()
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        PathBuf::from(stdout.lines().last().expect("a directory").trim())
    })
}

/// One output line: `<kind>/<namespace>/<name> <status> <message>`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Verdict {
    status: String,
    message: String,
}

struct ToolRun {
    success: bool,
    verdicts: BTreeMap<String, Verdict>,
    output: String,
}

/// Runs `kstatus` or `argohealth` with `list` (a `kubectl get -o json` document) on stdin.
fn run_tool(tool: &str, args: &[&str], list: &str) -> ToolRun {
    let path = bin_dir().join(tool);
    let mut command = Command::new(&path);
    command.args(args);
    if tool == "argohealth" {
        command
            .arg("--customizations")
            .arg(repo_root().join("docs/argocd/resource_customizations"));
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {}: {e}", path.display()));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(list.as_bytes())
        .expect("writing the list");
    let output = child.wait_with_output().expect("waiting for the tool");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let code = output.status.code();
    assert!(
        matches!(code, Some(0 | 1)),
        "{tool} failed ({:?}): {stderr}\n{stdout}",
        output.status
    );
    let mut verdicts = BTreeMap::new();
    for line in stdout.lines() {
        let mut parts = line.splitn(3, ' ');
        let id = parts.next().unwrap_or_default().to_owned();
        let status = parts.next().unwrap_or_default().to_owned();
        let message = parts.next().unwrap_or_default().to_owned();
        verdicts.insert(id, Verdict { status, message });
    }
    ToolRun {
        success: code == Some(0),
        verdicts,
        output: format!("{stdout}{stderr}"),
    }
}

fn kstatus(list: &str, expect: Option<&str>) -> ToolRun {
    match expect {
        Some(status) => run_tool("kstatus", &["--expect", status], list),
        None => run_tool("kstatus", &[], list),
    }
}

fn argohealth(list: &str, expect: Option<&str>) -> ToolRun {
    match expect {
        Some(status) => run_tool("argohealth", &["--expect", status], list),
        None => run_tool("argohealth", &[], list),
    }
}

/// Every patchfleet object, as `kubectl get -A -o json` prints it.
fn every_object(stack: &Stack) -> String {
    stack
        .kubectl(["get", EVERY_OBJECT, "-A", "-o", "json"])
        .expect("kubectl get")
}

/// `<kind>/<namespace>/<name>` of each item, and whether it has any condition yet.
fn items(list: &str) -> BTreeMap<String, bool> {
    let list: serde_json::Value = serde_json::from_str(list).expect("a JSON list");
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| {
            let id = format!(
                "{}/{}/{}",
                item["kind"].as_str().unwrap_or_default(),
                item["metadata"]["namespace"].as_str().unwrap_or_default(),
                item["metadata"]["name"].as_str().unwrap_or_default(),
            );
            let reported = item["status"]["conditions"]
                .as_array()
                .is_some_and(|c| !c.is_empty());
            (id, reported)
        })
        .collect()
}

/// kstatus and the Argo CD health agree on every object of `list`: Current/Healthy,
/// InProgress/Progressing (or Suspended), Failed/Degraded. The one difference allowed is
/// kstatus' own: an object the controller has not reported on yet is Current to kstatus
/// (it has no observedGeneration to compare) and Progressing to the Lua script.
fn assert_agree(list: &str) {
    let objects = items(list);
    let k = kstatus(list, None);
    let argo = argohealth(list, None);
    assert_eq!(
        k.verdicts.keys().collect::<Vec<_>>(),
        objects.keys().collect::<Vec<_>>(),
        "kstatus printed one line per object:\n{}",
        k.output
    );
    for (id, reported) in &objects {
        let (ks, health) = (&k.verdicts[id], &argo.verdicts[id]);
        let agree = matches!(
            (ks.status.as_str(), health.status.as_str()),
            ("Current", "Healthy")
                | ("InProgress", "Progressing" | "Suspended")
                | ("Failed", "Degraded")
        ) || (!reported && ks.status == "Current" && health.status == "Progressing");
        assert!(
            agree,
            "{id}: kstatus {ks:?} but Argo CD health {health:?}\n{list}"
        );
    }
}

/// Polls until the kstatus of `args` (a kubectl get) satisfies `check`.
fn eventually(
    stack: &Stack,
    what: &str,
    args: &[&str],
    check: impl Fn(&ToolRun) -> bool,
) -> String {
    let deadline = Instant::now() + CONVERGE;
    loop {
        stack.check_controller().expect("the controller runs");
        let list = stack.kubectl(args).expect("kubectl get");
        let run = kstatus(&list, None);
        if check(&run) {
            return list;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; kstatus says:\n{}\n--- controller log ---\n{}",
            run.output,
            stack.controller_log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Every object, once kstatus says Current for all of them (wait_ready checks one kind
/// after another, and a pass may still be rewriting an earlier kind's status).
fn all_current(stack: &Stack) -> String {
    let args = ["get", EVERY_OBJECT, "-A", "-o", "json"];
    eventually(stack, "every object to be Current", &args, |run| {
        !run.verdicts.is_empty() && run.verdicts.values().all(|v| v.status == "Current")
    })
}

fn assert_every_object_current_and_healthy(list: &str) {
    let objects = items(list);
    // examples/: 2 SystemAccounts and at least one of each namespaced kind.
    for kind in [
        "SystemAccount",
        "PatchPolicy",
        "PatchGroup",
        "MaintenanceWindow",
    ] {
        assert!(
            objects.keys().any(|id| id.starts_with(&format!("{kind}/"))),
            "no {kind} in the list"
        );
    }
    let k = kstatus(list, Some("Current"));
    assert!(k.success, "kstatus --expect Current:\n{}", k.output);
    assert_eq!(k.verdicts.len(), objects.len(), "{}", k.output);
    let argo = argohealth(list, Some("Healthy"));
    assert!(
        argo.success,
        "argohealth --expect Healthy:\n{}",
        argo.output
    );
    assert_eq!(argo.verdicts.len(), objects.len(), "{}", argo.output);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitops_tools_read_the_status_the_controller_writes() {
    let mut stack = Stack::start("gitops").await.expect("stack starts");
    stack.start_controller().expect("controller starts");
    stack.apply("examples").expect("examples apply");

    // While converging: whatever state each object is in, both tools agree on it.
    assert_agree(&every_object(&stack));

    stack
        .wait_ready(&ALL_KINDS, CONVERGE)
        .expect("examples converge");
    assert_every_object_current_and_healthy(&all_current(&stack));

    // A PatchGroup whose policy does not exist: Stalled, so kstatus Failed and Argo CD
    // Degraded, both with the Stalled condition's message.
    stack
        .kubectl([
            "patch",
            "pgrp",
            "late",
            "-n",
            "patching",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"policyRef":{"name":"missing"}}}"#,
        ])
        .expect("patched");
    let late = ["get", "pgrp", "late", "-n", "patching", "-o", "json"];
    let id = "PatchGroup/patching/late";
    let stalled = eventually(&stack, "the group to be Failed", &late, |run| {
        run.verdicts.get(id).is_some_and(|v| v.status == "Failed")
    });
    let failed = &kstatus(&stalled, None).verdicts[id];
    assert!(
        failed.message.contains("spec.policyRef.name"),
        "kstatus message: {failed:?}"
    );
    let degraded = argohealth(&stalled, Some("Degraded"));
    assert!(degraded.success, "{}", degraded.output);
    assert_eq!(degraded.verdicts[id].message, failed.message);
    assert_agree(&every_object(&stack));

    // The spec fixed while no controller runs: the status describes an older generation,
    // which both tools read as in progress, not as the old Stalled.
    stack.kill_controller().expect("controller stopped");
    stack
        .kubectl([
            "patch",
            "pgrp",
            "late",
            "-n",
            "patching",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"policyRef":{"name":"late"}}}"#,
        ])
        .expect("patched back");
    let lagging = stack.kubectl(late).expect("kubectl get");
    let in_progress = kstatus(&lagging, Some("InProgress"));
    assert!(in_progress.success, "{}", in_progress.output);
    assert!(
        in_progress.verdicts[id]
            .message
            .contains("latest observed generation"),
        "{}",
        in_progress.output
    );
    let progressing = argohealth(&lagging, Some("Progressing"));
    assert!(progressing.success, "{}", progressing.output);
    assert!(
        progressing.verdicts[id]
            .message
            .starts_with("Waiting for the controller to observe generation"),
        "{}",
        progressing.output
    );

    // The controller back: everything converges again.
    stack.start_controller().expect("controller restarts");
    stack
        .wait_ready(&ALL_KINDS, CONVERGE)
        .expect("examples converge again");
    assert_every_object_current_and_healthy(&all_current(&stack));
}
