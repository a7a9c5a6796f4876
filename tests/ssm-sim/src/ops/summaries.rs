//! SSM Compliance's summaries of the patch compliance that AWS-RunPatchBaseline records:
//! ListResourceComplianceSummaries (one item per managed node) and ListComplianceSummaries
//! (one item per compliance type, counting nodes).
//! <https://docs.aws.amazon.com/systems-manager/latest/userguide/systems-manager-compliance.html>
//!
//! Patch Manager reports each node's patches as compliance items of type `Patch` when a
//! Scan or Install ends; the simulator reads them from the node's last patch state (the
//! one DescribeInstancePatchStates reports). A patch is a non-compliant item when it is
//! MISSING, FAILED, INSTALLED_PENDING_REBOOT or INSTALLED_REJECTED (the same test as
//! DescribeInstancePatchStates' non-compliant counts, `compliance::non_compliant`), else a
//! compliant one; its severity is the compliance level of the baseline rule that approved
//! it (UNSPECIFIED when none did). Nodes never scanned have no compliance and are left out.
//! No State Manager associations or custom compliance (PutComplianceItems) are simulated,
//! so `Patch` is the only compliance type.

use std::cmp::Ordering;

use serde_json::Value;

use super::compliance::non_compliant;
use super::{Ctx, Obj, max_results};
use crate::error::{ApiError, ApiResult};
use crate::paging;
use crate::state::{PatchStateRecord, RegionState};
use crate::validate::{NEXT_TOKEN, Req, Str, as_object, nested_list, nested_str};

/// MaxResults: 1 to 50 for both operations. The reference states no default; 50 here
/// (ListComplianceSummaries: "Currently, you can specify null or 50").
const PAGE: (i64, i64, i64) = (1, 50, 50);

const PATCH: &str = "Patch";
/// "ManagedInstance is currently the only supported resource type" (ComplianceItem), for
/// EC2 instances and hybrid nodes alike.
const MANAGED_INSTANCE: &str = "ManagedInstance";

/// ComplianceSeverity, most severe first.
const SEVERITIES: [&str; 6] = [
    "CRITICAL",
    "HIGH",
    "MEDIUM",
    "LOW",
    "INFORMATIONAL",
    "UNSPECIFIED",
];
const UNSPECIFIED: usize = 5;

/// ComplianceQueryOperatorType.
const OPERATORS: &[&str] = &[
    "EQUAL",
    "NOT_EQUAL",
    "BEGIN_WITH",
    "LESS_THAN",
    "GREATER_THAN",
];

/// The filter keys the simulator answers. The API reference lists none for
/// ComplianceStringFilter; these are the fields of ResourceComplianceSummaryItem that the
/// AWS CLI examples filter on (`ComplianceType`, `OverallSeverity`, ...). Both operations
/// take them: ListComplianceSummaries counts the nodes that pass them.
const KEYS: &[&str] = &[
    "ComplianceType",
    "Status",
    "OverallSeverity",
    "ResourceId",
    "ResourceType",
];

fn rank(severity: &str) -> usize {
    SEVERITIES
        .iter()
        .position(|s| *s == severity)
        .unwrap_or(UNSPECIFIED)
}

/// A SeveritySummary: counts by ComplianceSeverity.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Severities([usize; 6]);

impl Severities {
    fn add(&mut self, severity: &str) {
        self.0[rank(severity)] += 1;
    }

    fn total(&self) -> usize {
        self.0.iter().sum()
    }

    /// The most severe level counted.
    fn highest(&self) -> Option<&'static str> {
        self.0
            .iter()
            .position(|n| *n > 0)
            .and_then(|i| SEVERITIES.get(i).copied())
    }

    fn json(&self) -> Value {
        let [critical, high, medium, low, informational, unspecified] = self.0;
        Obj::new()
            .set("CriticalCount", critical)
            .set("HighCount", high)
            .set("MediumCount", medium)
            .set("LowCount", low)
            .set("InformationalCount", informational)
            .set("UnspecifiedCount", unspecified)
            .build()
    }
}

/// One node's patch compliance.
#[derive(Debug, Clone, PartialEq)]
struct NodeSummary<'a> {
    id: &'a str,
    record: &'a PatchStateRecord,
    compliant: Severities,
    non_compliant: Severities,
}

impl<'a> NodeSummary<'a> {
    fn of(id: &'a str, record: &'a PatchStateRecord) -> Self {
        let mut compliant = Severities::default();
        let mut open = Severities::default();
        for p in &record.patches {
            if non_compliant(p.state) {
                open.add(&p.compliance_level);
            } else {
                compliant.add(&p.compliance_level);
            }
        }
        Self {
            id,
            record,
            compliant,
            non_compliant: open,
        }
    }

