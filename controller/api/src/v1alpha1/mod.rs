//! `patchfleet.io/v1alpha1`: the kinds and the vocabulary they share.

mod enrollment;
mod maintenance_window;
mod nodes;
mod patch_group;
mod patch_policy;
mod patch_rollout;
pub mod ssm;
mod status;
mod system_account;

pub use enrollment::{
    ACTIVATION_EXPIRY_PATTERN, AccountEnrollment, AwsSource, AzureSource, Enrollment,
    EnrollmentPhase, EnrollmentSource, EnrollmentSourceRef, EnrollmentSpec, EnrollmentStatus,
    GCP_PROJECT_ID_PATTERN, GUID_PATTERN, GcpSource, SourceKind, VmwareSource,
    parse_minutes_hours_days,
};
pub use maintenance_window::{
    EmergencyRun, MaintenanceWindow, MaintenanceWindowSpec, MaintenanceWindowStatus,
    PatchOperation, RebootOption, Strategy, WindowTargets, WindowTask,
};
pub use nodes::{
    AccountNodes, AccountRegionNodes, AccountRegionRun, GroupNodes, MAX_LISTED_REGIONS,
    NamedWindowRun, NodeCounts, PlatformCounts, ProviderCounts, RegionNodes, SeverityCounts,
    WindowRun, WindowRuns,
};
pub use patch_group::{PatchGroup, PatchGroupSpec, PatchGroupStatus, PolicyReference};
pub use patch_policy::{
    ApprovalRule, BaselineSpec, PatchFilter, PatchPolicy, PatchPolicySpec, PatchSource, PolicyMode,
};
pub use patch_rollout::{
    Approval, Gate, GroupFailures, MAX_SOAK_SECONDS, MAX_STAGES, PatchRollout, PatchRolloutSpec,
    PatchRolloutStatus, ReleaseSpec, ReleaseStatus, SOAK_PATTERN, StageEvidence, StageSpec,
    StageState, StageStatus,
};
pub use ssm::{
    ComplianceLevel, DeletionPolicy, OperatingSystem, PatchFilterKey, RejectedPatchesAction,
};
pub use status::{AccountFailure, FleetStatus, MAX_FAILURES, Summary};
pub use system_account::{
    DefaultPatchPolicy, GrantEntry, PatchGroupGrant, Platform, RegionStatus, SystemAccount,
    SystemAccountSpec, SystemAccountStatus,
};
