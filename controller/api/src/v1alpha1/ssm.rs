//! SSM's own vocabulary, spelled as the SSM API spells it, so a reader who knows SSM knows
//! the resources. Values and limits follow the SSM API reference:
//! <https://docs.aws.amazon.com/systems-manager/latest/APIReference/Welcome.html>.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The operating system a patch baseline applies to (SSM `OperatingSystem`; every value
/// CreatePatchBaseline accepts:
/// <https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CreatePatchBaseline.html>).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum OperatingSystem {
    #[serde(rename = "WINDOWS")]
    Windows,
    #[serde(rename = "AMAZON_LINUX")]
    AmazonLinux,
    #[serde(rename = "AMAZON_LINUX_2")]
    AmazonLinux2,
    #[serde(rename = "AMAZON_LINUX_2022")]
    AmazonLinux2022,
    #[serde(rename = "AMAZON_LINUX_2023")]
    AmazonLinux2023,
    #[serde(rename = "UBUNTU")]
    Ubuntu,
    #[serde(rename = "REDHAT_ENTERPRISE_LINUX")]
    RedhatEnterpriseLinux,
    #[serde(rename = "SUSE")]
    Suse,
    #[serde(rename = "CENTOS")]
    Centos,
    #[serde(rename = "ORACLE_LINUX")]
    OracleLinux,
    #[serde(rename = "DEBIAN")]
    Debian,
    #[serde(rename = "MACOS")]
    Macos,
    #[serde(rename = "RASPBIAN")]
    Raspbian,
    #[serde(rename = "ROCKY_LINUX")]
    RockyLinux,
    #[serde(rename = "ALMA_LINUX")]
    AlmaLinux,
}

impl OperatingSystem {
    pub const ALL: [OperatingSystem; 15] = [
        Self::Windows,
        Self::AmazonLinux,
        Self::AmazonLinux2,
        Self::AmazonLinux2022,
        Self::AmazonLinux2023,
        Self::Ubuntu,
        Self::RedhatEnterpriseLinux,
        Self::Suse,
        Self::Centos,
        Self::OracleLinux,
        Self::Debian,
        Self::Macos,
        Self::Raspbian,
        Self::RockyLinux,
        Self::AlmaLinux,
    ];

    /// The value as SSM spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Windows => "WINDOWS",
            Self::AmazonLinux => "AMAZON_LINUX",
            Self::AmazonLinux2 => "AMAZON_LINUX_2",
            Self::AmazonLinux2022 => "AMAZON_LINUX_2022",
            Self::AmazonLinux2023 => "AMAZON_LINUX_2023",
            Self::Ubuntu => "UBUNTU",
            Self::RedhatEnterpriseLinux => "REDHAT_ENTERPRISE_LINUX",
            Self::Suse => "SUSE",
            Self::Centos => "CENTOS",
            Self::OracleLinux => "ORACLE_LINUX",
            Self::Debian => "DEBIAN",
            Self::Macos => "MACOS",
            Self::Raspbian => "RASPBIAN",
            Self::RockyLinux => "ROCKY_LINUX",
            Self::AlmaLinux => "ALMA_LINUX",
        }
    }

    /// Linux in SSM's sense: `EnableNonSecurity` and `Sources` "apply to Linux managed
    /// nodes only" (PatchRule, CreatePatchBaseline), so neither Windows nor macOS.
    pub fn is_linux(self) -> bool {
        !matches!(self, Self::Windows | Self::Macos)
    }

    /// Debian and Ubuntu approve patches as released: PatchRule's ApproveAfterDays and
    /// ApproveUntilDate are "Not supported for Debian Server or Ubuntu Server"
    /// (<https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PatchRule.html>).
    pub fn supports_approval_delay(self) -> bool {
        !matches!(self, Self::Ubuntu | Self::Debian)
    }

    /// The patch filter keys a baseline for this operating system may use. Windows keys are
    /// listed in PatchFilter, the others in DescribePatchProperties
    /// (<https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PatchFilter.html>,
    /// <https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribePatchProperties.html>);
    /// SECTION is also accepted for the Debian family, as AWS's predefined Ubuntu baseline uses it.
    pub fn filter_keys(self) -> &'static [PatchFilterKey] {
        use PatchFilterKey::*;
        match self {
            Self::Windows => &[
                PatchSet,
                Product,
                ProductFamily,
                Classification,
                MsrcSeverity,
            ],
            Self::Ubuntu | Self::Debian | Self::Raspbian => &[Product, Priority, Section],
            Self::Macos => &[Product, Classification],
            _ => &[Product, Classification, Severity],
        }
    }
}

/// A patch filter key (SSM `PatchFilterKey`). Which keys a baseline may use depends on its
/// operating system; the API server checks that for each baseline.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum PatchFilterKey {
    #[serde(rename = "PATCH_SET")]
    PatchSet,
    #[serde(rename = "PRODUCT")]
    Product,
    #[serde(rename = "PRODUCT_FAMILY")]
    ProductFamily,
    #[serde(rename = "CLASSIFICATION")]
    Classification,
    #[serde(rename = "MSRC_SEVERITY")]
    MsrcSeverity,
    #[serde(rename = "PRIORITY")]
    Priority,
    #[serde(rename = "SECTION")]
    Section,
    #[serde(rename = "SEVERITY")]
    Severity,
}

