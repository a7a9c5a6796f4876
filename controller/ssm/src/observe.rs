//! Reads one account-region into [`Observed`]. A converged account costs a few list
//! calls plus one ListTagsForResource per patchfleet-named object: the fingerprint tag
//! tells whether the definition can be trusted without reading it (deep reads only for
//! owned objects whose fingerprint differs, or on the periodic deep pass).

use std::collections::{BTreeMap, HashMap};

use aws_sdk_ssm::types::{PatchOrchestratorFilter, ResourceTypeForTagging};
use patchfleet_planner::model::{
    Observed, ObservedBaseline, ObservedRegistration, ObservedTarget, ObservedTask, ObservedWindow,
    TaskDefinition, tags,
};

use crate::convert::{self, SdkBaseline};
use crate::edge::{Session, SsmClient};
use crate::error::EdgeError;

/// Names of everything patchfleet creates start with this (the planner's naming); other
/// objects are never tag-checked, so an account's other baselines cost no extra calls.
pub use patchfleet_planner::naming::PREFIX as NAME_PREFIX;

/// The fingerprint tag value observe reports for an object whose definition
/// patchfleet's types cannot express (see [`convert::Unrepresentable`]): it equals no
/// planner fingerprint, so the object is rewritten.
pub const UNREPRESENTABLE_FINGERPRINT: &str = "unrepresentable";

/// The fingerprints the planner expects, by SSM name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fingerprints {
    pub baselines: BTreeMap<String, String>,
    pub windows: BTreeMap<String, String>,
}

/// What one observe read, and what it cost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    pub observed: Observed,
    /// SSM calls made (SDK retries not counted).
    pub calls: u32,
}

// AWS's largest page for each call (MaxResults in each API reference page).
const BASELINES_PAGE: i32 = 100;
const PATCH_GROUPS_PAGE: i32 = 100;
const WINDOWS_PAGE: i32 = 100;
const TARGETS_PAGE: i32 = 100;
const TASKS_PAGE: i32 = 100;

/// Reads every baseline, registration and window of the client's account-region.
/// `deep` reads the definitions of every owned object the planner expects; otherwise
/// only those whose fingerprint tag differs from `expected`.
pub async fn observe(
    client: &SsmClient,
    cluster_id: &str,
    expected: &Fingerprints,
    deep: bool,
) -> Result<Observation, EdgeError> {
    let s = Session::new(client);
    let needs_read = |tags: &BTreeMap<String, String>, expected: Option<&String>| {
        let owned = tags.get(tags::CLUSTER).map(String::as_str) == Some(cluster_id);
        match expected {
            // Owned but no longer wanted: it will be deleted, its content is moot.
            None => false,
            Some(fp) => owned && (deep || tags.get(tags::FINGERPRINT) != Some(fp)),
        }
    };

    let mut baselines = Vec::new();
    for (id, name, operating_system) in list_baselines(&s).await? {
        let mut tags = BTreeMap::new();
        let mut definition = None;
        if name.starts_with(NAME_PREFIX) {
            tags = list_tags(&s, ResourceTypeForTagging::PatchBaseline, &id).await?;
            if needs_read(&tags, expected.baselines.get(&name)) {
                let out = s
                    .send(
                        "GetPatchBaseline",
                        s.ssm().get_patch_baseline().baseline_id(&id).send(),
                    )
                    .await?;
                match SdkBaseline::from_output(&out).to_spec() {
                    Ok(spec) => definition = Some(spec),
                    Err(e) => {
                        tracing::info!(baseline = %id, error = %e, "baseline will be rewritten");
                        tags.insert(
                            tags::FINGERPRINT.to_owned(),
                            UNREPRESENTABLE_FINGERPRINT.to_owned(),
                        );
                    }
                }
            }
        }
        baselines.push(ObservedBaseline {
            id,
            name,
            operating_system,
            tags,
            definition,
        });
    }

    let registrations = list_registrations(&s).await?;

    let mut windows = Vec::new();
    for identity in list_windows(&s).await? {
        let id = identity.window_id().unwrap_or_default().to_owned();
        let name = identity.name().unwrap_or_default().to_owned();
        let mut window = ObservedWindow {
            definition: None,
            id,
            name,
            tags: BTreeMap::new(),
            targets: None,
            tasks: None,
        };
        if window.name.starts_with(NAME_PREFIX) {
            window.tags =
                list_tags(&s, ResourceTypeForTagging::MaintenanceWindow, &window.id).await?;
            if needs_read(&window.tags, expected.windows.get(&window.name)) {
                // Only with the deep read: the planner reads a window whose definition,
                // targets and tasks are all None as "fingerprint matched, converged".
                window.definition = Some(convert::window_from_identity(&identity));
                let targets = list_targets(&s, &window.id).await?;
                window.tasks = Some(list_tasks(&s, &window.id, &targets).await?);
                window.targets = Some(targets);
            }
        }
        windows.push(window);
    }

    Ok(Observation {
        observed: Observed {
            baselines,
            registrations,
            windows,
        },
        calls: s.calls(),
    })
}