    fn status(&self) -> &'static str {
        if self.non_compliant.total() > 0 {
            "NON_COMPLIANT"
        } else {
            "COMPLIANT"
        }
    }

    /// The highest severity among the non-compliant items. The reference says only "The
    /// highest severity item found for the resource"; a compliant node answers
    /// UNSPECIFIED, as the AWS CLI examples show for compliant resources.
    fn overall_severity(&self) -> &'static str {
        self.non_compliant.highest().unwrap_or("UNSPECIFIED")
    }

    fn field(&self, key: &str) -> &str {
        match key {
            "ComplianceType" => PATCH,
            "Status" => self.status(),
            "OverallSeverity" => self.overall_severity(),
            "ResourceId" => self.id,
            _ => MANAGED_INSTANCE,
        }
    }

    /// One ResourceComplianceSummaryItem. ExecutionTime is when the operation ended (when
    /// the agent reports compliance); the execution is the Run Command command.
    fn json(&self) -> Value {
        Obj::new()
            .set("ComplianceType", PATCH)
            .set("ResourceType", MANAGED_INSTANCE)
            .set("ResourceId", self.id)
            .set("Status", self.status())
            .set("OverallSeverity", self.overall_severity())
            .set(
                "ExecutionSummary",
                Obj::new()
                    .set("ExecutionTime", self.record.ended)
                    .set("ExecutionId", self.record.command_id.as_str())
                    .set("ExecutionType", "Command")
                    .build(),
            )
            .set(
                "CompliantSummary",
                Obj::new()
                    .set("CompliantCount", self.compliant.total())
                    .set("SeveritySummary", self.compliant.json())
                    .build(),
            )
            .set(
                "NonCompliantSummary",
                Obj::new()
                    .set("NonCompliantCount", self.non_compliant.total())
                    .set("SeveritySummary", self.non_compliant.json())
                    .build(),
            )
            .build()
    }
}

/// One ComplianceStringFilter.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StringFilter {
    key: String,
    values: Vec<String>,
    operator: String,
}

impl StringFilter {
    /// Severities compare by rank (LESS_THAN HIGH: MEDIUM and below), other values as
    /// text; the reference documents neither.
    fn compare(&self, field: &str, value: &str) -> Ordering {
        if self.key == "OverallSeverity" && SEVERITIES.contains(&value) {
            // Lower rank is more severe, so reverse to make CRITICAL the greatest.
            rank(value).cmp(&rank(field))
        } else {
            field.cmp(value)
        }
    }

    fn holds(&self, node: &NodeSummary<'_>) -> bool {
        let field = node.field(&self.key);
        let any = |f: &dyn Fn(&str) -> bool| self.values.iter().any(|v| f(v));
        match self.operator.as_str() {
            "EQUAL" => any(&|v| v == field),
            "NOT_EQUAL" => !any(&|v| v == field),
            "BEGIN_WITH" => any(&|v| field.starts_with(v)),
            "LESS_THAN" => any(&|v| self.compare(field, v).is_lt()),
            _ => any(&|v| self.compare(field, v).is_gt()),
        }
    }
}

fn invalid_filter(message: impl Into<String>) -> ApiError {
    ApiError::new("InvalidFilter", message)
}

/// Reads `Filters`: each Key 1-200 characters, 1-20 Values, Type one of
/// ComplianceQueryOperatorType (ValidationException otherwise, as every model constraint).
/// A filter without Type compares EQUAL (the reference states no default); a key the
/// simulator does not answer, or a filter without Key or Values, is InvalidFilter ("The
/// filter name isn't valid"), the one filter error both operations document.
fn read_filters(req: &mut Req) -> ApiResult<Vec<RawFilter>> {
    let Some(list) = req.opt_list("Filters")? else {
        return Ok(Vec::new());
    };
    let mut filters = Vec::with_capacity(list.len());
    for (i, f) in list.iter().enumerate() {
        let f = as_object(f, "ComplianceStringFilter")?;
        let at = format!("filters.{}.member", i + 1);
        let key = nested_str(f, "Key")?.map(str::to_owned);
        let values = match f.get("Values") {
            None | Some(Value::Null) => None,
            Some(_) => Some(
                nested_list(f, "Values")?
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| ApiError::serialization("Filter values must be strings"))
                    })
                    .collect::<ApiResult<Vec<String>>>()?,
            ),
        };
        let operator = nested_str(f, "Type")?.unwrap_or("EQUAL").to_owned();
        if let Some(key) = &key {
            req.violations
                .check_str(&format!("{at}.key"), key, Str::len(1, 200));
        }
        if let Some(values) = &values {
            req.violations
                .check_count(&format!("{at}.values"), values.len(), 1, 20);
        }
        req.violations
            .check_enum(&format!("{at}.type"), &operator, OPERATORS);
        filters.push((key, values, operator));
    }
    Ok(filters)
}

