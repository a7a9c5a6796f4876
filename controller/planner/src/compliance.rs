//! The compliance pass, pure: what patchfleet expects in an account-region (its groups and
//! windows there), how the figures are counted from what SSM reports, and how many calls
//! a pass makes. The SSM edge reads (`patchfleet_ssm::compliance`); the runtime writes
//! status. docs/compliance.md explains each figure.

use std::collections::{BTreeMap, BTreeSet};

use patchfleet_api::v1alpha1::{
    AccountRegionNodes, AccountRegionRun, GroupNodes, MAX_LISTED_REGIONS, NamedWindowRun,
    NodeCounts, PatchOperation, Platform, RegionNodes, WindowRun, WindowRuns,
};

use crate::Inventory;
use crate::inventory::Settings;
use crate::model::{AccountRegion, ObservedRegistration, Owner, TaskAction};
use crate::rollout::{GroupEvidence, StageRelease, group_evidence};
use crate::steps::group_giving;

/// A managed node as DescribeInstanceInformation reports it
/// (<https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_InstanceInformation.html>).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeReading {
    pub id: String,
    /// Online, ConnectionLost or Inactive.
    pub ping_status: String,
    /// Linux, Windows or MacOS.
    pub platform_type: String,
    /// AWS::EC2::Instance, AWS::SSM::ManagedInstance, Microsoft.Compute/virtualMachines,
    /// compute.googleapis.com/Instance, ...
    pub source_type: Option<String>,
    /// IsLatestVersion: SSM reports it for Linux and macOS only.
    pub latest_agent: Option<bool>,
}

/// A node's last patch operation, as DescribeInstancePatchStates(ForPatchGroup) reports
/// it (<https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_InstancePatchState.html>).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PatchStateReading {
    pub node_id: String,
    /// The node's `Patch Group` tag when it ran the operation.
    pub patch_group: String,
    /// The baseline the operation used.
    pub baseline_id: String,
    /// Whether the operation was an Install (else a Scan).
    pub install: bool,
    pub missing: u32,
    pub failed: u32,
    pub installed_pending_reboot: u32,
    pub installed_rejected: u32,
    pub critical_non_compliant: u32,
    pub security_non_compliant: u32,
    pub other_non_compliant: u32,
}

/// What one compliance pass read in an account-region.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegionReading {
    pub nodes: Vec<NodeReading>,
    /// At most one per node.
    pub states: Vec<PatchStateReading>,
    /// Every patch group registration (owned or not).
    pub registrations: Vec<ObservedRegistration>,
    /// The last execution of each of patchfleet's windows here, by SSM window name;
    /// None: it has not run, or SSM does not list the window (yet).
    pub windows: BTreeMap<String, Option<WindowRun>>,
}

impl RegionReading {
    /// The runs read, by window name, for the next pass (`known_runs`): a finished run is
    /// not read again.
    pub fn last_runs(&self) -> BTreeMap<String, WindowRun> {
        self.windows
            .iter()
            .filter_map(|(name, run)| Some((name.clone(), run.clone()?)))
            .collect()
    }
}

/// A window patchfleet keeps in an account-region, as the compliance pass needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntendedWindow {
    pub owner: Owner,
    /// Whether one of its tasks installs patches (the account's "last install run").
    pub installs: bool,
    /// The `Patch Group` values it targets.
    pub groups: BTreeSet<String>,
}

/// A PatchGroup in a rollout stage that has a release, as the compliance pass needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StagedGroup {
    pub owner: Owner,
    pub release: StageRelease,
    /// The names of the stage's baselines for that release (one per operating system).
    pub baselines: BTreeSet<String>,
    /// The policy's own baselines the group also has, for the operating systems no stage
    /// holds back (Ubuntu, Debian): their nodes are not the stage's.
    pub unstaged: BTreeSet<String>,
}

/// What patchfleet keeps in one account-region, from the resources: which patch groups
/// (and the PatchGroup giving each) and which windows (by SSM name).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegionIntent {
    pub platform: Platform,
    pub groups: BTreeMap<String, Owner>,
    pub windows: BTreeMap<String, IntendedWindow>,
    /// By `Patch Group` value: the groups in a rollout stage with a release.
    pub staged: BTreeMap<String, StagedGroup>,
}

