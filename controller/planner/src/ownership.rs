//! Which observed SSM objects are this controller's. Only the cluster tag decides: a name
//! that looks like ours is not enough (anyone can create `patchfleet-...`), and another
//! cluster's patchfleet owns its own objects.

use std::collections::BTreeMap;

use crate::inventory::Settings;
use crate::model::{Owner, tags};

/// Whether an object with these tags belongs to this controller. An empty cluster id
/// (an unset `Settings`) owns nothing.
pub fn is_owned(settings: &Settings, object_tags: &BTreeMap<String, String>) -> bool {
    !settings.cluster_id.is_empty() && object_tags.get(tags::CLUSTER) == Some(&settings.cluster_id)
}

/// The owner recorded on an object, if its tag is readable.
pub fn owner_of(object_tags: &BTreeMap<String, String>) -> Option<Owner> {
    object_tags
        .get(tags::OWNER)
        .and_then(|tag| Owner::parse(tag))
}

/// The fingerprint recorded on an object: the SSM edge reads it from the marker at the end
/// of the object's description (see `fingerprint`) and reports it under
/// `tags::FINGERPRINT`.
pub fn fingerprint_of(object_tags: &BTreeMap<String, String>) -> Option<&str> {
    object_tags.get(tags::FINGERPRINT).map(String::as_str)
}

/// AWS's predefined baselines have ARNs for ids (custom ones have `pb-...`): they are
/// AWS's, never ours, and do not count toward the account's baseline quota.
pub fn is_aws_managed_baseline(id: &str) -> bool {
    id.starts_with("arn:")
}
