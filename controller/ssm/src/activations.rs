//! Hybrid activations and the nodes they register (enrollment, docs/enrollment.md):
//! CreateActivation for the enrollment server, and for the controller the node an
//! activation registered, its tags, DeleteActivation and DeregisterManagedInstance. Each
//! function is one SSM call (one page at most), so an Enrollment's cost is counted in
//! calls, not pages.

use std::collections::BTreeMap;

use aws_sdk_ssm::primitives::DateTime;
use aws_sdk_ssm::types as sdk;
use patchfleet_planner::enrollment::{ObservedNode, is_enrollments};

use crate::edge::{Session, SsmClient};
use crate::error::EdgeError;

/// An activation as CreateActivation returned it. The code is handed to the machine once
/// and kept nowhere else.
pub struct CreatedActivation {
    pub id: String,
    pub code: String,
}

impl std::fmt::Debug for CreatedActivation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedActivation")
            .field("id", &self.id)
            .field("code", &"<redacted>")
            .finish()
    }
}

/// What CreateActivation takes from an enrollment.
#[derive(Clone, Debug)]
pub struct ActivationRequest<'a> {
    /// The Enrollment's name: DefaultInstanceName, so an activation is found by it.
    pub enrollment: &'a str,
    pub iam_role: &'a str,
    /// Unix seconds.
    pub expires_at: i64,
    pub description: &'a str,
    pub tags: &'a BTreeMap<String, String>,
}

/// CreateActivation with RegistrationLimit 1
/// (<https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CreateActivation.html>).
pub async fn create_activation(
    client: &SsmClient,
    request: &ActivationRequest<'_>,
) -> Result<CreatedActivation, EdgeError> {
    let s = Session::new(client);
    let tags = request
        .tags
        .iter()
        .map(|(k, v)| sdk::Tag::builder().key(k).value(v).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(client, "CreateActivation", &e))?;
    let out = s
        .send(
            "CreateActivation",
            s.ssm()
                .create_activation()
                .default_instance_name(request.enrollment)
                .description(request.description)
                .iam_role(request.iam_role)
                .registration_limit(1)
                .expiration_date(DateTime::from_secs(request.expires_at))
                .set_tags(Some(tags))
                .send(),
        )
        .await?;
    match (out.activation_id(), out.activation_code()) {
        (Some(id), Some(code)) => Ok(CreatedActivation {
            id: id.to_owned(),
            code: code.to_owned(),
        }),
        _ => Err(EdgeError::new(
            crate::ErrorKind::Validation,
            client.scope(),
            "CreateActivation",
            "SSM answered without an activation id or code".to_owned(),
        )),
    }
}

/// The activation created for an Enrollment (DefaultInstanceName), when the server's
/// record of it was lost: its id and expiry (unix seconds). Only one that carries this
/// cluster's and the Enrollment's tags: anyone may name an activation alike.
pub async fn find_activation(
    client: &SsmClient,
    cluster_id: &str,
    enrollment: &str,
) -> Result<Option<(String, i64)>, EdgeError> {
    let s = Session::new(client);
    let filter = sdk::DescribeActivationsFilter::builder()
        .filter_key(sdk::DescribeActivationsFilterKeys::DefaultInstanceName)
        .filter_values(enrollment)
        .build();
    let out = s
        .send(
            "DescribeActivations",
            s.ssm().describe_activations().filters(filter).send(),
        )
        .await?;
    Ok(out.activation_list().iter().find_map(|a| {
        let tags: BTreeMap<String, String> = a
            .tags()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect();
        let ours = is_enrollments(cluster_id, enrollment, &tags);
        (ours && a.default_instance_name() == Some(enrollment)).then(|| {
            (
                a.activation_id().unwrap_or_default().to_owned(),
                a.expiration_date().map(|d| d.secs()).unwrap_or(0),
            )
        })
    }))
}

