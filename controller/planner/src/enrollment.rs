//! Enrollment decisions, pure: which SystemAccount and region a verified machine enrolls
//! into (the enrollment server asks before it creates anything), the Enrollment's name,
//! the activation's tags, and what the controller does next for an Enrollment given what
//! SSM shows (docs/enrollment.md).

use std::collections::BTreeMap;

use patchfleet_api::v1alpha1::{
    AccountEnrollment, EnrollmentPhase, EnrollmentSpec, SourceKind, SystemAccount,
};

use crate::fingerprint::fnv1a64;
use crate::model::tags;

/// The tag, on the activation and so on the node it registers, naming its Enrollment.
pub const ENROLLMENT_TAG: &str = "patchfleet.io/enrollment";
/// The tag SSM's patching reads.
pub const PATCH_GROUP_TAG: &str = "Patch Group";

/// A machine's verified source, as the mapping reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedSource<'a> {
    pub kind: SourceKind,
    /// The AWS account id, Google Cloud project id, Azure subscription id or vCenter name.
    pub id: &'a str,
    /// The region the proof names (AWS only).
    pub region: Option<&'a str>,
}

/// Where a machine enrolls: the account, its region and what its activation carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The SystemAccount's metadata.name.
    pub system_account: String,
    pub account_id: String,
    pub region: String,
    pub iam_role: String,
    pub activation_expiry_seconds: u64,
}

/// Why a verified machine cannot enroll: a reason (an Event's reason and a metric label)
/// and a sentence a person can act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappingRefusal {
    pub reason: MappingReason,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MappingReason {
    /// No SystemAccount lists the source.
    UnknownSource,
    /// More than one SystemAccount lists the source.
    AmbiguousSource,
    /// The account is suspended or being deleted.
    AccountUnavailable,
    /// The region the activation would be created in is not one of the account's.
    RegionNotManaged,
    /// The requested patch group is not on the account's allow-list.
    PatchGroupNotAllowed,
}

impl MappingReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownSource => "UnknownSource",
            Self::AmbiguousSource => "AmbiguousSource",
            Self::AccountUnavailable => "AccountUnavailable",
            Self::RegionNotManaged => "RegionNotManaged",
            Self::PatchGroupNotAllowed => "PatchGroupNotAllowed",
        }
    }
}

fn refuse(reason: MappingReason, message: String) -> MappingRefusal {
    MappingRefusal { reason, message }
}

/// Whether an account's enrollment lists the source, and the region its activations go to
/// (None: the proof's own region).
fn listed_region<'e>(
    enrollment: &'e AccountEnrollment,
    source: &VerifiedSource<'_>,
) -> Option<Option<&'e str>> {
    enrollment.sources.iter().find_map(|s| {
        let listed = match source.kind {
            SourceKind::Aws => s
                .aws
                .as_ref()
                .is_some_and(|a| a.account_ids.iter().any(|id| id == source.id)),
            SourceKind::Gcp => s
                .gcp
                .as_ref()
                .is_some_and(|g| g.project_ids.iter().any(|id| id == source.id)),
            // Subscription ids are GUIDs: IMDS may spell them in either case.
            SourceKind::Azure => s.azure.as_ref().is_some_and(|a| {
                a.subscription_ids
                    .iter()
                    .any(|id| id.eq_ignore_ascii_case(source.id))
            }),
            SourceKind::Vmware => s.vmware.as_ref().is_some_and(|v| {
                v.vcenters
                    .iter()
                    .any(|vc| vc.eq_ignore_ascii_case(source.id))
            }),
        };
        listed.then_some(s.region.as_deref())
    })
}

