//! What each page shows, pure: built from the objects the user may see (the routes filter
//! them by RBAC first) and the time, so every decision here is a plain table test. The
//! HTML (`html`) and the JSON (`/api/...`) are two renderings of these same views.

use std::borrow::Borrow;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use patchfleet_api::v1alpha1::{
    MaintenanceWindow, PatchGroup, PatchRollout, StageEvidence, StageState, SystemAccount,
    WindowRun,
};
use patchfleet_planner::instances::{InstanceDetail, InstanceSummary};
use serde::{Deserialize, Serialize};

use crate::report::{AccountRow, GroupRow, RowCounts, WindowRow};

/// The moment a page is built and how old figures may be before they are stale.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    pub now: Timestamp,
    /// Two compliance intervals.
    pub stale_after: std::time::Duration,
}

impl Clock {
    fn is_stale(&self, observed: Option<&Time>) -> bool {
        observed.is_none_or(|t| {
            let age = self.now.as_second() - t.0.as_second();
            age > i64::try_from(self.stale_after.as_secs()).unwrap_or(i64::MAX)
        })
    }
}

/// An account-region row's state, worst first: its read failed, it was never read, its
/// figures are stale, some node is not compliant, or all is well.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RowState {
    Error,
    Unread,
    Stale,
    Noncompliant,
    Compliant,
}

impl RowState {
    pub const ALL: [RowState; 5] = [
        RowState::Error,
        RowState::Unread,
        RowState::Stale,
        RowState::Noncompliant,
        RowState::Compliant,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RowState::Error => "error",
            RowState::Unread => "unread",
            RowState::Stale => "stale",
            RowState::Noncompliant => "noncompliant",
            RowState::Compliant => "compliant",
        }
    }
}

/// The overview's query string: filters and the sort, all optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OverviewQuery {
    /// `aws`, `azure`, ...: the SystemAccount's spec.platform.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// `key=value`, or `key` for any value, of the SystemAccount's labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// One of [`RowState`]'s names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// A column: account, region, provider, instances, online, missing, failed,
    /// pendingReboot, agentUpdates, nonCompliant, lastRun, observedAt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sort: Option<String>,
    /// `asc` (default) or `desc`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
}

/// The columns the overview sorts by, in their display order.
pub const SORT_COLUMNS: [(&str, &str); 12] = [
    ("provider", "Provider"),
    ("account", "Account"),
    ("region", "Region"),
    ("instances", "Instances"),
    ("online", "Online"),
    ("missing", "Missing"),
    ("failed", "Failed"),
    ("pendingReboot", "Pending reboot"),
    ("agentUpdates", "Agent updates"),
    ("nonCompliant", "Non-compliant"),
    ("lastRun", "Last run"),
    ("observedAt", "Observed"),
];

/// One account-region of the overview.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OverviewRow {
    #[serde(flatten)]
    pub row: AccountRow,
    pub labels: BTreeMap<String, String>,
    pub state: RowState,
    /// Older than two compliance intervals (or never read).
    pub stale: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Overview {
    pub accounts: Vec<OverviewRow>,
    /// Over the rows shown (after the filters).
    pub totals: RowCounts,
    /// The providers of the accounts the user may see, for the filter.
    pub providers: Vec<String>,
    /// SystemAccounts the user may see that no compliance pass has read yet.
    pub unread_accounts: Vec<String>,
    pub groups: Vec<GroupRow>,
    pub windows: Vec<WindowRow>,
    pub query: OverviewQuery,
}

