//! The compliance read against the simulator's fleet: the figures its nodes imply, and
//! exactly the calls `patchfleet_planner::compliance::calls` gives (docs/compliance.md).

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ssm::types::OperatingSystem as SdkOs;
use patchfleet_api::v1alpha1::{OperatingSystem, PatchOperation, Platform};
use patchfleet_planner::compliance::{
    IntendedWindow, NodeQuotas, PassShape, RegionIntent, RegionReading, calls, tally,
};
use patchfleet_planner::model::{OwnerKind, TaskDefinition};
use patchfleet_ssm::SsmClient;
use patchfleet_ssm::apply;
use patchfleet_ssm::compliance::{ComplianceRequest, read_compliance};
use ssm_sim::Server;
use ssm_sim::fleet::{FleetSpec, InstanceSpec};
use ssm_sim::state::Tags;

use crate::common::*;

fn group_tag(group: &str) -> Tags {
    Tags::from([("Patch Group".to_owned(), group.to_owned())])
}

fn node(n: usize, tags: Tags) -> InstanceSpec {
    InstanceSpec {
        instance_id: format!("i-{n:017x}"),
        tags,
        ..InstanceSpec::default()
    }
}

/// 60 Linux nodes in "web" (5 offline, 4 with an old agent, 12 lacking 2 patches), 40
/// Windows nodes in "db", 20 in another team's group, 10 without a group.
fn fleet() -> Vec<InstanceSpec> {
    let mut nodes = Vec::new();
    for n in 0..60 {
        let mut spec = node(n, group_tag("web"));
        if n < 5 {
            spec.ping_status = Some("ConnectionLost".to_owned());
        }
        if (5..9).contains(&n) {
            spec.agent_version = Some("3.0.0.0".to_owned());
        }
        if n >= 48 {
            spec.missing_patches = 2;
        }
        nodes.push(spec);
    }
    for n in 60..100 {
        let mut spec = node(n, group_tag("db"));
        spec.platform_type = Some("Windows".to_owned());
        nodes.push(spec);
    }
    for n in 100..120 {
        nodes.push(node(n, group_tag("other-team")));
    }
    for n in 120..130 {
        nodes.push(node(n, Tags::new()));
    }
    nodes
}

/// patchfleet's baselines with "web" and "db" registered (4 registrations).
async fn register_groups(client: &SsmClient) {
    let baselines = vec![
        desired_baseline(
            "early",
            baseline_spec(OperatingSystem::AmazonLinux2, 0),
            &["web", "db"],
        ),
        desired_baseline(
            "early",
            baseline_spec(OperatingSystem::Windows, 0),
            &["web", "db"],
        ),
    ];
    let report = apply(client, CLUSTER, &create_all(&baselines, &[])).await;
    assert!(report.error.is_none(), "{:?}", report.error);
}

fn intent() -> RegionIntent {
    RegionIntent {
        platform: Platform::Aws,
        groups: BTreeMap::from([
            ("web".to_owned(), owner(OwnerKind::PatchGroup, "web")),
            ("db".to_owned(), owner(OwnerKind::PatchGroup, "db")),
        ]),
        windows: BTreeMap::<String, IntendedWindow>::new(),
        staged: BTreeMap::new(),
    }
}

fn request(intent: &RegionIntent) -> ComplianceRequest {
    ComplianceRequest {
        groups: intent.groups.keys().cloned().collect(),
        windows: intent.windows.keys().cloned().collect::<BTreeSet<_>>(),
        known_runs: BTreeMap::new(),
    }
}

/// One compliance read that must succeed: what it read and its calls.
async fn read_ok(client: &SsmClient, request: &ComplianceRequest) -> (RegionReading, u32) {
    let read = read_compliance(client, request).await;
    (read.reading.expect("compliance read"), read.calls)
}

fn put_fleet(server: &Server, instances: Vec<InstanceSpec>) {
    let spec = FleetSpec {
        account_id: ACCOUNT_A.to_owned(),
        region: REGION.to_owned(),
        instances,
    };
    spec.validate(&server.sim().config.quotas)
        .expect("a valid fleet");
    ssm_sim::fleet::apply(server.sim(), &spec);
}

