//! patchfleet's finalizer on any of its kinds: added before the first write to SSM, removed
//! once SSM holds nothing of the object.
//!
//! Both are JSON patches guarded by a `test` operation, as kube-runtime's finalizer helper
//! does: the add appends to the list it tested (a merge patch would replace the whole list
//! and drop a finalizer another controller added meanwhile), the removal tests that the
//! entry it removes is still ours. When the list changed since it was read, the API server
//! refuses the patch (422) and the next pass tries again with what it reads then.

use json_patch::jsonptr::PointerBuf;
use json_patch::{
    AddOperation, Patch as JsonPatch, PatchOperation, RemoveOperation, TestOperation,
};
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::FINALIZER;

/// Adds patchfleet's finalizer to `object` as it was read, keeping every other finalizer.
pub async fn add<K>(api: &Api<K>, object: &K) -> Result<(), kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let patch = add_patch(object.finalizers());
    api.patch(
        &object.name_any(),
        &PatchParams::default(),
        &Patch::Json::<()>(patch),
    )
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
    let Some(patch) = remove_patch(current.finalizers()) else {
        return Ok(());
    };
    api.patch(name, &PatchParams::default(), &Patch::Json::<()>(patch))
        .await
        .map(|_| ())
}

/// Test the list as read (absent when empty), then add ours: at the end of it, or as the
/// whole list.
fn add_patch(finalizers: &[String]) -> JsonPatch {
    let list = || PointerBuf::from_tokens(["metadata", "finalizers"]);
    JsonPatch(if finalizers.is_empty() {
        vec![
            PatchOperation::Test(TestOperation {
                path: list(),
                value: Value::Null,
            }),
            PatchOperation::Add(AddOperation {
                path: list(),
                value: Value::from(vec![FINALIZER]),
            }),
        ]
    } else {
        vec![
            PatchOperation::Test(TestOperation {
                path: list(),
                value: Value::from(finalizers.to_vec()),
            }),
            PatchOperation::Add(AddOperation {
                path: PointerBuf::from_tokens(["metadata", "finalizers", "-"]),
                value: Value::from(FINALIZER),
            }),
        ]
    })
}

/// Test that ours is still at the index read, then remove that entry alone.
fn remove_patch(finalizers: &[String]) -> Option<JsonPatch> {
    let index = finalizers.iter().position(|f| f == FINALIZER)?;
    let path = PointerBuf::from_tokens([
        "metadata".to_owned(),
        "finalizers".to_owned(),
        index.to_string(),
    ]);
    Some(JsonPatch(vec![
        PatchOperation::Test(TestOperation {
            path: path.clone(),
            value: Value::from(FINALIZER),
        }),
        PatchOperation::Remove(RemoveOperation { path }),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(patch: &JsonPatch, finalizers: Option<&[&str]>) -> Result<Value, String> {
        // The API server's JSON patch (evanphx/json-patch) tests an absent member as null;
        // the json_patch crate only compares a present one, so an empty list is a null here.
        let mut object = serde_json::json!({"metadata": {"name": "x", "finalizers": null}});
        if let Some(list) = finalizers {
            object["metadata"]["finalizers"] = Value::from(list.to_vec());
        }
        json_patch::patch(&mut object, patch)
            .map(|()| object["metadata"]["finalizers"].clone())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn adding_keeps_another_controllers_finalizer() {
        let read = ["example.com/keep".to_owned()];
        let patch = add_patch(&read);
        assert_eq!(
            applied(&patch, Some(&["example.com/keep"])),
            Ok(serde_json::json!(["example.com/keep", FINALIZER]))
        );
        // Another controller added one after our read: refused, not overwritten.
        assert!(applied(&patch, Some(&["example.com/keep", "example.com/late"])).is_err());
    }

    #[test]
    fn adding_to_an_empty_list_fails_when_one_appeared_meanwhile() {
        let patch = add_patch(&[]);
        assert_eq!(applied(&patch, None), Ok(serde_json::json!([FINALIZER])));
        assert!(applied(&patch, Some(&["example.com/late"])).is_err());
    }

    #[test]
    fn removing_takes_ours_alone_and_only_where_it_was_read() {
        let read = vec!["example.com/keep".to_owned(), FINALIZER.to_owned()];
        let patch = remove_patch(&read).expect("ours is there");
        assert_eq!(
            applied(&patch, Some(&["example.com/keep", FINALIZER])),
            Ok(serde_json::json!(["example.com/keep"]))
        );
        // The list moved under us: the test operation refuses instead of removing another.
        assert!(applied(&patch, Some(&["example.com/keep", "example.com/late"])).is_err());
        assert!(remove_patch(&["example.com/keep".to_owned()]).is_none());
    }
}