/// The overview of the accounts, groups and windows given (the ones the user may see).
pub fn overview<A, G, W>(
    accounts: &[A],
    groups: &[G],
    windows: &[W],
    query: &OverviewQuery,
    clock: Clock,
) -> Overview
where
    A: Borrow<SystemAccount>,
    G: Borrow<PatchGroup>,
    W: Borrow<MaintenanceWindow>,
{
    let report = crate::report::build(accounts, groups, windows);
    let by_name: BTreeMap<String, &SystemAccount> = accounts
        .iter()
        .map(|a| (a.borrow().name_any(), a.borrow()))
        .collect();
    let mut rows: Vec<OverviewRow> = report
        .accounts
        .into_iter()
        .map(|row| {
            let account = by_name.get(&row.account);
            let labels = account.map(|a| a.labels().clone()).unwrap_or_default();
            let observed = account
                .and_then(|a| a.status.as_ref()?.nodes.as_ref())
                .and_then(|n| n.regions.iter().find(|r| r.region == row.region))
                .and_then(|r| r.observed_at.as_ref());
            let stale = clock.is_stale(observed);
            let state = if !row.error.is_empty() {
                RowState::Error
            } else if observed.is_none() {
                RowState::Unread
            } else if stale {
                RowState::Stale
            } else if row.counts.non_compliant > 0 {
                RowState::Noncompliant
            } else {
                RowState::Compliant
            };
            OverviewRow {
                row,
                labels: labels.into_iter().collect(),
                state,
                stale,
            }
        })
        .filter(|r| matches(r, query))
        .collect();
    sort_rows(&mut rows, query);
    let mut totals = RowCounts::default();
    for r in &rows {
        totals.add(&r.row.counts);
    }
    let mut providers: Vec<String> = accounts
        .iter()
        .map(|a| a.borrow().spec.platform.as_str().to_owned())
        .collect();
    providers.sort();
    providers.dedup();
    let unread_accounts = accounts
        .iter()
        .map(Borrow::borrow)
        .filter(|a: &&SystemAccount| a.status.as_ref().and_then(|s| s.nodes.as_ref()).is_none())
        .map(|a| a.name_any())
        .collect();
    // Every group and window the user may see, also the ones no pass has counted yet.
    let mut groups_shown = report.groups;
    for g in groups.iter().map(Borrow::borrow) {
        let (namespace, name) = (g.namespace().unwrap_or_default(), g.name_any());
        if !groups_shown
            .iter()
            .any(|r| r.namespace == namespace && r.name == name)
        {
            groups_shown.push(GroupRow {
                namespace,
                name,
                group: g.group_name().to_owned(),
                counts: RowCounts::default(),
            });
        }
    }
    groups_shown.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    let mut windows_shown = report.windows;
    for w in windows.iter().map(Borrow::borrow) {
        let (namespace, name) = (w.namespace().unwrap_or_default(), w.name_any());
        if !windows_shown
            .iter()
            .any(|r| r.namespace == namespace && r.name == name)
        {
            windows_shown.push(WindowRow {
                namespace,
                name,
                ..WindowRow::default()
            });
        }
    }
    windows_shown.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Overview {
        accounts: rows,
        totals,
        providers,
        unread_accounts,
        groups: groups_shown,
        windows: windows_shown,
        query: query.clone(),
    }
}

fn matches(row: &OverviewRow, query: &OverviewQuery) -> bool {
    let provider = query
        .provider
        .as_deref()
        .filter(|p| !p.is_empty())
        .is_none_or(|p| row.row.provider == p);
    let label = query
        .label
        .as_deref()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .is_none_or(|l| match l.split_once('=') {
            Some((key, value)) => {
                row.labels.get(key.trim()).map(String::as_str) == Some(value.trim())
            }
            None => row.labels.contains_key(l),
        });
    let state = query
        .state
        .as_deref()
        .filter(|s| !s.is_empty())
        .is_none_or(|s| row.state.as_str() == s || (s == "stale" && row.stale));
    provider && label && state
}

fn sort_rows(rows: &mut [OverviewRow], query: &OverviewQuery) {
    let column = query.sort.as_deref().unwrap_or("account");
    let number = |r: &OverviewRow| -> Option<u32> {
        let c = &r.row.counts;
        Some(match column {
            "instances" => c.instances,
            "online" => c.online,
            "missing" => c.missing,
            "failed" => c.failed,
            "pendingReboot" => c.pending_reboot,
            "agentUpdates" => c.agent_updates,
            "nonCompliant" => c.non_compliant,
            _ => return None,
        })
    };
    let text = |r: &OverviewRow| -> String {
        match column {
            "region" => r.row.region.clone(),
            "provider" => r.row.provider.clone(),
            // `STATUS at START`: by when it started, not by its status.
            "lastRun" => r
                .row
                .last_run
                .split_once(" at ")
                .map_or_else(String::new, |(_, start)| start.to_owned()),
            "observedAt" => r.row.observed_at.clone(),
            _ => r.row.account.clone(),
        }
    };
    rows.sort_by(|a, b| {
        let primary = match (number(a), number(b)) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => text(a).cmp(&text(b)),
        };
        primary
            .then_with(|| a.row.account.cmp(&b.row.account))
            .then_with(|| a.row.region.cmp(&b.row.region))
    });
    if query.order.as_deref() == Some("desc") {
        rows.reverse();
    }
}

/// A condition as the pages show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionView {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    pub reason: String,
    pub message: String,
    pub since: String,
}

fn conditions(list: &[Condition]) -> Vec<ConditionView> {
    list.iter()
        .map(|c| ConditionView {
            type_: c.type_.clone(),
            status: c.status.clone(),
            reason: c.reason.clone(),
            message: c.message.clone(),
            since: c.last_transition_time.0.to_string(),
        })
        .collect()
}

