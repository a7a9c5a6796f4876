//! patchfleet's finalizer on any of its kinds: added before the first write to SSM, removed
//! once SSM holds nothing of the object. Merge patches touch `metadata.finalizers` only;
//! removal carries the resourceVersion it read, so a finalizer another controller added
//! meanwhile is never dropped (the API server answers 409 and the next pass retries).

use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;

use super::FINALIZER;

pub async fn add<K>(api: &Api<K>, name: &str) -> Result<(), kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let patch = serde_json::json!({"metadata": {"finalizers": [FINALIZER]}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
}

/// Removes patchfleet's finalizer from the object as it is now; nothing when it is gone.
pub async fn remove<K>(api: &Api<K>, name: &str) -> Result<(), kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let Some(current) = api.get_opt(name).await? else {
        return Ok(());
    };
    let remaining: Vec<String> = current
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    let patch = serde_json::json!({
        "metadata": {"finalizers": remaining, "resourceVersion": current.resource_version()}
    });
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
}