/// A filter as read: Key and Values may be absent.
type RawFilter = (Option<String>, Option<Vec<String>>, String);

/// What the model cannot say, checked once the request is otherwise valid.
fn check_filters(filters: Vec<RawFilter>) -> ApiResult<Vec<StringFilter>> {
    filters
        .into_iter()
        .map(|(key, values, operator)| {
            let key = key.ok_or_else(|| invalid_filter("A filter needs a Key."))?;
            if !KEYS.contains(&key.as_str()) {
                return Err(invalid_filter(format!(
                    "The filter name isn't valid: {key}. Valid filter keys include: [{}].",
                    KEYS.join(", ")
                )));
            }
            let values =
                values.ok_or_else(|| invalid_filter(format!("The filter {key} needs Values.")))?;
            Ok(StringFilter {
                key,
                values,
                operator,
            })
        })
        .collect()
}

/// The nodes with a patch state that pass every filter, by instance id.
fn selected<'s>(
    st: &'s RegionState,
    filters: &'s [StringFilter],
) -> impl Iterator<Item = NodeSummary<'s>> {
    st.instances
        .iter()
        .filter_map(|(id, node)| Some(NodeSummary::of(id, node.patch_state.as_ref()?)))
        .filter(|s| filters.iter().all(|f| f.holds(s)))
}

fn read_request(req: &mut Req) -> ApiResult<(Vec<StringFilter>, usize, Option<String>)> {
    let filters = read_filters(req)?;
    let (min, max, default) = PAGE;
    let max = max_results(req, min, max, default)?;
    let token = req.opt_str("NextToken", NEXT_TOKEN)?;
    // Every constraint violation at once, as AWS reports them; then the filter keys.
    req.finish()?;
    let filters = check_filters(filters)?;
    let after = paging::decode(token.as_deref())?;
    Ok((filters, max, after))
}

/// ListResourceComplianceSummaries
/// (<https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_ListResourceComplianceSummaries.html>):
/// one ResourceComplianceSummaryItem per node with a patch state, by instance id.
pub fn list_resource_summaries(
    _ctx: &Ctx<'_>,
    st: &mut RegionState,
    mut req: Req,
) -> ApiResult<Value> {
    let (filters, max, after) = read_request(&mut req)?;
    let items = selected(st, &filters)
        .filter(|s| after.as_deref().is_none_or(|a| s.id > a))
        .map(|s| (s.id.to_owned(), s.json()));
    let (items, next) = paging::page(items, max);
    Ok(Obj::new()
        .set("ResourceComplianceSummaryItems", items)
        .opt("NextToken", next)
        .build())
}

