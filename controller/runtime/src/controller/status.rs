//! Status writes: server-side apply of `.status` under one field manager, and only when
//! the content changed, so a status write never triggers another reconcile for nothing.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use patchfleet_api::conditions::{self, Status};
use patchfleet_api::v1alpha1::{
    AccountFailure, RegionStatus, Summary, SystemAccount, SystemAccountStatus,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::account::AccountError;
use super::{Context, MANAGER};
use crate::fleet::PassError;

pub fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

/// Applies `status` to the object's status subresource.
pub async fn apply<K>(api: &Api<K>, object: &K, status: &impl Serialize) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    apply_patch(api, object, status, None).await
}

/// Applies `status` only while the object is still the one read (its
/// `metadata.resourceVersion`): the API server answers 409 Conflict to a writer that
/// evaluated a stale copy.
pub async fn apply_unchanged<K>(
    api: &Api<K>,
    object: &K,
    status: &impl Serialize,
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    apply_patch(api, object, status, object.resource_version()).await
}

async fn apply_patch<K>(
    api: &Api<K>,
    object: &K,
    status: &impl Serialize,
    resource_version: Option<String>,
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let mut patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    if let Some(version) = resource_version {
        patch["metadata"] = serde_json::json!({ "resourceVersion": version });
    }
    api.patch_status(
        &object.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

fn borrowed(abnormal: &Option<(String, String)>) -> Option<(&str, String)> {
    abnormal
        .as_ref()
        .map(|(reason, message)| (reason.as_str(), message.clone()))
}

/// How the last pass over a SystemAccount ended.
pub enum AccountPass {
    Suspended,
    Failed(PassError),
    /// `refused`: why the account's own spec cannot be applied in full (a
    /// `defaultPatchPolicy` that does not exist), which stalls the account.
    /// `overlaps`: grants giving one value to two namespaces (see
    /// `selection::grant_overlaps`), shown in the GrantsOverlap condition.
    Done {
        caller_arn: String,
        refused: Option<(&'static str, String)>,
        overlaps: Vec<String>,
    },
}

/// The SystemAccount condition that says whether its grants overlap (not a kstatus type:
/// the account itself converges; the tenants' groups using those values are refused).
pub const GRANTS_OVERLAP: &str = "GrantsOverlap";

pub async fn write_account(
    ctx: &Context,
    account: &SystemAccount,
    pass: AccountPass,
) -> Result<(), AccountError> {
    let name = account.name_any();
    let previous = account.status.clone().unwrap_or_default();
    let regions = ctx.fleet.regions_of(&name);
    let mut region_statuses = Vec::new();
    let mut failures = Vec::new();
    let mut ready = 0;
    for (region, outcome) in &regions {
        let region_ready = outcome.converged && outcome.error.is_none();
        if region_ready {
            ready += 1;
        }
        if let Some(error) = &outcome.error {
            failures.push(AccountFailure {
                account_id: region.account_id.clone(),
                region: region.region.clone(),
                reason: error.reason.clone(),
                message: error.message.clone(),
            });
        }
        region_statuses.push(RegionStatus {
            region: region.region.clone(),
            ready: region_ready,
            patch_baselines: outcome.counts.patch_baselines,
            patch_group_registrations: outcome.counts.patch_group_registrations,
            maintenance_windows: outcome.counts.maintenance_windows,
            window_targets: outcome.counts.window_targets,
            window_tasks: outcome.counts.window_tasks,
        });
    }
    let selected = account.spec.regions.len() as u32;
    let failing = failures.len() as u32;
    failures.truncate(patchfleet_api::v1alpha1::MAX_FAILURES);

    let (caller_arn, ready_condition, reconciling, stalled) = match &pass {
        AccountPass::Suspended => (
            previous.caller_arn.clone(),
            (
                Status::False,
                "Suspended",
                "spec.suspend is true: nothing is reconciled".to_owned(),
            ),
            None,
            None,
        ),
        AccountPass::Failed(error) => {
            let abnormal = Some((error.reason.clone(), error.message.clone()));
            (
                previous.caller_arn.clone(),
                (Status::False, "AccountUnreachable", error.message.clone()),
                if error.needs_attention {
                    None
                } else {
                    abnormal.clone()
                },
                if error.needs_attention {
                    abnormal
                } else {
                    None
                },
            )
        }
        AccountPass::Done {
            caller_arn,
            refused: Some((reason, message)),
            ..
        } => (
            Some(caller_arn.clone()),
            (Status::False, *reason, message.clone()),
            None,
            Some((reason.to_string(), message.clone())),
        ),
        AccountPass::Done {
            caller_arn,
            refused: None,
            ..
        } => {
            let condition = if failing > 0 {
                let first = &failures[0];
                let message = format!(
                    "{failing} of {selected} regions failing; {}: {}",
                    first.region, first.message
                );
                (Status::False, "RegionsFailing", message)
            } else if ready < selected {
                (
                    Status::False,
                    "Progressing",
                    format!("{ready} of {selected} regions converged"),
                )
            } else {
                (
                    Status::True,
                    "Converged",
                    format!("converged in {selected} regions"),
                )
            };
            let reconciling = (condition.0 != Status::True)
                .then(|| (condition.1.to_owned(), condition.2.clone()));
            (Some(caller_arn.clone()), condition, reconciling, None)
        }
    };

    let generation = account.metadata.generation;
    let mut conditions = previous.conditions.clone();
    conditions::set_standing(
        &mut conditions,
        conditions::Standing {
            ready: ready_condition,
            reconciling: borrowed(&reconciling),
            stalled: borrowed(&stalled),
        },
        generation,
        now(),
    );
    if let AccountPass::Done { overlaps, .. } = &pass {
        let overlap = match overlaps.as_slice() {
            [] => conditions::Desired {
                type_: GRANTS_OVERLAP,
                status: Status::False,
                reason: "AsExpected",
                message: String::new(),
            },
            [first, rest @ ..] => conditions::Desired {
                type_: GRANTS_OVERLAP,
                status: Status::True,
                reason: "ValueGrantedTwice",
                message: match rest.len() {
                    0 => first.clone(),
                    n => format!("{first} (and {n} more)"),
                },
            },
        };
        conditions::set(&mut conditions, overlap, generation, now());
    }

    let status = SystemAccountStatus {
        observed_generation: generation,
        conditions,
        caller_arn,
        summary: Some(Summary {
            selected,
            ready,
            failing,
        }),
        regions: region_statuses,
        failures,
        // The compliance pass's part, under its own field manager: left out of this apply
        // so that this manager never owns it (see `compliance::MANAGER`).
        nodes: None,
    };
    let unchanged = account.status.as_ref().is_some_and(|current| {
        SystemAccountStatus {
            nodes: None,
            ..current.clone()
        } == status
    });
    if unchanged {
        return Ok(());
    }
    let api: Api<SystemAccount> = Api::all(ctx.client.clone());
    apply(&api, account, &status)
        .await
        .map_err(|source| AccountError::Status { name, source })
}