/// The patch groups and windows patchfleet plans in `region` (nothing for an inactive
/// account-region).
pub fn intent(inventory: &Inventory, settings: &Settings, region: &AccountRegion) -> RegionIntent {
    let (desired, _) = crate::desired(inventory, settings, region);
    let platform = inventory
        .account(&region.account)
        .map(|a| a.spec.platform)
        .unwrap_or_default();
    let mut groups = BTreeMap::new();
    for baseline in desired.baselines.values() {
        for value in &baseline.patch_groups {
            if let Some(owner) = group_giving(inventory, &baseline.owner.namespace, value) {
                groups.insert(value.clone(), owner);
            }
        }
    }
    let windows = desired
        .windows
        .values()
        .map(|window| {
            let installs = window.tasks.values().any(|task| match &task.action {
                TaskAction::RunPatchBaseline { operation, .. } => {
                    *operation == PatchOperation::Install
                }
                // Snapshot-then-patch runbooks exist only for Install tasks.
                TaskAction::Automation { .. } => true,
            });
            (
                window.name.clone(),
                IntendedWindow {
                    owner: window.owner.clone(),
                    installs,
                    groups: window
                        .targets
                        .values()
                        .map(|t| t.patch_group.clone())
                        .collect(),
                },
            )
        })
        .collect();
    let staged = staged_groups(inventory, &desired, &groups);
    RegionIntent {
        platform,
        groups,
        windows,
        staged,
    }
}

/// The groups planned here that sit in a rollout stage with a release, with the names of
/// that release's baselines.
fn staged_groups(
    inventory: &Inventory,
    desired: &crate::Desired,
    groups: &BTreeMap<String, Owner>,
) -> BTreeMap<String, StagedGroup> {
    let staging = inventory.staging();
    let mut staged = BTreeMap::new();
    if staging.is_empty() {
        return staged;
    }
    for (value, owner) in groups {
        let Some(stage) = staging.assignment(&owner.namespace, &owner.name) else {
            continue;
        };
        let Some(release) = &stage.release else {
            continue;
        };
        let (baselines, unstaged): (BTreeSet<String>, BTreeSet<String>) = desired
            .baselines
            .values()
            .filter(|b| b.patch_groups.contains(value))
            .map(|b| {
                let stage_name =
                    stage.baseline_name(&b.owner.namespace, &b.owner.name, b.operating_system());
                (b.name.clone(), stage_name == b.name)
            })
            .fold(
                Default::default(),
                |(mut staged, mut unstaged), (name, is_stage)| {
                    if is_stage {
                        staged.insert(name);
                    } else {
                        unstaged.insert(name);
                    }
                    (staged, unstaged)
                },
            );
        staged.insert(
            value.clone(),
            StagedGroup {
                owner: owner.clone(),
                release: release.clone(),
                baselines,
                unstaged,
            },
        );
    }
    staged
}

/// The managed-node quotas of an account-region
/// (<https://docs.aws.amazon.com/general/latest/gr/ssm.html#limits_ssm>).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeQuotas {
    /// Managed nodes (EC2 and hybrid).
    pub managed_nodes: u32,
    /// Hybrid nodes on the standard tier.
    pub hybrid_nodes: u32,
}

impl Default for NodeQuotas {
    fn default() -> NodeQuotas {
        NodeQuotas {
            managed_nodes: 2_400,
            hybrid_nodes: 1_000,
        }
    }
}

/// The figures of one account-region.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegionFigures {
    /// What the SystemAccount shows for the region (its `region` and `observedAt` left
    /// for the runtime to fill).
    pub region: RegionNodes,
    /// Per PatchGroup planned here: its nodes here (zeros when none reported).
    pub groups: BTreeMap<Owner, NodeCounts>,
    /// Per PatchGroup: its nodes whose last operation used another baseline than
    /// patchfleet's (only groups with some).
    pub overwritten: BTreeMap<Owner, u32>,
    /// Per MaintenanceWindow: its last run here (None: not run yet).
    pub windows: BTreeMap<Owner, Option<WindowRun>>,
    /// Per PatchGroup in a rollout stage with a release: what its nodes here show for
    /// that release.
    pub stages: BTreeMap<Owner, (StageRelease, GroupEvidence)>,
}

