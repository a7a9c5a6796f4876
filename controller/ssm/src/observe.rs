//! Reads one account-region into [`Observed`]. A converged account costs one paged list
//! call per kind and nothing else: the fingerprint is a marker at the end of the
//! description, which DescribePatchBaselines and DescribeMaintenanceWindows return
//! (<https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PatchBaselineIdentity.html>,
//! <https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_MaintenanceWindowIdentity.html>),
//! and ownership, proven once per patchfleet-named object by ListTagsForResource, is
//! remembered by id (see `memory`). Deep reads only for owned objects whose fingerprint
//! differs, or on the periodic deep pass.

use std::collections::{BTreeMap, HashMap, HashSet};

use aws_sdk_ssm::operation::describe_patch_baselines::DescribePatchBaselinesOutput;
use aws_sdk_ssm::types::{PatchBaselineIdentity, PatchOrchestratorFilter, ResourceTypeForTagging};
use patchfleet_planner::fingerprint::read_description;
use patchfleet_planner::model::{
    Observed, ObservedBaseline, ObservedRegistration, ObservedTarget, ObservedTask, ObservedWindow,
    TaskDefinition, tags,
};

use crate::convert::{self, SdkBaseline};
use crate::edge::{Session, SsmClient};
use crate::error::EdgeError;
use crate::memory::{self, Known, RegionMemory};

/// Names of everything patchfleet creates start with this (the planner's naming); other
/// objects are never tag-checked, so an account's other baselines cost no extra calls.
pub use patchfleet_planner::naming::PREFIX as NAME_PREFIX;

/// The fingerprint observe reports for an object whose definition patchfleet's types
/// cannot express (see [`convert::Unrepresentable`]): it equals no planner fingerprint,
/// so the object is rewritten.
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

/// A baseline as DescribePatchBaselines lists it.
struct ListedBaseline {
    id: String,
    name: String,
    operating_system: patchfleet_api::v1alpha1::OperatingSystem,
    description: Option<String>,
    default: bool,
}

