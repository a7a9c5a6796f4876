//! Status shared by the namespaced kinds: what the controller saw, rolled up over every
//! account and region the resource reaches.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube_derive::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

// Counts are u32 in Rust but int32 in the schema: Kubernetes knows no "uint32" format.

/// At most this many failures are listed in a status; the rest are counted.
pub const MAX_FAILURES: usize = 20;

/// Status of a PatchPolicy, PatchGroup or MaintenanceWindow (kstatus conventions).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[x_kube(crates(kube_core = ::kube_core))]
#[serde(rename_all = "camelCase")]
pub struct FleetStatus {
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Reconciling and Stalled, as kstatus reads them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// How many account-regions the resource reaches, and how many of them are converged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
    /// The account-regions that are failing, with the reason (at most 20 listed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub failures: Vec<AccountFailure>,
    /// Failures beyond the 20 listed in `failures`.
    #[serde(default, skip_serializing_if = "is_zero")]
    #[schemars(extend("format" = "int32"))]
    pub omitted_failures: u32,
}

/// Counts over the account-regions a resource reaches.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Account-regions selected (an account in two regions counts twice).
    #[schemars(extend("format" = "int32"))]
    pub selected: u32,
    /// Account-regions where the resource is applied as declared.
    #[schemars(extend("format" = "int32"))]
    pub ready: u32,
    /// Account-regions where the last attempt failed.
    #[schemars(extend("format" = "int32"))]
    pub failing: u32,
}

/// Why one account-region is not converged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountFailure {
    /// The 12-digit AWS account id.
    pub account_id: String,
    /// The region, such as eu-west-1.
    pub region: String,
    /// CamelCase reason, such as AccessDenied or QuotaExceeded.
    pub reason: String,
    /// What went wrong, for a person.
    pub message: String,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}
