//! `patchfleet report`: the fleet's compliance as the statuses say it, read with the
//! user's kubeconfig only (no AWS credentials): one row per account-region, one per
//! PatchGroup and one per scheduled MaintenanceWindow; as text tables or JSON.

use std::fmt::Write as _;

use anyhow::Context as _;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use patchfleet_api::v1alpha1::{MaintenanceWindow, NodeCounts, PatchGroup, SystemAccount};
use serde::Serialize;

use crate::args::{ReportArgs, ReportOutput};

/// One account-region.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountRow {
    /// The SystemAccount's `spec.platform`.
    pub provider: String,
    pub account: String,
    pub account_id: String,
    pub region: String,
    #[serde(flatten)]
    pub counts: RowCounts,
    /// The last Install run: `STATUS at START` (empty when none ran).
    pub last_run: String,
    /// RFC 3339, or empty before the first compliance pass.
    pub observed_at: String,
    /// Why the last read failed, if it did.
    pub error: String,
}

/// One PatchGroup, over every account-region it reaches.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupRow {
    pub namespace: String,
    pub name: String,
    pub group: String,
    #[serde(flatten)]
    pub counts: RowCounts,
}

/// The node counts an account-region row and a group row both show.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RowCounts {
    pub instances: u32,
    pub online: u32,
    pub missing: u32,
    pub failed: u32,
    pub pending_reboot: u32,
    pub agent_updates: u32,
    pub non_compliant: u32,
    pub compliant: u32,
    pub unreported: u32,
    pub overwritten: u32,
}

impl RowCounts {
    pub fn new(c: &NodeCounts, overwritten: u32) -> RowCounts {
        RowCounts {
            instances: c.instances,
            online: c.online,
            missing: c.with_missing,
            failed: c.with_failed,
            pending_reboot: c.pending_reboot,
            agent_updates: c.agent_updates,
            non_compliant: c.non_compliant,
            compliant: c.compliant,
            unreported: c.unreported,
            overwritten,
        }
    }

    /// Adds `other` to these counts (the dashboard's totals).
    pub fn add(&mut self, other: &RowCounts) {
        self.instances += other.instances;
        self.online += other.online;
        self.missing += other.missing;
        self.failed += other.failed;
        self.pending_reboot += other.pending_reboot;
        self.agent_updates += other.agent_updates;
        self.non_compliant += other.non_compliant;
        self.compliant += other.compliant;
        self.unreported += other.unreported;
        self.overwritten += other.overwritten;
    }

    /// INSTANCES to AGENT-UPDATES, as the text tables show them.
    fn cells(&self) -> [String; 6] {
        [
            self.instances,
            self.online,
            self.missing,
            self.failed,
            self.pending_reboot,
            self.agent_updates,
        ]
        .map(|n| n.to_string())
    }
}

/// One scheduled MaintenanceWindow, over every account-region.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowRow {
    pub namespace: String,
    pub name: String,
    pub succeeded: u32,
    pub failed: u32,
    pub never_run: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub accounts: Vec<AccountRow>,
    pub groups: Vec<GroupRow>,
    pub windows: Vec<WindowRow>,
}