/// Reads every baseline, registration and window of the client's account-region.
/// `deep` reads the definitions of every owned object the planner expects; otherwise
/// only those whose fingerprint differs from `expected`.
///
/// Costs: the three lists (more pages past 100 objects); one ListTagsForResource per
/// patchfleet-named object the first time this process sees its id (and, on a deep pass,
/// again for one that is not ours but has a name the planner expects, so that one tagged
/// by hand for adoption is noticed); GetPatchBaseline per owned baseline read deeply;
/// DescribeMaintenanceWindowTargets, DescribeMaintenanceWindowTasks and
/// GetMaintenanceWindowTask per task for an owned window read deeply.
pub async fn observe(
    client: &SsmClient,
    cluster_id: &str,
    expected: &Fingerprints,
    deep: bool,
) -> Result<Observation, EdgeError> {
    let s = Session::new(client);
    let memory = memory::of(client);
    let needs_read = |owned: bool, fingerprint: Option<&String>, expected: Option<&String>| {
        match expected {
            // Owned but no longer wanted: it will be deleted, its content is moot.
            None => false,
            Some(fp) => owned && (deep || fingerprint != Some(fp)),
        }
    };
    let mut listed_ids: Vec<String> = Vec::new();

    let mut baselines = Vec::new();
    for listed in list_baselines(&s).await? {
        let ListedBaseline {
            id,
            name,
            operating_system,
            description,
            default,
        } = listed;
        listed_ids.push(id.clone());
        let mut tags = BTreeMap::new();
        let mut definition = None;
        if name.starts_with(NAME_PREFIX) {
            let recheck = deep && expected.baselines.contains_key(&name);
            let known = ownership(
                &s,
                &memory,
                cluster_id,
                ResourceTypeForTagging::PatchBaseline,
                &id,
                recheck,
            )
            .await?;
            let mut fingerprint = read_description(description.as_deref()).1;
            let owned = matches!(known, Known::Owned(_));
            if needs_read(owned, fingerprint.as_ref(), expected.baselines.get(&name)) {
                let out = s
                    .send(
                        "GetPatchBaseline",
                        s.ssm().get_patch_baseline().baseline_id(&id).send(),
                    )
                    .await?;
                match SdkBaseline::from_output(&out).to_spec() {
                    Ok(mut spec) => {
                        spec.description = read_description(spec.description.as_deref()).0;
                        definition = Some(spec);
                    }
                    Err(e) => {
                        tracing::info!(baseline = %id, error = %e, "baseline will be rewritten");
                        fingerprint = Some(UNREPRESENTABLE_FINGERPRINT.to_owned());
                    }
                }
            }
            tags = ownership_tags(cluster_id, &known, fingerprint);
        }
        baselines.push(ObservedBaseline {
            id,
            name,
            operating_system,
            tags,
            definition,
            default,
        });
    }

    let registrations = list_registrations(&s).await?;

    let mut windows = Vec::new();
    for identity in list_windows(&s).await? {
        let id = identity.window_id().unwrap_or_default().to_owned();
        let name = identity.name().unwrap_or_default().to_owned();
        listed_ids.push(id.clone());
        let mut window = ObservedWindow {
            definition: None,
            id,
            name,
            tags: BTreeMap::new(),
            targets: None,
            tasks: None,
        };
        if window.name.starts_with(NAME_PREFIX) {
            let recheck = deep && expected.windows.contains_key(&window.name);
            let known = ownership(
                &s,
                &memory,
                cluster_id,
                ResourceTypeForTagging::MaintenanceWindow,
                &window.id,
                recheck,
            )
            .await?;
            let fingerprint = read_description(identity.description()).1;
            let owned = matches!(known, Known::Owned(_));
            if needs_read(
                owned,
                fingerprint.as_ref(),
                expected.windows.get(&window.name),
            ) {
                // Only with the deep read: the planner reads a window whose definition,
                // targets and tasks are all None as "fingerprint matched, converged".
                let mut definition = convert::window_from_identity(&identity);
                definition.description = read_description(definition.description.as_deref()).0;
                window.definition = Some(definition);
                let targets = list_targets(&s, &window.id).await?;
                window.tasks = Some(list_tasks(&s, &window.id, &targets).await?);
                window.targets = Some(targets);
            }
            window.tags = ownership_tags(cluster_id, &known, fingerprint);
        }
        windows.push(window);
    }

    // Every list is complete: what they no longer show is forgotten.
    memory.lock().listed(
        &listed_ids
            .iter()
            .map(String::as_str)
            .collect::<HashSet<_>>(),
    );

    Ok(Observation {
        observed: Observed {
            baselines,
            registrations,
            windows,
        },
        calls: s.calls(),
    })
}

/// Whether a patchfleet-named object is this controller's: remembered, or proven by its
/// tags (one ListTagsForResource) and remembered from then on. `recheck` reads the tags
/// again of one remembered as not ours.
async fn ownership(
    s: &Session<'_>,
    memory: &RegionMemory,
    cluster_id: &str,
    kind: ResourceTypeForTagging,
    id: &str,
    recheck: bool,
) -> Result<Known, EdgeError> {
    match memory.lock().known(id) {
        Some(Known::Foreign) if recheck => {}
        Some(known) => return Ok(known),
        None => {}
    }
    let tags = match list_tags(s, kind, id).await {
        Ok(tags) => tags,
        // Deleted since the list: not ours to do anything with; the next list drops it.
        Err(e) if e.is_gone() => return Ok(Known::Foreign),
        Err(e) => return Err(e),
    };
    let owned =
        !cluster_id.is_empty() && tags.get(tags::CLUSTER).map(String::as_str) == Some(cluster_id);
    Ok(memory
        .lock()
        .learn(id, owned, tags.get(tags::OWNER).map(String::as_str)))
}

