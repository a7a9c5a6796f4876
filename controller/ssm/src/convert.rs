//! patchfleet's definitions <-> SSM SDK types. Writes send every member (UpdatePatchBaseline
//! and UpdateMaintenanceWindow go out with Replace=true, which clears what is left out), and
//! reads turn SSM's answer back into the same definition, so a converged object reads back
//! equal to what the planner wants.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_ssm::error::BuildError;
use aws_sdk_ssm::operation::get_patch_baseline::GetPatchBaselineOutput;
use aws_sdk_ssm::types as sdk;
use patchfleet_api::v1alpha1::{
    ApprovalRule, BaselineSpec, ComplianceLevel, OperatingSystem, PatchFilter, PatchFilterKey,
    PatchOperation, PatchSource, RebootOption, RejectedPatchesAction,
};
use patchfleet_planner::model::{TargetDefinition, TaskAction, WindowDefinition};

/// The Run Command document patch tasks run.
pub const RUN_PATCH_BASELINE: &str = "AWS-RunPatchBaseline";
/// The window target key that selects instances by their `Patch Group` tag.
pub const PATCH_GROUP_TARGET_KEY: &str = "tag:Patch Group";
/// The task target key that refers to window targets by id.
pub const WINDOW_TARGET_IDS: &str = "WindowTargetIds";

/// A value SSM holds that patchfleet's definitions cannot express (set by hand, or by a
/// newer SSM): the object cannot equal any desired definition.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not expressible in patchfleet's definitions: {0}")]
pub struct Unrepresentable(pub String);

pub fn os_to_sdk(os: OperatingSystem) -> sdk::OperatingSystem {
    sdk::OperatingSystem::from(os.as_str())
}

pub fn os_from_sdk(os: &sdk::OperatingSystem) -> Option<OperatingSystem> {
    OperatingSystem::ALL
        .into_iter()
        .find(|o| o.as_str() == os.as_str())
}

fn compliance_str(level: ComplianceLevel) -> &'static str {
    match level {
        ComplianceLevel::Critical => "CRITICAL",
        ComplianceLevel::High => "HIGH",
        ComplianceLevel::Medium => "MEDIUM",
        ComplianceLevel::Low => "LOW",
        ComplianceLevel::Informational => "INFORMATIONAL",
        ComplianceLevel::Unspecified => "UNSPECIFIED",
    }
}

const COMPLIANCE_LEVELS: [ComplianceLevel; 6] = [
    ComplianceLevel::Critical,
    ComplianceLevel::High,
    ComplianceLevel::Medium,
    ComplianceLevel::Low,
    ComplianceLevel::Informational,
    ComplianceLevel::Unspecified,
];

fn compliance_from_sdk(
    level: Option<&sdk::PatchComplianceLevel>,
) -> Result<ComplianceLevel, Unrepresentable> {
    // GetPatchBaseline leaves it out or answers UNSPECIFIED when it was never set.
    let Some(level) = level else {
        return Ok(ComplianceLevel::Unspecified);
    };
    COMPLIANCE_LEVELS
        .into_iter()
        .find(|l| compliance_str(*l) == level.as_str())
        .ok_or_else(|| Unrepresentable(format!("compliance level {}", level.as_str())))
}

fn action_str(action: RejectedPatchesAction) -> &'static str {
    match action {
        RejectedPatchesAction::AllowAsDependency => "ALLOW_AS_DEPENDENCY",
        RejectedPatchesAction::Block => "BLOCK",
    }
}

fn filter_key_from_sdk(key: &sdk::PatchFilterKey) -> Result<PatchFilterKey, Unrepresentable> {
    const KEYS: [PatchFilterKey; 8] = [
        PatchFilterKey::PatchSet,
        PatchFilterKey::Product,
        PatchFilterKey::ProductFamily,
        PatchFilterKey::Classification,
        PatchFilterKey::MsrcSeverity,
        PatchFilterKey::Priority,
        PatchFilterKey::Section,
        PatchFilterKey::Severity,
    ];
    KEYS.into_iter()
        .find(|k| k.as_str() == key.as_str())
        .ok_or_else(|| Unrepresentable(format!("patch filter key {}", key.as_str())))
}

