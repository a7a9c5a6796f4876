//! AWS's predefined patch baselines, listed with OWNER AWS.
//! https://docs.aws.amazon.com/systems-manager/latest/userguide/patch-manager-predefined-and-custom-patch-baselines.html
//!
//! Real ids are ARNs whose account and `pb-` suffix differ per region; the
//! simulator derives stable ones from the region and name.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::clock::splitmix64;
use crate::state::Baseline;

/// The account AWS's predefined baselines are published from in the simulator.
// The account of the example ARN in the GetPatchBaseline reference.
const AWS_OWNER_ACCOUNT: &str = "733109147000";

/// (name, operating system, description, default for its OS)
const PREDEFINED: &[(&str, &str, &str, bool)] = &[
    (
        "AWS-DefaultPatchBaseline",
        "WINDOWS",
        "Default Patch Baseline Provided by AWS.",
        true,
    ),
    (
        "AWS-WindowsPredefinedPatchBaseline-OS",
        "WINDOWS",
        "Windows Server patch baseline for operating system updates.",
        false,
    ),
    (
        "AWS-WindowsPredefinedPatchBaseline-OS-Applications",
        "WINDOWS",
        "Windows Server patch baseline for operating system and Microsoft application updates.",
        false,
    ),
    (
        "AWS-AmazonLinuxDefaultPatchBaseline",
        "AMAZON_LINUX",
        "Default Patch Baseline for Amazon Linux Provided by AWS.",
        true,
    ),
    (
        "AWS-AmazonLinux2DefaultPatchBaseline",
        "AMAZON_LINUX_2",
        "Default Patch Baseline for Amazon Linux 2 Provided by AWS.",
        true,
    ),
    (
        "AWS-AmazonLinux2022DefaultPatchBaseline",
        "AMAZON_LINUX_2022",
        "Default Patch Baseline for Amazon Linux 2022 Provided by AWS.",
        true,
    ),
    (
        "AWS-AmazonLinux2023DefaultPatchBaseline",
        "AMAZON_LINUX_2023",
        "Default Patch Baseline for Amazon Linux 2023 Provided by AWS.",
        true,
    ),
    (
        "AWS-UbuntuDefaultPatchBaseline",
        "UBUNTU",
        "Default Patch Baseline for Ubuntu Provided by AWS.",
        true,
    ),
    (
        "AWS-RedHatDefaultPatchBaseline",
        "REDHAT_ENTERPRISE_LINUX",
        "Default Patch Baseline for Redhat Enterprise Linux Provided by AWS.",
        true,
    ),
    (
        "AWS-SuseDefaultPatchBaseline",
        "SUSE",
        "Default Patch Baseline for Suse Provided by AWS.",
        true,
    ),
    (
        "AWS-CentOSDefaultPatchBaseline",
        "CENTOS",
        "Default Patch Baseline for CentOS Provided by AWS.",
        true,
    ),
    (
        "AWS-OracleLinuxDefaultPatchBaseline",
        "ORACLE_LINUX",
        "Default Patch Baseline for Oracle Linux Provided by AWS.",
        true,
    ),
    (
        "AWS-DebianDefaultPatchBaseline",
        "DEBIAN",
        "Default Patch Baseline for Debian Provided by AWS.",
        true,
    ),
    (
        "AWS-MacOSDefaultPatchBaseline",
        "MACOS",
        "Default Patch Baseline for MacOS Provided by AWS.",
        true,
    ),
    (
        "AWS-DefaultRaspbianPatchBaseline",
        "RASPBIAN",
        "Default Patch Baseline for Raspbian Provided by AWS.",
        true,
    ),
    (
        "AWS-RockyLinuxDefaultPatchBaseline",
        "ROCKY_LINUX",
        "Default Patch Baseline for Rocky Linux Provided by AWS.",
        true,
    ),
    (
        "AWS-AlmaLinuxDefaultPatchBaseline",
        "ALMA_LINUX",
        "Default Patch Baseline for Alma Linux Provided by AWS.",
        true,
    ),
];

/// Whether a predefined baseline is its operating system's default.
pub fn is_default(name: &str) -> bool {
    PREDEFINED.iter().any(|(n, _, _, d)| *n == name && *d)
}

fn approval_rules(os: &str) -> Value {
    let filters = if os == "WINDOWS" {
        json!([
            {"Key": "CLASSIFICATION", "Values": ["CriticalUpdates", "SecurityUpdates"]},
            {"Key": "MSRC_SEVERITY", "Values": ["Critical", "Important"]}
        ])
    } else {
        json!([
            {"Key": "CLASSIFICATION", "Values": ["Security"]},
            {"Key": "SEVERITY", "Values": ["Critical", "Important"]}
        ])
    };
    json!({"PatchRules": [{
        "PatchFilterGroup": {"PatchFilters": filters},
        "ComplianceLevel": "UNSPECIFIED",
        "ApproveAfterDays": 7,
        "EnableNonSecurity": false
    }]})
}

pub fn baselines(region: &str) -> Vec<Baseline> {
    PREDEFINED
        .iter()
        .map(|(name, os, description, _)| {
            let seed = region
                .bytes()
                .chain(name.bytes())
                .fold(0u64, |h, b| splitmix64(h ^ u64::from(b)));
            Baseline {
                id: format!(
                    "arn:aws:ssm:{region}:{AWS_OWNER_ACCOUNT}:patchbaseline/pb-0{:016x}",
                    splitmix64(seed)
                ),
                name: (*name).to_string(),
                operating_system: (*os).to_string(),
                description: Some((*description).to_string()),
                global_filters: Some(json!({"PatchFilters": []}).into()),
                approval_rules: Some(approval_rules(os).into()),
                approved_patches: Vec::new(),
                approved_patches_compliance_level: "UNSPECIFIED".to_string(),
                approved_patches_enable_non_security: false,
                rejected_patches: Vec::new(),
                rejected_patches_action: "ALLOW_AS_DEPENDENCY".to_string(),
                sources: None,
                available_security_updates_compliance_status: None,
                created: 1_483_228_800.0,
                modified: 1_483_228_800.0,
                tags: BTreeMap::new(),
                patch_groups: BTreeSet::new(),
            }
        })
        .collect()
}