/// Counts the figures of one account-region from what the pass read.
///
/// A node counts in a PatchGroup when its last patch state was reported under the
/// group's tag value; a node that never reported counts only in the account's
/// `unreported`. A node is compliant when its last operation found nothing missing,
/// failed, installed-but-rejected or waiting for a reboot, as Patch Manager's compliance
/// states say
/// (<https://docs.aws.amazon.com/systems-manager/latest/userguide/patch-manager-compliance-states.html>).
pub fn tally(reading: &RegionReading, intent: &RegionIntent, quotas: NodeQuotas) -> RegionFigures {
    let states: BTreeMap<&str, &PatchStateReading> = reading
        .states
        .iter()
        .map(|s| (s.node_id.as_str(), s))
        .collect();
    // Baselines patchfleet registered for each of its groups, any operating system.
    let mut registered: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for r in &reading.registrations {
        if intent.groups.contains_key(&r.patch_group) {
            registered
                .entry(r.patch_group.as_str())
                .or_default()
                .insert(r.baseline_id.as_str());
        }
    }

    let known: BTreeSet<&str> = reading
        .registrations
        .iter()
        .map(|r| r.baseline_id.as_str())
        .collect();
    let mut figures = RegionFigures::default();
    for owner in intent.groups.values() {
        figures.groups.insert(owner.clone(), NodeCounts::default());
    }
    let mut hybrid = 0u32;
    for node in &reading.nodes {
        let state = states.get(node.id.as_str()).copied();
        let counts = node_counts(node, state, intent.platform);
        if node.id.starts_with("mi-") {
            hybrid += 1;
        }
        if let Some(state) = state
            && let Some(owner) = intent.groups.get(&state.patch_group)
        {
            figures
                .groups
                .entry(owner.clone())
                .or_default()
                .add(&counts);
            let ours = registered.get(state.patch_group.as_str());
            // A stage that takes a release deletes its previous baseline: its nodes report
            // under a baseline registered nowhere until their next operation, which is
            // patchfleet's doing, not another tool's.
            let older_release = intent.staged.contains_key(&state.patch_group)
                && !known.contains(state.baseline_id.as_str());
            if !older_release && ours.is_some_and(|ids| !ids.contains(state.baseline_id.as_str())) {
                figures.region.overwritten += 1;
                *figures.overwritten.entry(owner.clone()).or_default() += 1;
            }
        }
        figures.region.counts.add(&counts);
    }
    let nodes = reading.nodes.len() as u32;
    figures.region.node_headroom = headroom(quotas.managed_nodes, nodes);
    figures.region.hybrid_node_headroom = headroom(quotas.hybrid_nodes, hybrid);

    for (name, window) in &intent.windows {
        let run = reading.windows.get(name).cloned().flatten();
        if window.installs
            && let Some(run) = &run
        {
            let later = figures
                .region
                .last_install
                .as_ref()
                .is_none_or(|last| run.started() > last.run.started());
            if later {
                figures.region.last_install = Some(NamedWindowRun {
                    window: format!("{}/{}", window.owner.namespace, window.owner.name),
                    run: run.clone(),
                });
            }
        }
        figures.windows.insert(window.owner.clone(), run);
    }
    for (value, staged) in &intent.staged {
        let mut evidence = group_evidence(
            &reading.states,
            &reading.registrations,
            value,
            &staged.baselines,
            &staged.unstaged,
        );
        evidence.last_install = intent
            .windows
            .iter()
            .filter(|(_, w)| w.installs && w.groups.contains(value))
            .filter_map(|(name, _)| reading.windows.get(name).cloned().flatten())
            .max_by_key(|run| run.started());
        figures
            .stages
            .insert(staged.owner.clone(), (staged.release.clone(), evidence));
    }
    figures
}

