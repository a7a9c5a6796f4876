//! Carries out a plan's operations in order, stopping at the first failure: what is left
//! is planned again from the next observe, so nothing is half-applied in a way a plan
//! cannot see. Creates carry patchfleet's tags atomically and an idempotency token, so a
//! retried create cannot leave an untagged or duplicate object behind.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_ssm::error::BuildError;
use aws_sdk_ssm::types::{MaintenanceWindowResourceType, ResourceTypeForTagging, Tag};
use patchfleet_planner::model::{ObjectRef, Operation, Owner, TaskDefinition, tags};

use crate::convert::{self, SdkBaseline};
use crate::edge::{Session, SsmClient};
use crate::error::{EdgeError, ErrorKind};
use crate::observe;
use crate::summary::Summary;
use crate::token::{CREATE_ATTEMPTS, client_token};

/// What became of one operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// A baseline or window was created with this id.
    Created {
        id: String,
    },
    /// The object to deregister, delete or release was already gone.
    AlreadyGone,
    /// A window task whose type changed was deregistered and registered anew, with this id.
    Replaced {
        id: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The operation in a few words, such as `CreateBaseline patchfleet-early-windows`.
    pub summary: String,
    pub outcome: Outcome,
}

/// What an apply did: the operations carried out, in order, and the error that stopped
/// it (the operations after it were not attempted).
#[derive(Debug)]
pub struct ApplyReport {
    pub applied: Vec<Applied>,
    pub error: Option<EdgeError>,
    /// SSM calls made (SDK retries not counted).
    pub calls: u32,
}

impl ApplyReport {
    pub fn is_complete(&self) -> bool {
        self.error.is_none()
    }
}

