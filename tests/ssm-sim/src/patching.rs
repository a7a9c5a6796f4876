//! How Patch Manager judges a node's patches against the baseline that applies to it, as
//! the user guide describes it (pure: no state, no clock of its own).
//!
//! - Which baseline applies: the one registered for the node's `Patch Group` tag and its
//!   operating system, else the operating system's default
//!   (<https://docs.aws.amazon.com/systems-manager/latest/userguide/patch-manager-patch-groups.html>).
//! - Approval: a patch must match every global filter; then a rule approves it when it
//!   matches all the rule's filters and was released at least `ApproveAfterDays` ago, or on
//!   or before `ApproveUntilDate` (UTC); `ApprovedPatches` approves by title or KB id;
//!   "a patch that is both approved and rejected is treated as rejected"
//!   (<https://docs.aws.amazon.com/systems-manager/latest/userguide/patch-manager-approved-rejected-package-name-formats.html>,
//!   <https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PatchRule.html>).
//! - States (<https://docs.aws.amazon.com/systems-manager/latest/userguide/patch-manager-compliance-states.html>):
//!   approved and installed is INSTALLED (INSTALLED_PENDING_REBOOT until the node reboots
//!   after a NoReboot install); installed but not approved is INSTALLED_OTHER; a rejected
//!   patch installed is INSTALLED_REJECTED with RejectedPatchesAction BLOCK, and
//!   INSTALLED_OTHER with ALLOW_AS_DEPENDENCY ("the value of InstalledRejectedCount will
//!   always be 0"); approved and not installed is MISSING, or FAILED when the last Install
//!   could not install it. Patches the baseline does not approve and the node lacks are
//!   not reported.
//!
//! Filter keys the simulator does not model (PRODUCT, PRODUCT_FAMILY, PATCH_SET,
//! SECTION, PRIORITY, ...) match every patch.

use serde_json::Value;

use crate::state::Baseline;

const DAY: f64 = 86_400.0;

/// One patch available to a node.
#[derive(Debug, Clone, PartialEq)]
pub struct Patch {
    /// The patch's title (Windows) or package name (Linux): what `ApprovedPatches` and
    /// `RejectedPatches` name.
    pub title: String,
    /// The KB id (Windows), also accepted in the lists.
    pub kb_id: Option<String>,
    /// CLASSIFICATION: SecurityUpdates, CriticalUpdates, ... (Windows); Security,
    /// Bugfix, ... (Linux).
    pub classification: String,
    /// MSRC_SEVERITY (Windows) or SEVERITY (Linux): Critical, Important, ...
    pub severity: String,
    /// Seconds since the epoch.
    pub released: f64,
    pub cve_ids: Vec<String>,
}

/// A patch's state on a node, as DescribeInstancePatches spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    Installed,
    InstalledOther,
    InstalledPendingReboot,
    InstalledRejected,
    Missing,
    Failed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Installed => "INSTALLED",
            State::InstalledOther => "INSTALLED_OTHER",
            State::InstalledPendingReboot => "INSTALLED_PENDING_REBOOT",
            State::InstalledRejected => "INSTALLED_REJECTED",
            State::Missing => "MISSING",
            State::Failed => "FAILED",
        }
    }
}

/// What a baseline says of one patch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    pub approved: bool,
    pub rejected: bool,
    /// The approving rule's ComplianceLevel (or ApprovedPatchesComplianceLevel):
    /// CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL or UNSPECIFIED.
    pub compliance_level: String,
}

/// A patch on a node: what it is, and what the node did with it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodePatch {
    pub patch: Patch,
    /// Seconds since the epoch; None while not installed.
    pub installed_at: Option<f64>,
    /// Installed with NoReboot and not rebooted since.
    pub pending_reboot: bool,
    /// The last Install tried and could not install it.
    pub failed: bool,
}

fn filter_matches(filter: &Value, patch: &Patch) -> bool {
    let key = filter
        .get("Key")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let values: Vec<&str> = filter
        .get("Values")
        .and_then(Value::as_array)
        .map(|v| v.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let attribute = match key {
        "CLASSIFICATION" => &patch.classification,
        "MSRC_SEVERITY" | "SEVERITY" => &patch.severity,
        _ => return true,
    };
    values.iter().any(|v| *v == "*" || v == attribute)
}

fn all_match(group: Option<&Value>, patch: &Patch) -> bool {
    group
        .and_then(|g| g.get("PatchFilters"))
        .and_then(Value::as_array)
        .is_none_or(|filters| filters.iter().all(|f| filter_matches(f, patch)))
}

/// `YYYY-MM-DD` as the epoch second starting that day (UTC).
pub fn start_of_day(date: &str) -> Option<f64> {
    end_of_day(date).map(|end| end + 1.0 - DAY)
}

/// `YYYY-MM-DD` as the epoch second ending that day (UTC).
fn end_of_day(date: &str) -> Option<f64> {
    let mut parts = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (parts.next()??, parts.next()??, parts.next()??);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days + 1) as f64 * DAY - 1.0)
}