#[tokio::test]
async fn the_figures_are_what_the_fleet_implies_at_the_documented_cost() {
    let server = start(sim_config()).await;
    let (_edge, client) = client_a(&server).await;
    register_groups(&client).await;
    put_fleet(&server, fleet());
    scan(&client, &["web", "db", "other-team"]).await;
    server.sim().counters.reset();

    let intent = intent();
    let (read, read_calls) = read_ok(&client, &request(&intent)).await;
    let counted: u64 = sim_calls(&server, ACCOUNT_A, REGION).values().sum();
    // 130 nodes, 4 registrations, 60 + 40 states under patchfleet's groups, 30 others.
    let shape = PassShape {
        nodes: 130,
        registrations: 4,
        group_states: vec![40, 60],
        other_nodes: 30,
        ..PassShape::default()
    };
    assert_eq!(calls(&shape), 3 + 1 + 1 + 1 + 1);
    assert_eq!(
        counted,
        calls(&shape) as u64,
        "{:?}",
        sim_calls(&server, ACCOUNT_A, REGION)
    );
    assert_eq!(u64::from(read_calls), counted);

    let figures = tally(&read, &intent, NodeQuotas::default());
    let c = &figures.region.counts;
    assert_eq!((c.instances, c.online), (130, 125));
    assert_eq!((c.platforms.linux, c.platforms.windows), (90, 40));
    assert_eq!(c.agent_updates, 4);
    assert_eq!(c.with_missing, 12);
    assert_eq!((c.compliant, c.non_compliant, c.unreported), (108, 12, 10));
    assert_eq!(
        c.severities.critical, 12,
        "the missing patches are critical"
    );
    assert_eq!(figures.region.node_headroom, 2_400 - 130);
    let web = &figures.groups[&owner(OwnerKind::PatchGroup, "web")];
    assert_eq!((web.instances, web.online, web.non_compliant), (60, 55, 12));
    let db = &figures.groups[&owner(OwnerKind::PatchGroup, "db")];
    assert_eq!((db.instances, db.platforms.windows), (40, 40));
    assert_eq!(figures.region.overwritten, 0);
}

#[tokio::test]
async fn a_scan_with_another_baseline_shows_as_overwritten() {
    let server = start(sim_config()).await;
    let (_edge, client) = client_a(&server).await;
    register_groups(&client).await;
    put_fleet(&server, fleet());
    scan(&client, &["web", "db"]).await;

    // Another tool registers "web" to its own Amazon Linux 2 baseline and scans.
    let ours = client
        .sdk()
        .deregister_patch_baseline_for_patch_group()
        .baseline_id(
            registration_of(&client, "web", SdkOs::AmazonLinux2)
                .await
                .expect("web is registered"),
        )
        .patch_group("web")
        .send()
        .await
        .expect("deregistered");
    let theirs = client
        .sdk()
        .create_patch_baseline()
        .name("someone-elses")
        .operating_system(SdkOs::AmazonLinux2)
        .send()
        .await
        .expect("their baseline")
        .baseline_id
        .expect("an id");
    client
        .sdk()
        .register_patch_baseline_for_patch_group()
        .baseline_id(&theirs)
        .patch_group("web")
        .send()
        .await
        .expect("their registration");
    scan(&client, &["web"]).await;
    // patchfleet registers its own again (its next write pass would).
    client
        .sdk()
        .deregister_patch_baseline_for_patch_group()
        .baseline_id(&theirs)
        .patch_group("web")
        .send()
        .await
        .expect("theirs deregistered");
    client
        .sdk()
        .register_patch_baseline_for_patch_group()
        .baseline_id(ours.baseline_id.expect("our id"))
        .patch_group("web")
        .send()
        .await
        .expect("ours registered again");

    let intent = intent();
    let (read, _) = read_ok(&client, &request(&intent)).await;
    let figures = tally(&read, &intent, NodeQuotas::default());
    assert_eq!(figures.region.overwritten, 60, "every web node");
    assert_eq!(
        figures
            .overwritten
            .get(&owner(OwnerKind::PatchGroup, "web")),
        Some(&60)
    );
    assert_eq!(
        figures.overwritten.get(&owner(OwnerKind::PatchGroup, "db")),
        None
    );
}

async fn registration_of(client: &SsmClient, group: &str, os: SdkOs) -> Option<String> {
    let out = client
        .sdk()
        .get_patch_baseline_for_patch_group()
        .patch_group(group)
        .operating_system(os)
        .send()
        .await
        .ok()?;
    out.baseline_id
}

