//! PatchPolicy: WHAT is approved, per operating system. Becomes one patch baseline per
//! operating system in every account-region where a PatchGroup that follows it exists.

use kube_core::Rule;
use kube_derive::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ssm::{ComplianceLevel, OperatingSystem, PatchFilterKey, RejectedPatchesAction, limits};
use super::status::FleetStatus;

/// Patch approval intent: for each operating system, which patches are approved (rules,
/// explicit lists) and which are rejected. Each entry of `baselines` becomes an SSM patch
/// baseline in every account and region where a PatchGroup following this policy exists.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[x_kube(crates(kube_core = ::kube_core))]
#[kube(
    crates(kube_core = ::kube_core),
    group = "patchfleet.io",
    version = "v1alpha1",
    kind = "PatchPolicy",
    doc = "What is approved, per operating system: becomes one SSM patch baseline per operating system.",
    namespaced,
    shortname = "ppol",
    category = "patchfleet",
    status = "FleetStatus",
    printcolumn = r#"{"name":"Mode","type":"string","jsonPath":".spec.mode"}"#,
    printcolumn = r#"{"name":"Systems","type":"string","jsonPath":".spec.baselines[*].operatingSystem","priority":1}"#,
    printcolumn = r#"{"name":"Accounts","type":"integer","jsonPath":".status.summary.selected"}"#,
    printcolumn = r#"{"name":"Failing","type":"integer","jsonPath":".status.summary.failing"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct PatchPolicySpec {
    /// Active applies the approval rules. Frozen approves nothing new, the policy for
    /// systems that are no longer patched after go-live: approval rules are not applied,
    /// so only the patches listed in `approvedPatches` stay approved.
    #[serde(default)]
    pub mode: PolicyMode,

    /// One baseline per operating system (at most one entry per `operatingSystem`).
    #[schemars(length(min = 1, max = 15))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["operatingSystem".into()]))]
    pub baselines: Vec<BaselineSpec>,
}

/// Whether a policy approves patches by its rules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum PolicyMode {
    #[default]
    Active,
    Frozen,
}

/// The patch baseline of one operating system (SSM CreatePatchBaseline's fields:
/// <https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CreatePatchBaseline.html>).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[x_kube(crates(kube_core = ::kube_core))]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = filter_keys_rule("approvalRules", "self.approvalRules.all(r, r.patchFilters.all(f, "))]
#[x_kube(validation = filter_keys_rule("globalFilters", "self.globalFilters.all(f, "))]
#[x_kube(validation = approval_delay_unsupported_rule())]
#[x_kube(validation = approval_delay_required_rule())]
#[x_kube(validation = linux_only_rule())]
pub struct BaselineSpec {
    /// The operating system the baseline applies to, as SSM spells it.
    pub operating_system: OperatingSystem,

    /// A description for the SSM baseline (up to 994 characters: SSM allows 1024, and
    /// patchfleet appends its 30-character fingerprint marker, ` [patchfleet:<hash>]`,
    /// which lets a pass see from the baseline list alone that nothing changed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 994))]
    pub description: Option<String>,

    /// Rules that approve patches by their properties (at most 10). Each needs
    /// `approveAfterDays` or `approveUntilDate`, except on UBUNTU and DEBIAN, where SSM
    /// supports neither and approves matching patches as released.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub approval_rules: Vec<ApprovalRule>,

    /// Filters every patch must pass before the rules see it (at most 4, one per key).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 4))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["key".into()]))]
    pub global_filters: Vec<PatchFilter>,

    /// Patches approved whatever the rules say (ids or package names; at most 50).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50), inner(length(min = 1, max = 100)))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub approved_patches: Vec<String>,

    /// Compliance severity of the patches in `approvedPatches`.
    #[serde(default)]
    pub approved_patches_compliance_level: ComplianceLevel,

    /// Also install non-security updates among `approvedPatches` (Linux only).
    #[serde(default)]
    pub approved_patches_enable_non_security: bool,

    /// Patches never approved (ids or package names; at most 50).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50), inner(length(min = 1, max = 100)))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub rejected_patches: Vec<String>,

