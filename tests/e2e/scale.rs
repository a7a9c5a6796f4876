//! The scale benchmark's driver (`patchfleet_tests::bench`, run by `scripts/bench`) with a
//! small fleet and the debug binaries, so that it cannot rot: 24 SystemAccounts in 2 regions,
//! examples/defaults and three Scheduled windows (60 SSM objects per account-region).
//!
//! It asserts exact call counts, never times: convergence makes every object exactly once
//! and no call beyond its budget; a quiet window costs nothing; a cheap pass over every
//! account costs only its lists; one rule edit costs exactly one UpdatePatchBaseline per
//! account-region plus the reads of a pass; AssumeRole happens once per account; and no
//! status write wakes an account (the resync is one hour here, so every SystemAccount
//! reconcile in the run has a cause the test knows).
//!
//! The budgets are constants computed from the workload's shape: when the controller's
//! cost changes on purpose, change them here (the test prints what it measured first).

use std::collections::BTreeMap;
use std::time::Duration;

use patchfleet_tests::bench::{self, Options, Report, Workload, shape};
use patchfleet_tests::stack::patchfleet_binary;

const ACCOUNTS: u64 = 24;
const REGIONS: u64 = 2;
const ACCOUNT_REGIONS: u64 = ACCOUNTS * REGIONS;

/// What one account-region's convergence writes: every object exactly once.
const CONVERGE_WRITES: [(&str, u64); 6] = [
    ("CreatePatchBaseline", shape::BASELINES),
    ("RegisterPatchBaselineForPatchGroup", shape::REGISTRATIONS),
    ("RegisterDefaultPatchBaseline", shape::DEFAULTS),
    ("CreateMaintenanceWindow", shape::WINDOWS),
    ("RegisterTargetWithMaintenanceWindow", shape::TARGETS),
    ("RegisterTaskWithMaintenanceWindow", shape::TASKS),
];

/// The lists of a cheap pass over one account-region: one paged list per resource type.
const CHEAP_PASS_LISTS: [(&str, u64); 3] = [
    ("DescribePatchBaselines", 1),
    ("DescribePatchGroups", 1),
    ("DescribeMaintenanceWindows", 1),
];

/// Writes one converging account-region makes beyond the creates: each window's fingerprint
/// is stamped (UpdateMaintenanceWindow) once its targets and tasks exist.
const CONVERGE_EXTRA_WRITES: [(&str, u64); 1] = [("UpdateMaintenanceWindow", shape::WINDOWS)];
/// Passes over each account while converging, each listing every region once: the one that
/// creates everything, and the one that confirms it (after the settle delay).
const CONVERGE_ACCOUNT_PASSES: u64 = 2;
/// GetCallerIdentity calls per account for the controller's whole life (the identity is
/// verified once, with the credentials).
const IDENTITY_PER_ACCOUNT: u64 = 1;
/// Passes over each account for the edit: the one that writes it, the one that confirms it.
const EDIT_ACCOUNT_PASSES: u64 = 2;
/// Reads one account-region makes for the edit beyond its passes' lists: the changed
/// baseline, read deeply because its fingerprint differs.
const EDIT_READS: [(&str, u64); 1] = [("GetPatchBaseline", 1)];
/// Writes one account-region makes for the edit: the baseline, nothing else.
const EDIT_WRITES: [(&str, u64); 1] = [("UpdatePatchBaseline", 1)];

fn add(into: &mut BTreeMap<String, u64>, operation: &str, count: u64) {
    if count > 0 {
        *into.entry(operation.to_owned()).or_insert(0) += count;
    }
}

/// Every call of convergence, by operation.
fn expected_converge() -> BTreeMap<String, u64> {
    let mut calls = BTreeMap::new();
    add(&mut calls, "AssumeRole", ACCOUNTS);
    add(
        &mut calls,
        "GetCallerIdentity",
        ACCOUNTS * IDENTITY_PER_ACCOUNT,
    );
    for (operation, n) in CHEAP_PASS_LISTS {
        add(
            &mut calls,
            operation,
            n * CONVERGE_ACCOUNT_PASSES * ACCOUNT_REGIONS,
        );
    }
    for (operation, n) in CONVERGE_WRITES.into_iter().chain(CONVERGE_EXTRA_WRITES) {
        add(&mut calls, operation, n * ACCOUNT_REGIONS);
    }
    calls
}