/// A nightly window (Scan, then Install) on "web", run by the simulated clock.
async fn nightly_window(client: &SsmClient) -> String {
    let window = desired_window(
        "nightly",
        window_definition("cron(0 3 * * ? *)", 4, 1),
        &["web"],
        vec![
            (
                "scan",
                run_patch_baseline(PatchOperation::Scan, &["web"], 1),
            ),
            (
                "install",
                run_patch_baseline(PatchOperation::Install, &["web"], 2),
            ),
        ],
    );
    let name = window.name.clone();
    let report = apply(client, CLUSTER, &create_all(&[], &[window])).await;
    assert!(report.error.is_none(), "{:?}", report.error);
    name
}

#[tokio::test]
async fn a_window_run_is_read_once_and_counted_by_node() {
    let server = start(sim_config()).await;
    let (_edge, client) = client_a(&server).await;
    register_groups(&client).await;
    let mut nodes: Vec<InstanceSpec> = fleet().into_iter().take(60).collect();
    nodes[7].fails_install = true;
    nodes[7].missing_patches = 2;
    put_fleet(&server, nodes);
    let window = nightly_window(&client).await;
    let mut intent = intent();
    intent.windows.insert(
        window.clone(),
        IntendedWindow {
            owner: owner(OwnerKind::MaintenanceWindow, "nightly"),
            installs: true,
            groups: BTreeSet::new(),
        },
    );

    // Not run yet: listed without a run.
    let (read, _) = read_ok(&client, &request(&intent)).await;
    assert_eq!(read.windows.get(&window), Some(&None));

    // A day later the window has opened and run both tasks on the 60 web nodes.
    server
        .sim()
        .clock
        .advance(86_400.0 + 4.0 * 3_600.0)
        .expect("the clock moves on");
    server.sim().counters.reset();
    let (read, read_calls) = read_ok(&client, &request(&intent)).await;
    let counted: u64 = sim_calls(&server, ACCOUNT_A, REGION).values().sum();
    assert_eq!(u64::from(read_calls), counted);
    let run = read.windows[&window].clone().expect("it ran");
    assert_eq!((run.succeeded, run.failed), (60 + 59, 1), "{run:?}");
    assert!(run.is_failure());
    let shape = PassShape {
        nodes: 60,
        registrations: 4,
        group_states: vec![0, 60],
        other_nodes: 0,
        planned_windows: 1,
        windows_listed: 1,
        executions_listed: vec![1],
        executions_read: vec![vec![60, 60]],
    };
    assert_eq!(
        counted,
        calls(&shape) as u64,
        "{:?}",
        sim_calls(&server, ACCOUNT_A, REGION)
    );

    let figures = tally(&read, &intent, NodeQuotas::default());
    let last = figures.region.last_install.clone().expect("an install ran");
    assert_eq!(last.window, "patching/nightly");
    assert_eq!(last.run, run);
    assert_eq!(figures.region.counts.with_failed, 1);

    // The next pass lists the executions since the known one and reads no task again.
    let known = request(&intent);
    let known = ComplianceRequest {
        known_runs: BTreeMap::from([(window.clone(), run.clone())]),
        ..known
    };
    server.sim().counters.reset();
    let (again, again_calls) = read_ok(&client, &known).await;
    let counted: u64 = sim_calls(&server, ACCOUNT_A, REGION).values().sum();
    assert_eq!(u64::from(again_calls), counted);
    assert_eq!(again.windows[&window], Some(run));
    let shape = PassShape {
        executions_read: Vec::new(),
        ..shape
    };
    assert_eq!(
        counted,
        calls(&shape) as u64,
        "{:?}",
        sim_calls(&server, ACCOUNT_A, REGION)
    );
}

