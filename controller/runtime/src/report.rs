//! `patchfleet report`: the fleet's compliance as the statuses say it, read with the
//! user's kubeconfig only (no AWS credentials): one row per account-region, one per
//! PatchGroup and one per scheduled MaintenanceWindow; as text tables or JSON.

use std::borrow::Borrow;
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
    if args.instances.is_some() || args.node.is_some() {
        return instances::run(&args).await;
    }
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
pub fn build<A, G, W>(accounts: &[A], groups: &[G], windows: &[W]) -> Report
where
    A: Borrow<SystemAccount>,
    G: Borrow<PatchGroup>,
    W: Borrow<MaintenanceWindow>,
{
    let mut report = Report::default();
    for account in accounts.iter().map(Borrow::borrow) {
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
    for group in groups.iter().map(Borrow::borrow) {
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
    for window in windows.iter().map(Borrow::borrow) {
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
        let report = build(&accounts, &[group], &[] as &[MaintenanceWindow]);
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

/// `--instances` and `--node`: the dashboard's JSON for a group's nodes in an
/// account-region, or for one node, with the user's own token (the dashboard checks it as
/// it checks a browser's: the same RBAC, the same SSM cache).
pub mod instances {
    use std::fmt::Write as _;

    use anyhow::{Context as _, bail};
    use http_body_util::{BodyExt, Empty};
    use hyper::body::Bytes;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    use patchfleet_planner::instances::{InstanceDetail, InstanceSummary};
    use secrecy::ExposeSecret;
    use serde::Deserialize;

    use crate::args::{DashboardClientArgs, ReportArgs, ReportOutput};

    /// What `/api/instances/...` answers (the fields this command prints).
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct InstancesAnswer {
        instances: Vec<InstanceSummary>,
        read_at: String,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct NodeAnswer {
        #[serde(flatten)]
        detail: InstanceDetail,
        read_at: String,
    }

    /// `ACCOUNT/REGION/LAST` into its three parts, each non-empty.
    fn three_parts<'a>(value: &'a str, flag: &str, last: &str) -> anyhow::Result<[&'a str; 3]> {
        let parts: Vec<&str> = value.split('/').collect();
        match parts.as_slice() {
            [a, r, l] if !a.is_empty() && !r.is_empty() && !l.is_empty() => Ok([a, r, l]),
            _ => bail!(
                "{flag} takes ACCOUNT/REGION/{last} (a SystemAccount's name, one of its regions, a {last}); got {value:?}"
            ),
        }
    }

    pub async fn run(args: &ReportArgs) -> anyhow::Result<()> {
        let (path, is_node) = match (&args.instances, &args.node) {
            (Some(value), _) => {
                let [account, region, group] = three_parts(value, "--instances", "GROUP")?;
                let namespace = args
                    .namespace
                    .as_deref()
                    .context("--instances needs --namespace, the PatchGroup's")?;
                (
                    format!(
                        "/api/instances/{}/{}/{}/{}",
                        segment(account),
                        segment(region),
                        segment(namespace),
                        segment(group)
                    ),
                    false,
                )
            }
            (None, Some(value)) => {
                let [account, region, id] = three_parts(value, "--node", "ID")?;
                (
                    format!(
                        "/api/nodes/{}/{}/{}",
                        segment(account),
                        segment(region),
                        segment(id)
                    ),
                    true,
                )
            }
            (None, None) => bail!("neither --instances nor --node"),
        };
        let body = get(&args.dashboard, &path).await?;
        match (args.output, is_node) {
            (ReportOutput::Json, _) => println!("{body}"),
            (ReportOutput::Text, false) => {
                let answer: InstancesAnswer =
                    serde_json::from_str(&body).context("reading the dashboard's answer")?;
                print!("{}", instances_text(&answer.instances, &answer.read_at));
            }
            (ReportOutput::Text, true) => {
                let answer: NodeAnswer =
                    serde_json::from_str(&body).context("reading the dashboard's answer")?;
                print!("{}", node_text(&answer.detail, &answer.read_at));
            }
        }
        Ok(())
    }

    fn segment(text: &str) -> String {
        crate::dashboard::encode_segment(text)
    }

    /// GET `path` of the dashboard with the bearer token; the body of a 200, else an error
    /// that says what the dashboard said.
    async fn get(args: &DashboardClientArgs, path: &str) -> anyhow::Result<String> {
        let base = args.dashboard_url.trim_end_matches('/');
        check_url(base)?;
        let token = token(args).await?;
        let request = hyper::Request::get(format!("{base}{path}"))
            .header(hyper::header::AUTHORIZATION, format!("Bearer {token}"))
            .header(hyper::header::ACCEPT, "application/json")
            .body(Empty::<Bytes>::new())
            .context("building the request")?;
        let client = Client::builder(TokioExecutor::new()).build_http();
        let response = client
            .request(request)
            .await
            .with_context(|| format!("asking the dashboard at {base}"))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .context("reading the dashboard's answer")?
            .to_bytes();
        let body = String::from_utf8_lossy(&body).into_owned();
        if !status.is_success() {
            let error = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("error")?.as_str().map(str::to_owned))
                .unwrap_or(body);
            bail!("the dashboard answered {status}: {error}");
        }
        Ok(body)
    }

    /// Plain HTTP to this machine only: the request carries the user's token, which must not
    /// cross a network in the clear. That is where `kubectl port-forward` answers.
    fn check_url(base: &str) -> anyhow::Result<()> {
        let Some(rest) = base.strip_prefix("http://") else {
            bail!(
                "--dashboard-url {base}: only http:// to this machine is spoken (reach the \
                 dashboard with `kubectl -n patchfleet port-forward svc/patchfleet-dashboard \
                 8080:80`)"
            );
        };
        let authority = rest.split('/').next().unwrap_or_default();
        let host = match authority.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default(),
            None => authority.split(':').next().unwrap_or_default(),
        };
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            bail!(
                "--dashboard-url {base}: plain HTTP would send your token to {host} in the \
                 clear; use `kubectl port-forward` and http://127.0.0.1:PORT"
            );
        }
        Ok(())
    }

    /// `--token`, else the kubeconfig user's token (or token file).
    async fn token(args: &DashboardClientArgs) -> anyhow::Result<String> {
        if let Some(token) = &args.token {
            return Ok(token.clone());
        }
        let config = kube::Config::infer()
            .await
            .context("reading the kubeconfig for a token (or pass --token)")?;
        if let Some(token) = config.auth_info.token.as_ref() {
            return Ok(token.expose_secret().to_owned());
        }
        if let Some(file) = config.auth_info.token_file.as_ref() {
            return Ok(std::fs::read_to_string(file)
                .with_context(|| format!("reading the kubeconfig's token file {file}"))?
                .trim()
                .to_owned());
        }
        bail!(
            "the kubeconfig's user has no bearer token (a client certificate or an exec \
             plugin): pass one with --token, e.g. --token \"$(kubectl create token NAME)\""
        )
    }

    fn instances_text(rows: &[InstanceSummary], read_at: &str) -> String {
        let dash = || "-".to_owned();
        let rows: Vec<Vec<String>> = rows
            .iter()
            .map(|row| {
                let p = row.patches.as_ref();
                vec![
                    row.id.clone(),
                    row.platform_type.clone(),
                    row.provider.as_str().to_owned(),
                    row.ping_status.clone(),
                    p.map_or_else(dash, |p| p.missing.to_string()),
                    p.map_or_else(dash, |p| p.failed.to_string()),
                    p.map_or_else(dash, |p| p.installed_pending_reboot.to_string()),
                    p.map_or_else(dash, |p| p.operation.clone()),
                    p.and_then(|p| p.operation_end.clone()).unwrap_or_else(dash),
                ]
            })
            .collect();
        if rows.is_empty() {
            return format!(
                "no managed node carries this Patch Group there (read from SSM at {read_at})\n"
            );
        }
        let mut out = String::new();
        super::table(
            &mut out,
            &[
                "NODE",
                "PLATFORM",
                "PROVIDER",
                "PING",
                "MISSING",
                "FAILED",
                "PENDING-REBOOT",
                "OPERATION",
                "ENDED",
            ],
            &rows,
        );
        let _ = writeln!(out, "(read from SSM at {read_at})");
        out
    }

    fn node_text(detail: &InstanceDetail, read_at: &str) -> String {
        let i = &detail.instance;
        let mut out = format!(
            "{} {} {} {} (read from SSM at {read_at})\n",
            i.id,
            i.platform_name.as_deref().unwrap_or(&i.platform_type),
            i.provider.as_str(),
            i.ping_status
        );
        let rows: Vec<Vec<String>> = detail
            .patches
            .iter()
            .map(|p| {
                vec![
                    p.title.clone(),
                    p.state.clone(),
                    p.classification.clone(),
                    p.severity.clone(),
                    p.cve_ids.join(","),
                    p.installed_time.clone().unwrap_or_default(),
                ]
            })
            .collect();
        if rows.is_empty() {
            out.push_str("SSM reports no patch for this node yet\n");
            return out;
        }
        super::table(
            &mut out,
            &[
                "TITLE",
                "STATE",
                "CLASSIFICATION",
                "SEVERITY",
                "CVES",
                "INSTALLED",
            ],
            &rows,
        );
        out
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn the_token_goes_in_plain_http_to_this_machine_only() {
            for ok in [
                "http://127.0.0.1:8080",
                "http://localhost:8080",
                "http://[::1]:8080",
                "http://127.0.0.1",
            ] {
                assert!(check_url(ok).is_ok(), "{ok}");
            }
            for bad in [
                "http://dashboard.example.com",
                "https://dashboard.example.com",
                "http://10.0.0.1:8080",
                "ftp://127.0.0.1",
            ] {
                assert!(check_url(bad).is_err(), "{bad}");
            }
        }

        #[test]
        fn the_flags_take_three_non_empty_parts() {
            assert_eq!(
                three_parts("a/eu-west-1/web", "--instances", "GROUP").ok(),
                Some(["a", "eu-west-1", "web"])
            );
            for bad in ["a/eu-west-1", "a//web", "a/b/c/d", ""] {
                let error = three_parts(bad, "--instances", "GROUP").expect_err(bad);
                assert!(
                    error.to_string().contains("ACCOUNT/REGION/GROUP"),
                    "{error}"
                );
            }
        }
    }
}
