//! One enrollment, as a pipeline of steps that each refuse with their own reason: read the
//! request → verify the proof (`patchfleet_enroll`, pure) → place it in its SystemAccount
//! (`patchfleet_planner::enrollment`, pure) → create the Enrollment (the API server refuses
//! a second one for the same machine: replay protection that holds across replicas) →
//! CreateActivation → record the activation. Nothing reaches SSM before the Enrollment
//! exists, and an activation that cannot be created leaves no Enrollment behind.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use patchfleet_api::v1alpha1::{
    Enrollment, EnrollmentPhase, EnrollmentSourceRef, EnrollmentSpec, EnrollmentStatus, SourceKind,
};
use patchfleet_enroll::{AttestedDocument, Identity, Reason, Refusal, Source};
use patchfleet_planner::enrollment::{
    MappingRefusal, Placement, VerifiedSource, activation_tags, enrollment_name, place,
};
use patchfleet_ssm::AccountAccess;
use patchfleet_ssm::activations::{ActivationRequest, create_activation};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{debug, info, warn};

use super::Server;

/// The body of `POST /v1/enroll`: the patch group asked for, and exactly one proof.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnrollRequest {
    pub patch_group: String,
    #[serde(default)]
    pub aws: Option<AwsProof>,
    #[serde(default)]
    pub gcp: Option<TokenProof>,
    /// The body of IMDS's `/metadata/attested/document`, unchanged.
    #[serde(default)]
    pub azure: Option<Value>,
    #[serde(default)]
    pub vmware: Option<TokenProof>,
}

/// The EC2 instance identity document and its PKCS7 signature, as IMDS returns them.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwsProof {
    pub document: String,
    pub pkcs7: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenProof {
    pub token: String,
}

/// What an accepted machine is told, once: the activation's id and code and how to use them.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Enrolled {
    pub enrollment: String,
    pub account_id: String,
    pub region: String,
    pub patch_group: String,
    pub activation_id: String,
    pub activation_code: String,
    pub expires_at: String,
}

/// A refusal: the HTTP status, a reason (an Event's reason and a metric label) and a
/// sentence a person can act on.
#[derive(Debug)]
pub struct Refused {
    pub status: StatusCode,
    pub reason: &'static str,
    pub message: String,
    /// For the Event, when it says more than the machine is told.
    pub detail: Option<String>,
}

impl Refused {
    fn new(status: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        Refused {
            status,
            reason,
            message: message.into(),
            detail: None,
        }
    }

    /// What the administrators see (the Event) instead of the message.
    fn with_detail(mut self, detail: String) -> Self {
        self.detail = Some(detail);
        self
    }
}

impl From<Refusal> for Refused {
    fn from(refusal: Refusal) -> Self {
        let status = match refusal.reason {
            Reason::Malformed => StatusCode::BAD_REQUEST,
            Reason::UnknownSource => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        };
        Refused::new(status, refusal.reason.as_str(), refusal.message)
    }
}

impl From<MappingRefusal> for Refused {
    fn from(refusal: MappingRefusal) -> Self {
        Refused::new(
            StatusCode::FORBIDDEN,
            refusal.reason.as_str(),
            refusal.message,
        )
    }
}

/// How long CreateActivation may take, rate limit included, before the request is
/// answered 503: well under the controller's grace for a new Enrollment without an
/// activation (`controller::enrollment::CREATION_GRACE`), so the two never race.
const ACTIVATION_DEADLINE: std::time::Duration = std::time::Duration::from_secs(20);
/// 30 days less 5 minutes.
const MAX_EXPIRY_SECONDS: i64 = 30 * 86_400 - 300;

/// Runs one enrollment. `Err` answers are refusals (4xx) or failures (5xx).
pub async fn enroll(server: &Server, body: &[u8]) -> Result<Enrolled, Refused> {
    let request: EnrollRequest = serde_json::from_slice(body).map_err(|e| {
        Refused::new(
            StatusCode::BAD_REQUEST,
            "Malformed",
            format!("the request is not the JSON POST /v1/enroll takes ({e}): send {{\"patchGroup\": ..., and one of \"aws\", \"gcp\", \"azure\", \"vmware\"}} (docs/enrollment.md)"),
        )
    })?;
    let identity = verify(server, &request).await?;
    let source = VerifiedSource {
        kind: kind_of(&identity.source),
        id: identity.source.id(),
        region: identity.region.as_deref(),
    };
    let placement = place(
        server.accounts.state().iter().map(|a| a.as_ref()),
        &source,
        &request.patch_group,
    )?;
    let name = enrollment_name(source.kind, source.id, &identity.instance_id);
    let reserved = reserve(server, &name, &identity, &placement, &request.patch_group).await?;
    // SSM takes at most 30 days; a little less, so that a clock ahead of AWS's is no refusal.
    let expiry = (placement.activation_expiry_seconds as i64).min(MAX_EXPIRY_SECONDS);
    let expires_at = Timestamp::now().as_second() + expiry;
    let activation = tokio::time::timeout(
        ACTIVATION_DEADLINE,
        activate(server, &name, &placement, &request.patch_group, expires_at),
    )
    .await
    .unwrap_or_else(|_| {
        Err(Refused::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Unavailable",
            "SSM did not answer in time: try again shortly",
        ))
    });
    let activation = match activation {
        Ok(activation) => activation,
        Err(refused) => {
            release(server, &name, &reserved).await;
            return Err(refused);
        }
    };
    let expires = Timestamp::from_second(expires_at).unwrap_or_else(|_| Timestamp::now());
    record(server, &name, &reserved, &activation.id, expires).await;
    info!(
        enrollment = %name,
        source = %identity.source,
        instance = %identity.instance_id,
        account = %placement.system_account,
        region = %placement.region,
        activation = %activation.id,
        "enrolled"
    );
    Ok(Enrolled {
        enrollment: name,
        account_id: placement.account_id,
        region: placement.region,
        patch_group: request.patch_group,
        activation_id: activation.id.clone(),
        activation_code: activation.code.clone(),
        expires_at: expires.to_string(),
    })
}

