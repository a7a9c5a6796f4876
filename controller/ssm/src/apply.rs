//! Carries out a plan's operations in order, stopping at the first failure: what is left
//! is planned again from the next observe, so nothing is half-applied in a way a plan
//! cannot see. Creates carry patchfleet's ownership tags atomically and an idempotency
//! token, so a retried create cannot leave an untagged or duplicate object behind. The
//! fingerprint travels in the description (see `patchfleet_planner::fingerprint`), so
//! creates and updates record it in the same call, and no tag is written on update.
//!
//! A new window is created marked PENDING and, once every target and task the batch
//! registers for it is in place, marked with its real fingerprint (one
//! UpdateMaintenanceWindow that changes only the description: "Only specified parameters
//! are modified",
//! <https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_UpdateMaintenanceWindow.html>).

use std::collections::{BTreeSet, HashMap};

use aws_sdk_ssm::error::BuildError;
use aws_sdk_ssm::types::{MaintenanceWindowResourceType, ResourceTypeForTagging, Tag};
use patchfleet_api::v1alpha1::OperatingSystem;
use patchfleet_planner::fingerprint::{
    BASELINE_DESCRIPTION_MAX, PENDING, WINDOW_DESCRIPTION_MAX, mark_description,
};
use patchfleet_planner::model::{
    DesiredBaseline, DesiredWindow, ObjectRef, Operation, Owner, TaskDefinition, tags,
};
use patchfleet_planner::naming::aws_default_baseline;

use crate::convert::{self, SdkBaseline};
use crate::edge::{Session, SsmClient};
use crate::error::{EdgeError, ErrorKind};
use crate::memory::{self, Known, RegionMemory};
use crate::observe;
use crate::summary::Summary;
use crate::token::{CREATE_ATTEMPTS, client_token, token_key};

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

