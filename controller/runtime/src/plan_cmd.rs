//! `patchfleet plan -f DIR [--against ENDPOINT]`: what the manifests declare, per account
//! and region, without a cluster; with --against, also what the controller would change
//! there, like a Terraform plan, for review in a GitOps pull request.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use patchfleet_api::v1alpha1::{
    MaintenanceWindow, PatchGroup, PatchPolicy, PatchRollout, PatchRolloutStatus, SystemAccount,
};
use patchfleet_planner::Step;
use patchfleet_planner::model::{AccountRegion, Desired, ObjectRef, Operation, Problem};
use patchfleet_planner::{Inventory, Settings};
use patchfleet_ssm::{AccountAccess, EdgeSettings, SsmEdge};
use serde::Deserialize;

use crate::args::{PlanArgs, PlanOutput};

pub async fn run(args: PlanArgs) -> anyhow::Result<()> {
    let mut inventory = load(&args.path)?;
    evaluate_rollouts(&mut inventory, k8s_openapi::jiff::Timestamp::now());
    let settings = Settings {
        cluster_id: args.cluster_id.clone(),
        ..Settings::default()
    };
    let edge = match &args.against {
        Some(endpoint) => Some(
            SsmEdge::from_env(EdgeSettings {
                ssm_endpoint: Some(endpoint.clone()),
                sts_endpoint: Some(
                    args.sts_endpoint
                        .clone()
                        .unwrap_or_else(|| endpoint.clone()),
                ),
                ..EdgeSettings::default()
            })
            .await,
        ),
        None => None,
    };
    let mut planned = Vec::new();
    for region in patchfleet_planner::account_regions(&inventory) {
        planned.push(plan_region(&inventory, &settings, region, edge.as_ref()).await?);
    }
    let problems = patchfleet_planner::reference_problems(&inventory);
    match args.output {
        PlanOutput::Text => {
            let mut out = text(&args.path, &problems, &planned)?;
            print_rollouts(&mut out, &inventory)?;
            print!("{out}");
        }
        PlanOutput::Json => {
            let mut value = json(&problems, &planned);
            value["rollouts"] = rollouts_json(&inventory);
            println!("{}", serde_json::to_string_pretty(&value)?);
        }
    }
    Ok(())
}

/// Gives each rollout the status the controller's next evaluation would write (with no
/// evidence read yet): a rollout from the manifests, which has no status, has its first
/// stage take the release; one with a status (`kubectl get -o yaml`) goes on from it. The
/// baselines planned then are the ones that evaluation implies.
fn evaluate_rollouts(inventory: &mut Inventory, now: k8s_openapi::jiff::Timestamp) {
    let staging = inventory.staging().clone();
    for rollout in &mut inventory.rollouts {
        let namespace = rollout.metadata.namespace.clone().unwrap_or_default();
        let name = rollout.metadata.name.clone().unwrap_or_default();
        let problems = staging.problems(&namespace, &name);
        let evaluation =
            patchfleet_planner::rollout::evaluate(rollout, &BTreeMap::new(), problems, now);
        let previous = rollout.status.clone().unwrap_or_default();
        rollout.status = Some(PatchRolloutStatus {
            release: evaluation.release,
            stages: evaluation.stages,
            ..previous
        });
    }
    // The stages' releases changed: plan from a fresh staging.
    inventory.staging = Default::default();
}

/// Each rollout's stages: state, the release and cutoff their baselines approve, and why.
fn print_rollouts(out: &mut String, inventory: &Inventory) -> std::fmt::Result {
    let staging = inventory.staging();
    for rollout in &inventory.rollouts {
        let namespace = rollout.metadata.namespace.as_deref().unwrap_or_default();
        let name = rollout.metadata.name.as_deref().unwrap_or_default();
        let Some(status) = &rollout.status else {
            continue;
        };
        let release = status
            .release
            .as_ref()
            .map(|r| format!("release {} (patches released up to {})", r.token, r.cutoff))
            .unwrap_or_default();
        writeln!(out, "\n# PatchRollout {namespace}/{name}: {release}")?;
        for problem in staging.problems(namespace, name) {
            writeln!(out, "  ! {problem}")?;
        }
        for notice in staging.unstaged(namespace, name) {
            writeln!(out, "  ! {notice}")?;
        }
        for (stage, spec) in status.stages.iter().zip(&rollout.spec.stages) {
            let approves = match &stage.cutoff {
                Some(cutoff) => format!("approves patches released up to {cutoff}"),
                None => "no release yet: approves only the policy's approvedPatches".to_owned(),
            };
            writeln!(
                out,
                "  stage {}: {:?}, {approves} <- groups: {}",
                stage.name,
                stage.state,
                spec.patch_groups.join(", ")
            )?;
            if !stage.message.is_empty() {
                writeln!(out, "    {}", stage.message)?;
            }
        }
    }
    Ok(())
}