/// The managed node registered with an activation (two calls: the node, its tags), or a
/// known node by id (one call: its tags), with its tags; None when SSM has no such node
/// (never registered, or deregistered).
pub async fn find_node(
    client: &SsmClient,
    lookup: NodeLookup<'_>,
) -> Result<Option<ObservedNode>, EdgeError> {
    let s = Session::new(client);
    let activation = match lookup {
        // A known node: its tags say it still exists (InvalidResourceId when it does not),
        // one call.
        NodeLookup::Node(id) => {
            let tags = node_tags(&s, id).await?;
            return Ok(tags.map(|tags| ObservedNode {
                id: id.to_owned(),
                tags,
            }));
        }
        NodeLookup::Activation(id) => id,
    };
    let filter = sdk::InstanceInformationStringFilter::builder()
        .key("ActivationIds")
        .values(activation)
        .build()
        .map_err(|e| invalid(client, "DescribeInstanceInformation", &e))?;
    let listed = s
        .send(
            "DescribeInstanceInformation",
            s.ssm()
                .describe_instance_information()
                .filters(filter)
                .send(),
        )
        .await;
    // "InvalidInstanceId: ... is not valid or does not belong to this account"
    // (<https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeInstanceInformation.html#API_DescribeInstanceInformation_Errors>).
    let listed = match listed {
        Err(e) if e.code.as_deref() == Some("InvalidInstanceId") => return Ok(None),
        other => other?,
    };
    let Some(id) = listed
        .instance_information_list()
        .iter()
        .find_map(|i| i.instance_id())
        .map(str::to_owned)
    else {
        return Ok(None);
    };
    let tags = node_tags(&s, &id).await?;
    Ok(tags.map(|tags| ObservedNode { id, tags }))
}

/// How a node is looked up.
#[derive(Clone, Copy, Debug)]
pub enum NodeLookup<'a> {
    /// The node registered with this activation.
    Activation(&'a str),
    /// This node, when it still exists.
    Node(&'a str),
}

/// ListTagsForResource on a ManagedInstance; None when the node is gone.
async fn node_tags(
    s: &Session<'_>,
    node: &str,
) -> Result<Option<BTreeMap<String, String>>, EdgeError> {
    let out = s
        .send(
            "ListTagsForResource",
            s.ssm()
                .list_tags_for_resource()
                .resource_type(sdk::ResourceTypeForTagging::ManagedInstance)
                .resource_id(node)
                .send(),
        )
        .await;
    match out {
        Err(e) if e.code.as_deref() == Some("InvalidResourceId") => Ok(None),
        Err(e) => Err(e),
        Ok(out) => Ok(Some(
            out.tag_list()
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned()))
                .collect(),
        )),
    }
}

/// AddTagsToResource on a ManagedInstance: sets one tag, leaving the others
/// (<https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_AddTagsToResource.html>:
/// "If you specify a key that already exists, its value is overwritten").
pub async fn tag_node(
    client: &SsmClient,
    node: &str,
    key: &str,
    value: &str,
) -> Result<(), EdgeError> {
    let s = Session::new(client);
    let tag = sdk::Tag::builder()
        .key(key)
        .value(value)
        .build()
        .map_err(|e| invalid(client, "AddTagsToResource", &e))?;
    s.send(
        "AddTagsToResource",
        s.ssm()
            .add_tags_to_resource()
            .resource_type(sdk::ResourceTypeForTagging::ManagedInstance)
            .resource_id(node)
            .tags(tag)
            .send(),
    )
    .await?;
    Ok(())
}

/// DeleteActivation; an activation already gone counts as deleted
/// (<https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeleteActivation.html>).
pub async fn delete_activation(client: &SsmClient, activation: &str) -> Result<(), EdgeError> {
    let s = Session::new(client);
    let out = s
        .send(
            "DeleteActivation",
            s.ssm().delete_activation().activation_id(activation).send(),
        )
        .await;
    match out {
        Err(e)
            if matches!(
                e.code.as_deref(),
                Some("InvalidActivation" | "InvalidActivationId")
            ) =>
        {
            Ok(())
        }
        other => other.map(drop),
    }
}

/// DeregisterManagedInstance; a node already gone counts as deregistered
/// (<https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeregisterManagedInstance.html>).
pub async fn deregister_node(client: &SsmClient, node: &str) -> Result<(), EdgeError> {
    let s = Session::new(client);
    let out = s
        .send(
            "DeregisterManagedInstance",
            s.ssm()
                .deregister_managed_instance()
                .instance_id(node)
                .send(),
        )
        .await;
    match out {
        Err(e) if e.code.as_deref() == Some("InvalidInstanceId") => Ok(()),
        other => other.map(drop),
    }
}

/// A request the SDK refused to build (a required member unset): a bug, reported as a
/// request SSM would refuse.
fn invalid(client: &SsmClient, operation: &'static str, e: &dyn std::error::Error) -> EdgeError {
    EdgeError::new(
        crate::ErrorKind::Validation,
        client.scope(),
        operation,
        e.to_string(),
    )
}