/// The proof, verified with the trust its source needs.
async fn verify(server: &Server, request: &EnrollRequest) -> Result<Identity, Refused> {
    let now = Timestamp::now().as_second();
    let trust = &server.trust;
    let identity = match (&request.aws, &request.gcp, &request.azure, &request.vmware) {
        (Some(aws), None, None, None) => {
            patchfleet_enroll::aws::verify(&aws.document, &aws.pkcs7, &trust.aws)?
        }
        (None, Some(gcp), None, None) => {
            let kid = patchfleet_enroll::gcp::key_id(&gcp.token);
            let keys = trust.gcp.keys_for(kid.as_deref()).await.ok_or_else(|| {
                Refused::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Unavailable",
                    "this server cannot fetch Google's token keys right now: try again shortly",
                )
                .with_detail(
                    "Google's token keys cannot be fetched: check the server's egress and --gcp-jwks-url".to_owned(),
                )
            })?;
            patchfleet_enroll::gcp::verify(&gcp.token, &keys, &server.audience, now)?
        }
        (None, None, Some(azure), None) => {
            let (Some(azure_trust), Some(nonces)) = (&trust.azure, &trust.nonces) else {
                return Err(Refused::new(
                    StatusCode::FORBIDDEN,
                    "UnknownSource",
                    "this server does not accept Azure machines: an administrator sets --azure-roots and --nonce-key-file",
                ));
            };
            let attested = serde_json::to_vec(azure)
                .map_err(|e| Refused::new(StatusCode::BAD_REQUEST, "Malformed", e.to_string()))?;
            let attested = AttestedDocument::from_json(&attested)?;
            patchfleet_enroll::azure::verify(&attested, azure_trust, nonces, now)?
        }
        (None, None, None, Some(vmware)) => {
            patchfleet_enroll::vmware::verify(&vmware.token, &trust.vmware, &server.audience, now)?
        }
        _ => {
            return Err(Refused::new(
                StatusCode::BAD_REQUEST,
                "Malformed",
                "the request carries no proof of identity or several: send exactly one of \"aws\", \"gcp\", \"azure\" and \"vmware\"",
            ));
        }
    };
    Ok(identity)
}

fn kind_of(source: &Source) -> SourceKind {
    match source {
        Source::Aws { .. } => SourceKind::Aws,
        Source::Gcp { .. } => SourceKind::Gcp,
        Source::Azure { .. } => SourceKind::Azure,
        Source::Vmware { .. } => SourceKind::Vmware,
    }
}

/// Creates the Enrollment, with the controller's finalizer so that no activation or node
/// of it is ever forgotten. One machine has one name: a second enrollment of the same
/// machine, or the same document again, finds it taken.
async fn reserve(
    server: &Server,
    name: &str,
    identity: &Identity,
    placement: &Placement,
    patch_group: &str,
) -> Result<Enrollment, Refused> {
    let api: Api<Enrollment> = Api::all(server.client.clone());
    let enrollment = Enrollment {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            finalizers: Some(vec![crate::controller::FINALIZER.to_owned()]),
            labels: Some(labels(identity, placement)),
            ..ObjectMeta::default()
        },
        spec: EnrollmentSpec {
            source: EnrollmentSourceRef {
                kind: kind_of(&identity.source),
                id: identity.source.id().to_owned(),
                location: identity.location.clone().or(identity.region.clone()),
            },
            instance_id: identity.instance_id.clone(),
            instance_name: identity.name.clone(),
            system_account: placement.system_account.clone(),
            account_id: placement.account_id.clone(),
            region: placement.region.clone(),
            patch_group: patch_group.to_owned(),
            document_digest: identity.document_digest.clone(),
        },
        status: None,
    };
    match api.create(&PostParams::default(), &enrollment).await {
        Ok(created) => Ok(created),
        Err(kube::Error::Api(response)) if response.code == 409 => {
            let existing = api.get_opt(name).await.ok().flatten();
            let phase = existing
                .as_ref()
                .and_then(|e| e.status.as_ref())
                .and_then(|s| s.phase)
                .unwrap_or_default();
            if existing.is_some_and(|e| e.spec.document_digest == identity.document_digest) {
                Err(Refused::new(
                    StatusCode::CONFLICT,
                    "Replayed",
                    format!(
                        "this identity document was already used (Enrollment {name}, {phase:?}): an identity document is accepted once; a machine that must enroll again asks an administrator to delete the Enrollment"
                    ),
                ))
            } else {
                Err(Refused::new(
                    StatusCode::CONFLICT,
                    "AlreadyEnrolled",
                    format!(
                        "instance {} of {} is already enrolled (Enrollment {name}, {phase:?}): an administrator deletes that Enrollment (which deregisters its node) before it enrolls again",
                        identity.instance_id, identity.source
                    ),
                ))
            }
        }
        Err(error) => {
            warn!(%error, enrollment = %name, "creating the Enrollment");
            Err(Refused::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                "the server cannot record the enrollment in Kubernetes right now: try again shortly",
            ))
        }
    }
}