fn rollouts_json(inventory: &Inventory) -> serde_json::Value {
    inventory
        .rollouts
        .iter()
        .map(|rollout| {
            let status = rollout.status.clone().unwrap_or_default();
            serde_json::json!({
                "namespace": rollout.metadata.namespace,
                "name": rollout.metadata.name,
                "release": status.release,
                "stages": status.stages.iter().map(|s| serde_json::json!({
                    "name": s.name,
                    "state": s.state,
                    "release": s.release,
                    "cutoff": s.cutoff,
                    "message": s.message,
                })).collect::<Vec<_>>(),
            })
        })
        .collect()
}

/// One account-region: what it should hold, and with an edge, what would change there.
struct RegionPlan {
    region: AccountRegion,
    desired: Desired,
    problems: Vec<Problem>,
    /// With --against: the steps, or why SSM could not be read.
    steps: Option<Result<Vec<Step>, String>>,
}

/// What the controller's pass computes, in the same order: the desired state, the
/// observation (deep: a plan reads everything it compares), then the plan from both.
async fn plan_region(
    inventory: &Inventory,
    settings: &Settings,
    region: AccountRegion,
    edge: Option<&SsmEdge>,
) -> anyhow::Result<RegionPlan> {
    let (desired, problems) = patchfleet_planner::desired(inventory, settings, &region);
    let Some(edge) = edge else {
        return Ok(RegionPlan {
            region,
            desired,
            problems,
            steps: None,
        });
    };
    let account = inventory
        .accounts
        .iter()
        .find(|a| a.metadata.name.as_deref() == Some(region.account.as_str()))
        .context("an account-region without its account")?;
    let access = AccountAccess::from_spec(&region.account, &account.spec);
    let client = edge.account(&access).await.client(&region.region);
    let fingerprints = crate::controller::fingerprints(&desired);
    let steps =
        match patchfleet_ssm::observe(&client, &settings.cluster_id, &fingerprints, true).await {
            Ok(observation) => {
                let orphaned = patchfleet_planner::orphaned_owners(inventory);
                let plan = patchfleet_planner::plan_from(
                    inventory,
                    settings,
                    &region,
                    (desired.clone(), problems.clone()),
                    &observation.observed,
                    &orphaned,
                );
                Ok(plan.operations)
            }
            Err(error) => Err(error.to_string()),
        };
    Ok(RegionPlan {
        region,
        desired,
        problems,
        steps: Some(steps),
    })
}

fn text(path: &Path, problems: &[Problem], planned: &[RegionPlan]) -> anyhow::Result<String> {
    let mut out = String::new();
    print_problems(&mut out, "", problems)?;
    if planned.is_empty() {
        writeln!(
            out,
            "No SystemAccount in {}: nothing to plan.",
            path.display()
        )?;
    }
    for region in planned {
        writeln!(out, "\n# {}", region.region)?;
        print_desired(&mut out, &region.desired)?;
        print_problems(&mut out, "  ", &region.problems)?;
        match &region.steps {
            None => {}
            Some(Ok(steps)) => print_operations(&mut out, steps)?,
            Some(Err(error)) => writeln!(out, "  ! cannot read SSM: {error}")?,
        }
    }
    Ok(out)
}

/// `--output json`: per account-region the problems and the steps, each with the
/// operation as the controller logs it (`write` in its JSON log), for a program to read.
fn json(problems: &[Problem], planned: &[RegionPlan]) -> serde_json::Value {
    let problem = |p: &Problem| {
        serde_json::json!({
            "owner": p.owner.to_string(),
            "reason": p.reason,
            "message": p.message,
        })
    };
    let regions: Vec<serde_json::Value> = planned
        .iter()
        .map(|r| {
            let mut value = serde_json::json!({
                "account": r.region.account,
                "accountId": r.region.account_id,
                "region": r.region.region,
                "problems": r.problems.iter().map(problem).collect::<Vec<_>>(),
            });
            match &r.steps {
                None => {}
                Some(Ok(steps)) => {
                    value["operations"] = steps
                        .iter()
                        .map(|step| {
                            serde_json::json!({
                                "operation": patchfleet_ssm::Summary(&step.operation).to_string(),
                                "change": summarize(&step.operation),
                                "owner": step.owner.as_ref().map(ToString::to_string),
                            })
                        })
                        .collect();
                }
                Some(Err(error)) => value["error"] = serde_json::Value::from(error.clone()),
            }
            value
        })
        .collect();
    serde_json::json!({
        "problems": problems.iter().map(problem).collect::<Vec<_>>(),
        "accountRegions": regions,
    })
}