    /// What SSM does with a rejected patch another package depends on.
    #[serde(default)]
    pub rejected_patches_action: RejectedPatchesAction,

    /// Alternative package repositories (Linux only; at most 20, unique by name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub sources: Vec<PatchSource>,
}

/// One approval rule (SSM PatchRule:
/// <https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PatchRule.html>).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[x_kube(crates(kube_core = ::kube_core))]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.approveAfterDays) && has(self.approveUntilDate))")
    .message("approvalRules[]: set approveAfterDays or approveUntilDate, not both"))]
pub struct ApprovalRule {
    /// The patches this rule approves: all filters must match (at most 4, one per key).
    #[schemars(length(max = 4))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["key".into()]))]
    pub patch_filters: Vec<PatchFilter>,

    /// Approve a matching patch this many days after its release (0-360).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 360))]
    pub approve_after_days: Option<i32>,

    /// Approve matching patches released on or before this date (YYYY-MM-DD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 10, max = 10), pattern(limits::DATE_PATTERN))]
    pub approve_until_date: Option<String>,

    /// Compliance severity of the patches this rule approves.
    #[serde(default)]
    pub compliance_level: ComplianceLevel,

    /// Also install non-security updates that match (Linux only).
    #[serde(default)]
    pub enable_non_security: bool,
}

/// A patch filter: a patch property and the values that match (`*` matches all).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PatchFilter {
    /// The patch property. Which keys are allowed depends on the operating system:
    /// WINDOWS: PATCH_SET, PRODUCT, PRODUCT_FAMILY, CLASSIFICATION, MSRC_SEVERITY;
    /// UBUNTU, DEBIAN, RASPBIAN: PRODUCT, PRIORITY, SECTION; MACOS: PRODUCT,
    /// CLASSIFICATION; other Linux: PRODUCT, CLASSIFICATION, SEVERITY.
    pub key: PatchFilterKey,
    /// The matching values (1-20), such as `SecurityUpdates` or `*`.
    #[schemars(length(min = 1, max = 20), inner(length(min = 1, max = 256)))]
    pub values: Vec<String>,
}

/// A package repository for Linux (SSM PatchSource).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PatchSource {
    /// The source's name (3-50 characters of letters, digits, `_`, `-`, `.`).
    #[schemars(length(min = 3, max = 50), pattern(limits::PATCH_SOURCE_NAME_PATTERN))]
    pub name: String,
    /// The products this source applies to, such as `AmazonLinux2018.03` (1-20).
    #[schemars(length(min = 1, max = 20), inner(length(min = 1, max = 128)))]
    pub products: Vec<String>,
    /// The repository configuration, in yum or apt format (see SSM PatchSource).
    #[schemars(length(min = 1, max = 1024))]
    pub configuration: String,
}

/// CEL literal of the operating systems `pred` holds for, such as `['UBUNTU', 'DEBIAN']`.
fn os_list(pred: impl Fn(OperatingSystem) -> bool) -> String {
    let quoted: Vec<String> = OperatingSystem::ALL
        .into_iter()
        .filter(|os| pred(*os))
        .map(|os| format!("'{}'", os.as_str()))
        .collect();
    format!("[{}]", quoted.join(", "))
}

/// A CEL expression choosing `value(keys)` by `self.operatingSystem`, one branch per
/// distinct list of filter keys (the last list is the fallback).
fn by_filter_keys(value: impl Fn(&[PatchFilterKey]) -> String) -> String {
    let mut groups: Vec<(&'static [PatchFilterKey], Vec<OperatingSystem>)> = Vec::new();
    for os in OperatingSystem::ALL {
        match groups
            .iter_mut()
            .find(|(keys, _)| *keys == os.filter_keys())
        {
            Some((_, systems)) => systems.push(os),
            None => groups.push((os.filter_keys(), vec![os])),
        }
    }
    let Some(((fallback, _), branches)) = groups.split_last() else {
        return "[]".to_owned();
    };
    let mut expression = String::new();
    for (keys, systems) in branches {
        let systems = os_list(|os| systems.contains(&os));
        expression.push_str(&format!(
            "self.operatingSystem in {systems} ? {} : ",
            value(keys)
        ));
    }
    expression.push_str(&value(fallback));
    format!("({expression})")
}

fn key_names(keys: &[PatchFilterKey]) -> Vec<&'static str> {
    keys.iter().map(|k| k.as_str()).collect()
}

