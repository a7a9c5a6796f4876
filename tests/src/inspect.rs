//! Reading what exists in one account-region of the simulator, through the real SDK, the
//! way an operator would look at it in the console.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context;
use aws_sdk_ssm::Client;
use aws_sdk_ssm::types::{PatchBaselineIdentity, PatchOrchestratorFilter, ResourceTypeForTagging};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Baseline {
    pub id: String,
    pub name: String,
    pub operating_system: String,
    pub tags: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    pub id: String,
    pub name: String,
    pub tags: BTreeMap<String, String>,
    /// Target name -> `Patch Group` values.
    pub targets: BTreeMap<String, Vec<String>>,
    /// Task name -> (task ARN, priority).
    pub tasks: BTreeMap<String, (String, i32)>,
    pub duration: i32,
}

/// Everything an account-region holds (custom baselines only, not AWS's predefined ones).
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub baselines: Vec<Baseline>,
    /// (patch group, operating system, baseline id)
    pub registrations: BTreeSet<(String, String, String)>,
    pub windows: Vec<Window>,
}

impl Snapshot {
    pub fn baseline_named(&self, name: &str) -> Option<&Baseline> {
        self.baselines.iter().find(|b| b.name == name)
    }
    pub fn window_named(&self, name: &str) -> Option<&Window> {
        self.windows.iter().find(|w| w.name == name)
    }
    /// Baselines and windows carrying this cluster's ownership tag.
    pub fn owned_by(&self, cluster_id: &str) -> (Vec<&Baseline>, Vec<&Window>) {
        let owned = |tags: &BTreeMap<String, String>| {
            tags.get(patchfleet_planner::model::tags::CLUSTER)
                .map(String::as_str)
                == Some(cluster_id)
        };
        (
            self.baselines.iter().filter(|b| owned(&b.tags)).collect(),
            self.windows.iter().filter(|w| owned(&w.tags)).collect(),
        )
    }
    pub fn groups_of(&self, baseline_id: &str) -> BTreeSet<String> {
        self.registrations
            .iter()
            .filter(|(_, _, id)| id == baseline_id)
            .map(|(group, _, _)| group.clone())
            .collect()
    }
}

pub async fn snapshot(client: &Client) -> anyhow::Result<Snapshot> {
    let mut snapshot = Snapshot::default();
    let owner_self = PatchOrchestratorFilter::builder()
        .key("OWNER")
        .values("Self")
        .build();
    let identities: Vec<PatchBaselineIdentity> = client
        .describe_patch_baselines()
        .filters(owner_self)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .context("DescribePatchBaselines")?;
    for identity in identities {
        let id = identity.baseline_id().unwrap_or_default().to_owned();
        let tags = tags_of(client, ResourceTypeForTagging::PatchBaseline, &id).await?;
        snapshot.baselines.push(Baseline {
            name: identity.baseline_name().unwrap_or_default().to_owned(),
            operating_system: identity
                .operating_system()
                .map(|o| o.as_str().to_owned())
                .unwrap_or_default(),
            id,
            tags,
        });
    }
    let groups = client
        .describe_patch_groups()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .context("DescribePatchGroups")?;
    for group in groups {
        if let Some(identity) = group.baseline_identity()
            && !identity.default_baseline()
        {
            snapshot.registrations.insert((
                group.patch_group().unwrap_or_default().to_owned(),
                identity
                    .operating_system()
                    .map(|o| o.as_str().to_owned())
                    .unwrap_or_default(),
                identity.baseline_id().unwrap_or_default().to_owned(),
            ));
        }
    }
    let windows = client
        .describe_maintenance_windows()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .context("DescribeMaintenanceWindows")?;
    for window in windows {
        let id = window.window_id().unwrap_or_default().to_owned();
        let tags = tags_of(client, ResourceTypeForTagging::MaintenanceWindow, &id).await?;
        let targets = client
            .describe_maintenance_window_targets()
            .window_id(&id)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await;
        // A window deleted since it was listed (the controller may be at work) is gone.
        let targets = match targets {
            Ok(targets) => targets,
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_does_not_exist_exception()) =>
            {
                continue;
            }
            Err(error) => return Err(error).context("DescribeMaintenanceWindowTargets"),
        };
        let targets = targets
            .into_iter()
            .map(|t| {
                let values = t
                    .targets()
                    .iter()
                    .flat_map(|t| t.values().iter().cloned())
                    .collect();
                (t.name().unwrap_or_default().to_owned(), values)
            })
            .collect();
        let tasks = client
            .describe_maintenance_window_tasks()
            .window_id(&id)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await;
        let tasks = match tasks {
            Ok(tasks) => tasks,
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_does_not_exist_exception()) =>
            {
                continue;
            }
            Err(error) => return Err(error).context("DescribeMaintenanceWindowTasks"),
        };
        let tasks = tasks
            .into_iter()
            .map(|t| {
                (
                    t.name().unwrap_or_default().to_owned(),
                    (t.task_arn().unwrap_or_default().to_owned(), t.priority()),
                )
            })
            .collect();
        snapshot.windows.push(Window {
            name: window.name().unwrap_or_default().to_owned(),
            duration: window.duration().unwrap_or_default(),
            id,
            tags,
            targets,
            tasks,
        });
    }
    Ok(snapshot)
}