/// A PatchGroup's nodes over the account-regions where they were read: the totals, and
/// the account-regions with the most non-compliant nodes first (at most 20 listed).
pub fn group_nodes<'a>(
    regions: impl IntoIterator<Item = (&'a AccountRegion, &'a NodeCounts, u32)>,
) -> GroupNodes {
    let mut nodes = GroupNodes::default();
    let mut listed = Vec::new();
    for (region, counts, overwritten) in regions {
        nodes.total.add(counts);
        nodes.overwritten += overwritten;
        listed.push(AccountRegionNodes {
            account_id: region.account_id.clone(),
            region: region.region.clone(),
            counts: counts.clone(),
        });
    }
    listed.sort_by(|a, b| {
        (b.counts.non_compliant, b.counts.with_failed)
            .cmp(&(a.counts.non_compliant, a.counts.with_failed))
            .then_with(|| (&a.account_id, &a.region).cmp(&(&b.account_id, &b.region)))
    });
    nodes.omitted_regions = listed.len().saturating_sub(MAX_LISTED_REGIONS) as u32;
    listed.truncate(MAX_LISTED_REGIONS);
    nodes.regions = listed;
    nodes
}

/// A MaintenanceWindow's last run in each account-region where it was read: how many
/// succeeded, failed or never ran, and the runs, failed first, then the latest (at most 20).
pub fn window_runs<'a>(
    regions: impl IntoIterator<Item = (&'a AccountRegion, Option<&'a WindowRun>)>,
) -> WindowRuns {
    let mut runs = WindowRuns::default();
    let mut listed = Vec::new();
    for (region, run) in regions {
        let Some(run) = run else {
            runs.never_run += 1;
            continue;
        };
        if run.is_failure() {
            runs.failed += 1;
        } else if run.is_finished() {
            runs.succeeded += 1;
        } else {
            runs.in_progress += 1;
        }
        listed.push(AccountRegionRun {
            account_id: region.account_id.clone(),
            region: region.region.clone(),
            run: run.clone(),
        });
    }
    listed.sort_by(|a, b| {
        b.run
            .is_failure()
            .cmp(&a.run.is_failure())
            .then_with(|| b.run.started().cmp(&a.run.started()))
            .then_with(|| (&a.account_id, &a.region).cmp(&(&b.account_id, &b.region)))
    });
    listed.truncate(MAX_LISTED_REGIONS);
    runs.last_runs = listed;
    runs
}

fn headroom(quota: u32, used: u32) -> i32 {
    i32::try_from(i64::from(quota) - i64::from(used)).unwrap_or(i32::MIN)
}

/// One node's contribution to the counts.
fn node_counts(
    node: &NodeReading,
    state: Option<&PatchStateReading>,
    platform: Platform,
) -> NodeCounts {
    let mut c = NodeCounts {
        instances: 1,
        online: u32::from(node.ping_status == "Online"),
        ..NodeCounts::default()
    };
    match node.platform_type.as_str() {
        "Windows" => c.platforms.windows = 1,
        "MacOS" => c.platforms.macos = 1,
        _ => c.platforms.linux = 1,
    }
    match provider(node, platform) {
        Platform::Aws => c.providers.aws = 1,
        Platform::Azure => c.providers.azure = 1,
        Platform::Gcp => c.providers.gcp = 1,
        Platform::Vmware => c.providers.vmware = 1,
        Platform::Onprem => c.providers.onprem = 1,
        Platform::Other => c.providers.other = 1,
    }
    // SSM reports IsLatestVersion for Linux and macOS agents only.
    c.agent_updates =
        u32::from(node.platform_type != "Windows" && node.latest_agent == Some(false));
    let Some(s) = state else {
        c.unreported = 1;
        return c;
    };
    c.with_missing = u32::from(s.missing > 0);
    c.with_failed = u32::from(s.failed > 0);
    c.pending_reboot = u32::from(s.installed_pending_reboot > 0);
    let non_compliant =
        s.missing > 0 || s.failed > 0 || s.installed_pending_reboot > 0 || s.installed_rejected > 0;
    if non_compliant {
        c.non_compliant = 1;
        if s.critical_non_compliant > 0 {
            c.severities.critical = 1;
        } else if s.security_non_compliant > 0 {
            c.severities.security = 1;
        } else {
            c.severities.other = 1;
        }
    } else {
        c.compliant = 1;
    }
    c
}