/// Applies `operations` (a plan's steps, or bare operations) in the client's
/// account-region, in order.
pub async fn apply<O: AsRef<Operation>>(
    client: &SsmClient,
    cluster_id: &str,
    operations: &[O],
) -> ApplyReport {
    let s = Session::new(client);
    let memory = memory::of(client);
    let mut run = Run {
        s: &s,
        cluster_id,
        memory: &memory,
        baselines: HashMap::new(),
        windows: HashMap::new(),
        targets: HashMap::new(),
        stamps: HashMap::new(),
        aws_baselines: None,
    };
    let stamp_after = stamp_points(operations);
    let mut applied = Vec::with_capacity(operations.len());
    let mut error = None;
    for (i, op) in operations.iter().map(AsRef::as_ref).enumerate() {
        let mut result = run.one(op).await;
        // The op that completes a new window: its real fingerprint, as part of that op,
        // so that a failed stamp is reported (and retried) like the op itself.
        for name in stamp_after.get(&i).into_iter().flatten() {
            if result.is_ok()
                && let Err(e) = run.stamp(name).await
            {
                result = Err(e);
            }
        }
        match result {
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

/// For each new window, the index of the last operation of the batch that registers one
/// of its targets or tasks (or of its create, when none does): once that one succeeded,
/// the window is complete and gets its real fingerprint.
fn stamp_points<O: AsRef<Operation>>(operations: &[O]) -> HashMap<usize, Vec<&str>> {
    let mut last: HashMap<&str, usize> = HashMap::new();
    for (i, op) in operations.iter().map(AsRef::as_ref).enumerate() {
        match op {
            Operation::CreateWindow { window, .. } => {
                last.insert(window.name.as_str(), i);
            }
            Operation::RegisterTarget {
                window: ObjectRef::Created(name),
                ..
            }
            | Operation::RegisterTask {
                window: ObjectRef::Created(name),
                ..
            } => {
                if let Some(at) = last.get_mut(name.as_str()) {
                    *at = i;
                }
            }
            _ => {}
        }
    }
    let mut points: HashMap<usize, Vec<&str>> = HashMap::new();
    for (name, i) in last {
        points.entry(i).or_default().push(name);
    }
    points
}

/// What a new window is stamped with once complete.
struct Stamp {
    id: String,
    description: Option<String>,
    fingerprint: String,
}

struct Run<'a> {
    s: &'a Session<'a>,
    cluster_id: &'a str,
    memory: &'a RegionMemory,
    /// Baselines and windows created in this batch, by name.
    baselines: HashMap<String, String>,
    windows: HashMap<String, String>,
    /// Known target ids by name, per window id: registered in this batch or listed.
    targets: HashMap<String, HashMap<String, String>>,
    /// Windows created in this batch, by name, until stamped.
    stamps: HashMap<String, Stamp>,
    /// AWS's predefined baselines by name, listed by the first restore of a default.
    aws_baselines: Option<HashMap<String, String>>,
}

impl Run<'_> {
    async fn one(&mut self, op: &Operation) -> Result<Outcome, EdgeError> {
        let s = self.s;
        match op {
            Operation::CreateBaseline {
                baseline,
                fingerprint,
            } => self.create_baseline(baseline, fingerprint).await,
            Operation::UpdateBaseline {
                id,
                baseline,
                fingerprint,
            } => self.update_baseline(id, baseline, fingerprint).await,
            Operation::DeleteBaseline { id, .. } => {
                let outcome = gone_is_done(
                    s.send(
                        "DeletePatchBaseline",
                        s.ssm().delete_patch_baseline().baseline_id(id).send(),
                    )
                    .await,
                )?;
                self.memory.lock().forget(id);
                Ok(outcome)
            }
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
            } => self.create_window(window, fingerprint).await,
            Operation::UpdateWindow {
                id,
                window,
                fingerprint,
            } => self.update_window(id, window, fingerprint).await,
            Operation::DeleteWindow { id, .. } => {
                // Deleting a window removes its targets and tasks with it.
                let outcome = gone_is_done(
                    s.send(
                        "DeleteMaintenanceWindow",
                        s.ssm().delete_maintenance_window().window_id(id).send(),
                    )
                    .await,
                )?;
                self.memory.lock().forget(id);
                Ok(outcome)
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
            } => self.update_task(window_id, task_id, name, task).await,
            Operation::DeregisterTask { window_id, task_id } => {
                gone_is_done(self.deregister_task(window_id, task_id).await)
            }
            Operation::RegisterDefaultBaseline { baseline, .. } => {
                let id = self.resolve(baseline, Kind::Baseline)?;
                self.register_default(&id).await
            }
            Operation::RestoreDefaultBaseline {
                operating_system, ..
            } => self.restore_default(*operating_system).await,
            Operation::ReleaseBaseline { id } => {
                self.untag(ResourceTypeForTagging::PatchBaseline, id).await
            }
            Operation::ReleaseWindow { id } => {
                self.untag(ResourceTypeForTagging::MaintenanceWindow, id)
                    .await
            }
        }
    }

    /// Creates a patch baseline, tagged as ours, its fingerprint in the description.
    async fn create_baseline(
        &mut self,
        baseline: &DesiredBaseline,
        fingerprint: &str,
    ) -> Result<Outcome, EdgeError> {
        let s = self.s;
        let b = SdkBaseline::from_spec(&baseline.definition)
            .map_err(|e| self.build_error("CreatePatchBaseline", e))?;
        let tags = self.ownership_tags(&baseline.owner)?;
        let owner = baseline.owner.to_string();
        let description = mark_description(
            b.description.as_deref(),
            fingerprint,
            BASELINE_DESCRIPTION_MAX,
        );
        let generation = baseline.revision.generation.to_string();
        let parts = [
            self.cluster_id,
            &owner,
            &baseline.revision.uid,
            &generation,
            &baseline.name,
            fingerprint,
        ];
        let id = self
            .create(
                "CreatePatchBaseline",
                &baseline.name,
                &parts,
                &owner,
                |token| {
                    s.ssm()
                        .create_patch_baseline()
                        .name(&baseline.name)
                        .operating_system(b.operating_system.clone())
                        .description(&description)
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
                        .client_token(token)
                        .set_tags(Some(tags.clone()))
                        .send()
                },
            )
            .await?;
        self.baselines.insert(baseline.name.clone(), id.clone());
        Ok(Outcome::Created { id })
    }

    /// Rewrites a baseline whole (Replace) and its owner tag.
    async fn update_baseline(
        &mut self,
        id: &str,
        baseline: &DesiredBaseline,
        fingerprint: &str,
    ) -> Result<Outcome, EdgeError> {
        let s = self.s;
        let b = SdkBaseline::from_spec(&baseline.definition)
            .map_err(|e| self.build_error("UpdatePatchBaseline", e))?;
        // Replace=true: members left out are cleared, so the baseline ends up exactly
        // as described (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_UpdatePatchBaseline.html).
        // The description carries the fingerprint: recorded with the definition.
        let description = mark_description(
            b.description.as_deref(),
            fingerprint,
            BASELINE_DESCRIPTION_MAX,
        );
        s.send(
            "UpdatePatchBaseline",
            s.ssm()
                .update_patch_baseline()
                .baseline_id(id)
                .name(&baseline.name)
                .description(description)
                .set_global_filters(b.global_filters)
                .set_approval_rules(b.approval_rules)
                .set_approved_patches(b.approved_patches)
                .set_approved_patches_compliance_level(b.approved_patches_compliance_level)
                .set_approved_patches_enable_non_security(b.approved_patches_enable_non_security)
                .set_rejected_patches(b.rejected_patches)
                .set_rejected_patches_action(b.rejected_patches_action)
                .set_sources(b.sources)
                .replace(true)
                .send(),
        )
        .await?;
        self.retag_owner(ResourceTypeForTagging::PatchBaseline, id, &baseline.owner)
            .await?;
        Ok(Outcome::Done)
    }

    /// Creates a maintenance window, pending until its targets and tasks are registered.
    async fn create_window(
        &mut self,
        window: &DesiredWindow,
        fingerprint: &str,
    ) -> Result<Outcome, EdgeError> {
        let s = self.s;
        let d = &window.definition;
        let tags = self.ownership_tags(&window.owner)?;
        let owner = window.owner.to_string();
        // PENDING until its targets and tasks are registered (see `stamp`).
        let description =
            mark_description(d.description.as_deref(), PENDING, WINDOW_DESCRIPTION_MAX);
        let generation = window.revision.generation.to_string();
        let parts = [
            self.cluster_id,
            &owner,
            &window.revision.uid,
            &generation,
            &window.name,
            fingerprint,
        ];
        let id = self
            .create(
                "CreateMaintenanceWindow",
                &window.name,
                &parts,
                &owner,
                |token| {
                    s.ssm()
                        .create_maintenance_window()
                        .name(&window.name)
                        .description(&description)
                        .schedule(&d.schedule)
                        .set_schedule_timezone(d.schedule_timezone.clone())
                        .set_schedule_offset(d.schedule_offset)
                        .set_start_date(d.start_date.clone())
                        .set_end_date(d.end_date.clone())
                        .duration(d.duration)
                        .cutoff(d.cutoff)
                        // Tasks run on the registered targets only.
                        .allow_unassociated_targets(false)
                        .client_token(token)
                        .set_tags(Some(tags.clone()))
                        .send()
                },
            )
            .await?;
        // CreateMaintenanceWindow has no Enabled member: windows start enabled.
        // Disabled before any task is registered, so none runs early.
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
        if fingerprint != PENDING {
            self.stamps.insert(
                window.name.clone(),
                Stamp {
                    id: id.clone(),
                    description: d.description.clone(),
                    fingerprint: fingerprint.to_owned(),
                },
            );
        }
        Ok(Outcome::Created { id })
    }

    /// Rewrites a window's definition and its owner tag.
    async fn update_window(
        &mut self,
        id: &str,
        window: &DesiredWindow,
        fingerprint: &str,
    ) -> Result<Outcome, EdgeError> {
        let s = self.s;
        let d = &window.definition;
        s.send(
            "UpdateMaintenanceWindow",
            s.ssm()
                .update_maintenance_window()
                .window_id(id)
                .name(&window.name)
                .description(mark_description(
                    d.description.as_deref(),
                    fingerprint,
                    WINDOW_DESCRIPTION_MAX,
                ))
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
        self.retag_owner(ResourceTypeForTagging::MaintenanceWindow, id, &window.owner)
            .await?;
        Ok(Outcome::Done)
    }

    /// Rewrites a registered task.
    async fn update_task(
        &mut self,
        window_id: &str,
        task_id: &str,
        name: &str,
        task: &TaskDefinition,
    ) -> Result<Outcome, EdgeError> {
        let s = self.s;
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

    /// Ownership only: the fingerprint is in the description.
    fn ownership_tags(&self, owner: &Owner) -> Result<Vec<Tag>, EdgeError> {
        [
            (tags::CLUSTER, self.cluster_id.to_owned()),
            (tags::OWNER, owner.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| self.build_error("AddTagsToResource", e))
    }

    /// Rewrites the ownership tags of an updated object whose remembered owner is not
    /// `owner` (its resource was renamed onto it, or it was never observed by this
    /// process): usually nothing to do, and no call.
    async fn retag_owner(
        &self,
        kind: ResourceTypeForTagging,
        id: &str,
        owner: &Owner,
    ) -> Result<(), EdgeError> {
        let owner_tag = owner.to_string();
        if self.memory.lock().owner(id) == Some(owner_tag.as_str()) {
            return Ok(());
        }
        let tags = self.ownership_tags(owner)?;
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
        self.memory.lock().owned(id, &owner_tag);
        Ok(())
    }

    /// The real fingerprint of a window created in this batch, now that its targets and
    /// tasks are all registered: only the description changes.
    async fn stamp(&mut self, name: &str) -> Result<(), EdgeError> {
        let Some(stamp) = self.stamps.remove(name) else {
            return Ok(());
        };
        self.s
            .send(
                "UpdateMaintenanceWindow",
                self.s
                    .ssm()
                    .update_maintenance_window()
                    .window_id(&stamp.id)
                    .description(mark_description(
                        stamp.description.as_deref(),
                        &stamp.fingerprint,
                        WINDOW_DESCRIPTION_MAX,
                    ))
                    .send(),
            )
            .await?;
        Ok(())
    }

    /// Sends a create with the idempotency token of the current attempt (see `memory`).
    /// An answer naming an object the lists showed as not ours (released, say) is a
    /// replayed token, as is IdempotentParameterMismatch (the token was used for another
    /// request, such as an older patchfleet's): both move on to the next attempt's token
    /// (<https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CreatePatchBaseline.html>).
    /// A replay naming a deleted object cannot be told from a new one without a read: it
    /// is taken, and when the next list does not show it, the next pass's create uses the
    /// next token.
    async fn create<T, E, R, Fut>(
        &self,
        operation: &'static str,
        name: &str,
        parts: &[&str],
        owner: &str,
        send: impl Fn(String) -> Fut,
    ) -> Result<String, EdgeError>
    where
        T: CreatedId,
        Fut: Future<Output = Result<T, aws_sdk_ssm::error::SdkError<E, R>>>,
        E: aws_sdk_ssm::error::ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        let key = token_key(parts);
        let mut attempt = self.memory.lock().token_attempt(key);
        for _ in 0..CREATE_ATTEMPTS {
            let out = match self
                .s
                .send(operation, send(client_token(parts, attempt)))
                .await
            {
                Ok(out) => out,
                Err(e) if e.code.as_deref() == Some("IdempotentParameterMismatch") => {
                    attempt += 1;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let Some(id) = out.created_id().filter(|id| !id.is_empty()) else {
                return Err(EdgeError::new(
                    ErrorKind::Other,
                    self.s.client.scope(),
                    operation,
                    format!("{name}: the answer names no id"),
                ));
            };
            let mut memory = self.memory.lock();
            if memory.known(id) == Some(Known::Foreign) {
                attempt += 1;
                continue;
            }
            memory.owned(id, owner);
            memory.token_answered(key, attempt, id);
            return Ok(id.to_owned());
        }
        self.memory.lock().token_exhausted(key, attempt);
        Err(self.stale_token(operation, name))
    }

    /// Removes patchfleet's tags (the fingerprint tag too, which older versions wrote).
    async fn untag(&self, kind: ResourceTypeForTagging, id: &str) -> Result<Outcome, EdgeError> {
        let outcome = gone_is_done(
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
        )?;
        self.memory.lock().released(id);
        Ok(outcome)
    }

    /// RegisterDefaultPatchBaseline: the baseline becomes its operating system's default
    /// (<https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_RegisterDefaultPatchBaseline.html>).
    async fn register_default(&self, id: &str) -> Result<Outcome, EdgeError> {
        let s = self.s;
        s.send(
            "RegisterDefaultPatchBaseline",
            s.ssm()
                .register_default_patch_baseline()
                .baseline_id(id)
                .send(),
        )
        .await?;
        Ok(Outcome::Done)
    }

    /// Makes AWS's predefined default for `os` the default again. The API wants the full
    /// ARN of an AWS baseline ("To reset the AWS-predefined patch baseline as the default,
    /// specify the full patch baseline Amazon Resource Name (ARN)"), which differs per
    /// region: read from DescribePatchBaselines (OWNER=AWS), once per batch, only when
    /// restoring.
    async fn restore_default(&mut self, os: OperatingSystem) -> Result<Outcome, EdgeError> {
        let name = aws_default_baseline(os);
        if self.aws_baselines.is_none() {
            self.aws_baselines = Some(self.list_aws_baselines().await?);
        }
        let arn = self
            .aws_baselines
            .as_ref()
            .and_then(|listed| listed.get(name))
            .cloned();
        let Some(arn) = arn else {
            return Err(EdgeError::new(
                ErrorKind::NotFound,
                self.s.client.scope(),
                "DescribePatchBaselines",
                format!("AWS's predefined baseline {name} is not listed in this region"),
            ));
        };
        self.register_default(&arn).await
    }

    /// AWS's predefined baselines of the region, name -> id (ARN): about twenty, one page.
    async fn list_aws_baselines(&self) -> Result<HashMap<String, String>, EdgeError> {
        let mut listed = HashMap::new();
        observe::each_baseline(self.s, "AWS", |b| {
            if let (Some(name), Some(id)) = (b.baseline_name(), b.baseline_id()) {
                listed.insert(name.to_owned(), id.to_owned());
            }
        })
        .await?;
        Ok(listed)
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

/// The id a create answered.
trait CreatedId {
    fn created_id(&self) -> Option<&str>;
}

impl CreatedId for aws_sdk_ssm::operation::create_patch_baseline::CreatePatchBaselineOutput {
    fn created_id(&self) -> Option<&str> {
        self.baseline_id()
    }
}

impl CreatedId
    for aws_sdk_ssm::operation::create_maintenance_window::CreateMaintenanceWindowOutput
{
    fn created_id(&self) -> Option<&str> {
        self.window_id()
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
