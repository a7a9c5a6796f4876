//! The compliance pass's reads: what SSM reports of the managed nodes, their last patch
//! operation and patchfleet's windows' last runs in one account-region. Read-only; every
//! list at its largest page; the figures are counted by the planner
//! (`patchfleet_planner::compliance`), whose `calls` gives the cost of this read.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ssm::primitives::{DateTime, DateTimeFormat};
use aws_sdk_ssm::types as sdk;
use patchfleet_api::v1alpha1::WindowRun;
use patchfleet_planner::compliance::{NodeReading, PatchStateReading, RegionReading, pages};

use crate::edge::{Session, SsmClient};
use crate::error::EdgeError;
use crate::observe::{list_registrations, list_windows};

/// What to read in one account-region.
#[derive(Clone, Debug, Default)]
pub struct ComplianceRequest {
    /// patchfleet's `Patch Group` values there.
    pub groups: BTreeSet<String>,
    /// SSM names of patchfleet's windows there.
    pub windows: BTreeSet<String>,
    /// The last run of each window as the previous pass read it: a finished run is not
    /// read again, and only executions since it are listed.
    pub known_runs: BTreeMap<String, WindowRun>,
}

/// What one pass read (or why it could not), and how many calls it took either way.
#[derive(Debug)]
pub struct ComplianceReading {
    pub reading: Result<RegionReading, EdgeError>,
    pub calls: u32,
}

/// Reads the account-region: nodes, patch group registrations, each of patchfleet's
/// groups' patch states, the states of the remaining nodes by id, and each window's last
/// run.
pub async fn read_compliance(client: &SsmClient, request: &ComplianceRequest) -> ComplianceReading {
    let s = Session::new(client);
    let reading = read(&s, request).await;
    ComplianceReading {
        reading,
        calls: s.calls(),
    }
}

async fn read(s: &Session<'_>, request: &ComplianceRequest) -> Result<RegionReading, EdgeError> {
    let nodes = read_nodes(s).await?;
    let registrations = list_registrations(s).await?;
    let known: BTreeSet<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
    let mut states = Vec::new();
    for group in &request.groups {
        states.extend(
            group_states(s, group, state_from_sdk)
                .await?
                .into_iter()
                // A node deregistered since keeps its state in SSM for a while.
                .filter(|state| known.contains(state.node_id.as_str())),
        );
    }
    let seen: BTreeSet<&str> = states.iter().map(|st| st.node_id.as_str()).collect();
    let others: Vec<String> = nodes
        .iter()
        .filter(|n| !seen.contains(n.id.as_str()))
        .map(|n| n.id.clone())
        .collect();
    for ids in others.chunks(pages::STATES_BY_ID) {
        states.extend(states_by_id(s, ids).await?);
    }
    let windows = if request.windows.is_empty() {
        BTreeMap::new()
    } else {
        last_runs(s, request).await?
    };
    Ok(RegionReading {
        nodes,
        states,
        registrations,
        windows,
    })
}

/// A page size as the SDK takes it.
pub(crate) fn page(size: usize) -> i32 {
    i32::try_from(size).unwrap_or(i32::MAX)
}

/// DescribeInstanceInformation, 50 at a time
/// (<https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeInstanceInformation.html>).
async fn read_nodes(s: &Session<'_>) -> Result<Vec<NodeReading>, EdgeError> {
    let mut nodes = Vec::new();
    s.each_page(
        "DescribeInstanceInformation",
        |token| {
            s.ssm()
                .describe_instance_information()
                .max_results(page(pages::INSTANCE_INFORMATION))
                .set_next_token(token)
                .send()
        },
        |out| {
            nodes.extend(
                out.instance_information_list()
                    .iter()
                    .filter_map(node_reading),
            );
        },
    )
    .await?;
    Ok(nodes)
}