/// The one SystemAccount and region a verified source enrolls into, and the group check.
/// Accounts are taken as the server's store holds them.
pub fn place<'a>(
    accounts: impl IntoIterator<Item = &'a SystemAccount>,
    source: &VerifiedSource<'_>,
    patch_group: &str,
) -> Result<Placement, MappingRefusal> {
    let mut matches: Vec<(&SystemAccount, &AccountEnrollment, Option<&str>)> = accounts
        .into_iter()
        .filter_map(|a| {
            let enrollment = a.spec.enrollment.as_ref()?;
            listed_region(enrollment, source).map(|region| (a, enrollment, region))
        })
        .collect();
    let noun = source.kind.id_noun();
    let (account, enrollment, region) = match matches.len() {
        0 => {
            return Err(refuse(
                MappingReason::UnknownSource,
                format!(
                    "no SystemAccount accepts machines of {noun} {}: an administrator adds it to a SystemAccount's spec.enrollment.sources",
                    source.id
                ),
            ));
        }
        1 => matches.remove(0),
        _ => {
            let mut names: Vec<&str> = matches.iter().map(|(a, _, _)| name_of(a)).collect();
            names.sort_unstable();
            return Err(refuse(
                MappingReason::AmbiguousSource,
                format!(
                    "{noun} {} is listed by the SystemAccounts {}: a source maps to one account only; an administrator removes it from all but one",
                    source.id,
                    names.join(", ")
                ),
            ));
        }
    };
    let name = name_of(account);
    if account.spec.suspend || account.metadata.deletion_timestamp.is_some() {
        return Err(refuse(
            MappingReason::AccountUnavailable,
            format!("SystemAccount {name} is suspended or being deleted: nothing is created in it"),
        ));
    }
    let region = match (region, source.region) {
        (Some(region), _) => region,
        (None, Some(own)) if account.spec.regions.iter().any(|r| r == own) => own,
        (None, own) => {
            return Err(refuse(
                MappingReason::RegionNotManaged,
                format!(
                    "the machine runs in region {}, which SystemAccount {name} does not manage (spec.regions: {}): an administrator adds the region, or sets the source's region",
                    own.unwrap_or("(none)"),
                    account.spec.regions.join(", ")
                ),
            ));
        }
    };
    if !enrollment.patch_groups.iter().any(|g| g == patch_group) {
        return Err(refuse(
            MappingReason::PatchGroupNotAllowed,
            format!(
                "patch group {patch_group:?} is not one SystemAccount {name} lets machines ask for (spec.enrollment.patchGroups: {}): ask for one of those",
                enrollment.patch_groups.join(", ")
            ),
        ));
    }
    Ok(Placement {
        system_account: name.to_owned(),
        account_id: account.spec.account_id.clone(),
        region: region.to_owned(),
        iam_role: enrollment.iam_role.clone(),
        activation_expiry_seconds: enrollment.activation_expiry_seconds().unwrap_or(3_600),
    })
}

fn name_of(account: &SystemAccount) -> &str {
    account.metadata.name.as_deref().unwrap_or("")
}

/// The Enrollment of a machine: `<kind>-<instance, made a DNS label>-<8 hex digits>`,
/// the digits a hash of the source and instance, so one machine has one name (a second
/// enrollment while the first lives is refused by the API server) and two sources' equal
/// instance ids differ.
pub fn enrollment_name(kind: SourceKind, source_id: &str, instance_id: &str) -> String {
    // Ids compared without case (an Azure vmId or subscription may come in capitals):
    // one machine, one name.
    let key = format!("{}/{source_id}/{instance_id}", kind.as_str()).to_ascii_lowercase();
    let hash = fnv1a64(key.as_bytes());
    let mut readable: String = instance_id
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40)
        .collect();
    while readable.ends_with('-') {
        readable.pop();
    }
    let readable = readable.trim_start_matches('-');
    if readable.is_empty() {
        format!("{}-{:08x}", kind.as_str(), hash as u32)
    } else {
        format!("{}-{readable}-{:08x}", kind.as_str(), hash as u32)
    }
}

/// The activation's tags, which SSM also puts on the node that registers with it: the
/// patch group, this controller's cluster and the Enrollment.
pub fn activation_tags(
    cluster_id: &str,
    enrollment: &str,
    patch_group: &str,
) -> BTreeMap<String, String> {
    BTreeMap::from([
        (PATCH_GROUP_TAG.to_owned(), patch_group.to_owned()),
        (tags::CLUSTER.to_owned(), cluster_id.to_owned()),
        (ENROLLMENT_TAG.to_owned(), enrollment.to_owned()),
    ])
}