fn filter_group_to_sdk(filters: &[PatchFilter]) -> Result<sdk::PatchFilterGroup, BuildError> {
    let patch_filters = filters
        .iter()
        .map(|f| {
            sdk::PatchFilter::builder()
                .key(sdk::PatchFilterKey::from(f.key.as_str()))
                .set_values(Some(f.values.clone()))
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?;
    sdk::PatchFilterGroup::builder()
        .set_patch_filters(Some(patch_filters))
        .build()
}

fn filter_group_from_sdk(
    group: Option<&sdk::PatchFilterGroup>,
) -> Result<Vec<PatchFilter>, Unrepresentable> {
    group
        .map(|g| g.patch_filters())
        .unwrap_or_default()
        .iter()
        .map(|f| {
            Ok(PatchFilter {
                key: filter_key_from_sdk(f.key())?,
                values: f.values().to_vec(),
            })
        })
        .collect()
}

fn non_empty<T: Clone>(items: &[T]) -> Option<Vec<T>> {
    (!items.is_empty()).then(|| items.to_vec())
}

/// A baseline's members as CreatePatchBaseline and UpdatePatchBaseline take them.
#[derive(Clone, Debug, PartialEq)]
pub struct SdkBaseline {
    pub operating_system: sdk::OperatingSystem,
    pub description: Option<String>,
    pub global_filters: Option<sdk::PatchFilterGroup>,
    pub approval_rules: Option<sdk::PatchRuleGroup>,
    pub approved_patches: Option<Vec<String>>,
    pub approved_patches_compliance_level: Option<sdk::PatchComplianceLevel>,
    pub approved_patches_enable_non_security: Option<bool>,
    pub rejected_patches: Option<Vec<String>>,
    pub rejected_patches_action: Option<sdk::PatchAction>,
    pub sources: Option<Vec<sdk::PatchSource>>,
}

impl SdkBaseline {
    pub fn from_spec(spec: &BaselineSpec) -> Result<Self, BuildError> {
        let linux = spec.operating_system.is_linux();
        let rules = spec
            .approval_rules
            .iter()
            .map(|r| {
                Ok(sdk::PatchRule::builder()
                    .patch_filter_group(filter_group_to_sdk(&r.patch_filters)?)
                    .compliance_level(sdk::PatchComplianceLevel::from(compliance_str(
                        r.compliance_level,
                    )))
                    .set_approve_after_days(r.approve_after_days)
                    .set_approve_until_date(r.approve_until_date.clone())
                    // EnableNonSecurity "applies to Linux managed nodes only" (PatchRule).
                    .set_enable_non_security(linux.then_some(r.enable_non_security))
                    .build())
            })
            .collect::<Result<Vec<_>, BuildError>>()?;
        let approval_rules = if rules.is_empty() {
            None
        } else {
            Some(
                sdk::PatchRuleGroup::builder()
                    .set_patch_rules(Some(rules))
                    .build()?,
            )
        };
        let global_filters = if spec.global_filters.is_empty() {
            None
        } else {
            Some(filter_group_to_sdk(&spec.global_filters)?)
        };
        let sources = spec
            .sources
            .iter()
            .map(|s| {
                sdk::PatchSource::builder()
                    .name(&s.name)
                    .set_products(Some(s.products.clone()))
                    .configuration(&s.configuration)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SdkBaseline {
            operating_system: os_to_sdk(spec.operating_system),
            description: spec.description.clone(),
            global_filters,
            approval_rules,
            approved_patches: non_empty(&spec.approved_patches),
            approved_patches_compliance_level: Some(sdk::PatchComplianceLevel::from(
                compliance_str(spec.approved_patches_compliance_level),
            )),
            approved_patches_enable_non_security: linux
                .then_some(spec.approved_patches_enable_non_security),
            rejected_patches: non_empty(&spec.rejected_patches),
            rejected_patches_action: Some(sdk::PatchAction::from(action_str(
                spec.rejected_patches_action,
            ))),
            sources: non_empty(&sources),
        })
    }

    pub fn from_output(out: &GetPatchBaselineOutput) -> Self {
        SdkBaseline {
            operating_system: out
                .operating_system()
                .cloned()
                .unwrap_or_else(|| sdk::OperatingSystem::from("WINDOWS")),
            description: out.description().map(str::to_owned),
            global_filters: out.global_filters().cloned(),
            approval_rules: out.approval_rules().cloned(),
            approved_patches: Some(out.approved_patches().to_vec()),
            approved_patches_compliance_level: out.approved_patches_compliance_level().cloned(),
            approved_patches_enable_non_security: out.approved_patches_enable_non_security(),
            rejected_patches: Some(out.rejected_patches().to_vec()),
            rejected_patches_action: out.rejected_patches_action().cloned(),
            sources: Some(out.sources().to_vec()),
        }
    }

    pub fn to_spec(&self) -> Result<BaselineSpec, Unrepresentable> {
        let operating_system = os_from_sdk(&self.operating_system).ok_or_else(|| {
            Unrepresentable(format!(
                "operating system {}",
                self.operating_system.as_str()
            ))
        })?;
        let approval_rules = self
            .approval_rules
            .as_ref()
            .map(|g| g.patch_rules())
            .unwrap_or_default()
            .iter()
            .map(|r| {
                Ok(ApprovalRule {
                    patch_filters: filter_group_from_sdk(r.patch_filter_group())?,
                    approve_after_days: r.approve_after_days(),
                    approve_until_date: r.approve_until_date().map(str::to_owned),
                    compliance_level: compliance_from_sdk(r.compliance_level())?,
                    enable_non_security: r.enable_non_security().unwrap_or(false),
                })
            })
            .collect::<Result<Vec<_>, Unrepresentable>>()?;
        let rejected_patches_action = match self.rejected_patches_action.as_ref() {
            None => RejectedPatchesAction::AllowAsDependency,
            Some(a) if a.as_str() == "ALLOW_AS_DEPENDENCY" => {
                RejectedPatchesAction::AllowAsDependency
            }
            Some(a) if a.as_str() == "BLOCK" => RejectedPatchesAction::Block,
            Some(a) => {
                return Err(Unrepresentable(format!(
                    "rejected patches action {}",
                    a.as_str()
                )));
            }
        };
        Ok(BaselineSpec {
            operating_system,
            description: self.description.clone(),
            approval_rules,
            global_filters: filter_group_from_sdk(self.global_filters.as_ref())?,
            approved_patches: self.approved_patches.clone().unwrap_or_default(),
            approved_patches_compliance_level: compliance_from_sdk(
                self.approved_patches_compliance_level.as_ref(),
            )?,
            approved_patches_enable_non_security: self
                .approved_patches_enable_non_security
                .unwrap_or(false),
            rejected_patches: self.rejected_patches.clone().unwrap_or_default(),
            rejected_patches_action,
            sources: self
                .sources
                .as_deref()
                .unwrap_or_default()
                .iter()
                .map(|s| PatchSource {
                    name: s.name().to_owned(),
                    products: s.products().to_vec(),
                    configuration: s.configuration().to_owned(),
                })
                .collect(),
        })
    }
}

/// A window's definition from DescribeMaintenanceWindows' identity, which carries every
/// member of [`WindowDefinition`], so no GetMaintenanceWindow is needed to read one
/// (<https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_MaintenanceWindowIdentity.html>).
pub fn window_from_identity(w: &sdk::MaintenanceWindowIdentity) -> WindowDefinition {
    WindowDefinition {
        description: w.description().map(str::to_owned),
        schedule: w.schedule().unwrap_or_default().to_owned(),
        schedule_timezone: w.schedule_timezone().map(str::to_owned),
        schedule_offset: w.schedule_offset(),
        start_date: w.start_date().map(str::to_owned),
        end_date: w.end_date().map(str::to_owned),
        duration: w.duration().unwrap_or_default(),
        cutoff: w.cutoff(),
        enabled: w.enabled(),
    }
}

/// A window target's Targets member: the instances tagged `Patch Group: <group>`.
pub fn target_to_sdk(target: &TargetDefinition) -> sdk::Target {
    sdk::Target::builder()
        .key(PATCH_GROUP_TARGET_KEY)
        .values(&target.patch_group)
        .build()
}

/// Reads a window target back. Targets of any other shape (set by hand) read as an
/// empty patch group, which no desired target has (PatchGroup names are 1-256 long).
pub fn target_from_sdk(
    targets: &[sdk::Target],
    owner_information: Option<&str>,
) -> TargetDefinition {
    let patch_group = match targets {
        [t] if t.key() == Some(PATCH_GROUP_TARGET_KEY) && t.values().len() == 1 => {
            t.values()[0].clone()
        }
        _ => String::new(),
    };
    TargetDefinition {
        patch_group,
        owner_information: owner_information.unwrap_or_default().to_owned(),
    }
}

fn patch_operation_str(op: PatchOperation) -> &'static str {
    match op {
        PatchOperation::Scan => "Scan",
        PatchOperation::Install => "Install",
    }
}

fn reboot_option_str(option: RebootOption) -> &'static str {
    match option {
        RebootOption::RebootIfNeeded => "RebootIfNeeded",
        RebootOption::NoReboot => "NoReboot",
    }
}

/// The path of Systems Manager's service-linked role, which runs a task registered without
/// a ServiceRoleArn ("If you do not specify a service role ARN, Systems Manager uses your
/// account's service-linked role":
/// <https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_RegisterTaskWithMaintenanceWindow.html>).
const SERVICE_LINKED_ROLE: &str = ":role/aws-service-role/ssm.amazonaws.com/";

/// A task's role as read back: the service-linked role reads as no role, which is how
/// patchfleet registers such a task, so that it does not look changed on every read.
pub fn task_role_from_sdk(arn: Option<&str>) -> Option<String> {
    arn.filter(|arn| !arn.contains(SERVICE_LINKED_ROLE))
        .map(str::to_owned)
}

/// AWS-RunPatchBaseline's parameters for an operation and reboot option
/// (<https://docs.aws.amazon.com/systems-manager/latest/userguide/patch-manager-aws-runpatchbaseline.html>).
pub fn run_patch_baseline_parameters(
    operation: PatchOperation,
    reboot_option: RebootOption,
) -> HashMap<String, Vec<String>> {
    HashMap::from([
        (
            "Operation".to_owned(),
            vec![patch_operation_str(operation).to_owned()],
        ),
        (
            "RebootOption".to_owned(),
            vec![reboot_option_str(reboot_option).to_owned()],
        ),
    ])
}

/// What RegisterTaskWithMaintenanceWindow needs to run an action.
#[derive(Clone, Debug, PartialEq)]
pub struct SdkTask {
    pub task_type: sdk::MaintenanceWindowTaskType,
    pub task_arn: String,
    pub invocation: sdk::MaintenanceWindowTaskInvocationParameters,
}

pub fn task_to_sdk(action: &TaskAction) -> SdkTask {
    match action {
        TaskAction::RunPatchBaseline {
            operation,
            reboot_option,
        } => {
            let parameters = run_patch_baseline_parameters(*operation, *reboot_option);
            SdkTask {
                task_type: sdk::MaintenanceWindowTaskType::RunCommand,
                task_arn: RUN_PATCH_BASELINE.to_owned(),
                invocation: sdk::MaintenanceWindowTaskInvocationParameters::builder()
                    .run_command(
                        sdk::MaintenanceWindowRunCommandParameters::builder()
                            .set_parameters(Some(parameters))
                            .build(),
                    )
                    .build(),
            }
        }
        TaskAction::Automation {
            document,
            parameters,
        } => SdkTask {
            task_type: sdk::MaintenanceWindowTaskType::Automation,
            task_arn: document.clone(),
            invocation: sdk::MaintenanceWindowTaskInvocationParameters::builder()
                .automation(
                    sdk::MaintenanceWindowAutomationParameters::builder()
                        .set_parameters(Some(
                            parameters
                                .iter()
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect(),
                        ))
                        .build(),
                )
                .build(),
        },
    }
}

/// Reads a task's action back. Anything else (another document, Lambda, Step Functions,
/// unknown parameter values) reads as an Automation of `TYPE:arn`, which no desired task
/// has, so the planner replaces it.
pub fn task_from_sdk(
    task_type: Option<&sdk::MaintenanceWindowTaskType>,
    task_arn: &str,
    invocation: Option<&sdk::MaintenanceWindowTaskInvocationParameters>,
) -> TaskAction {
    let run_command = invocation.and_then(|i| i.run_command());
    let automation = invocation.and_then(|i| i.automation());
    let single = |params: Option<&HashMap<String, Vec<String>>>, name: &str| match params
        .and_then(|p| p.get(name))
        .map(Vec::as_slice)
    {
        Some([value]) => Some(value.clone()),
        _ => None,
    };
    match task_type {
        Some(sdk::MaintenanceWindowTaskType::RunCommand) if task_arn == RUN_PATCH_BASELINE => {
            let params = run_command.and_then(|r| r.parameters());
            let operation = match single(params, "Operation").as_deref() {
                Some("Scan") => Some(PatchOperation::Scan),
                Some("Install") => Some(PatchOperation::Install),
                _ => None,
            };
            // AWS-RunPatchBaseline's RebootOption defaults to RebootIfNeeded.
            let reboot_option = match single(params, "RebootOption").as_deref() {
                Some("RebootIfNeeded") | None => Some(RebootOption::RebootIfNeeded),
                Some("NoReboot") => Some(RebootOption::NoReboot),
                Some(_) => None,
            };
            let known =
                params.is_none_or(|p| p.keys().all(|k| k == "Operation" || k == "RebootOption"));
            match (operation, reboot_option) {
                (Some(operation), Some(reboot_option)) if known => TaskAction::RunPatchBaseline {
                    operation,
                    reboot_option,
                },
                _ => foreign_task("RUN_COMMAND", task_arn, params),
            }
        }
        Some(sdk::MaintenanceWindowTaskType::Automation) => TaskAction::Automation {
            document: task_arn.to_owned(),
            parameters: automation
                .and_then(|a| a.parameters())
                .map(|p| p.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
        },
        other => foreign_task(
            other.map_or("UNKNOWN", |t| t.as_str()),
            task_arn,
            run_command.and_then(|r| r.parameters()),
        ),
    }
}

fn foreign_task(
    task_type: &str,
    task_arn: &str,
    params: Option<&HashMap<String, Vec<String>>>,
) -> TaskAction {
    TaskAction::Automation {
        document: format!("{task_type}:{task_arn}"),
        parameters: params
            .map(|p| p.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
    }
}

/// A task's Targets member: the window targets it runs on, by id.
pub fn task_targets_to_sdk(target_ids: &BTreeSet<String>) -> sdk::Target {
    sdk::Target::builder()
        .key(WINDOW_TARGET_IDS)
        .set_values(Some(target_ids.iter().cloned().collect()))
        .build()
}

/// The target names a task runs on, from its WindowTargetIds (ids without a name stand
/// for themselves).
pub fn task_targets_from_sdk(
    targets: &[sdk::Target],
    names: &BTreeMap<String, String>,
) -> BTreeSet<String> {
    targets
        .iter()
        .filter(|t| t.key() == Some(WINDOW_TARGET_IDS))
        .flat_map(|t| t.values())
        .map(|id| names.get(id).cloned().unwrap_or_else(|| id.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linux_baseline() -> BaselineSpec {
        let mut spec = BaselineSpec::new(OperatingSystem::AmazonLinux2);
        spec.description = Some("on-time".into());
        spec.approval_rules = vec![
            ApprovalRule {
                patch_filters: vec![
                    PatchFilter {
                        key: PatchFilterKey::Classification,
                        values: vec!["Security".into()],
                    },
                    PatchFilter {
                        key: PatchFilterKey::Severity,
                        values: vec!["Critical".into(), "Important".into()],
                    },
                ],
                approve_after_days: Some(7),
                approve_until_date: None,
                compliance_level: ComplianceLevel::Critical,
                enable_non_security: false,
            },
            ApprovalRule {
                patch_filters: vec![PatchFilter {
                    key: PatchFilterKey::Product,
                    values: vec!["*".into()],
                }],
                approve_after_days: None,
                approve_until_date: Some("2024-12-31".into()),
                compliance_level: ComplianceLevel::Unspecified,
                enable_non_security: true,
            },
        ];
        spec.global_filters = vec![PatchFilter {
            key: PatchFilterKey::Product,
            values: vec!["AmazonLinux2".into()],
        }];
        spec.approved_patches = vec!["openssl-1.0.2k".into()];
        spec.approved_patches_compliance_level = ComplianceLevel::High;
        spec.approved_patches_enable_non_security = true;
        spec.rejected_patches = vec!["kernel*".into()];
        spec.rejected_patches_action = RejectedPatchesAction::Block;
        spec.sources = vec![PatchSource {
            name: "internal-mirror".into(),
            products: vec!["AmazonLinux2".into()],
            configuration: "[main]\nname=mirror".into(),
        }];
        spec
    }

    fn round_trip(spec: &BaselineSpec) -> BaselineSpec {
        SdkBaseline::from_spec(spec)
            .expect("builds")
            .to_spec()
            .expect("representable")
    }

    #[test]
    fn baselines_round_trip() {
        let linux = linux_baseline();
        assert_eq!(round_trip(&linux), linux);
        let empty = BaselineSpec::new(OperatingSystem::Windows);
        assert_eq!(round_trip(&empty), empty);
        for os in OperatingSystem::ALL {
            let spec = BaselineSpec::new(os);
            assert_eq!(round_trip(&spec), spec, "{os:?}");
        }
    }

    #[test]
    fn get_patch_baseline_output_reads_back() {
        let spec = linux_baseline();
        let sdk = SdkBaseline::from_spec(&spec).expect("builds");
        let out = GetPatchBaselineOutput::builder()
            .baseline_id("pb-0123456789abcdef0")
            .name("patchfleet-x")
            .operating_system(sdk.operating_system.clone())
            .set_global_filters(sdk.global_filters.clone())
            .set_approval_rules(sdk.approval_rules.clone())
            .set_approved_patches(sdk.approved_patches.clone())
            .set_approved_patches_compliance_level(sdk.approved_patches_compliance_level.clone())
            .set_approved_patches_enable_non_security(sdk.approved_patches_enable_non_security)
            .set_rejected_patches(sdk.rejected_patches.clone())
            .set_rejected_patches_action(sdk.rejected_patches_action.clone())
            .set_description(sdk.description.clone())
            .set_sources(sdk.sources.clone())
            .build();
        assert_eq!(SdkBaseline::from_output(&out).to_spec(), Ok(spec));
    }

    #[test]
    fn windows_send_no_linux_only_members() {
        let sdk =
            SdkBaseline::from_spec(&BaselineSpec::new(OperatingSystem::Windows)).expect("builds");
        assert_eq!(sdk.approved_patches_enable_non_security, None);
        assert_eq!(sdk.sources, None);
    }

    #[test]
    fn unknown_filter_keys_are_unrepresentable() {
        let out = GetPatchBaselineOutput::builder()
            .operating_system(sdk::OperatingSystem::AmazonLinux2)
            .global_filters(
                sdk::PatchFilterGroup::builder()
                    .patch_filters(
                        sdk::PatchFilter::builder()
                            .key(sdk::PatchFilterKey::Arch)
                            .values("x86_64")
                            .build()
                            .expect("filter"),
                    )
                    .build()
                    .expect("group"),
            )
            .build();
        assert!(SdkBaseline::from_output(&out).to_spec().is_err());
    }

    #[test]
    fn the_service_linked_role_reads_as_no_role() {
        let linked = "arn:aws:iam::111111111111:role/aws-service-role/ssm.amazonaws.com/AWSServiceRoleForAmazonSSM";
        assert_eq!(task_role_from_sdk(Some(linked)), None);
        assert_eq!(task_role_from_sdk(None), None);
        let own = "arn:aws:iam::111111111111:role/service-role/patching";
        assert_eq!(task_role_from_sdk(Some(own)).as_deref(), Some(own));
    }

    #[test]
    fn tasks_round_trip() {
        let actions = [
            TaskAction::RunPatchBaseline {
                operation: PatchOperation::Install,
                reboot_option: RebootOption::NoReboot,
            },
            TaskAction::RunPatchBaseline {
                operation: PatchOperation::Scan,
                reboot_option: RebootOption::RebootIfNeeded,
            },
            TaskAction::Automation {
                document: "patchfleet-SnapshotThenPatch".into(),
                parameters: BTreeMap::from([
                    ("Operation".into(), vec!["Install".into()]),
                    ("InstanceId".into(), vec!["{{TARGET_ID}}".into()]),
                ]),
            },
        ];
        for action in actions {
            let sdk = task_to_sdk(&action);
            let back = task_from_sdk(Some(&sdk.task_type), &sdk.task_arn, Some(&sdk.invocation));
            assert_eq!(back, action);
        }
    }

    #[test]
    fn foreign_tasks_read_as_unmatchable_automations() {
        let back = task_from_sdk(
            Some(&sdk::MaintenanceWindowTaskType::Lambda),
            "arn:aws:lambda:us-east-1:111111111111:function:f",
            None,
        );
        assert!(
            matches!(back, TaskAction::Automation { document, .. } if document.starts_with("LAMBDA:"))
        );
        let other_doc = task_from_sdk(
            Some(&sdk::MaintenanceWindowTaskType::RunCommand),
            "AWS-RunShellScript",
            None,
        );
        assert!(
            matches!(other_doc, TaskAction::Automation { document, .. } if document == "RUN_COMMAND:AWS-RunShellScript")
        );
    }

    #[test]
    fn targets_round_trip() {
        let target = TargetDefinition {
            patch_group: "on-time".into(),
            owner_information: "PatchGroup/patching/on-time".into(),
        };
        let sdk = target_to_sdk(&target);
        assert_eq!(
            target_from_sdk(&[sdk], Some("PatchGroup/patching/on-time")),
            target
        );
        let foreign = sdk::Target::builder()
            .key("InstanceIds")
            .values("i-0123")
            .build();
        assert_eq!(target_from_sdk(&[foreign], None).patch_group, "");
        let ids = BTreeSet::from(["t-1".to_owned(), "t-2".to_owned()]);
        let names = BTreeMap::from([("t-1".to_owned(), "early".to_owned())]);
        assert_eq!(
            task_targets_from_sdk(&[task_targets_to_sdk(&ids)], &names),
            BTreeSet::from(["early".to_owned(), "t-2".to_owned()])
        );
    }
}