fn listed(list: &[String], patch: &Patch) -> bool {
    list.iter()
        .any(|item| *item == patch.title || patch.kb_id.as_deref() == Some(item.as_str()))
}

/// What `baseline` says of `patch` at `now`.
pub fn approval(baseline: &Baseline, patch: &Patch, now: f64) -> Approval {
    let rejected = listed(&baseline.rejected_patches, patch);
    if listed(&baseline.approved_patches, patch) {
        return Approval {
            approved: !rejected,
            rejected,
            compliance_level: baseline.approved_patches_compliance_level.clone(),
        };
    }
    let global = baseline.global_filters.as_ref().map(|j| j.value());
    let rules = baseline
        .approval_rules
        .as_ref()
        .map(|j| j.value())
        .and_then(|v| v.get("PatchRules").cloned())
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default();
    let approving = all_match(global.as_ref(), patch)
        .then(|| {
            rules.into_iter().find(|rule| {
                let due = match (
                    rule.get("ApproveAfterDays").and_then(Value::as_f64),
                    rule.get("ApproveUntilDate").and_then(Value::as_str),
                ) {
                    (Some(days), _) => patch.released + days * DAY <= now,
                    (None, Some(date)) => end_of_day(date).is_some_and(|end| patch.released <= end),
                    (None, None) => false,
                };
                due && all_match(rule.get("PatchFilterGroup"), patch)
            })
        })
        .flatten();
    match approving {
        Some(rule) => Approval {
            approved: !rejected,
            rejected,
            compliance_level: rule
                .get("ComplianceLevel")
                .and_then(Value::as_str)
                .unwrap_or("UNSPECIFIED")
                .to_owned(),
        },
        None => Approval {
            approved: false,
            rejected,
            compliance_level: "UNSPECIFIED".to_owned(),
        },
    }
}