/// Applies `operations` in the client's account-region, in order.
pub async fn apply(client: &SsmClient, cluster_id: &str, operations: &[Operation]) -> ApplyReport {
    let s = Session::new(client);
    let mut run = Run {
        s: &s,
        cluster_id,
        baselines: HashMap::new(),
        windows: HashMap::new(),
        targets: HashMap::new(),
    };
    let mut applied = Vec::with_capacity(operations.len());
    let mut error = None;
    for op in operations {
        match run.one(op).await {
            Ok(outcome) => {
                tracing::debug!(account_region = %client.target(), operation = %Summary(op), ?outcome, "applied");
                applied.push(Applied {
                    summary: Summary(op).to_string(),
                    outcome,
                });
            }
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    ApplyReport {
        applied,
        error,
        calls: s.calls(),
    }
}

struct Run<'a> {
    s: &'a Session<'a>,
    cluster_id: &'a str,
    /// Baselines and windows created in this batch, by name.
    baselines: HashMap<String, String>,
    windows: HashMap<String, String>,
    /// Known target ids by name, per window id: registered in this batch or listed.
    targets: HashMap<String, HashMap<String, String>>,
}

impl Run<'_> {
    async fn one(&mut self, op: &Operation) -> Result<Outcome, EdgeError> {
        let s = self.s;
        match op {
            Operation::CreateBaseline {
                baseline,
                fingerprint,
            } => {
                let b = SdkBaseline::from_spec(&baseline.definition)
                    .map_err(|e| self.build_error("CreatePatchBaseline", e))?;
                let tags = self.ownership_tags(&baseline.owner, fingerprint)?;
                let token_key = [
                    self.cluster_id,
                    &baseline.owner.to_string(),
                    &baseline.name,
                    fingerprint,
                ];
                for attempt in 0..CREATE_ATTEMPTS {
                    let out = s
                        .send(
                            "CreatePatchBaseline",
                            s.ssm()
                                .create_patch_baseline()
                                .name(&baseline.name)
                                .operating_system(b.operating_system.clone())
                                .set_description(b.description.clone())
                                .set_global_filters(b.global_filters.clone())
                                .set_approval_rules(b.approval_rules.clone())
                                .set_approved_patches(b.approved_patches.clone())
                                .set_approved_patches_compliance_level(
                                    b.approved_patches_compliance_level.clone(),
                                )
                                .set_approved_patches_enable_non_security(
                                    b.approved_patches_enable_non_security,
                                )
                                .set_rejected_patches(b.rejected_patches.clone())
                                .set_rejected_patches_action(b.rejected_patches_action.clone())
                                .set_sources(b.sources.clone())
                                .client_token(client_token(&token_key, attempt))
                                .set_tags(Some(tags.clone()))
                                .send(),
                        )
                        .await?;
                    let id = out.baseline_id().unwrap_or_default().to_owned();
                    if self
                        .exists(ResourceTypeForTagging::PatchBaseline, &id)
                        .await?
                    {
                        self.baselines.insert(baseline.name.clone(), id.clone());
                        return Ok(Outcome::Created { id });
                    }
                }
                Err(self.stale_token("CreatePatchBaseline", &baseline.name))
            }
            Operation::UpdateBaseline {
                id,
                baseline,
                fingerprint,
            } => {
                let b = SdkBaseline::from_spec(&baseline.definition)
                    .map_err(|e| self.build_error("UpdatePatchBaseline", e))?;
                // Replace=true: members left out are cleared, so the baseline ends up exactly
                // as described (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_UpdatePatchBaseline.html).
                s.send(
                    "UpdatePatchBaseline",
                    s.ssm()
                        .update_patch_baseline()
                        .baseline_id(id)
                        .name(&baseline.name)
                        .set_description(b.description)
                        .set_global_filters(b.global_filters)
                        .set_approval_rules(b.approval_rules)
                        .set_approved_patches(b.approved_patches)
                        .set_approved_patches_compliance_level(b.approved_patches_compliance_level)
                        .set_approved_patches_enable_non_security(
                            b.approved_patches_enable_non_security,
                        )
                        .set_rejected_patches(b.rejected_patches)
                        .set_rejected_patches_action(b.rejected_patches_action)
                        .set_sources(b.sources)
                        .replace(true)
                        .send(),
                )
                .await?;
                // After the update: should this fail, the stale fingerprint makes the next
                // pass read the baseline again.
                self.tag(
                    ResourceTypeForTagging::PatchBaseline,
                    id,
                    &baseline.owner,
                    fingerprint,
                )
                .await?;
                Ok(Outcome::Done)
            }
            Operation::DeleteBaseline { id, .. } => gone_is_done(
                s.send(
                    "DeletePatchBaseline",
                    s.ssm().delete_patch_baseline().baseline_id(id).send(),
                )
                .await,
            ),
            Operation::RegisterPatchGroup {
                baseline,
                patch_group,
            } => {
                let id = self.resolve(baseline, Kind::Baseline)?;
                s.send(
                    "RegisterPatchBaselineForPatchGroup",
                    s.ssm()
                        .register_patch_baseline_for_patch_group()
                        .baseline_id(id)
                        .patch_group(patch_group)
                        .send(),
                )
                .await?;
                Ok(Outcome::Done)
            }
            Operation::DeregisterPatchGroup {
                baseline_id,
                patch_group,
            } => {
                // SSM answers InvalidResourceId when the group is not registered there
                // (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeregisterPatchBaselineForPatchGroup.html).
                gone_is_done(
                    s.send(
                        "DeregisterPatchBaselineForPatchGroup",
                        s.ssm()
                            .deregister_patch_baseline_for_patch_group()
                            .baseline_id(baseline_id)
                            .patch_group(patch_group)
                            .send(),
                    )
                    .await,
                )
            }
            Operation::CreateWindow {
                window,
                fingerprint,
            } => {
                let d = &window.definition;
                let tags = self.ownership_tags(&window.owner, fingerprint)?;
                let token_key = [
                    self.cluster_id,
                    &window.owner.to_string(),
                    &window.name,
                    fingerprint,
                ];
                for attempt in 0..CREATE_ATTEMPTS {
                    let out = s
                        .send(
                            "CreateMaintenanceWindow",
                            s.ssm()
                                .create_maintenance_window()
                                .name(&window.name)
                                .set_description(d.description.clone())
                                .schedule(&d.schedule)
                                .set_schedule_timezone(d.schedule_timezone.clone())
                                .set_schedule_offset(d.schedule_offset)
                                .set_start_date(d.start_date.clone())
                                .set_end_date(d.end_date.clone())
                                .duration(d.duration)
                                .cutoff(d.cutoff)
                                // Tasks run on the registered targets only.
                                .allow_unassociated_targets(false)
                                .client_token(client_token(&token_key, attempt))
                                .set_tags(Some(tags.clone()))
                                .send(),
                        )
                        .await?;
                    let id = out.window_id().unwrap_or_default().to_owned();
                    if self
                        .exists(ResourceTypeForTagging::MaintenanceWindow, &id)
                        .await?
                    {
                        // CreateMaintenanceWindow has no Enabled member: windows start enabled.
                        if !d.enabled {
                            s.send(
                                "UpdateMaintenanceWindow",
                                s.ssm()
                                    .update_maintenance_window()
                                    .window_id(&id)
                                    .enabled(false)
                                    .send(),
                            )
                            .await?;
                        }
                        self.windows.insert(window.name.clone(), id.clone());
                        self.targets.insert(id.clone(), HashMap::new());
                        return Ok(Outcome::Created { id });
                    }
                }
                Err(self.stale_token("CreateMaintenanceWindow", &window.name))
            }
            Operation::UpdateWindow {
                id,
                window,
                fingerprint,
            } => {
                let d = &window.definition;
                s.send(
                    "UpdateMaintenanceWindow",
                    s.ssm()
                        .update_maintenance_window()
                        .window_id(id)
                        .name(&window.name)
                        .set_description(d.description.clone())
                        .schedule(&d.schedule)
                        .set_schedule_timezone(d.schedule_timezone.clone())
                        .set_schedule_offset(d.schedule_offset)
                        .set_start_date(d.start_date.clone())
                        .set_end_date(d.end_date.clone())
                        .duration(d.duration)
                        .cutoff(d.cutoff)
                        .allow_unassociated_targets(false)
                        .enabled(d.enabled)
                        .replace(true)
                        .send(),
                )
                .await?;
                self.tag(
                    ResourceTypeForTagging::MaintenanceWindow,
                    id,
                    &window.owner,
                    fingerprint,
                )
                .await?;
                Ok(Outcome::Done)
            }
            Operation::DeleteWindow { id, .. } => {
                // Deleting a window removes its targets and tasks with it.
                gone_is_done(
                    s.send(
                        "DeleteMaintenanceWindow",
                        s.ssm().delete_maintenance_window().window_id(id).send(),
                    )
                    .await,
                )
            }
            Operation::RegisterTarget {
                window,
                name,
                target,
            } => {
                let window_id = self.resolve(window, Kind::Window)?;
                let out = s
                    .send(
                        "RegisterTargetWithMaintenanceWindow",
                        s.ssm()
                            .register_target_with_maintenance_window()
                            .window_id(&window_id)
                            .resource_type(MaintenanceWindowResourceType::Instance)
                            .targets(convert::target_to_sdk(target))
                            .owner_information(&target.owner_information)
                            .name(name)
                            .send(),
                    )
                    .await?;
                let id = out.window_target_id().unwrap_or_default().to_owned();
                self.targets
                    .entry(window_id)
                    .or_default()
                    .insert(name.clone(), id);
                Ok(Outcome::Done)
            }
            Operation::UpdateTarget {
                window_id,
                target_id,
                name,
                target,
            } => {
                s.send(
                    "UpdateMaintenanceWindowTarget",
                    s.ssm()
                        .update_maintenance_window_target()
                        .window_id(window_id)
                        .window_target_id(target_id)
                        .targets(convert::target_to_sdk(target))
                        .owner_information(&target.owner_information)
                        .name(name)
                        .replace(true)
                        .send(),
                )
                .await?;
                if let Some(known) = self.targets.get_mut(window_id) {
                    known.insert(name.clone(), target_id.clone());
                }
                Ok(Outcome::Done)
            }
            Operation::DeregisterTarget {
                window_id,
                target_id,
            } => {
                if let Some(known) = self.targets.get_mut(window_id) {
                    known.retain(|_, id| id != target_id);
                }
                gone_is_done(
                    s.send(
                        "DeregisterTargetFromMaintenanceWindow",
                        s.ssm()
                            .deregister_target_from_maintenance_window()
                            .window_id(window_id)
                            .window_target_id(target_id)
                            .send(),
                    )
                    .await,
                )
            }
            Operation::RegisterTask { window, name, task } => {
                let window_id = self.resolve(window, Kind::Window)?;
                self.register_task(&window_id, name, task).await?;
                Ok(Outcome::Done)
            }
            Operation::UpdateTask {
                window_id,
                task_id,
                name,
                task,
            } => {
                let t = convert::task_to_sdk(&task.action);
                // A task's type cannot change in place (UpdateMaintenanceWindowTask has no
                // TaskType), so a task switching between RunPatchBaseline and Automation
                // (snapshotBeforePatch toggled) is replaced: one read per update tells.
                let current = s
                    .send(
                        "GetMaintenanceWindowTask",
                        s.ssm()
                            .get_maintenance_window_task()
                            .window_id(window_id)
                            .window_task_id(task_id)
                            .send(),
                    )
                    .await?;
                if current.task_type() != Some(&t.task_type) {
                    gone_is_done(self.deregister_task(window_id, task_id).await)?;
                    let id = self.register_task(window_id, name, task).await?;
                    return Ok(Outcome::Replaced { id });
                }
                let target_ids = self.target_ids(window_id, &task.targets).await?;
                s.send(
                    "UpdateMaintenanceWindowTask",
                    s.ssm()
                        .update_maintenance_window_task()
                        .window_id(window_id)
                        .window_task_id(task_id)
                        .task_arn(t.task_arn)
                        .task_invocation_parameters(t.invocation)
                        .targets(convert::task_targets_to_sdk(&target_ids))
                        .max_concurrency(&task.max_concurrency)
                        .max_errors(&task.max_errors)
                        .priority(task.priority)
                        .name(name)
                        .set_description(task.description.clone())
                        .set_service_role_arn(task.service_role_arn.clone())
                        .replace(true)
                        .send(),
                )
                .await?;
                Ok(Outcome::Done)
            }
            Operation::DeregisterTask { window_id, task_id } => {
                gone_is_done(self.deregister_task(window_id, task_id).await)
            }
            Operation::ReleaseBaseline { id } => {
                self.untag(ResourceTypeForTagging::PatchBaseline, id).await
            }
            Operation::ReleaseWindow { id } => {
                self.untag(ResourceTypeForTagging::MaintenanceWindow, id)
                    .await
            }
        }
    }

    async fn register_task(
        &mut self,
        window_id: &str,
        name: &str,
        task: &TaskDefinition,
    ) -> Result<String, EdgeError> {
        let target_ids = self.target_ids(window_id, &task.targets).await?;
        let t = convert::task_to_sdk(&task.action);
        let s = self.s;
        let out = s
            .send(
                "RegisterTaskWithMaintenanceWindow",
                s.ssm()
                    .register_task_with_maintenance_window()
                    .window_id(window_id)
                    .task_type(t.task_type)
                    .task_arn(t.task_arn)
                    .task_invocation_parameters(t.invocation)
                    .targets(convert::task_targets_to_sdk(&target_ids))
                    .max_concurrency(&task.max_concurrency)
                    .max_errors(&task.max_errors)
                    .priority(task.priority)
                    .name(name)
                    .set_description(task.description.clone())
                    .set_service_role_arn(task.service_role_arn.clone())
                    .send(),
            )
            .await?;
        Ok(out.window_task_id().unwrap_or_default().to_owned())
    }

    async fn deregister_task(&self, window_id: &str, task_id: &str) -> Result<(), EdgeError> {
        self.s
            .send(
                "DeregisterTaskFromMaintenanceWindow",
                self.s
                    .ssm()
                    .deregister_task_from_maintenance_window()
                    .window_id(window_id)
                    .window_task_id(task_id)
                    .send(),
            )
            .await?;
        Ok(())
    }

    fn resolve(&self, r: &ObjectRef, kind: Kind) -> Result<String, EdgeError> {
        match r {
            ObjectRef::Id(id) => Ok(id.clone()),
            ObjectRef::Created(name) => {
                let created = match kind {
                    Kind::Baseline => &self.baselines,
                    Kind::Window => &self.windows,
                };
                created.get(name).cloned().ok_or_else(|| {
                    EdgeError::new(
                        ErrorKind::Validation,
                        self.s.client.scope(),
                        "ResolveObjectRef",
                        format!("the plan refers to {name}, which no earlier operation of the batch created"),
                    )
                })
            }
        }
    }

    /// Target ids for target names: those registered in this batch, else listed once.
    async fn target_ids(
        &mut self,
        window_id: &str,
        names: &BTreeSet<String>,
    ) -> Result<BTreeSet<String>, EdgeError> {
        let known = self.targets.get(window_id);
        if known.is_none_or(|k| names.iter().any(|n| !k.contains_key(n))) {
            let listed = observe::list_targets(self.s, window_id).await?;
            let entry = self.targets.entry(window_id.to_owned()).or_default();
            for (name, id) in observe::target_ids_by_name(&listed) {
                entry.entry(name).or_insert(id);
            }
        }
        let known = self.targets.get(window_id);
        names
            .iter()
            .map(|n| {
                known.and_then(|k| k.get(n)).cloned().ok_or_else(|| {
                    EdgeError::new(
                        ErrorKind::Validation,
                        self.s.client.scope(),
                        "ResolveWindowTarget",
                        format!("maintenance window {window_id} has no target named {n}"),
                    )
                })
            })
            .collect()
    }

    fn ownership_tags(&self, owner: &Owner, fingerprint: &str) -> Result<Vec<Tag>, EdgeError> {
        [
            (tags::CLUSTER, self.cluster_id.to_owned()),
            (tags::OWNER, owner.to_string()),
            (tags::FINGERPRINT, fingerprint.to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| self.build_error("AddTagsToResource", e))
    }

    async fn tag(
        &self,
        kind: ResourceTypeForTagging,
        id: &str,
        owner: &Owner,
        fingerprint: &str,
    ) -> Result<(), EdgeError> {
        let tags = self.ownership_tags(owner, fingerprint)?;
        self.s
            .send(
                "AddTagsToResource",
                self.s
                    .ssm()
                    .add_tags_to_resource()
                    .resource_type(kind)
                    .resource_id(id)
                    .set_tags(Some(tags))
                    .send(),
            )
            .await?;
        Ok(())
    }

    async fn untag(&self, kind: ResourceTypeForTagging, id: &str) -> Result<Outcome, EdgeError> {
        gone_is_done(
            self.s
                .send(
                    "RemoveTagsFromResource",
                    self.s
                        .ssm()
                        .remove_tags_from_resource()
                        .resource_type(kind)
                        .resource_id(id)
                        .tag_keys(tags::CLUSTER)
                        .tag_keys(tags::OWNER)
                        .tag_keys(tags::FINGERPRINT)
                        .send(),
                )
                .await,
        )
    }

    /// Whether a baseline or window exists (ListTagsForResource: the lightest read by id).
    async fn exists(&self, kind: ResourceTypeForTagging, id: &str) -> Result<bool, EdgeError> {
        let listed = self
            .s
            .send(
                "ListTagsForResource",
                self.s
                    .ssm()
                    .list_tags_for_resource()
                    .resource_type(kind)
                    .resource_id(id)
                    .send(),
            )
            .await;
        match listed {
            Ok(_) => Ok(true),
            Err(e) if e.is_gone() => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn build_error(&self, operation: &'static str, e: BuildError) -> EdgeError {
        EdgeError::new(
            ErrorKind::Validation,
            self.s.client.scope(),
            operation,
            format!("building the request: {e}"),
        )
    }

    fn stale_token(&self, operation: &'static str, name: &str) -> EdgeError {
        EdgeError::new(
            ErrorKind::Conflict,
            self.s.client.scope(),
            operation,
            format!(
                "{name}: every idempotency token tried answered an object that no longer exists"
            ),
        )
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Baseline,
    Window,
}

/// Success, or the object was already gone, which is the goal of a deletion.
fn gone_is_done<T>(result: Result<T, EdgeError>) -> Result<Outcome, EdgeError> {
    match result {
        Ok(_) => Ok(Outcome::Done),
        Err(e) if e.is_gone() => Ok(Outcome::AlreadyGone),
        Err(e) => Err(e),
    }
}