/// Nodes of the benchmark: `PATCHFLEET_COMPLIANCE_BENCH_NODES` (the suite runs 500; the
/// documented figures are for 5,000, run by hand, see docs/performance.md).
fn bench_nodes() -> usize {
    std::env::var("PATCHFLEET_COMPLIANCE_BENCH_NODES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(500)
}

/// The benchmark of docs/compliance.md: one account-region with N nodes in 10 groups
/// (every fifth node Windows, every tenth lacking two patches) and a nightly Scan
/// window over all of them that has run once; a first pass (which reads the run's
/// invocations) and a steady one. Prints the calls counted by the simulator, the
/// formula's, and each pass's duration; fails when they differ.
///
/// ```sh
/// PATCHFLEET_COMPLIANCE_BENCH_NODES=5000 cargo test --release -p patchfleet-ssm --test sim \
///     compliance::benchmark -- --nocapture
/// ```
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn benchmark_a_pass_over_many_nodes() {
    const GROUPS: usize = 10;
    let nodes = bench_nodes();
    let server = start(sim_config()).await;
    let (_edge, client) = client_a(&server).await;
    let groups: Vec<String> = (0..GROUPS).map(|g| format!("group-{g}")).collect();
    let names: Vec<&str> = groups.iter().map(String::as_str).collect();
    let baselines = vec![
        desired_baseline(
            "fleet",
            baseline_spec(OperatingSystem::AmazonLinux2, 0),
            &names,
        ),
        desired_baseline("fleet", baseline_spec(OperatingSystem::Windows, 0), &names),
    ];
    let window = desired_window(
        "nightly",
        window_definition("cron(0 3 * * ? *)", 4, 1),
        &names,
        vec![(
            "scan",
            TaskDefinition {
                max_concurrency: "100%".into(),
                max_errors: "100%".into(),
                ..run_patch_baseline(PatchOperation::Scan, &names, 1)
            },
        )],
    );
    let window_name = window.name.clone();
    let report = apply(&client, CLUSTER, &create_all(&baselines, &[window])).await;
    assert!(report.error.is_none(), "{:?}", report.error);
    let fleet: Vec<InstanceSpec> = (0..nodes)
        .map(|n| {
            let mut spec = node(n, group_tag(&groups[n % GROUPS]));
            if n % 5 == 0 {
                spec.platform_type = Some("Windows".to_owned());
            }
            if n % 10 == 1 {
                spec.missing_patches = 2;
            }
            spec
        })
        .collect();
    put_fleet(&server, fleet);
    server
        .sim()
        .clock
        .advance(86_400.0 + 4.0 * 3_600.0)
        .expect("the clock moves on");
    ssm_sim::ops::run_due_everywhere(server.sim());

    let intent = RegionIntent {
        platform: Platform::Aws,
        groups: groups
            .iter()
            .map(|g| (g.clone(), owner(OwnerKind::PatchGroup, g)))
            .collect(),
        windows: BTreeMap::from([(
            window_name.clone(),
            IntendedWindow {
                owner: owner(OwnerKind::MaintenanceWindow, "nightly"),
                installs: false,
                groups: BTreeSet::new(),
            },
        )]),
        staged: BTreeMap::new(),
    };
    let per_group = nodes / GROUPS;
    let first = PassShape {
        nodes,
        registrations: 2 * GROUPS,
        group_states: vec![per_group; GROUPS],
        other_nodes: 0,
        planned_windows: 1,
        windows_listed: 1,
        executions_listed: vec![1],
        executions_read: vec![vec![nodes]],
    };
    let steady = PassShape {
        executions_read: Vec::new(),
        ..first.clone()
    };
    let mut known = request(&intent);
    for (pass, shape) in [("first", first), ("steady", steady)] {
        server.sim().counters.reset();
        let started = std::time::Instant::now();
        let (read, _) = read_ok(&client, &known).await;
        let figures = tally(&read, &intent, NodeQuotas::default());
        let took = started.elapsed();
        let counted: u64 = sim_calls(&server, ACCOUNT_A, REGION).values().sum();
        println!(
            "compliance_bench pass={pass} nodes={nodes} groups={GROUPS} calls={counted} \
             formula={} seconds={:.3} non_compliant={}",
            calls(&shape),
            took.as_secs_f64(),
            figures.region.counts.non_compliant
        );
        assert_eq!(counted, calls(&shape) as u64, "{pass} pass");
        assert_eq!(figures.region.counts.instances as usize, nodes);
        assert_eq!(figures.region.counts.unreported, 0);
        assert_eq!(
            figures.region.counts.with_missing as usize,
            (0..nodes).filter(|n| n % 10 == 1).count(),
            "every tenth node lacks two patches"
        );
        known.known_runs = read.last_runs();
    }
}