/// An Event about the object, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    #[serde(rename = "type")]
    pub type_: String,
    pub reason: String,
    pub message: String,
    pub count: i32,
    pub last_seen: String,
}

/// At most `limit` Events, newest first (by the last time each was seen).
pub fn events(list: &[Event], limit: usize) -> Vec<EventView> {
    let mut seen: Vec<(String, EventView)> = list
        .iter()
        .map(|e| {
            let last = e
                .series
                .as_ref()
                .and_then(|s| s.last_observed_time.as_ref())
                .map(|t| t.0.to_string())
                .or_else(|| e.last_timestamp.as_ref().map(|t| t.0.to_string()))
                .or_else(|| e.event_time.as_ref().map(|t| t.0.to_string()))
                .or_else(|| {
                    e.metadata
                        .creation_timestamp
                        .as_ref()
                        .map(|t| t.0.to_string())
                })
                .unwrap_or_default();
            let count = e
                .series
                .as_ref()
                .and_then(|s| s.count)
                .or(e.count)
                .unwrap_or(1);
            (
                last.clone(),
                EventView {
                    type_: e.type_.clone().unwrap_or_default(),
                    reason: e.reason.clone().unwrap_or_default(),
                    message: e.message.clone().unwrap_or_default(),
                    count,
                    last_seen: last,
                },
            )
        })
        .collect();
    seen.sort_by(|a, b| b.0.cmp(&a.0));
    seen.into_iter().take(limit).map(|(_, e)| e).collect()
}

/// One region of an account's page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountRegionView {
    #[serde(flatten)]
    pub row: OverviewRow,
    /// Whether the region holds exactly the desired SSM state (the account pass).
    pub converged: Option<bool>,
    pub node_headroom: Option<i32>,
}

/// A PatchGroup's figures in this account, per region.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountGroupView {
    pub namespace: String,
    pub name: String,
    pub group: String,
    pub regions: Vec<(String, RowCounts)>,
}

/// A MaintenanceWindow's last run in each region of this account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountWindowView {
    pub namespace: String,
    pub name: String,
    pub runs: Vec<(String, WindowRun)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountView {
    pub name: String,
    pub account_id: String,
    pub provider: String,
    pub labels: BTreeMap<String, String>,
    pub caller_arn: Option<String>,
    pub conditions: Vec<ConditionView>,
    pub regions: Vec<AccountRegionView>,
    pub total: Option<RowCounts>,
    pub groups: Vec<AccountGroupView>,
    pub windows: Vec<AccountWindowView>,
    pub events: Vec<EventView>,
}

/// An account's page; `groups` and `windows` are the ones the user may see.
pub fn account<G, W>(
    account: &SystemAccount,
    groups: &[G],
    windows: &[W],
    events: Vec<EventView>,
    clock: Clock,
) -> AccountView
where
    G: Borrow<PatchGroup>,
    W: Borrow<MaintenanceWindow>,
{
    let status = account.status.as_ref();
    let none: [&PatchGroup; 0] = [];
    let no_windows: [&MaintenanceWindow; 0] = [];
    let rows = overview(
        std::slice::from_ref(account),
        &none,
        &no_windows,
        &OverviewQuery::default(),
        clock,
    )
    .accounts;
    let regions = rows
        .into_iter()
        .map(|row| {
            let region = &row.row.region;
            AccountRegionView {
                converged: status
                    .and_then(|s| s.regions.iter().find(|r| &r.region == region))
                    .map(|r| r.ready),
                node_headroom: status
                    .and_then(|s| s.nodes.as_ref())
                    .and_then(|n| n.regions.iter().find(|r| &r.region == region))
                    .map(|r| r.node_headroom),
                row,
            }
        })
        .collect();
    let id = &account.spec.account_id;
    let groups = groups
        .iter()
        .map(Borrow::borrow)
        .filter_map(|g: &PatchGroup| {
            let nodes = g.status.as_ref()?.nodes.as_ref()?;
            let regions: Vec<(String, RowCounts)> = nodes
                .regions
                .iter()
                .filter(|r| &r.account_id == id)
                .map(|r| (r.region.clone(), RowCounts::new(&r.counts, 0)))
                .collect();
            (!regions.is_empty()).then(|| AccountGroupView {
                namespace: g.namespace().unwrap_or_default(),
                name: g.name_any(),
                group: g.group_name().to_owned(),
                regions,
            })
        })
        .collect();
    let windows = windows
        .iter()
        .map(Borrow::borrow)
        .filter_map(|w: &MaintenanceWindow| {
            let runs = w.status.as_ref()?.runs.as_ref()?;
            let mine: Vec<(String, WindowRun)> = runs
                .last_runs
                .iter()
                .filter(|r| &r.account_id == id)
                .map(|r| (r.region.clone(), r.run.clone()))
                .collect();
            (!mine.is_empty()).then(|| AccountWindowView {
                namespace: w.namespace().unwrap_or_default(),
                name: w.name_any(),
                runs: mine,
            })
        })
        .collect();
    AccountView {
        name: account.name_any(),
        account_id: id.clone(),
        provider: account.spec.platform.as_str().to_owned(),
        labels: account.labels().clone().into_iter().collect(),
        caller_arn: status.and_then(|s| s.caller_arn.clone()),
        conditions: status
            .map(|s| conditions(&s.conditions))
            .unwrap_or_default(),
        regions,
        total: status
            .and_then(|s| s.nodes.as_ref())
            .map(|n| RowCounts::new(&n.total, 0)),
        groups,
        windows,
        events,
    }
}