/// The tags the planner sees: ownership (remembered) and the fingerprint (from the
/// description marker), for owned objects only.
fn ownership_tags(
    cluster_id: &str,
    known: &Known,
    fingerprint: Option<String>,
) -> BTreeMap<String, String> {
    let Known::Owned(owner) = known else {
        return BTreeMap::new();
    };
    let mut tags = BTreeMap::from([(tags::CLUSTER.to_owned(), cluster_id.to_owned())]);
    if let Some(owner) = owner {
        tags.insert(tags::OWNER.to_owned(), owner.to_string());
    }
    if let Some(fingerprint) = fingerprint {
        tags.insert(tags::FINGERPRINT.to_owned(), fingerprint);
    }
    tags
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

/// Every baseline of `owner` (`Self`: the account's own; `AWS`: the predefined ones), in
/// pages of the largest size.
pub(crate) async fn each_baseline(
    s: &Session<'_>,
    owner: &str,
    mut each: impl FnMut(&PatchBaselineIdentity),
) -> Result<(), EdgeError> {
    let owner = PatchOrchestratorFilter::builder()
        .key("OWNER")
        .values(owner)
        .build();
    s.each_page(
        "DescribePatchBaselines",
        |token| {
            s.ssm()
                .describe_patch_baselines()
                .filters(owner.clone())
                .max_results(BASELINES_PAGE)
                .set_next_token(token)
                .send()
        },
        |out: &DescribePatchBaselinesOutput| out.baseline_identities().iter().for_each(&mut each),
    )
    .await
}

/// The account's own baselines (OWNER=Self leaves out AWS's predefined ones).
async fn list_baselines(s: &Session<'_>) -> Result<Vec<ListedBaseline>, EdgeError> {
    let mut found = Vec::new();
    each_baseline(s, "Self", |b| {
        let (Some(id), Some(name)) = (b.baseline_id(), b.baseline_name()) else {
            return;
        };
        match b.operating_system().and_then(convert::os_from_sdk) {
            Some(operating_system) => found.push(ListedBaseline {
                id: id.to_owned(),
                name: name.to_owned(),
                operating_system,
                description: b.baseline_description().map(str::to_owned),
                default: b.default_baseline(),
            }),
            // A newer SSM's operating system: not one patchfleet manages.
            None => {
                tracing::warn!(baseline = %id, "skipping baseline of unknown operating system")
            }
        }
    })
    .await?;
    Ok(found)
}

pub(crate) async fn list_registrations(
    s: &Session<'_>,
) -> Result<Vec<ObservedRegistration>, EdgeError> {
    let mut found = Vec::new();
    s.each_page(
        "DescribePatchGroups",
        |token| {
            s.ssm()
                .describe_patch_groups()
                .max_results(PATCH_GROUPS_PAGE)
                .set_next_token(token)
                .send()
        },
        |out| {
            for m in out.mappings() {
                let Some(identity) = m.baseline_identity() else {
                    continue;
                };
                let os = identity.operating_system().and_then(convert::os_from_sdk);
                if let (Some(group), Some(id), Some(os)) =
                    (m.patch_group(), identity.baseline_id(), os)
                {
                    found.push(ObservedRegistration {
                        patch_group: group.to_owned(),
                        operating_system: os,
                        baseline_id: id.to_owned(),
                        baseline_name: identity.baseline_name().map(str::to_owned),
                    });
                }
            }
        },
    )
    .await?;
    Ok(found)
}

pub(crate) async fn list_windows(
    s: &Session<'_>,
) -> Result<Vec<aws_sdk_ssm::types::MaintenanceWindowIdentity>, EdgeError> {
    let mut found = Vec::new();
    s.each_page(
        "DescribeMaintenanceWindows",
        |token| {
            s.ssm()
                .describe_maintenance_windows()
                .max_results(WINDOWS_PAGE)
                .set_next_token(token)
                .send()
        },
        |out| found.extend(out.window_identities().iter().cloned()),
    )
    .await?;
    Ok(found)
}

pub(crate) async fn list_targets(
    s: &Session<'_>,
    window_id: &str,
) -> Result<Vec<ObservedTarget>, EdgeError> {
    let mut found = Vec::new();
    s.each_page(
        "DescribeMaintenanceWindowTargets",
        |token| {
            s.ssm()
                .describe_maintenance_window_targets()
                .window_id(window_id)
                .max_results(TARGETS_PAGE)
                .set_next_token(token)
                .send()
        },
        |out| {
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
        },
    )
    .await?;
    Ok(found)
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
    s.each_page(
        "DescribeMaintenanceWindowTasks",
        |token| {
            s.ssm()
                .describe_maintenance_window_tasks()
                .window_id(window_id)
                .max_results(TASKS_PAGE)
                .set_next_token(token)
                .send()
        },
        |out| {
            ids.extend(
                out.tasks()
                    .iter()
                    .filter_map(|t| t.window_task_id().map(str::to_owned)),
            );
        },
    )
    .await?;
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