/// Every call of one pass over every account that changes nothing: its lists, no STS call.
fn expected_cheap_pass() -> BTreeMap<String, u64> {
    let mut calls = BTreeMap::new();
    for (operation, n) in CHEAP_PASS_LISTS {
        add(&mut calls, operation, n * ACCOUNT_REGIONS);
    }
    calls
}

/// Every call of the edit.
fn expected_edit() -> BTreeMap<String, u64> {
    let mut calls = BTreeMap::new();
    for (operation, n) in CHEAP_PASS_LISTS {
        add(
            &mut calls,
            operation,
            n * EDIT_ACCOUNT_PASSES * ACCOUNT_REGIONS,
        );
    }
    for (operation, n) in EDIT_READS.into_iter().chain(EDIT_WRITES) {
        add(&mut calls, operation, n * ACCOUNT_REGIONS);
    }
    calls
}

fn show(report: &Report) {
    for (key, value) in report.count_lines() {
        println!("{key}={value}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_converges_within_its_call_budget() {
    let options = Options {
        name: "scale".into(),
        workload: Workload::new(ACCOUNTS as usize, REGIONS as usize).expect("workload"),
        patchfleet: patchfleet_binary().expect("patchfleet builds"),
        // Counts do not depend on these: an hour's resync (and a day's deep read) so that
        // every account pass in the run is caused by a known event; a higher rate limit
        // so that the suite is done sooner.
        controller_args: [
            "--resync",
            "1h",
            "--deep-interval",
            "24h",
            "--rate-limit",
            "50",
        ]
        .map(String::from)
        .to_vec(),
        steady: Duration::from_secs(10),
        ceiling: Duration::from_millis(500),
        quiet: Duration::from_secs(3),
        timeout: Duration::from_secs(600),
        progress: true,
        delete_accounts: true,
    };
    let report = bench::run(&options).await.expect("the benchmark runs");
    show(&report);

    // Every check is made and every mismatch reported at once, so one run shows the whole
    // picture when the controller's cost moves.
    let failures = std::cell::RefCell::new(Vec::<String>::new());
    let check = |ok: bool, what: String| {
        if !ok {
            failures.borrow_mut().push(what);
        }
    };
    let same = |what: &str, got: &dyn std::fmt::Debug, want: &dyn std::fmt::Debug| {
        let (got, want) = (format!("{got:?}"), format!("{want:?}"));
        check(
            got == want,
            format!("{what}:\n    got  {got}\n    want {want}"),
        );
    };

    let converge = &report.converge;
    same(
        "convergence: failed calls",
        &converge.failed,
        &BTreeMap::<String, u64>::new(),
    );
    for (operation, per_account_region) in CONVERGE_WRITES {
        same(
            &format!("convergence: {operation} (every object created exactly once)"),
            &converge.calls_of(operation),
            &(per_account_region * ACCOUNT_REGIONS),
        );
    }
    same(
        "convergence: calls by operation",
        &converge.calls,
        &expected_converge(),
    );
    // kube-runtime logs why it reconciled (PATCHFLEET_BENCH_RUST_LOG=info,patchfleet=debug):
    // "object updated" is a watch event, "unknown" a wake (an owner whose reach changed, a
    // namespace), "reconciler requested retry" the settle delay or the resync.
    same(
        "convergence: SystemAccount passes (no pass beyond create and confirm)",
        &converge.reconciles_of("SystemAccount"),
        &(ACCOUNTS * CONVERGE_ACCOUNT_PASSES),
    );

    let steady = &report.steady;
    same(
        "quiet window: calls",
        &steady.calls,
        &BTreeMap::<String, u64>::new(),
    );
    same(
        "quiet window: SystemAccount passes (the resync is an hour away, so any pass \
         was caused by a watch event such as a status write)",
        &steady.reconciles_of("SystemAccount"),
        &0_u64,
    );

    let wake = &report.wake;
    same(
        "cheap pass: failed calls",
        &wake.failed,
        &BTreeMap::<String, u64>::new(),
    );
    same(
        "cheap pass: calls by operation (lists only)",
        &wake.calls,
        &expected_cheap_pass(),
    );
    same(
        "cheap pass: SystemAccount passes (one per account)",
        &wake.reconciles_of("SystemAccount"),
        &ACCOUNTS,
    );

    let edit = &report.edit;
    same(
        "edit: failed calls",
        &edit.failed,
        &BTreeMap::<String, u64>::new(),
    );
    same(
        "edit: account-regions updated",
        &(report.edit_updates.len() as u64),
        &ACCOUNT_REGIONS,
    );
    check(
        report.edit_updates.values().all(|n| *n == 1),
        format!(
            "edit: exactly one UpdatePatchBaseline per account-region: {:?}",
            report.edit_updates
        ),
    );
    same("edit: calls by operation", &edit.calls, &expected_edit());
    same(
        "edit: SystemAccount passes (the one that writes, the one that confirms)",
        &edit.reconciles_of("SystemAccount"),
        &(ACCOUNTS * EDIT_ACCOUNT_PASSES),
    );

    same(
        "AssumeRole for the whole run (once per account)",
        &report.assume_role_calls,
        &ACCOUNTS,
    );
    same(
        "GetCallerIdentity for the whole run",
        &report.caller_identity_calls,
        &(ACCOUNTS * IDENTITY_PER_ACCOUNT),
    );
    // Deleted accounts are emptied (every object deleted once) and then forgotten: the
    // controller keeps no credentials, clients or pass records of them.
    match &report.delete {
        None => check(false, "the deletion phase did not run".to_owned()),
        Some(deleted) => {
            same(
                "deletion: AWS's defaults registered again (before the baselines go)",
                &deleted.phase.calls_of("RegisterDefaultPatchBaseline"),
                &(shape::DEFAULTS * ACCOUNT_REGIONS),
            );
            for operation in ["DeletePatchBaseline", "DeleteMaintenanceWindow"] {
                let create = operation.replace("Delete", "Create");
                // What convergence made, and what the rollout phases left (made less deleted).
                let rollouts = report.rollout.iter().flat_map(|r| [&r.first, &r.next]);
                let created = converge.calls_of(&create)
                    + rollouts
                        .map(|p| p.calls_of(&create) - p.calls_of(operation))
                        .sum::<u64>();
                same(
                    &format!("deletion: {operation} (every object created deleted once)"),
                    &deleted.phase.calls_of(operation),
                    &created,
                );
            }
            same(
                "deletion: accounts cached before (patchfleet_cached_accounts)",
                &deleted.cached_accounts_before,
                &(ACCOUNTS as f64),
            );
            same(
                "deletion: accounts still cached (patchfleet_cached_accounts)",
                &deleted.cached_accounts,
                &0.0,
            );
            same(
                "deletion: account-regions still recorded (patchfleet_account_regions)",
                &deleted.account_regions,
                &0.0,
            );
        }
    }
    match &report.compliance {
        None => check(false, "no compliance phase".to_owned()),
        Some(compliance) => {
            same(
                "compliance: calls of one pass over every account-region (docs/compliance.md's formula)",
                &compliance.calls,
                &compliance.formula_calls,
            );
            same(
                "compliance: nodes counted",
                &compliance.instances,
                &(ACCOUNT_REGIONS * patchfleet_tests::bench::COMPLIANCE_NODES as u64),
            );
        }
    }
    // docs/rollout.md's cost: the first release creates a stage baseline per staged
    // operating system in each account-region and moves the group onto it (the policy's
    // own baselines stay: they are the account's defaults); the next one also deletes the
    // first release's. Nothing is updated in place.
    match &report.rollout {
        None => check(false, "no rollout phase".to_owned()),
        Some(rollout) => {
            let staged = patchfleet_tests::bench::STAGED_OPERATING_SYSTEMS * ACCOUNT_REGIONS;
            for (release, phase, deleted) in [
                ("first", &rollout.first, 0),
                ("next", &rollout.next, staged),
            ] {
                let calls = |op: &str| phase.calls.get(op).copied().unwrap_or(0);
                for (op, want) in [
                    ("CreatePatchBaseline", staged),
                    ("RegisterPatchBaselineForPatchGroup", staged),
                    ("DeregisterPatchBaselineForPatchGroup", staged),
                    ("DeletePatchBaseline", deleted),
                    ("UpdatePatchBaseline", 0),
                ] {
                    same(
                        &format!("rollout, {release} release: {op}"),
                        &calls(op),
                        &want,
                    );
                }
                same(
                    &format!("rollout, {release} release: failed calls"),
                    &phase.failed,
                    &BTreeMap::<String, u64>::new(),
                );
            }
        }
    }
    check(
        report
            .ceiling_calls_per_second
            .is_some_and(|rate| rate > 0.0),
        "the ceiling's plain clients made no call".to_owned(),
    );
    let failures = failures.into_inner();
    assert!(
        failures.is_empty(),
        "{} of the call budgets do not hold:\n- {}",
        failures.len(),
        failures.join("\n- ")
    );
}