/// Where a node runs: EC2 instances on AWS; Azure and Google Cloud VMs by SSM's
/// SourceType; other hybrid nodes on the account's platform (on premises for an AWS
/// account, whose hybrid nodes are by definition not EC2).
pub fn provider(node: &NodeReading, platform: Platform) -> Platform {
    match node.source_type.as_deref() {
        Some("Microsoft.Compute/virtualMachines") => Platform::Azure,
        Some("compute.googleapis.com/Instance") => Platform::Gcp,
        Some("AWS::EC2::Instance") => Platform::Aws,
        _ if node.id.starts_with("i-") => Platform::Aws,
        _ if platform == Platform::Aws => Platform::Onprem,
        _ => platform,
    }
}

/// Page sizes of the calls the pass makes: each call's largest
/// (<https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_Operations.html>).
pub mod pages {
    /// DescribeInstanceInformation: MaxResults 5-50.
    pub const INSTANCE_INFORMATION: usize = 50;
    /// DescribePatchGroups: MaxResults 1-100.
    pub const PATCH_GROUPS: usize = 100;
    /// DescribeInstancePatchStatesForPatchGroup: MaxResults 10-100.
    pub const STATES_FOR_GROUP: usize = 100;
    /// DescribeInstancePatchStates: at most 50 InstanceIds per call.
    pub const STATES_BY_ID: usize = 50;
    /// DescribeMaintenanceWindows: MaxResults 10-100.
    pub const WINDOWS: usize = 100;
    /// DescribeMaintenanceWindowExecutions: MaxResults 10-100.
    pub const EXECUTIONS: usize = 100;
    /// DescribeMaintenanceWindowExecutionTasks: MaxResults 10-100.
    pub const EXECUTION_TASKS: usize = 100;
    /// DescribeMaintenanceWindowExecutionTaskInvocations: MaxResults 10-100.
    pub const INVOCATIONS: usize = 100;
}

/// What decides the number of calls of one pass over an account-region.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PassShape {
    /// Managed nodes (N).
    pub nodes: usize,
    /// Patch group registrations in the account-region, anyone's (R).
    pub registrations: usize,
    /// For each of patchfleet's patch groups: the nodes that reported under it (s_g).
    pub group_states: Vec<usize>,
    /// Nodes not found under one of patchfleet's groups (U): read by id.
    pub other_nodes: usize,
    /// patchfleet's windows planned in the account-region (W): the window list is read
    /// only when there is one.
    pub planned_windows: usize,
    /// Maintenance windows in the account-region, anyone's (M).
    pub windows_listed: usize,
    /// Executions listed for each of patchfleet's windows that SSM lists (usually 0 or 1:
    /// only those from the last one read on).
    pub executions_listed: Vec<usize>,
    /// For each execution read in detail (new, or not finished when last read): the task
    /// invocations of each of its tasks.
    pub executions_read: Vec<Vec<usize>>,
}

/// The calls one compliance pass makes (docs/compliance.md has the formula):
///
/// ⌈N/50⌉ + ⌈R/100⌉ + Σ_g ⌈s_g/100⌉ + ⌈U/50⌉ + [W > 0] ⌈M/100⌉ + Σ_w ⌈e_w/100⌉
///   + Σ_new (⌈tasks/100⌉ + Σ_t ⌈i_t/100⌉)
///
/// where a list call is made once even when it returns nothing (⌈0⌉ counts 1), except
/// the reads by id (none when U = 0) and the window list (none without a planned window).
pub fn calls(shape: &PassShape) -> usize {
    let pages = |items: usize, size: usize| items.div_ceil(size).max(1);
    let mut calls = pages(shape.nodes, pages::INSTANCE_INFORMATION)
        + pages(shape.registrations, pages::PATCH_GROUPS)
        + shape
            .group_states
            .iter()
            .map(|&s| pages(s, pages::STATES_FOR_GROUP))
            .sum::<usize>()
        + shape.other_nodes.div_ceil(pages::STATES_BY_ID);
    if shape.planned_windows > 0 {
        calls += pages(shape.windows_listed, pages::WINDOWS);
        calls += shape
            .executions_listed
            .iter()
            .map(|&e| pages(e, pages::EXECUTIONS))
            .sum::<usize>();
    }
    calls += shape
        .executions_read
        .iter()
        .map(|tasks| {
            pages(tasks.len(), pages::EXECUTION_TASKS)
                + tasks
                    .iter()
                    .map(|&i| pages(i, pages::INVOCATIONS))
                    .sum::<usize>()
        })
        .sum::<usize>();
    calls
}