async fn list_tags(
    s: &Session<'_>,
    kind: ResourceTypeForTagging,
    id: &str,
) -> Result<BTreeMap<String, String>, EdgeError> {
    let out = s
        .send(
            "ListTagsForResource",
            s.ssm()
                .list_tags_for_resource()
                .resource_type(kind)
                .resource_id(id)
                .send(),
        )
        .await?;
    Ok(out
        .tag_list()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect())
}

/// The account's own baselines (OWNER=Self leaves out AWS's predefined ones).
async fn list_baselines(
    s: &Session<'_>,
) -> Result<Vec<(String, String, patchfleet_api::v1alpha1::OperatingSystem)>, EdgeError> {
    let owner = PatchOrchestratorFilter::builder()
        .key("OWNER")
        .values("Self")
        .build();
    let mut found = Vec::new();
    let mut token = None;
    loop {
        let out = s
            .send(
                "DescribePatchBaselines",
                s.ssm()
                    .describe_patch_baselines()
                    .filters(owner.clone())
                    .max_results(BASELINES_PAGE)
                    .set_next_token(token)
                    .send(),
            )
            .await?;
        for b in out.baseline_identities() {
            let (Some(id), Some(name)) = (b.baseline_id(), b.baseline_name()) else {
                continue;
            };
            let os = b.operating_system().and_then(convert::os_from_sdk);
            match os {
                Some(os) => found.push((id.to_owned(), name.to_owned(), os)),
                // A newer SSM's operating system: not one patchfleet manages.
                None => {
                    tracing::warn!(baseline = %id, "skipping baseline of unknown operating system")
                }
            }
        }
        token = out
            .next_token()
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        if token.is_none() {
            return Ok(found);
        }
    }
}

async fn list_registrations(s: &Session<'_>) -> Result<Vec<ObservedRegistration>, EdgeError> {
    let mut found = Vec::new();
    let mut token = None;
    loop {
        let out = s
            .send(
                "DescribePatchGroups",
                s.ssm()
                    .describe_patch_groups()
                    .max_results(PATCH_GROUPS_PAGE)
                    .set_next_token(token)
                    .send(),
            )
            .await?;
        for m in out.mappings() {
            let Some(identity) = m.baseline_identity() else {
                continue;
            };
            let os = identity.operating_system().and_then(convert::os_from_sdk);
            if let (Some(group), Some(id), Some(os)) = (m.patch_group(), identity.baseline_id(), os)
            {
                found.push(ObservedRegistration {
                    patch_group: group.to_owned(),
                    operating_system: os,
                    baseline_id: id.to_owned(),
                });
            }
        }
        token = out
            .next_token()
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        if token.is_none() {
            return Ok(found);
        }
    }
}