/// Every filter key in `field` must be one this operating system supports. The rule and
/// its message are generated from [`OperatingSystem::filter_keys`], the one table of them.
fn filter_keys_rule(field: &str, all_filters: &str) -> Rule {
    let allowed = by_filter_keys(|keys| {
        let quoted: Vec<String> = key_names(keys).iter().map(|k| format!("'{k}'")).collect();
        format!("[{}]", quoted.join(", "))
    });
    let allowed_text = by_filter_keys(|keys| format!("'{}'", key_names(keys).join(", ")));
    let closing = if field == "approvalRules" { "))" } else { ")" };
    let filter_path = if field == "approvalRules" {
        "approvalRules[].patchFilters[].key"
    } else {
        "globalFilters[].key"
    };
    Rule::new(format!(
        "!has(self.{field}) || {all_filters}f.key in {allowed}{closing}"
    ))
    .message(kube_core::Message::Expression(format!(
        "'{filter_path}: ' + self.operatingSystem + ' baselines accept only ' + {allowed_text}"
    )))
    .field_path(format!(".{field}"))
}

/// SSM rejects approval delays for Debian and Ubuntu.
fn approval_delay_unsupported_rule() -> Rule {
    let no_delay = os_list(|os| !os.supports_approval_delay());
    Rule::new(format!(
        "!(self.operatingSystem in {no_delay}) || !has(self.approvalRules) || \
         self.approvalRules.all(r, !has(r.approveAfterDays) && !has(r.approveUntilDate))"
    ))
    .message(kube_core::Message::Expression(
        "'approvalRules[]: SSM supports neither approveAfterDays nor approveUntilDate for ' + \
         self.operatingSystem + ' (patches are approved as released): remove them'"
            .to_owned(),
    ))
    .field_path(".approvalRules")
}

/// Every other operating system needs one of the two in each rule.
fn approval_delay_required_rule() -> Rule {
    let no_delay = os_list(|os| !os.supports_approval_delay());
    Rule::new(format!(
        "self.operatingSystem in {no_delay} || !has(self.approvalRules) || \
         self.approvalRules.all(r, has(r.approveAfterDays) || has(r.approveUntilDate))"
    ))
    .message(kube_core::Message::Expression(
        "'approvalRules[]: each rule for ' + self.operatingSystem + \
         ' needs approveAfterDays (0-360) or approveUntilDate (YYYY-MM-DD)'"
            .to_owned(),
    ))
    .field_path(".approvalRules")
}

/// Non-security updates and alternative sources exist only for Linux.
fn linux_only_rule() -> Rule {
    let not_linux = os_list(|os| !os.is_linux());
    Rule::new(format!(
        "!(self.operatingSystem in {not_linux}) || (\
         (!has(self.approvalRules) || self.approvalRules.all(r, !r.enableNonSecurity)) && \
         !self.approvedPatchesEnableNonSecurity && \
         (!has(self.sources) || size(self.sources) == 0))"
    ))
    .message(kube_core::Message::Expression(
        "'enableNonSecurity, approvedPatchesEnableNonSecurity and sources apply to Linux only: \
         remove them from the ' + self.operatingSystem + ' baseline'"
            .to_owned(),
    ))
}

impl BaselineSpec {
    /// A baseline with no rules, filters or lists: the starting point for builders.
    pub fn new(operating_system: OperatingSystem) -> Self {
        BaselineSpec {
            operating_system,
            description: None,
            approval_rules: vec![],
            global_filters: vec![],
            approved_patches: vec![],
            approved_patches_compliance_level: ComplianceLevel::default(),
            approved_patches_enable_non_security: false,
            rejected_patches: vec![],
            rejected_patches_action: RejectedPatchesAction::default(),
            sources: vec![],
        }
    }
}