/// ListComplianceSummaries
/// (<https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_ListComplianceSummaries.html>):
/// one ComplianceSummaryItem per compliance type with at least one node, "a summary count
/// of compliant and non-compliant resources": CompliantCount and NonCompliantCount count
/// nodes, each SeveritySummary counts them by their OverallSeverity (so compliant nodes
/// count as UNSPECIFIED).
pub fn list_summaries(_ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let (filters, max, after) = read_request(&mut req)?;
    let mut compliant = Severities::default();
    let mut open = Severities::default();
    for node in selected(st, &filters) {
        let tally = if node.status() == "COMPLIANT" {
            &mut compliant
        } else {
            &mut open
        };
        tally.add(node.overall_severity());
    }
    let patch = (compliant.total() + open.total() > 0).then(|| {
        let item = Obj::new()
            .set("ComplianceType", PATCH)
            .set(
                "CompliantSummary",
                Obj::new()
                    .set("CompliantCount", compliant.total())
                    .set("SeveritySummary", compliant.json())
                    .build(),
            )
            .set(
                "NonCompliantSummary",
                Obj::new()
                    .set("NonCompliantCount", open.total())
                    .set("SeveritySummary", open.json())
                    .build(),
            )
            .build();
        (PATCH.to_owned(), item)
    });
    let items = patch
        .into_iter()
        .filter(|(key, _)| after.as_deref().is_none_or(|a| key.as_str() > a));
    let (items, next) = paging::page(items, max);
    Ok(Obj::new()
        .set("ComplianceSummaryItems", items)
        .opt("NextToken", next)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patching::{Patch, State};
    use crate::state::ReportedPatch;

    fn reported(title: &str, state: State, level: &str) -> ReportedPatch {
        ReportedPatch {
            patch: Patch {
                title: title.into(),
                kb_id: None,
                classification: "Security".into(),
                severity: "Critical".into(),
                released: 0.0,
                cve_ids: Vec::new(),
            },
            state,
            installed_at: None,
            compliance_level: level.into(),
        }
    }

    fn record(patches: Vec<ReportedPatch>) -> PatchStateRecord {
        PatchStateRecord {
            operation: "Scan".into(),
            command_id: "cmd-1".into(),
            ended: 100.0,
            patches,
            ..PatchStateRecord::default()
        }
    }

    #[test]
    fn counts_items_by_state_and_severity() {
        let r = record(vec![
            reported("a", State::Installed, "CRITICAL"),
            reported("b", State::InstalledOther, "UNSPECIFIED"),
            reported("c", State::Missing, "HIGH"),
            reported("d", State::Failed, "MEDIUM"),
            reported("e", State::InstalledPendingReboot, "LOW"),
            reported("f", State::InstalledRejected, "UNSPECIFIED"),
        ]);
        let s = NodeSummary::of("i-00000001", &r);
        assert_eq!(s.compliant, Severities([1, 0, 0, 0, 0, 1]));
        assert_eq!(s.non_compliant, Severities([0, 1, 1, 1, 0, 1]));
        assert_eq!(s.status(), "NON_COMPLIANT");
        assert_eq!(s.overall_severity(), "HIGH");
        let json = s.json();
        assert_eq!(json["ExecutionSummary"]["ExecutionId"], "cmd-1");
        assert_eq!(json["ExecutionSummary"]["ExecutionTime"], 100.0);
        assert_eq!(json["NonCompliantSummary"]["NonCompliantCount"], 4);
        assert_eq!(
            json["CompliantSummary"]["SeveritySummary"]["CriticalCount"],
            1
        );
    }

    #[test]
    fn a_node_without_open_items_is_compliant_and_unspecified() {
        let r = record(vec![reported("a", State::Installed, "CRITICAL")]);
        let s = NodeSummary::of("i-00000001", &r);
        assert_eq!(
            (s.status(), s.overall_severity()),
            ("COMPLIANT", "UNSPECIFIED")
        );
        let empty = record(Vec::new());
        assert_eq!(NodeSummary::of("i-00000002", &empty).status(), "COMPLIANT");
    }

    #[test]
    fn filters_compare_as_documented_or_chosen() {
        let r = record(vec![reported("c", State::Missing, "HIGH")]);
        let s = NodeSummary::of("i-0000abcd", &r);
        let f = |key: &str, op: &str, values: &[&str]| StringFilter {
            key: key.into(),
            values: values.iter().map(|v| v.to_string()).collect(),
            operator: op.into(),
        };
        assert!(f("Status", "EQUAL", &["COMPLIANT", "NON_COMPLIANT"]).holds(&s));
        assert!(!f("Status", "NOT_EQUAL", &["NON_COMPLIANT"]).holds(&s));
        assert!(f("ResourceId", "BEGIN_WITH", &["i-0000"]).holds(&s));
        assert!(f("ComplianceType", "EQUAL", &["Patch"]).holds(&s));
        assert!(f("ResourceType", "EQUAL", &["ManagedInstance"]).holds(&s));
        // Severity by rank: HIGH is above MEDIUM and below CRITICAL.
        assert!(f("OverallSeverity", "GREATER_THAN", &["MEDIUM"]).holds(&s));
        assert!(f("OverallSeverity", "LESS_THAN", &["CRITICAL"]).holds(&s));
        assert!(!f("OverallSeverity", "GREATER_THAN", &["CRITICAL"]).holds(&s));
        // Other values as text.
        assert!(f("ResourceId", "LESS_THAN", &["i-1"]).holds(&s));
    }

    #[test]
    fn reads_filters_with_aws_errors() {
        let read = |body: &str| {
            let mut req = Req::parse(body.as_bytes()).expect("json");
            read_request(&mut req).map(|(filters, _, _)| filters)
        };
        let ok = read(r#"{"Filters":[{"Key":"Status","Values":["COMPLIANT"]}]}"#).expect("valid");
        assert_eq!(ok[0].operator, "EQUAL", "Type defaults to EQUAL");
        let bad_type = read(r#"{"Filters":[{"Key":"Status","Values":["x"],"Type":"Equal"}]}"#)
            .expect_err("bad type");
        assert_eq!(bad_type.code, "ValidationException");
        assert!(bad_type.message.contains("filters.1.member.type"));
        let both =
            read(r#"{"Filters":[{"Key":"Status","Values":["x"],"Type":"Equal"}],"MaxResults":0}"#)
                .expect_err("two violations");
        assert!(
            both.message.starts_with("2 validation errors detected"),
            "{}",
            both.message
        );
        let no_values =
            read(r#"{"Filters":[{"Key":"Status","Values":[]}]}"#).expect_err("no values");
        assert_eq!(no_values.code, "ValidationException");
        let unknown =
            read(r#"{"Filters":[{"Key":"Severity","Values":["HIGH"]}]}"#).expect_err("unknown key");
        assert_eq!(unknown.code, "InvalidFilter");
        let missing = read(r#"{"Filters":[{"Values":["HIGH"]}]}"#).expect_err("no key");
        assert_eq!(missing.code, "InvalidFilter");
    }
}