impl PatchFilterKey {
    /// The value as SSM spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PatchSet => "PATCH_SET",
            Self::Product => "PRODUCT",
            Self::ProductFamily => "PRODUCT_FAMILY",
            Self::Classification => "CLASSIFICATION",
            Self::MsrcSeverity => "MSRC_SEVERITY",
            Self::Priority => "PRIORITY",
            Self::Section => "SECTION",
            Self::Severity => "SEVERITY",
        }
    }
}

/// The compliance severity reported for missing approved patches (SSM
/// `PatchComplianceLevel`): CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL or UNSPECIFIED.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ComplianceLevel {
    Critical,
    High,
    Medium,
    Low,
    Informational,
    #[default]
    Unspecified,
}

/// What happens to a rejected patch (SSM `PatchAction`): ALLOW_AS_DEPENDENCY installs it
/// only when another package needs it; BLOCK never installs it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RejectedPatchesAction {
    #[default]
    AllowAsDependency,
    Block,
}

/// What to do when a resource is deleted: Delete removes what it made in SSM in every
/// account; Orphan leaves it there and stops managing it (the ownership tags are removed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum DeletionPolicy {
    #[default]
    Delete,
    Orphan,
}

/// Schema patterns and limits quoted from the SSM and STS API references.
pub mod limits {
    /// AWS account ids are 12 digits.
    pub const ACCOUNT_ID_PATTERN: &str = r"^[0-9]{12}$";
    /// An IAM role ARN in any partition (STS AssumeRole `RoleArn`, 20-2048 characters).
    pub const ROLE_ARN_PATTERN: &str =
        r"^arn:aws(-cn|-us-gov|-iso|-iso-b)?:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$";
    /// STS AssumeRole `ExternalId`: 2-1224 characters of `[\w+=,.@:\/-]`
    /// (<https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html>).
    pub const EXTERNAL_ID_PATTERN: &str = r"^[\w+=,.@:/-]*$";
    /// A region name such as `eu-west-1` or `us-gov-west-1`.
    pub const REGION_PATTERN: &str = r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}$";
    /// The `Patch Group` tag value (SSM `PatchGroup`: 1-256 characters).
    pub const PATCH_GROUP_PATTERN: &str = r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$";
    /// Names of baselines, windows, tasks and sources (SSM `BaselineName` and friends).
    pub const SSM_NAME_PATTERN: &str = r"^[a-zA-Z0-9_\-.]{3,128}$";
    /// SSM `PatchSourceName`.
    pub const PATCH_SOURCE_NAME_PATTERN: &str = r"^[a-zA-Z0-9_\-.]{3,50}$";
    /// `YYYY-MM-DD`, as PatchRule's ApproveUntilDate is entered.
    pub const DATE_PATTERN: &str = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$";
    /// A maintenance window schedule: a cron or rate expression, or a one-time `at`
    /// (<https://docs.aws.amazon.com/systems-manager/latest/userguide/reference-cron-and-rate-expressions.html>).
    pub const SCHEDULE_PATTERN: &str = r"^(cron\(\S+( \S+){5}\)|rate\([1-9][0-9]* (minute|minutes|hour|hours|day|days)\)|at\([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\))$";
    /// An IANA time zone name such as `Etc/UTC` or `America/Los_Angeles`.
    pub const TIME_ZONE_PATTERN: &str = r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+){0,2}$";
    /// MaxConcurrency of a maintenance window task: a count or a percentage.
    pub const MAX_CONCURRENCY_PATTERN: &str = r"^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$";
    /// MaxErrors of a maintenance window task: a count (0 allowed) or a percentage.
    pub const MAX_ERRORS_PATTERN: &str = r"^([1-9][0-9]*|[0]|[1-9][0-9]%|[0-9]%|100%)$";
    /// An IAM role name with its optional path (`service-role/patching`): the part of a
    /// role ARN after `role/`
    /// (<https://docs.aws.amazon.com/IAM/latest/APIReference/API_Role.html>).
    pub const ROLE_NAME_PATTERN: &str = r"^([\w+=,.@-]+/)*[\w+=,.@-]{1,64}$";
    /// An Emergency run token: letters, digits and `_.:-` (it ends up in a command
    /// comment, which is limited to 100 characters).
    pub const RUN_TOKEN_PATTERN: &str = r"^[A-Za-z0-9_.:-]+$";
    /// A Kubernetes object name (DNS-1123 subdomain).
    /// A namespace name: a DNS label (RFC 1123).
    pub const NAMESPACE_PATTERN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
    pub const OBJECT_NAME_PATTERN: &str =
        r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operating_systems_spell_like_ssm() {
        for os in OperatingSystem::ALL {
            let json = serde_json::to_value(os).expect("serializes");
            assert_eq!(json, serde_json::Value::from(os.as_str()));
        }
    }

    #[test]
    fn every_operating_system_allows_product_filters() {
        for os in OperatingSystem::ALL {
            assert!(
                os.filter_keys().contains(&PatchFilterKey::Product),
                "{os:?}"
            );
        }
    }

    #[test]
    fn msrc_severity_is_windows_only() {
        for os in OperatingSystem::ALL {
            let allowed = os.filter_keys().contains(&PatchFilterKey::MsrcSeverity);
            assert_eq!(allowed, os == OperatingSystem::Windows, "{os:?}");
        }
    }

    #[test]
    fn filter_keys_spell_like_ssm() {
        for os in OperatingSystem::ALL {
            for key in os.filter_keys() {
                let json = serde_json::to_value(key).expect("serializes");
                assert_eq!(json, serde_json::Value::from(key.as_str()));
            }
        }
    }
}