pub async fn run(args: ReportArgs) -> anyhow::Result<()> {
    let client = Client::try_default()
        .await
        .context("connecting to Kubernetes (KUBECONFIG or in-cluster config)")?;
    let accounts = Api::<SystemAccount>::all(client.clone())
        .list(&ListParams::default())
        .await
        .context("listing SystemAccounts")?
        .items;
    let groups = match &args.namespace {
        Some(ns) => Api::<PatchGroup>::namespaced(client.clone(), ns),
        None => Api::<PatchGroup>::all(client.clone()),
    }
    .list(&ListParams::default())
    .await
    .context("listing PatchGroups")?
    .items;
    let windows = match &args.namespace {
        Some(ns) => Api::<MaintenanceWindow>::namespaced(client, ns),
        None => Api::<MaintenanceWindow>::all(client),
    }
    .list(&ListParams::default())
    .await
    .context("listing MaintenanceWindows")?
    .items;
    let report = build(&accounts, &groups, &windows);
    match args.output {
        ReportOutput::Text => print!("{}", text(&report)),
        ReportOutput::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    Ok(())
}

/// The rows, from the resources as listed (sorted by name).
pub fn build(
    accounts: &[SystemAccount],
    groups: &[PatchGroup],
    windows: &[MaintenanceWindow],
) -> Report {
    let mut report = Report::default();
    for account in accounts {
        let Some(nodes) = account.status.as_ref().and_then(|s| s.nodes.as_ref()) else {
            continue;
        };
        for region in &nodes.regions {
            report.accounts.push(AccountRow {
                provider: account.spec.platform.as_str().to_owned(),
                account: account.name_any(),
                account_id: account.spec.account_id.clone(),
                region: region.region.clone(),
                counts: RowCounts::new(&region.counts, region.overwritten),
                last_run: region
                    .last_install
                    .as_ref()
                    .map(|last| {
                        format!(
                            "{} at {}",
                            last.run.status,
                            last.run.start_time.as_deref().unwrap_or("?")
                        )
                    })
                    .unwrap_or_default(),
                observed_at: region
                    .observed_at
                    .as_ref()
                    .map(|t| t.0.to_string())
                    .unwrap_or_default(),
                error: region.error.clone().unwrap_or_default(),
            });
        }
    }
    for group in groups {
        let Some(nodes) = group.status.as_ref().and_then(|s| s.nodes.as_ref()) else {
            continue;
        };
        report.groups.push(GroupRow {
            namespace: group.namespace().unwrap_or_default(),
            name: group.name_any(),
            group: group.group_name().to_owned(),
            counts: RowCounts::new(&nodes.total, nodes.overwritten),
        });
    }
    for window in windows {
        let Some(runs) = window.status.as_ref().and_then(|s| s.runs.as_ref()) else {
            continue;
        };
        report.windows.push(WindowRow {
            namespace: window.namespace().unwrap_or_default(),
            name: window.name_any(),
            succeeded: runs.succeeded,
            failed: runs.failed,
            never_run: runs.never_run,
        });
    }
    report
        .accounts
        .sort_by(|a, b| (&a.account, &a.region).cmp(&(&b.account, &b.region)));
    report
        .groups
        .sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    report
        .windows
        .sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    report
}

/// Text tables with aligned columns.
pub fn text(report: &Report) -> String {
    let mut out = String::new();
    let accounts: Vec<Vec<String>> = report
        .accounts
        .iter()
        .map(|r| {
            let mut row = vec![
                r.provider.clone(),
                format!("{} ({})", r.account, r.account_id),
                r.region.clone(),
            ];
            row.extend(r.counts.cells());
            row.push(r.counts.overwritten.to_string());
            row.push(if r.error.is_empty() {
                r.last_run.clone()
            } else {
                format!("read failed: {}", r.error)
            });
            row
        })
        .collect();
    table(
        &mut out,
        &[
            "PROVIDER",
            "ACCOUNT",
            "REGION",
            "INSTANCES",
            "ONLINE",
            "MISSING",
            "FAILED",
            "PENDING-REBOOT",
            "AGENT-UPDATES",
            "OVERWRITTEN",
            "LAST-RUN",
        ],
        &accounts,
    );
    out.push('\n');
    let groups: Vec<Vec<String>> = report
        .groups
        .iter()
        .map(|r| {
            let mut row = vec![format!("{}/{}", r.namespace, r.name), r.group.clone()];
            row.extend(r.counts.cells());
            row.push(r.counts.non_compliant.to_string());
            row.push(r.counts.overwritten.to_string());
            row
        })
        .collect();
    table(
        &mut out,
        &[
            "PATCHGROUP",
            "GROUP",
            "INSTANCES",
            "ONLINE",
            "MISSING",
            "FAILED",
            "PENDING-REBOOT",
            "AGENT-UPDATES",
            "NON-COMPLIANT",
            "OVERWRITTEN",
        ],
        &groups,
    );
    out.push('\n');
    let windows: Vec<Vec<String>> = report
        .windows
        .iter()
        .map(|r| {
            vec![
                format!("{}/{}", r.namespace, r.name),
                r.succeeded.to_string(),
                r.failed.to_string(),
                r.never_run.to_string(),
            ]
        })
        .collect();
    table(
        &mut out,
        &["MAINTENANCEWINDOW", "SUCCEEDED", "FAILED", "NEVER-RUN"],
        &windows,
    );
    out
}

fn table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<w$}  ");
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    if rows.is_empty() {
        out.push_str("(none yet: the compliance pass has not written any)\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use patchfleet_api::v1alpha1::{
        AccountNodes, GroupNodes, NodeCounts, PatchGroupStatus, RegionNodes, SystemAccountSpec,
        SystemAccountStatus,
    };

    fn account(name: &str, regions: Vec<RegionNodes>) -> SystemAccount {
        let mut a = SystemAccount::new(
            name,
            SystemAccountSpec {
                account_id: "111111111111".to_owned(),
                regions: regions.iter().map(|r| r.region.clone()).collect(),
                ..serde_json::from_value(serde_json::json!({
                    "accountId": "111111111111",
                    "regions": ["eu-west-1"],
                }))
                .expect("a minimal spec")
            },
        );
        a.status = Some(SystemAccountStatus {
            nodes: Some(AccountNodes {
                total: NodeCounts::default(),
                regions,
            }),
            ..SystemAccountStatus::default()
        });
        a
    }

    #[test]
    fn one_row_per_account_region_and_group_with_what_status_says() {
        let counts = NodeCounts {
            instances: 12,
            online: 11,
            with_missing: 3,
            with_failed: 1,
            pending_reboot: 2,
            agent_updates: 4,
            non_compliant: 5,
            ..NodeCounts::default()
        };
        let region = |name: &str| RegionNodes {
            region: name.to_owned(),
            counts: counts.clone(),
            overwritten: 1,
            ..RegionNodes::default()
        };
        let accounts = vec![
            account("b", vec![region("us-east-1")]),
            account("a", vec![region("eu-west-1"), region("us-east-1")]),
            // No compliance pass yet: no row.
            SystemAccount::new("c", account("x", vec![]).spec),
        ];
        let mut group = PatchGroup::new(
            "web",
            serde_json::from_value(serde_json::json!({
                "policyRef": {"name": "p"},
                "accountSelector": {},
            }))
            .expect("a minimal spec"),
        );
        group.metadata.namespace = Some("team".to_owned());
        group.status = Some(PatchGroupStatus {
            nodes: Some(GroupNodes {
                total: counts.clone(),
                overwritten: 2,
                ..GroupNodes::default()
            }),
            ..PatchGroupStatus::default()
        });
        let report = build(&accounts, &[group], &[]);
        let keys: Vec<(&str, &str)> = report
            .accounts
            .iter()
            .map(|r| (r.account.as_str(), r.region.as_str()))
            .collect();
        assert_eq!(
            keys,
            [("a", "eu-west-1"), ("a", "us-east-1"), ("b", "us-east-1")]
        );
        let row = &report.accounts[0];
        assert_eq!(
            (
                row.provider.as_str(),
                row.counts.instances,
                row.counts.online,
                row.counts.missing,
                row.counts.failed
            ),
            ("aws", 12, 11, 3, 1)
        );
        assert_eq!(
            (
                row.counts.pending_reboot,
                row.counts.agent_updates,
                row.counts.overwritten
            ),
            (2, 4, 1)
        );
        assert_eq!(report.groups.len(), 1);
        assert_eq!(report.groups[0].group, "web");
        assert_eq!(report.groups[0].counts.overwritten, 2);

        let text = text(&report);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("PROVIDER  ACCOUNT"), "{text}");
        assert!(
            lines[1].starts_with("aws       a (111111111111)  eu-west-1  12"),
            "{text}"
        );
        assert!(text.contains("team/web"), "{text}");
        assert!(text.contains("(none yet"), "no windows: {text}");
    }
}