/// `kubectl get enrollments -l patchfleet.io/source=gcp`; the account's name is a label
/// only when it fits one (63 characters: object names may have 253).
fn labels(identity: &Identity, placement: &Placement) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([(
        "patchfleet.io/source".to_owned(),
        identity.source.kind().to_owned(),
    )]);
    if placement.system_account.len() <= 63 {
        labels.insert(
            "patchfleet.io/system-account".to_owned(),
            placement.system_account.clone(),
        );
    }
    labels
}

async fn activate(
    server: &Server,
    name: &str,
    placement: &Placement,
    patch_group: &str,
    expires_at: i64,
) -> Result<patchfleet_ssm::activations::CreatedActivation, Refused> {
    let account = server
        .accounts
        .state()
        .into_iter()
        .find(|a| a.metadata.name.as_deref() == Some(placement.system_account.as_str()))
        .ok_or_else(|| {
            Refused::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                format!(
                    "SystemAccount {} went away meanwhile: try again",
                    placement.system_account
                ),
            )
        })?;
    let access = AccountAccess::from_spec(&placement.system_account, &account.spec);
    let client = server.edge.account(&access).await.client(&placement.region);
    let tags = activation_tags(&server.cluster_id, name, patch_group);
    let description = format!("patchfleet enrollment {name}");
    create_activation(
        &client,
        &ActivationRequest {
            enrollment: name,
            iam_role: &placement.iam_role,
            expires_at,
            description: &description,
            tags: &tags,
        },
    )
    .await
    .map_err(|error| {
        // SSM's words (a role ARN in an AccessDenied, say) are for the administrators: the
        // log and an Event, not the machine.
        warn!(%error, enrollment = %name, "CreateActivation failed");
        let status = if error.kind.is_transient() {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::BAD_GATEWAY
        };
        Refused::new(
            status,
            "ActivationFailed",
            format!(
                "SSM did not create the activation in account {} region {}: try again later; the server's Events say why",
                placement.account_id, placement.region
            ),
        )
        .with_detail(format!(
            "CreateActivation for Enrollment {name} in account {} region {}: {}",
            placement.account_id, placement.region, error.message
        ))
    })
}

/// An Enrollment whose activation could not be created (or may have been: a timeout) is
/// deleted, so the machine may try again. Its finalizer stays: the controller deletes an
/// activation SSM did create after all (found by the Enrollment's name and tags), then
/// lets it go. Only this very Enrollment (its uid) is deleted.
async fn release(server: &Server, name: &str, reserved: &Enrollment) {
    let api: Api<Enrollment> = Api::all(server.client.clone());
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: reserved.metadata.uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    if let Err(error) = api.delete(name, &params).await {
        warn!(%error, enrollment = %name, "deleting the Enrollment of a failed activation; the controller finds no activation and deletes it");
    }
}

/// Records the activation on the Enrollment's status. When this fails the controller
/// still finds the activation (by the Enrollment's name, its DefaultInstanceName).
async fn record(
    server: &Server,
    name: &str,
    reserved: &Enrollment,
    activation: &str,
    expires: Timestamp,
) {
    let api: Api<Enrollment> = Api::all(server.client.clone());
    let status = EnrollmentStatus {
        phase: Some(EnrollmentPhase::Pending),
        activation_id: Some(activation.to_owned()),
        activation_expires_at: Some(Time(expires)),
        ..EnrollmentStatus::default()
    };
    // Only onto the Enrollment as created: if the controller wrote first, it found the
    // activation itself.
    let patch = serde_json::json!({
        "apiVersion": "patchfleet.io/v1alpha1",
        "kind": "Enrollment",
        "metadata": {"resourceVersion": reserved.metadata.resource_version},
        "status": status,
    });
    match api
        .patch_status(
            name,
            &PatchParams::apply(super::MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(response)) if response.code == 409 => {
            debug!(enrollment = %name, "the controller recorded the activation first");
        }
        Err(error) => {
            warn!(%error, enrollment = %name, "recording the activation on the Enrollment; the controller finds it by name");
        }
    }
}
