//! patchfleet's Kubernetes API, group `patchfleet.io`, version `v1alpha1`.
//!
//! This crate is the only place the schema is written: the CRD YAML in `crds/` and the
//! reference in `docs/api.md` are generated from these types and their doc comments.
//! It holds no client and no AWS code, only types, their validation rules and the
//! condition helpers every reconciler shares.

pub mod conditions;
pub mod v1alpha1;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube_core::CustomResourceExt;

/// The API group of every patchfleet resource.
pub const GROUP: &str = "patchfleet.io";

/// Every CustomResourceDefinition patchfleet serves, in the order they should be applied.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        v1alpha1::SystemAccount::crd(),
        v1alpha1::PatchPolicy::crd(),
        v1alpha1::PatchGroup::crd(),
        v1alpha1::MaintenanceWindow::crd(),
        v1alpha1::PatchRollout::crd(),
        v1alpha1::Enrollment::crd(),
    ]
}