/// What the figures need of a node (None without an id, which SSM always sends).
pub(crate) fn node_reading(i: &sdk::InstanceInformation) -> Option<NodeReading> {
    Some(NodeReading {
        id: i.instance_id()?.to_owned(),
        ping_status: i
            .ping_status()
            .map(|p| p.as_str())
            .unwrap_or_default()
            .to_owned(),
        platform_type: i
            .platform_type()
            .map(|p| p.as_str())
            .unwrap_or_default()
            .to_owned(),
        source_type: i.source_type().map(|t| t.as_str().to_owned()),
        latest_agent: i.is_latest_version(),
    })
}

fn state_from_sdk(p: &sdk::InstancePatchState) -> PatchStateReading {
    let count = |n: Option<i32>| n.and_then(|n| u32::try_from(n).ok()).unwrap_or(0);
    PatchStateReading {
        node_id: p.instance_id().to_owned(),
        patch_group: p.patch_group().to_owned(),
        baseline_id: p.baseline_id().to_owned(),
        install: *p.operation() == sdk::PatchOperationType::Install,
        missing: count(Some(p.missing_count())),
        failed: count(Some(p.failed_count())),
        installed_pending_reboot: count(p.installed_pending_reboot_count()),
        installed_rejected: count(p.installed_rejected_count()),
        critical_non_compliant: count(p.critical_non_compliant_count()),
        security_non_compliant: count(p.security_non_compliant_count()),
        other_non_compliant: count(p.other_non_compliant_count()),
    }
}

/// DescribeInstancePatchStatesForPatchGroup, 100 at a time, each state as `each` reads it
/// (<https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeInstancePatchStatesForPatchGroup.html>).
pub(crate) async fn group_states<T>(
    s: &Session<'_>,
    group: &str,
    each: impl Fn(&sdk::InstancePatchState) -> T,
) -> Result<Vec<T>, EdgeError> {
    let mut states = Vec::new();
    s.each_page(
        "DescribeInstancePatchStatesForPatchGroup",
        |token| {
            s.ssm()
                .describe_instance_patch_states_for_patch_group()
                .patch_group(group)
                .max_results(page(pages::STATES_FOR_GROUP))
                .set_next_token(token)
                .send()
        },
        |out| states.extend(out.instance_patch_states().iter().map(&each)),
    )
    .await?;
    Ok(states)
}

/// DescribeInstancePatchStates for at most 50 nodes: one call
/// (<https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeInstancePatchStates.html>).
async fn states_by_id(
    s: &Session<'_>,
    ids: &[String],
) -> Result<Vec<PatchStateReading>, EdgeError> {
    let mut states = Vec::new();
    s.each_page(
        "DescribeInstancePatchStates",
        |token| {
            s.ssm()
                .describe_instance_patch_states()
                .set_instance_ids(Some(ids.to_vec()))
                .max_results(page(pages::STATES_BY_ID))
                .set_next_token(token)
                .send()
        },
        |out| states.extend(out.instance_patch_states().iter().map(state_from_sdk)),
    )
    .await?;
    Ok(states)
}

/// RFC 3339 in whole seconds: the form the ExecutedAfter filter takes back, as the API
/// reference's examples write it.
pub(crate) fn rfc3339(t: Option<&DateTime>) -> Option<String> {
    t.and_then(|t| {
        DateTime::from_secs(t.secs())
            .fmt(DateTimeFormat::DateTime)
            .ok()
    })
}