/// Tags of an object; an object deleted since it was listed (the controller may be at
/// work) has none.
async fn tags_of(
    client: &Client,
    kind: ResourceTypeForTagging,
    id: &str,
) -> anyhow::Result<BTreeMap<String, String>> {
    let sent = client
        .list_tags_for_resource()
        .resource_type(kind)
        .resource_id(id)
        .send()
        .await;
    let reply = match sent {
        Ok(reply) => reply,
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_invalid_resource_id()) =>
        {
            return Ok(BTreeMap::new());
        }
        Err(error) => {
            let context = aws_sdk_ssm::error::DisplayErrorContext(&error);
            anyhow::bail!("ListTagsForResource {id}: {context}");
        }
    };
    Ok(reply
        .tag_list()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect())
}

/// The approveAfterDays of each approval rule of a baseline, in order.
pub async fn approve_after_days(
    client: &Client,
    baseline_id: &str,
) -> anyhow::Result<Vec<Option<i32>>> {
    let baseline = client
        .get_patch_baseline()
        .baseline_id(baseline_id)
        .send()
        .await
        .context("GetPatchBaseline")?;
    Ok(baseline
        .approval_rules()
        .map(|g| {
            g.patch_rules()
                .iter()
                .map(|r| r.approve_after_days())
                .collect()
        })
        .unwrap_or_default())
}

/// A readable listing of one account-region, as an operator would want to see it.
pub async fn inventory_text(
    endpoint: &str,
    account_id: &str,
    external_id: &str,
    region: &str,
) -> anyhow::Result<String> {
    use std::fmt::Write as _;
    let client =
        crate::stack::assume_role_client(endpoint, account_id, external_id, region).await?;
    let snapshot = snapshot(&client).await?;
    let mut out = String::new();
    writeln!(out, "\n== account {account_id}, {region}")?;
    writeln!(out, "patch baselines ({}):", snapshot.baselines.len())?;
    for baseline in &snapshot.baselines {
        let groups: Vec<String> = snapshot.groups_of(&baseline.id).into_iter().collect();
        let owner = baseline
            .tags
            .get(patchfleet_planner::model::tags::OWNER)
            .map(String::as_str)
            .unwrap_or("-");
        writeln!(
            out,
            "  {:<52} {:<24} owner {:<32} groups {}",
            baseline.name,
            baseline.operating_system,
            owner,
            groups.join(", ")
        )?;
    }
    writeln!(out, "maintenance windows ({}):", snapshot.windows.len())?;
    for window in &snapshot.windows {
        writeln!(out, "  {} ({}h)", window.name, window.duration)?;
        for (name, groups) in &window.targets {
            writeln!(
                out,
                "    target {name}: tag:Patch Group = {}",
                groups.join(", ")
            )?;
        }
        for (name, (arn, priority)) in &window.tasks {
            writeln!(out, "    task {name}: {arn} (priority {priority})")?;
        }
    }
    Ok(out)
}

/// A maintenance window task as SSM holds it: what it runs, with which parameters, as
/// which role, at which rate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskDetail {
    /// RUN_COMMAND or AUTOMATION.
    pub task_type: String,
    /// The document (TaskArn).
    pub document: String,
    pub parameters: BTreeMap<String, Vec<String>>,
    pub service_role_arn: Option<String>,
    pub max_concurrency: String,
    pub max_errors: String,
    pub priority: i32,
}

/// The tasks of a window by name, read in full (GetMaintenanceWindowTask).
pub async fn window_tasks(
    client: &Client,
    window_id: &str,
) -> anyhow::Result<BTreeMap<String, TaskDetail>> {
    let listed = client
        .describe_maintenance_window_tasks()
        .window_id(window_id)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .context("DescribeMaintenanceWindowTasks")?;
    let mut tasks = BTreeMap::new();
    for listed in listed {
        let task = client
            .get_maintenance_window_task()
            .window_id(window_id)
            .window_task_id(listed.window_task_id().unwrap_or_default())
            .send()
            .await
            .context("GetMaintenanceWindowTask")?;
        let invocation = task.task_invocation_parameters();
        let parameters = invocation
            .and_then(|i| i.run_command())
            .and_then(|r| r.parameters())
            .or_else(|| {
                invocation
                    .and_then(|i| i.automation())
                    .and_then(|a| a.parameters())
            })
            .map(|p| p.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        tasks.insert(
            task.name().unwrap_or_default().to_owned(),
            TaskDetail {
                task_type: task
                    .task_type()
                    .map(|t| t.as_str().to_owned())
                    .unwrap_or_default(),
                document: task.task_arn().unwrap_or_default().to_owned(),
                parameters,
                service_role_arn: task.service_role_arn().map(str::to_owned),
                max_concurrency: task.max_concurrency().unwrap_or_default().to_owned(),
                max_errors: task.max_errors().unwrap_or_default().to_owned(),
                priority: task.priority(),
            },
        );
    }
    Ok(tasks)
}
