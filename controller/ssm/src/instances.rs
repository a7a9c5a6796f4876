//! Per-instance detail read on demand (the dashboard): one group's nodes in an
//! account-region, and one node's patches. Read-only; every list at its largest page; the
//! cost of each read is `patchfleet_planner::instances::{group_calls, instance_calls}`.

use aws_sdk_ssm::types as sdk;
use patchfleet_api::v1alpha1::Platform;
use patchfleet_planner::instances::{
    self, InstanceDetail, InstancePatch, InstanceSummary, NodeInformation, PatchCounts, pages,
};

use crate::compliance::{group_states, node_reading, page, rfc3339};
use crate::edge::{Session, SsmClient};
use crate::error::{EdgeError, ErrorKind};

/// What a read returned (or why it could not), and how many calls it took either way.
#[derive(Debug)]
pub struct InstancesReading<T> {
    pub reading: Result<T, EdgeError>,
    pub calls: u32,
}

/// The nodes that carry `group` as their `Patch Group` tag in the client's account-region,
/// with their last patch operation's counts, worst first.
pub async fn read_group_instances(
    client: &SsmClient,
    group: &str,
    account_platform: Platform,
) -> InstancesReading<Vec<InstanceSummary>> {
    let s = Session::new(client);
    let reading = async {
        let nodes = node_information(
            &s,
            sdk::InstanceInformationStringFilter::builder()
                .key("tag:Patch Group")
                .values(group)
                .build()
                .map_err(|e| invalid(client, &e))?,
        )
        .await?;
        let states = group_states(&s, group, |p| {
            (p.instance_id().to_owned(), counts_from_sdk(p))
        })
        .await?;
        Ok(instances::group_instances(nodes, states, account_platform))
    }
    .await;
    InstancesReading {
        reading,
        calls: s.calls(),
    }
}

/// One node and every patch SSM reports for it, worst first; None when the account-region
/// has no such managed node.
pub async fn read_instance(
    client: &SsmClient,
    instance_id: &str,
    account_platform: Platform,
) -> InstancesReading<Option<InstanceDetail>> {
    let s = Session::new(client);
    let reading = async {
        let listed = node_information(
            &s,
            sdk::InstanceInformationStringFilter::builder()
                .key("InstanceIds")
                .values(instance_id)
                .build()
                .map_err(|e| invalid(client, &e))?,
        )
        .await;
        // "InvalidInstanceId: ... is not valid or does not belong to this account"
        // (<https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeInstanceInformation.html#API_DescribeInstanceInformation_Errors>).
        let listed = match listed {
            Err(e) if e.code.as_deref() == Some("InvalidInstanceId") => Vec::new(),
            other => other?,
        };
        let node = listed.into_iter().find(|n| n.reading.id == instance_id);
        let Some(node) = node else {
            return Ok(None);
        };
        let state = s
            .send(
                "DescribeInstancePatchStates",
                s.ssm()
                    .describe_instance_patch_states()
                    .instance_ids(instance_id)
                    .send(),
            )
            .await?
            .instance_patch_states()
            .first()
            .map(counts_from_sdk);
        let mut patches = Vec::new();
        s.each_page(
            "DescribeInstancePatches",
            |token| {
                s.ssm()
                    .describe_instance_patches()
                    .instance_id(instance_id)
                    .max_results(page(pages::PATCHES))
                    .set_next_token(token)
                    .send()
            },
            |out| patches.extend(out.patches().iter().map(patch_from_sdk)),
        )
        .await?;
        instances::order_patches(&mut patches);
        Ok(Some(InstanceDetail {
            instance: instances::summary(node, state, account_platform),
            patches,
        }))
    }
    .await;
    InstancesReading {
        reading,
        calls: s.calls(),
    }
}

/// DescribeInstanceInformation with one filter, 50 at a time
/// (<https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeInstanceInformation.html>:
/// `tag:<key>` and `InstanceIds` are among its `Filters` keys).
async fn node_information(
    s: &Session<'_>,
    filter: sdk::InstanceInformationStringFilter,
) -> Result<Vec<NodeInformation>, EdgeError> {
    let mut nodes = Vec::new();
    s.each_page(
        "DescribeInstanceInformation",
        |token| {
            s.ssm()
                .describe_instance_information()
                .filters(filter.clone())
                .max_results(page(pages::INSTANCE_INFORMATION))
                .set_next_token(token)
                .send()
        },
        |out| {
            nodes.extend(out.instance_information_list().iter().filter_map(|i| {
                let platform_name = match (i.platform_name(), i.platform_version()) {
                    (Some(name), Some(version)) if !version.is_empty() => {
                        Some(format!("{name} {version}"))
                    }
                    (Some(name), _) => Some(name.to_owned()),
                    _ => None,
                };
                Some(NodeInformation {
                    reading: node_reading(i)?,
                    computer_name: i.computer_name().map(str::to_owned),
                    platform_name,
                    agent_version: i.agent_version().map(str::to_owned),
                })
            }));
        },
    )
    .await?;
    Ok(nodes)
}

fn counts_from_sdk(p: &sdk::InstancePatchState) -> PatchCounts {
    let count = |n: Option<i32>| n.and_then(|n| u32::try_from(n).ok()).unwrap_or(0);
    PatchCounts {
        patch_group: p.patch_group().to_owned(),
        baseline_id: p.baseline_id().to_owned(),
        operation: p.operation().as_str().to_owned(),
        operation_end: rfc3339(Some(p.operation_end_time())),
        installed: count(Some(p.installed_count())),
        installed_other: count(Some(p.installed_other_count())),
        installed_pending_reboot: count(p.installed_pending_reboot_count()),
        installed_rejected: count(p.installed_rejected_count()),
        missing: count(Some(p.missing_count())),
        failed: count(Some(p.failed_count())),
        not_applicable: count(Some(p.not_applicable_count())),
        critical_non_compliant: count(p.critical_non_compliant_count()),
        security_non_compliant: count(p.security_non_compliant_count()),
        other_non_compliant: count(p.other_non_compliant_count()),
    }
}

fn patch_from_sdk(p: &sdk::PatchComplianceData) -> InstancePatch {
    InstancePatch {
        title: p.title().to_owned(),
        kb_id: p.kb_id().to_owned(),
        classification: p.classification().to_owned(),
        severity: p.severity().to_owned(),
        state: p.state().as_str().to_owned(),
        // SSM sends 0 (the epoch) for a patch it never saw installed.
        installed_time: Some(p.installed_time())
            .filter(|t| t.secs() > 0)
            .and_then(|t| rfc3339(Some(t))),
        cve_ids: p
            .cve_ids()
            .map(|ids| {
                ids.split(',')
                    .map(str::trim)
                    .filter(|id| !id.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// A filter the SDK refused to build (a required member unset): a bug, reported as a
/// request SSM would refuse.
fn invalid(client: &SsmClient, e: &dyn std::error::Error) -> EdgeError {
    EdgeError::new(
        ErrorKind::Validation,
        client.scope(),
        "DescribeInstanceInformation",
        e.to_string(),
    )
}