/// Each of patchfleet's windows: its executions since the last one known (the window list
/// gives their ids), and the tasks and invocations of a new or unfinished one.
async fn last_runs(
    s: &Session<'_>,
    request: &ComplianceRequest,
) -> Result<BTreeMap<String, Option<WindowRun>>, EdgeError> {
    let ids: BTreeMap<String, String> = list_windows(s)
        .await?
        .into_iter()
        .filter_map(|w| Some((w.name()?.to_owned(), w.window_id()?.to_owned())))
        .filter(|(name, _)| request.windows.contains(name))
        .collect();
    let mut runs = BTreeMap::new();
    for name in &request.windows {
        let Some(id) = ids.get(name) else {
            runs.insert(name.clone(), None);
            continue;
        };
        let known = request.known_runs.get(name);
        let latest = latest_execution(s, id, known).await?;
        let run = match (latest, known) {
            (None, known) => known.cloned(),
            (Some(latest), Some(known))
                if latest.execution_id == known.execution_id && known.is_finished() =>
            {
                Some(known.clone())
            }
            (Some(latest), _) => Some(with_invocations(s, latest).await?),
        };
        runs.insert(name.clone(), run);
    }
    Ok(runs)
}

/// DescribeMaintenanceWindowExecutions from the known run's start on (it included: the
/// filter takes whole seconds), all of them the first time; the latest by start
/// (<https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeMaintenanceWindowExecutions.html>).
async fn latest_execution(
    s: &Session<'_>,
    window_id: &str,
    known: Option<&WindowRun>,
) -> Result<Option<WindowRun>, EdgeError> {
    let since = known.and_then(|k| k.start_time.clone()).map(|start| {
        sdk::MaintenanceWindowFilter::builder()
            .key("ExecutedAfter")
            .values(start)
            .build()
    });
    let mut latest: Option<WindowRun> = None;
    s.each_page(
        "DescribeMaintenanceWindowExecutions",
        |token| {
            s.ssm()
                .describe_maintenance_window_executions()
                .window_id(window_id)
                .set_filters(since.clone().map(|f| vec![f]))
                .max_results(page(pages::EXECUTIONS))
                .set_next_token(token)
                .send()
        },
        |out| {
            for e in out.window_executions() {
                let run = WindowRun {
                    execution_id: e.window_execution_id().unwrap_or_default().to_owned(),
                    status: e
                        .status()
                        .map(|st| st.as_str())
                        .unwrap_or_default()
                        .to_owned(),
                    start_time: rfc3339(e.start_time()),
                    end_time: rfc3339(e.end_time()),
                    succeeded: 0,
                    failed: 0,
                };
                if latest.as_ref().is_none_or(|l| run.started() > l.started()) {
                    latest = Some(run);
                }
            }
        },
    )
    .await?;
    Ok(latest)
}

/// The execution's task invocations counted by outcome: one per node and task
/// (<https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeMaintenanceWindowExecutionTaskInvocations.html>).
async fn with_invocations(s: &Session<'_>, mut run: WindowRun) -> Result<WindowRun, EdgeError> {
    let mut tasks = Vec::new();
    s.each_page(
        "DescribeMaintenanceWindowExecutionTasks",
        |token| {
            s.ssm()
                .describe_maintenance_window_execution_tasks()
                .window_execution_id(&run.execution_id)
                .max_results(page(pages::EXECUTION_TASKS))
                .set_next_token(token)
                .send()
        },
        |out| {
            tasks.extend(
                out.window_execution_task_identities()
                    .iter()
                    .filter_map(|t| t.task_execution_id().map(str::to_owned)),
            );
        },
    )
    .await?;
    for task in &tasks {
        s.each_page(
            "DescribeMaintenanceWindowExecutionTaskInvocations",
            |token| {
                s.ssm()
                    .describe_maintenance_window_execution_task_invocations()
                    .window_execution_id(&run.execution_id)
                    .task_id(task)
                    .max_results(page(pages::INVOCATIONS))
                    .set_next_token(token)
                    .send()
            },
            |out| {
                for i in out.window_execution_task_invocation_identities() {
                    match i.status().map(|st| st.as_str()) {
                        Some("SUCCESS") => run.succeeded += 1,
                        Some("FAILED" | "TIMED_OUT" | "CANCELLED") => run.failed += 1,
                        _ => {}
                    }
                }
            },
        )
        .await?;
    }
    Ok(run)
}