/// The state of a patch on a node under `approval`; None for a patch the node lacks and
/// the baseline does not approve (not reported).
pub fn state(baseline: &Baseline, node_patch: &NodePatch, approval: &Approval) -> Option<State> {
    let installed = node_patch.installed_at.is_some();
    Some(match (installed, approval.approved, approval.rejected) {
        (true, _, true) if baseline.rejected_patches_action == "BLOCK" => State::InstalledRejected,
        (true, true, _) if node_patch.pending_reboot => State::InstalledPendingReboot,
        (true, true, _) => State::Installed,
        (true, false, _) => State::InstalledOther,
        (false, true, _) if node_patch.failed => State::Failed,
        (false, true, _) => State::Missing,
        (false, false, _) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Json;
    use serde_json::json;

    const NOW: f64 = 1_780_000_000.0;

    fn baseline(rules: Value) -> Baseline {
        Baseline {
            id: "pb-0123456789abcdef0".into(),
            name: "b".into(),
            operating_system: "WINDOWS".into(),
            description: None,
            global_filters: None,
            approval_rules: Some(Json::from(rules)),
            approved_patches: Vec::new(),
            approved_patches_compliance_level: "UNSPECIFIED".into(),
            approved_patches_enable_non_security: false,
            rejected_patches: Vec::new(),
            rejected_patches_action: "ALLOW_AS_DEPENDENCY".into(),
            sources: None,
            available_security_updates_compliance_status: None,
            created: 0.0,
            modified: 0.0,
            tags: Default::default(),
            patch_groups: Default::default(),
        }
    }

    fn security_after(days: i64) -> Value {
        json!({"PatchRules": [{
            "PatchFilterGroup": {"PatchFilters": [
                {"Key": "CLASSIFICATION", "Values": ["SecurityUpdates"]},
                {"Key": "MSRC_SEVERITY", "Values": ["Critical"]}
            ]},
            "ApproveAfterDays": days,
            "ComplianceLevel": "CRITICAL"
        }]})
    }

    fn patch(classification: &str, severity: &str, age_days: f64) -> Patch {
        Patch {
            title: "2026-11 Cumulative Update".into(),
            kb_id: Some("KB5000001".into()),
            classification: classification.into(),
            severity: severity.into(),
            released: NOW - age_days * DAY,
            cve_ids: vec!["CVE-2026-0001".into()],
        }
    }

    #[test]
    fn rules_approve_by_filters_and_age() {
        let cases: [(&str, Value, Patch, bool, &str); 6] = [
            (
                "old enough",
                security_after(7),
                patch("SecurityUpdates", "Critical", 8.0),
                true,
                "CRITICAL",
            ),
            (
                "too young",
                security_after(7),
                patch("SecurityUpdates", "Critical", 6.0),
                false,
                "UNSPECIFIED",
            ),
            (
                "exactly due",
                security_after(7),
                patch("SecurityUpdates", "Critical", 7.0),
                true,
                "CRITICAL",
            ),
            (
                "other classification",
                security_after(0),
                patch("Updates", "Critical", 30.0),
                false,
                "UNSPECIFIED",
            ),
            (
                "other severity",
                security_after(0),
                patch("SecurityUpdates", "Low", 30.0),
                false,
                "UNSPECIFIED",
            ),
            (
                "wildcard and an unmodelled key",
                json!({"PatchRules": [{"PatchFilterGroup": {"PatchFilters": [
                    {"Key": "CLASSIFICATION", "Values": ["*"]},
                    {"Key": "PRODUCT", "Values": ["WindowsServer2022"]}
                ]}, "ApproveAfterDays": 0, "ComplianceLevel": "HIGH"}]}),
                patch("Updates", "Low", 1.0),
                true,
                "HIGH",
            ),
        ];
        for (case, rules, p, approved, level) in cases {
            let got = approval(&baseline(rules), &p, NOW);
            assert_eq!(
                (got.approved, got.compliance_level.as_str()),
                (approved, level),
                "{case}"
            );
        }
    }

    #[test]
    fn approve_until_date_counts_the_whole_day_in_utc() {
        let rules = |date: &str| {
            json!({"PatchRules": [{"PatchFilterGroup": {"PatchFilters": []},
                "ApproveUntilDate": date, "ComplianceLevel": "MEDIUM"}]})
        };
        // 2026-05-28 12:00 UTC.
        let mut p = patch("SecurityUpdates", "Critical", 0.0);
        p.released = 1_779_969_600.0;
        assert!(approval(&baseline(rules("2026-05-28")), &p, NOW).approved);
        assert!(!approval(&baseline(rules("2026-05-27")), &p, NOW).approved);
        assert_eq!(end_of_day("1970-01-01"), Some(DAY - 1.0));
    }

    #[test]
    fn lists_and_global_filters() {
        let p = patch("SecurityUpdates", "Critical", 30.0);
        let mut b = baseline(security_after(0));
        b.global_filters = Some(Json::from(
            json!({"PatchFilters": [{"Key": "MSRC_SEVERITY", "Values": ["Important"]}]}),
        ));
        assert!(
            !approval(&b, &p, NOW).approved,
            "outside the global filters"
        );
        b.approved_patches = vec!["KB5000001".into()];
        b.approved_patches_compliance_level = "HIGH".into();
        let listed = approval(&b, &p, NOW);
        assert_eq!(
            (listed.approved, listed.compliance_level.as_str()),
            (true, "HIGH")
        );
        b.rejected_patches = vec!["2026-11 Cumulative Update".into()];
        let both = approval(&b, &p, NOW);
        assert!(
            !both.approved && both.rejected,
            "approved and rejected is rejected"
        );
    }

    #[test]
    fn states_follow_the_compliance_state_table() {
        let approved = Approval {
            approved: true,
            rejected: false,
            compliance_level: "CRITICAL".into(),
        };
        let other = Approval {
            approved: false,
            rejected: false,
            compliance_level: "UNSPECIFIED".into(),
        };
        let rejected = Approval {
            approved: false,
            rejected: true,
            compliance_level: "UNSPECIFIED".into(),
        };
        let node = |installed: bool, pending: bool, failed: bool| NodePatch {
            patch: patch("SecurityUpdates", "Critical", 30.0),
            installed_at: installed.then_some(NOW),
            pending_reboot: pending,
            failed,
        };
        let allow = baseline(security_after(0));
        let mut block = baseline(security_after(0));
        block.rejected_patches_action = "BLOCK".into();
        let cases = [
            (
                "installed",
                &allow,
                node(true, false, false),
                &approved,
                Some(State::Installed),
            ),
            (
                "pending reboot",
                &allow,
                node(true, true, false),
                &approved,
                Some(State::InstalledPendingReboot),
            ),
            (
                "not in the baseline",
                &allow,
                node(true, false, false),
                &other,
                Some(State::InstalledOther),
            ),
            (
                "rejected, allowed",
                &allow,
                node(true, false, false),
                &rejected,
                Some(State::InstalledOther),
            ),
            (
                "rejected, blocked",
                &block,
                node(true, false, false),
                &rejected,
                Some(State::InstalledRejected),
            ),
            (
                "missing",
                &allow,
                node(false, false, false),
                &approved,
                Some(State::Missing),
            ),
            (
                "failed",
                &allow,
                node(false, false, true),
                &approved,
                Some(State::Failed),
            ),
            ("neither", &allow, node(false, false, false), &other, None),
        ];
        for (case, b, np, a, want) in cases {
            assert_eq!(state(b, &np, a), want, "{case}");
        }
    }
}