/// One account-region of a group's page; `account` is the SystemAccount's name when the
/// user may see it (the link to the nodes needs it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupRegionView {
    pub account: Option<String>,
    pub account_id: String,
    pub region: String,
    #[serde(flatten)]
    pub counts: RowCounts,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupView {
    pub namespace: String,
    pub name: String,
    pub group: String,
    pub policy: String,
    pub conditions: Vec<ConditionView>,
    pub total: Option<RowCounts>,
    /// Worst first, as the controller lists them (at most 20).
    pub regions: Vec<GroupRegionView>,
    pub omitted_regions: u32,
    pub events: Vec<EventView>,
    /// The rollout stage the group sits in, for a user who may read the rollout.
    pub rollout: Option<GroupStageView>,
}

/// A group's page; `accounts` are the SystemAccounts the user may see.
pub fn group<A: Borrow<SystemAccount>>(
    group: &PatchGroup,
    accounts: &[A],
    events: Vec<EventView>,
) -> GroupView {
    let status = group.status.as_ref();
    let nodes = status.and_then(|s| s.nodes.as_ref());
    let name_of = |id: &str| account_name(accounts, id);
    GroupView {
        namespace: group.namespace().unwrap_or_default(),
        name: group.name_any(),
        group: group.group_name().to_owned(),
        policy: group.spec.policy_ref.name.clone(),
        conditions: status
            .map(|s| conditions(&s.fleet.conditions))
            .unwrap_or_default(),
        total: nodes.map(|n| RowCounts::new(&n.total, n.overwritten)),
        regions: nodes
            .map(|n| {
                n.regions
                    .iter()
                    .map(|r| GroupRegionView {
                        account: name_of(&r.account_id),
                        account_id: r.account_id.clone(),
                        region: r.region.clone(),
                        counts: RowCounts::new(&r.counts, 0),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        omitted_regions: nodes.map_or(0, |n| n.omitted_regions),
        events,
        rollout: None,
    }
}

/// A window's run in one account-region.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowRegionRun {
    pub account: Option<String>,
    pub account_id: String,
    pub region: String,
    pub run: WindowRun,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowView {
    pub namespace: String,
    pub name: String,
    pub schedule: String,
    pub conditions: Vec<ConditionView>,
    pub succeeded: u32,
    pub failed: u32,
    pub never_run: u32,
    pub in_progress: u32,
    pub runs: Vec<WindowRegionRun>,
    pub events: Vec<EventView>,
}

pub fn window<A: Borrow<SystemAccount>>(
    window: &MaintenanceWindow,
    accounts: &[A],
    events: Vec<EventView>,
) -> WindowView {
    let status = window.status.as_ref();
    let runs = status.and_then(|s| s.runs.as_ref());
    WindowView {
        namespace: window.namespace().unwrap_or_default(),
        name: window.name_any(),
        schedule: window.spec.schedule.clone().unwrap_or_default(),
        conditions: status
            .map(|s| conditions(&s.fleet.conditions))
            .unwrap_or_default(),
        succeeded: runs.map_or(0, |r| r.succeeded),
        failed: runs.map_or(0, |r| r.failed),
        never_run: runs.map_or(0, |r| r.never_run),
        in_progress: runs.map_or(0, |r| r.in_progress),
        runs: runs
            .map(|r| {
                r.last_runs
                    .iter()
                    .map(|run| WindowRegionRun {
                        account: account_name(accounts, &run.account_id),
                        account_id: run.account_id.clone(),
                        region: run.region.clone(),
                        run: run.run.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        events,
    }
}

/// The name of the SystemAccount with this id among `accounts` (the ones the user may see).
fn account_name<A: Borrow<SystemAccount>>(accounts: &[A], id: &str) -> Option<String> {
    accounts
        .iter()
        .map(Borrow::borrow)
        .find(|a| a.spec.account_id == id)
        .map(|a| a.name_any())
}

/// A group's nodes in one account-region, read from SSM.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstancesView {
    pub account: String,
    pub account_id: String,
    pub region: String,
    pub namespace: String,
    pub name: String,
    pub group: String,
    pub instances: Vec<InstanceSummary>,
    /// When SSM was read (RFC 3339): a reload within the cache's lifetime reads nothing.
    pub read_at: String,
}

/// One node's patches, read from SSM.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeView {
    pub account: String,
    pub account_id: String,
    pub region: String,
    #[serde(flatten)]
    pub detail: InstanceDetail,
    pub read_at: String,
}

/// The compliance bar's segments, in drawing order, as exclusive counts: each
/// non-compliant node is drawn once, in its worst state (failed, then waiting for a
/// reboot, then missing patches; the status counts the three apart, so a node with two of
/// them is drawn in the first), then the compliant and the never-reported nodes.
pub fn bar_segments(c: &RowCounts) -> [(&'static str, u32); 5] {
    let failed = c.failed.min(c.non_compliant);
    let reboot = c.pending_reboot.min(c.non_compliant - failed);
    let missing = c.non_compliant - failed - reboot;
    [
        ("failed", failed),
        ("reboot", reboot),
        ("missing", missing),
        ("compliant", c.compliant),
        ("unreported", c.unreported),
    ]
}

/// A PatchRollout's page: its release and every stage with its evidence.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutView {
    pub namespace: String,
    pub name: String,
    pub policy: String,
    pub release: Option<String>,
    pub cutoff: Option<String>,
    pub started: Option<String>,
    pub conditions: Vec<ConditionView>,
    pub stages: Vec<StageView>,
    pub events: Vec<EventView>,
}

/// One stage, as the spec asks and the status says.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StageView {
    pub name: String,
    pub groups: Vec<String>,
    /// As the status says; Waiting before the controller wrote one.
    pub state: StageState,
    pub release: Option<String>,
    pub cutoff: Option<String>,
    pub since: Option<String>,
    pub approval: String,
    pub soak: String,
    pub max_failed: String,
    pub min_installed: String,
    pub evidence: Option<StageEvidence>,
    pub message: String,
}

pub fn rollout(rollout: &PatchRollout, events: Vec<EventView>) -> RolloutView {
    let status = rollout.status.as_ref();
    let release = status.and_then(|s| s.release.as_ref());
    RolloutView {
        namespace: rollout.namespace().unwrap_or_default(),
        name: rollout.name_any(),
        policy: rollout.spec.policy_ref.name.clone(),
        release: release.map(|r| r.token.clone()),
        cutoff: release.map(|r| r.cutoff.clone()),
        started: release.map(|r| r.started_at.0.to_string()),
        conditions: status
            .map(|s| conditions(&s.conditions))
            .unwrap_or_default(),
        stages: rollout
            .spec
            .stages
            .iter()
            .map(|spec| {
                let stage = status.and_then(|s| s.stages.iter().find(|st| st.name == spec.name));
                StageView {
                    name: spec.name.clone(),
                    groups: spec.patch_groups.clone(),
                    state: stage.map_or(StageState::Waiting, |s| s.state),
                    release: stage.and_then(|s| s.release.clone()),
                    cutoff: stage.and_then(|s| s.cutoff.clone()),
                    since: stage.map(|s| s.since.0.to_string()),
                    approval: format!("{:?}", spec.approval),
                    soak: spec.soak.clone(),
                    max_failed: spec.gate.max_failed.clone(),
                    min_installed: spec.gate.min_installed.clone(),
                    evidence: stage.and_then(|s| s.evidence.clone()),
                    message: stage.map(|s| s.message.clone()).unwrap_or_default(),
                }
            })
            .collect(),
        events,
    }
}

/// Where a PatchGroup sits in a rollout, for the group's page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupStageView {
    pub rollout: String,
    pub stage: String,
    pub state: StageState,
    pub release: Option<String>,
    pub cutoff: Option<String>,
}

/// The rollout of the group's namespace that has the group in a stage: the oldest, as
/// the controller decides when two name it (then by name), and not one being deleted.
pub fn group_stage<R: Borrow<PatchRollout>>(
    rollouts: &[R],
    namespace: &str,
    group: &str,
) -> Option<GroupStageView> {
    let mut candidates: Vec<&PatchRollout> = rollouts
        .iter()
        .map(Borrow::borrow)
        .filter(|r| r.namespace().as_deref() == Some(namespace))
        .filter(|r| r.metadata.deletion_timestamp.is_none())
        .collect();
    candidates.sort_by_key(|r| {
        (
            r.metadata.creation_timestamp.as_ref().map(|t| t.0),
            r.name_any(),
        )
    });
    candidates
        .into_iter()
        .filter_map(|r| {
            let spec = r
                .spec
                .stages
                .iter()
                .find(|s| s.patch_groups.iter().any(|g| g == group))?;
            let stage = r
                .status
                .as_ref()
                .and_then(|s| s.stages.iter().find(|st| st.name == spec.name));
            Some(GroupStageView {
                rollout: r.name_any(),
                stage: spec.name.clone(),
                state: stage.map_or(StageState::Waiting, |s| s.state),
                release: stage.and_then(|s| s.release.clone()),
                cutoff: stage.and_then(|s| s.cutoff.clone()),
            })
        })
        .next()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::{SignedDuration, Timestamp};
    use patchfleet_api::v1alpha1::{
        AccountNodes, AccountRegionNodes, AccountRegionRun, GroupNodes, MaintenanceWindowStatus,
        NodeCounts, PatchGroupStatus, Platform, RegionNodes, SystemAccountStatus, WindowRuns,
    };

    use super::*;

    const NOW: i64 = 1_800_000_000;
    const NO_ACCOUNTS: &[SystemAccount] = &[];
    const NO_GROUPS: &[PatchGroup] = &[];
    const NO_WINDOWS: &[MaintenanceWindow] = &[];

    fn clock() -> Clock {
        Clock {
            now: Timestamp::from_second(NOW).expect("a time"),
            stale_after: Duration::from_secs(1800),
        }
    }

    fn ago(seconds: i64) -> Option<Time> {
        Some(Time(
            Timestamp::from_second(NOW).expect("a time") - SignedDuration::from_secs(seconds),
        ))
    }

    fn counts(instances: u32, non_compliant: u32, failed: u32) -> NodeCounts {
        NodeCounts {
            instances,
            online: instances,
            non_compliant,
            with_failed: failed,
            with_missing: non_compliant - failed,
            compliant: instances - non_compliant,
            ..NodeCounts::default()
        }
    }

    /// An account with one region per (region, counts, observed seconds ago, error).
    fn system_account(
        name: &str,
        id: &str,
        platform: Platform,
        labels: &[(&str, &str)],
        regions: &[(&str, NodeCounts, Option<i64>, Option<&str>)],
    ) -> SystemAccount {
        let regions_spec: Vec<&str> = regions.iter().map(|r| r.0).collect();
        let mut a: SystemAccount = serde_json::from_value(serde_json::json!({
            "apiVersion": "patchfleet.io/v1alpha1",
            "kind": "SystemAccount",
            "metadata": {"name": name},
            "spec": {"accountId": id, "platform": platform.as_str(), "regions": regions_spec},
        }))
        .expect("a SystemAccount");
        a.metadata.labels = Some(
            labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        a.status = Some(SystemAccountStatus {
            nodes: Some(AccountNodes {
                total: NodeCounts::default(),
                regions: regions
                    .iter()
                    .map(|(region, counts, observed, error)| RegionNodes {
                        region: (*region).to_owned(),
                        counts: counts.clone(),
                        observed_at: observed.and_then(ago),
                        error: error.map(str::to_owned),
                        ..RegionNodes::default()
                    })
                    .collect(),
            }),
            ..SystemAccountStatus::default()
        });
        a
    }

    fn fleet() -> Vec<SystemAccount> {
        vec![
            system_account(
                "prod-a",
                "111111111111",
                Platform::Aws,
                &[("env", "prod")],
                &[
                    ("eu-west-1", counts(10, 2, 1), Some(60), None),
                    ("us-east-1", counts(30, 0, 0), Some(7200), None),
                ],
            ),
            system_account(
                "dev-b",
                "222222222222",
                Platform::Azure,
                &[("env", "dev")],
                &[
                    ("eu-west-1", counts(5, 0, 0), Some(60), None),
                    ("eu-central-1", counts(0, 0, 0), None, Some("AccessDenied")),
                ],
            ),
        ]
    }

    fn ids(view: &Overview) -> Vec<String> {
        view.accounts
            .iter()
            .map(|r| format!("{}/{}", r.row.account, r.row.region))
            .collect()
    }

    fn query(pairs: &[(&str, &str)]) -> OverviewQuery {
        let mut q = OverviewQuery::default();
        for (key, value) in pairs {
            let v = Some((*value).to_owned());
            match *key {
                "provider" => q.provider = v,
                "label" => q.label = v,
                "state" => q.state = v,
                "sort" => q.sort = v,
                "order" => q.order = v,
                _ => unreachable!("{key}"),
            }
        }
        q
    }

    #[test]
    fn each_row_has_the_state_its_figures_and_their_age_give() {
        let view = overview(
            &fleet(),
            NO_GROUPS,
            NO_WINDOWS,
            &OverviewQuery::default(),
            clock(),
        );
        let states: Vec<(String, RowState, bool)> = view
            .accounts
            .iter()
            .map(|r| {
                (
                    format!("{}/{}", r.row.account, r.row.region),
                    r.state,
                    r.stale,
                )
            })
            .collect();
        assert_eq!(
            states,
            [
                ("dev-b/eu-central-1".to_owned(), RowState::Error, true),
                ("dev-b/eu-west-1".to_owned(), RowState::Compliant, false),
                ("prod-a/eu-west-1".to_owned(), RowState::Noncompliant, false),
                // Two hours old with a 30-minute staleness bound (two 15-minute intervals).
                ("prod-a/us-east-1".to_owned(), RowState::Stale, true),
            ]
        );
        assert_eq!(view.totals.instances, 45);
        assert_eq!(view.totals.non_compliant, 2);
        assert_eq!(view.providers, ["aws", "azure"]);
    }

    #[test]
    fn filters_and_sorts_select_the_rows_asked_for() {
        // (query, the account-regions shown in order)
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);
        let cases: &[Case] = &[
            (
                &[("provider", "azure")],
                &["dev-b/eu-central-1", "dev-b/eu-west-1"],
            ),
            (
                &[("label", "env=prod")],
                &["prod-a/eu-west-1", "prod-a/us-east-1"],
            ),
            (
                &[("label", " env = dev ")],
                &["dev-b/eu-central-1", "dev-b/eu-west-1"],
            ),
            (
                &[("label", "env")],
                &[
                    "dev-b/eu-central-1",
                    "dev-b/eu-west-1",
                    "prod-a/eu-west-1",
                    "prod-a/us-east-1",
                ],
            ),
            (&[("label", "team=x")], &[]),
            (&[("state", "noncompliant")], &["prod-a/eu-west-1"]),
            // A failed read's figures are also stale: both filters find it.
            (
                &[("state", "stale")],
                &["dev-b/eu-central-1", "prod-a/us-east-1"],
            ),
            (&[("state", "error")], &["dev-b/eu-central-1"]),
            (&[("provider", "aws"), ("state", "compliant")], &[]),
            (
                &[("sort", "instances"), ("order", "desc")],
                &[
                    "prod-a/us-east-1",
                    "prod-a/eu-west-1",
                    "dev-b/eu-west-1",
                    "dev-b/eu-central-1",
                ],
            ),
            (
                &[("sort", "failed"), ("order", "desc")],
                &[
                    "prod-a/eu-west-1",
                    "prod-a/us-east-1",
                    "dev-b/eu-west-1",
                    "dev-b/eu-central-1",
                ],
            ),
            (
                &[("sort", "region")],
                &[
                    "dev-b/eu-central-1",
                    "dev-b/eu-west-1",
                    "prod-a/eu-west-1",
                    "prod-a/us-east-1",
                ],
            ),
            // An unknown column sorts by account.
            (
                &[("sort", "bogus")],
                &[
                    "dev-b/eu-central-1",
                    "dev-b/eu-west-1",
                    "prod-a/eu-west-1",
                    "prod-a/us-east-1",
                ],
            ),
        ];
        for (pairs, want) in cases {
            let view = overview(&fleet(), NO_GROUPS, NO_WINDOWS, &query(pairs), clock());
            assert_eq!(ids(&view), *want, "{pairs:?}");
            let shown: u32 = view.accounts.iter().map(|r| r.row.counts.instances).sum();
            assert_eq!(
                view.totals.instances, shown,
                "totals over the rows shown: {pairs:?}"
            );
        }
    }

    fn group(ns: &str, name: &str, regions: &[(&str, &str, u32)]) -> PatchGroup {
        let mut g: PatchGroup = serde_json::from_value(serde_json::json!({
            "apiVersion": "patchfleet.io/v1alpha1",
            "kind": "PatchGroup",
            "metadata": {"name": name},
            "spec": {"policyRef": {"name": "p"}, "accountSelector": {}},
        }))
        .expect("a PatchGroup");
        g.metadata.namespace = Some(ns.to_owned());
        if !regions.is_empty() {
            g.status = Some(PatchGroupStatus {
                nodes: Some(GroupNodes {
                    total: counts(regions.iter().map(|r| r.2).sum(), 0, 0),
                    regions: regions
                        .iter()
                        .map(|(id, region, n)| AccountRegionNodes {
                            account_id: (*id).to_owned(),
                            region: (*region).to_owned(),
                            counts: counts(*n, 0, 0),
                        })
                        .collect(),
                    ..GroupNodes::default()
                }),
                ..PatchGroupStatus::default()
            });
        }
        g
    }

    fn window(ns: &str, name: &str, runs: &[(&str, &str)]) -> MaintenanceWindow {
        let mut w: MaintenanceWindow = serde_json::from_value(serde_json::json!({
            "apiVersion": "patchfleet.io/v1alpha1",
            "kind": "MaintenanceWindow",
            "metadata": {"name": name},
            "spec": {"schedule": "cron(0 2 ? * SUN *)", "duration": 2, "cutoff": 1,
                     "targets": {"patchGroups": ["web"]}, "tasks": [{"name": "scan", "operation": "Scan", "priority": 1}]},
        }))
        .expect("a MaintenanceWindow");
        w.metadata.namespace = Some(ns.to_owned());
        w.status = Some(MaintenanceWindowStatus {
            runs: Some(WindowRuns {
                last_runs: runs
                    .iter()
                    .map(|(id, region)| AccountRegionRun {
                        account_id: (*id).to_owned(),
                        region: (*region).to_owned(),
                        run: WindowRun {
                            status: "SUCCESS".to_owned(),
                            ..WindowRun::default()
                        },
                    })
                    .collect(),
                ..WindowRuns::default()
            }),
            ..MaintenanceWindowStatus::default()
        });
        w
    }

    #[test]
    fn the_overview_lists_every_visible_group_and_window_counted_or_not() {
        let groups = [
            group("team", "web", &[("111111111111", "eu-west-1", 4)]),
            group("team", "new", &[]),
        ];
        let windows = [window("team", "nightly", &[])];
        let view = overview(
            NO_ACCOUNTS,
            &groups,
            &windows,
            &OverviewQuery::default(),
            clock(),
        );
        let names: Vec<(&str, u32)> = view
            .groups
            .iter()
            .map(|g| (g.name.as_str(), g.counts.instances))
            .collect();
        assert_eq!(names, [("new", 0), ("web", 4)]);
        assert_eq!(view.windows.len(), 1);
        assert!(view.accounts.is_empty());
    }

    #[test]
    fn an_accounts_page_shows_only_its_own_groups_and_runs() {
        let accounts = fleet();
        let groups = [
            group(
                "team",
                "web",
                &[
                    ("111111111111", "eu-west-1", 4),
                    ("222222222222", "eu-west-1", 3),
                ],
            ),
            group("team", "db", &[("222222222222", "eu-west-1", 2)]),
        ];
        let windows = [
            window(
                "team",
                "nightly",
                &[("111111111111", "us-east-1"), ("222222222222", "eu-west-1")],
            ),
            window("team", "other", &[("222222222222", "eu-west-1")]),
        ];
        let view = super::account(&accounts[0], &groups, &windows, Vec::new(), clock());
        assert_eq!(view.regions.len(), 2);
        let shown: Vec<(&str, Vec<&str>)> = view
            .groups
            .iter()
            .map(|g| {
                (
                    g.name.as_str(),
                    g.regions.iter().map(|(r, _)| r.as_str()).collect(),
                )
            })
            .collect();
        assert_eq!(shown, [("web", vec!["eu-west-1"])]);
        let runs: Vec<(&str, Vec<&str>)> = view
            .windows
            .iter()
            .map(|w| {
                (
                    w.name.as_str(),
                    w.runs.iter().map(|(r, _)| r.as_str()).collect(),
                )
            })
            .collect();
        assert_eq!(runs, [("nightly", vec!["us-east-1"])]);
    }

    #[test]
    fn a_groups_regions_name_only_the_accounts_the_user_may_see() {
        let g = group(
            "team",
            "web",
            &[
                ("111111111111", "eu-west-1", 4),
                ("999999999999", "eu-west-1", 1),
            ],
        );
        let view = super::group(&g, &fleet()[..1], Vec::new());
        let accounts: Vec<Option<&str>> =
            view.regions.iter().map(|r| r.account.as_deref()).collect();
        assert_eq!(accounts, [Some("prod-a"), None]);
    }
}