async fn list_windows(
    s: &Session<'_>,
) -> Result<Vec<aws_sdk_ssm::types::MaintenanceWindowIdentity>, EdgeError> {
    let mut found = Vec::new();
    let mut token = None;
    loop {
        let out = s
            .send(
                "DescribeMaintenanceWindows",
                s.ssm()
                    .describe_maintenance_windows()
                    .max_results(WINDOWS_PAGE)
                    .set_next_token(token)
                    .send(),
            )
            .await?;
        found.extend(out.window_identities().iter().cloned());
        token = out
            .next_token()
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        if token.is_none() {
            return Ok(found);
        }
    }
}

pub(crate) async fn list_targets(
    s: &Session<'_>,
    window_id: &str,
) -> Result<Vec<ObservedTarget>, EdgeError> {
    let mut found = Vec::new();
    let mut token = None;
    loop {
        let out = s
            .send(
                "DescribeMaintenanceWindowTargets",
                s.ssm()
                    .describe_maintenance_window_targets()
                    .window_id(window_id)
                    .max_results(TARGETS_PAGE)
                    .set_next_token(token)
                    .send(),
            )
            .await?;
        for t in out.targets() {
            let Some(id) = t.window_target_id() else {
                continue;
            };
            found.push(ObservedTarget {
                id: id.to_owned(),
                name: t.name().map(str::to_owned),
                definition: convert::target_from_sdk(t.targets(), t.owner_information()),
            });
        }
        token = out
            .next_token()
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        if token.is_none() {
            return Ok(found);
        }
    }
}

/// The window's tasks, each read with GetMaintenanceWindowTask: DescribeMaintenanceWindowTasks
/// does not return TaskInvocationParameters, where the patch operation lives
/// (<https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_MaintenanceWindowTask.html>).
async fn list_tasks(
    s: &Session<'_>,
    window_id: &str,
    targets: &[ObservedTarget],
) -> Result<Vec<ObservedTask>, EdgeError> {
    let names: BTreeMap<String, String> = targets
        .iter()
        .map(|t| (t.id.clone(), t.name.clone().unwrap_or_else(|| t.id.clone())))
        .collect();
    let mut ids = Vec::new();
    let mut token = None;
    loop {
        let out = s
            .send(
                "DescribeMaintenanceWindowTasks",
                s.ssm()
                    .describe_maintenance_window_tasks()
                    .window_id(window_id)
                    .max_results(TASKS_PAGE)
                    .set_next_token(token)
                    .send(),
            )
            .await?;
        ids.extend(
            out.tasks()
                .iter()
                .filter_map(|t| t.window_task_id().map(str::to_owned)),
        );
        token = out
            .next_token()
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    let mut tasks = Vec::with_capacity(ids.len());
    for id in ids {
        let t = s
            .send(
                "GetMaintenanceWindowTask",
                s.ssm()
                    .get_maintenance_window_task()
                    .window_id(window_id)
                    .window_task_id(&id)
                    .send(),
            )
            .await?;
        let action = convert::task_from_sdk(
            t.task_type(),
            t.task_arn().unwrap_or_default(),
            t.task_invocation_parameters(),
        );
        tasks.push(ObservedTask {
            id,
            name: t.name().map(str::to_owned),
            definition: TaskDefinition {
                description: t.description().map(str::to_owned),
                action,
                service_role_arn: convert::task_role_from_sdk(t.service_role_arn()),
                max_concurrency: t.max_concurrency().unwrap_or_default().to_owned(),
                max_errors: t.max_errors().unwrap_or_default().to_owned(),
                priority: t.priority(),
                targets: convert::task_targets_from_sdk(t.targets(), &names),
            },
        });
    }
    Ok(tasks)
}

/// Target ids of a window by target name, for resolving task targets on apply.
pub(crate) fn target_ids_by_name(targets: &[ObservedTarget]) -> HashMap<String, String> {
    let mut by_name = HashMap::new();
    // Sorted by id so duplicates of a name resolve the same way every time.
    let mut sorted: Vec<&ObservedTarget> = targets.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    for t in sorted {
        let name = t.name.clone().unwrap_or_else(|| t.id.clone());
        by_name.entry(name).or_insert_with(|| t.id.clone());
    }
    by_name
}