/// Whether a node (or activation) with these tags is this Enrollment's, created by this
/// cluster: only then does the controller tag or deregister it.
pub fn is_enrollments(
    cluster_id: &str,
    enrollment: &str,
    object_tags: &BTreeMap<String, String>,
) -> bool {
    !cluster_id.is_empty()
        && object_tags.get(tags::CLUSTER).map(String::as_str) == Some(cluster_id)
        && object_tags.get(ENROLLMENT_TAG).map(String::as_str) == Some(enrollment)
}

/// What SSM shows of an Enrollment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnrollmentObserved {
    /// The activation, when it still exists.
    pub activation: Option<ObservedActivation>,
    /// The managed node registered with the activation, when one is.
    pub node: Option<ObservedNode>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedActivation {
    pub id: String,
    /// Unix seconds.
    pub expires_at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedNode {
    pub id: String,
    pub tags: BTreeMap<String, String>,
}

/// What the controller does for an Enrollment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnrollmentAction {
    /// Wait for the agent to register; look again by then (unix seconds).
    AwaitRegistration { recheck_at: i64 },
    /// The activation expired unused: delete it.
    DeleteExpiredActivation { activation_id: String },
    /// Set the node's `Patch Group` tag to the Enrollment's group.
    TagNode {
        node_id: String,
        patch_group: String,
    },
    /// The node carries tags that are not this Enrollment's: touch nothing.
    NodeNotOurs { node_id: String },
    /// The spec's patch group is not on the account's allow-list any more: keep the node
    /// as it is and say so.
    GroupNotAllowed { patch_group: String },
    /// Everything is as declared.
    Settled { phase: EnrollmentPhase },
}

/// The next step for a live (not deleted) Enrollment. `allowed_groups` is the account's
/// allow-list (None when the account no longer accepts enrollments). An Enrollment with
/// neither activation nor node has nothing left to wait for: Expired.
pub fn next_action(
    spec: &EnrollmentSpec,
    observed: &EnrollmentObserved,
    allowed_groups: Option<&[String]>,
    cluster_id: &str,
    enrollment: &str,
    now: i64,
    poll_seconds: i64,
) -> EnrollmentAction {
    match (&observed.node, &observed.activation) {
        (Some(node), _) => {
            if !is_enrollments(cluster_id, enrollment, &node.tags) {
                return EnrollmentAction::NodeNotOurs {
                    node_id: node.id.clone(),
                };
            }
            if node.tags.get(PATCH_GROUP_TAG) == Some(&spec.patch_group) {
                return EnrollmentAction::Settled {
                    phase: EnrollmentPhase::Registered,
                };
            }
            if !allowed_groups.is_some_and(|groups| groups.contains(&spec.patch_group)) {
                return EnrollmentAction::GroupNotAllowed {
                    patch_group: spec.patch_group.clone(),
                };
            }
            EnrollmentAction::TagNode {
                node_id: node.id.clone(),
                patch_group: spec.patch_group.clone(),
            }
        }
        (None, Some(activation)) if activation.expires_at <= now => {
            EnrollmentAction::DeleteExpiredActivation {
                activation_id: activation.id.clone(),
            }
        }
        (None, Some(activation)) => EnrollmentAction::AwaitRegistration {
            recheck_at: activation.expires_at.min(now + poll_seconds),
        },
        (None, None) => EnrollmentAction::Settled {
            phase: EnrollmentPhase::Expired,
        },
    }
}

/// What deleting an Enrollment removes: its node (only if it is the Enrollment's) and its
/// activation (SSM keeps a used activation around; deleting it deregisters nothing).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cleanup {
    pub deregister_node: Option<String>,
    pub delete_activation: Option<String>,
    /// A node registered with the activation that is not this Enrollment's, left alone.
    pub foreign_node: Option<String>,
}

pub fn cleanup(observed: &EnrollmentObserved, cluster_id: &str, enrollment: &str) -> Cleanup {
    let mut cleanup = Cleanup {
        delete_activation: observed.activation.as_ref().map(|a| a.id.clone()),
        ..Cleanup::default()
    };
    if let Some(node) = &observed.node {
        if is_enrollments(cluster_id, enrollment, &node.tags) {
            cleanup.deregister_node = Some(node.id.clone());
        } else {
            cleanup.foreign_node = Some(node.id.clone());
        }
    }
    cleanup
}