/// Every patchfleet resource (and Namespace) in the YAML files under `path`.
pub fn load(path: &Path) -> anyhow::Result<Inventory> {
    let mut inventory = Inventory::default();
    for file in yaml_files(path)? {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        for document in serde_norway::Deserializer::from_str(&text) {
            let value = serde_json::Value::deserialize(document)
                .with_context(|| format!("parsing {}", file.display()))?;
            add(&mut inventory, value).with_context(|| format!("in {}", file.display()))?;
        }
    }
    // Namespaces not in the manifests still exist in a cluster, with their name label.
    let referenced: Vec<String> = inventory
        .groups
        .iter()
        .filter_map(|g| g.metadata.namespace.clone())
        .chain(
            inventory
                .windows
                .iter()
                .filter_map(|w| w.metadata.namespace.clone()),
        )
        .collect();
    for namespace in referenced {
        inventory
            .namespaces
            .entry(namespace.clone())
            .or_insert_with(|| {
                BTreeMap::from([("kubernetes.io/metadata.name".to_owned(), namespace)])
            });
    }
    Ok(inventory)
}

fn add(inventory: &mut Inventory, value: serde_json::Value) -> anyhow::Result<()> {
    let kind = value["kind"].as_str().unwrap_or_default().to_owned();
    let name = value["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let context = || format!("{kind} {name}");
    match kind.as_str() {
        "" if value.is_null() => {}
        "Namespace" => {
            let mut labels: BTreeMap<String, String> =
                serde_json::from_value(value["metadata"]["labels"].clone()).unwrap_or_default();
            labels.insert("kubernetes.io/metadata.name".to_owned(), name.clone());
            inventory.namespaces.insert(name, labels);
        }
        "SystemAccount" => inventory.accounts.push(
            serde_json::from_value::<SystemAccount>(value)
                .with_context(context)?
                .into(),
        ),
        "PatchPolicy" => inventory.policies.push(with_generation(
            serde_json::from_value::<PatchPolicy>(value).with_context(context)?,
        )),
        "PatchGroup" => inventory.groups.push(with_generation(
            serde_json::from_value::<PatchGroup>(value).with_context(context)?,
        )),
        "MaintenanceWindow" => inventory.windows.push(with_generation(
            serde_json::from_value::<MaintenanceWindow>(value).with_context(context)?,
        )),
        "PatchRollout" => inventory.rollouts.push(with_generation(
            serde_json::from_value::<PatchRollout>(value).with_context(context)?,
        )),
        _ => {}
    }
    Ok(())
}

fn with_generation<K: kube::Resource>(mut object: K) -> K {
    object.meta_mut().generation.get_or_insert(1);
    object
}

fn yaml_files(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("reading {}", path.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    Ok(files)
}

fn print_desired(out: &mut String, desired: &Desired) -> std::fmt::Result {
    if desired.baselines.is_empty() && desired.windows.is_empty() && desired.runs.is_empty() {
        return writeln!(out, "  (nothing)");
    }
    for baseline in desired.baselines.values() {
        let groups: Vec<&str> = baseline.patch_groups.iter().map(String::as_str).collect();
        let rules = &baseline.definition.approval_rules;
        let until: std::collections::BTreeSet<&str> = rules
            .iter()
            .filter_map(|r| r.approve_until_date.as_deref())
            .collect();
        let until = match until.last() {
            Some(last) if rules.iter().all(|r| r.approve_until_date.is_some()) => {
                format!(", released up to {last}")
            }
            _ => String::new(),
        };
        writeln!(
            out,
            "  patch baseline {} ({}, {} rules{until}, {} approved, {} rejected) <- groups: {}",
            baseline.name,
            baseline.definition.operating_system.as_str(),
            rules.len(),
            baseline.definition.approved_patches.len(),
            baseline.definition.rejected_patches.len(),
            groups.join(", ")
        )?;
    }
    for window in desired.windows.values() {
        writeln!(
            out,
            "  maintenance window {} ({}, {}h, cutoff {}h{})",
            window.name,
            window.definition.schedule,
            window.definition.duration,
            window.definition.cutoff,
            if window.definition.enabled {
                ""
            } else {
                ", disabled"
            }
        )?;
        for (name, target) in &window.targets {
            writeln!(
                out,
                "    target {name}: tag:Patch Group = {}",
                target.patch_group
            )?;
        }
        for (name, task) in &window.tasks {
            writeln!(
                out,
                "    task {name}: {:?} (priority {}{})",
                task.action,
                task.priority,
                task.service_role_arn
                    .as_deref()
                    .map(|role| format!(", as {role}"))
                    .unwrap_or_default()
            )?;
        }
    }
    for (os, name) in &desired.defaults {
        writeln!(out, "  default patch baseline for {}: {name}", os.as_str())?;
    }
    print_runs(out, desired)
}

/// Emergency runs: sent once per run token (the plan cannot tell whether one was sent:
/// that is the window's status and SSM's command history).
fn print_runs(out: &mut String, desired: &Desired) -> std::fmt::Result {
    for run in desired.runs.values() {
        let groups: Vec<&str> = run.patch_groups.iter().map(String::as_str).collect();
        writeln!(
            out,
            "  emergency run {} token {}: SendCommand AWS-RunPatchBaseline {:?} ({:?}) to \
             tag:Patch Group = {} (once per token{})",
            run.owner,
            run.run_token,
            run.operation,
            run.reboot_option,
            groups.join(", "),
            if run.enabled { "" } else { "; disabled" }
        )?;
    }
    Ok(())
}

/// One line per problem, under `indent` (none for those of no account-region).
fn print_problems(out: &mut String, indent: &str, problems: &[Problem]) -> std::fmt::Result {
    for problem in problems {
        writeln!(
            out,
            "{indent}! {} {}: {}",
            problem.owner, problem.reason, problem.message
        )?;
    }
    Ok(())
}

fn print_operations(out: &mut String, steps: &[Step]) -> std::fmt::Result {
    if steps.is_empty() {
        return writeln!(out, "  = no changes");
    }
    for step in steps {
        let owner = step
            .owner
            .as_ref()
            .map(|owner| format!("  ({owner})"))
            .unwrap_or_default();
        writeln!(out, "  {}{owner}", summarize(&step.operation))?;
    }
    Ok(())
}

fn object(reference: &ObjectRef) -> &str {
    match reference {
        ObjectRef::Id(id) => id,
        ObjectRef::Created(name) => name,
    }
}

/// One line per change, Terraform style: + create, ~ update, - delete.
pub fn summarize(operation: &Operation) -> String {
    match operation {
        Operation::CreateBaseline { baseline, .. } => {
            format!("+ create patch baseline {}", baseline.name)
        }
        Operation::UpdateBaseline { id, baseline, .. } => {
            format!("~ update patch baseline {} ({id})", baseline.name)
        }
        Operation::DeleteBaseline { id, name } => format!("- delete patch baseline {name} ({id})"),
        Operation::ReleaseBaseline { id } => {
            format!("- stop managing patch baseline {id} (orphan)")
        }
        Operation::RegisterPatchGroup {
            baseline,
            patch_group,
        } => {
            format!(
                "+ register patch group {patch_group} to {}",
                object(baseline)
            )
        }
        Operation::DeregisterPatchGroup {
            baseline_id,
            patch_group,
        } => {
            format!("- deregister patch group {patch_group} from {baseline_id}")
        }
        Operation::RegisterDefaultBaseline {
            baseline,
            operating_system,
        } => format!(
            "~ make {} the default patch baseline for {}",
            object(baseline),
            operating_system.as_str()
        ),
        Operation::RestoreDefaultBaseline {
            operating_system,
            replacing,
        } => format!(
            "~ make AWS's predefined baseline the default for {} again (in place of {replacing})",
            operating_system.as_str()
        ),
        Operation::CreateWindow { window, .. } => {
            format!("+ create maintenance window {}", window.name)
        }
        Operation::UpdateWindow { id, window, .. } => {
            format!("~ update maintenance window {} ({id})", window.name)
        }
        Operation::DeleteWindow { id, name } => {
            format!("- delete maintenance window {name} ({id})")
        }
        Operation::ReleaseWindow { id } => {
            format!("- stop managing maintenance window {id} (orphan)")
        }
        Operation::RegisterTarget { window, name, .. } => {
            format!("+ register target {name} with {}", object(window))
        }
        Operation::UpdateTarget {
            window_id, name, ..
        } => format!("~ update target {name} of {window_id}"),
        Operation::DeregisterTarget {
            window_id,
            target_id,
        } => format!("- deregister target {target_id} from {window_id}"),
        Operation::RegisterTask { window, name, .. } => {
            format!("+ register task {name} with {}", object(window))
        }
        Operation::UpdateTask {
            window_id, name, ..
        } => format!("~ update task {name} of {window_id}"),
        Operation::DeregisterTask { window_id, task_id } => {
            format!("- deregister task {task_id} from {window_id}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rollout_in_the_manifests_plans_its_first_stage_at_the_release() {
        let dir = std::env::temp_dir().join(format!("plan-rollout-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory");
        std::fs::write(
            dir.join("rollout.yaml"),
            r#"apiVersion: patchfleet.io/v1alpha1
kind: SystemAccount
metadata: {name: a, labels: {team: x}}
spec:
  accountId: "111111111111"
  roleArn: arn:aws:iam::111111111111:role/patchfleet
  regions: [eu-west-1]
  namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: p}}
  patchGroupGrants: [{namespace: p, values: [verify, prod]}]
---
apiVersion: patchfleet.io/v1alpha1
kind: PatchPolicy
metadata: {name: monthly, namespace: p}
spec:
  baselines:
    - operatingSystem: AMAZON_LINUX_2
      approvalRules:
        - {patchFilters: [{key: CLASSIFICATION, values: [Security]}], approveAfterDays: 7}
---
apiVersion: patchfleet.io/v1alpha1
kind: PatchGroup
metadata: {name: verify, namespace: p}
spec: {policyRef: {name: monthly}, accountSelector: {matchLabels: {team: x}}}
---
apiVersion: patchfleet.io/v1alpha1
kind: PatchGroup
metadata: {name: prod, namespace: p}
spec: {policyRef: {name: monthly}, accountSelector: {matchLabels: {team: x}}}
---
apiVersion: patchfleet.io/v1alpha1
kind: PatchRollout
metadata: {name: monthly, namespace: p}
spec:
  policyRef: {name: monthly}
  release: {token: "2026-12", cutoff: "2026-11-30"}
  stages:
    - {name: first, patchGroups: [verify]}
    - {name: then, patchGroups: [prod]}
"#,
        )
        .expect("write");
        let mut inventory = load(&dir).expect("manifests load");
        std::fs::remove_dir_all(&dir).ok();
        evaluate_rollouts(&mut inventory, k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
        let mut out = String::new();
        print_rollouts(&mut out, &inventory).expect("printed");
        assert!(
            out.contains("release 2026-12 (patches released up to 2026-11-30)"),
            "{out}"
        );
        assert!(
            out.contains("stage first: Installing, approves patches released up to 2026-11-30"),
            "{out}"
        );
        assert!(out.contains("stage then: Waiting, no release yet"), "{out}");
        let region = patchfleet_planner::account_regions(&inventory)
            .pop()
            .expect("an account-region");
        let (desired, problems) =
            patchfleet_planner::desired(&inventory, &Settings::new("plan"), &region);
        assert!(problems.is_empty(), "{problems:?}");
        let mut baselines = String::new();
        print_desired(&mut baselines, &desired).expect("printed");
        assert!(
            baselines.contains(
                "1 rules, released up to 2026-11-30, 0 approved, 0 rejected) <- groups: verify"
            ),
            "{baselines}"
        );
        assert!(
            baselines.contains("0 rules, 0 approved, 0 rejected) <- groups: prod"),
            "{baselines}"
        );
    }

    #[test]
    fn the_examples_plan_into_every_account_region() {
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
        let inventory = load(&examples).expect("examples load");
        let regions = patchfleet_planner::account_regions(&inventory);
        // customer-a-aws: eu-west-1, us-east-1; customer-b-vmware: eu-central-1.
        assert_eq!(regions.len(), 3);
        let settings = Settings {
            cluster_id: "plan".to_owned(),
            ..Settings::default()
        };
        for region in &regions {
            let (desired, problems) = patchfleet_planner::desired(&inventory, &settings, region);
            assert!(problems.is_empty(), "{region}: {problems:?}");
            // early, on-time and late: eight operating systems each.
            assert!(
                desired.baselines.len() >= 24,
                "{region}: {}",
                desired.baselines.len()
            );
            assert!(desired.windows.len() >= 2, "{region}");
        }
    }
}
