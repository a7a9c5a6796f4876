//! Staged rollouts, pure (docs/rollout.md): which PatchGroups sit in which stage, the
//! baseline a stage's groups get for its release, what a stage's nodes show for that
//! release, and how the stages move. The runtime reads the evidence (from the compliance
//! pass) and writes the status; everything decided is decided here.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use patchfleet_api::v1alpha1::{
    Approval, BaselineSpec, GroupFailures, OperatingSystem, PatchRollout, PatchRolloutStatus,
    ReleaseStatus, StageEvidence, StageSpec, StageState, StageStatus, WindowRun,
};

use crate::compliance::PatchStateReading;
use crate::inventory::{Inventory, is_being_deleted, name_of, namespace_of};
use crate::model::ObservedRegistration;
use crate::naming::stage_baseline_name;

/// The release a stage's baselines approve.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StageRelease {
    pub token: String,
    /// YYYY-MM-DD.
    pub cutoff: String,
}

/// Where a staged PatchGroup sits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    /// The PatchRollout's name (in the group's namespace).
    pub rollout: String,
    pub stage: String,
    /// The stage's position in the rollout (0 first).
    pub index: usize,
    /// What the stage's baselines approve now: None before its first release.
    pub release: Option<StageRelease>,
}

impl Assignment {
    /// The stage's baseline for `os` of `policy`.
    pub fn baseline_name(&self, namespace: &str, policy: &str, os: OperatingSystem) -> String {
        let release = self
            .release
            .as_ref()
            .map(|r| (r.token.as_str(), r.cutoff.as_str()));
        stage_baseline_name(namespace, policy, os, &self.rollout, &self.stage, release)
    }
}

/// Every rollout's stages in one inventory: which group is in which stage, and what is
/// wrong with each rollout's references (each message names the field).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Staging {
    /// (namespace, PatchGroup name) -> its stage, for rollouts the controller evaluated.
    groups: HashMap<(String, String), Assignment>,
    /// (namespace, PatchGroup name) -> (rollout, stage): every claim, evaluated or not.
    claims: HashMap<(String, String), (String, String)>,
    /// (namespace, PatchRollout name) -> problems.
    problems: BTreeMap<(String, String), Vec<String>>,
    /// (namespace, PatchRollout name) -> the operating systems its stages cannot hold back
    /// (their nodes keep the policy's own baseline), each with why.
    unstaged: BTreeMap<(String, String), Vec<String>>,
}

impl Staging {
    /// Rollouts in creation order (then by namespace and name) claim their groups; a group
    /// that an earlier rollout claimed or that does not exist is left out and reported on
    /// the later rollout; one that follows another policy is reported and kept in its
    /// stage. A rollout being deleted stages
    /// nothing: its groups go back to their policy's own baselines. Nor does one the
    /// controller has not evaluated yet (no release in its status): its groups keep their
    /// baselines until its first stage takes the release, rather than being given, for a
    /// moment, stage baselines without one.
    pub fn of(inventory: &Inventory) -> Staging {
        let mut staging = Staging::default();
        let mut rollouts: Vec<&PatchRollout> = inventory
            .rollouts
            .iter()
            .filter(|r| !is_being_deleted(&r.metadata))
            .collect();
        rollouts.sort_by(|a, b| {
            let key = |r: &PatchRollout| {
                (
                    r.metadata.creation_timestamp.as_ref().map(|t| t.0),
                    namespace_of(&r.metadata).to_owned(),
                    name_of(&r.metadata).to_owned(),
                )
            };
            key(a).cmp(&key(b))
        });
        for rollout in rollouts {
            staging.add(inventory, rollout);
        }
        staging
    }

    fn add(&mut self, inventory: &Inventory, rollout: &PatchRollout) {
        let namespace = namespace_of(&rollout.metadata);
        let name = name_of(&rollout.metadata);
        let policy_name = &rollout.spec.policy_ref.name;
        let mut problems = Vec::new();
        let key = (namespace.to_owned(), name.to_owned());
        match inventory.policy(namespace, policy_name) {
            None => problems.push(format!(
                "spec.policyRef: PatchPolicy {namespace}/{policy_name} not found"
            )),
            Some(policy) => {
                let unstaged: Vec<String> = policy
                    .spec
                    .baselines
                    .iter()
                    .map(|b| b.operating_system)
                    .filter(|os| !os.supports_approval_delay())
                    .map(|os| unstaged_message(policy_name, os))
                    .collect();
                if !unstaged.is_empty() {
                    self.unstaged.insert(key.clone(), unstaged);
                }
            }
        }
        let released = released_stages(rollout.status.as_ref());
        let evaluated = rollout.status.as_ref().is_some_and(|s| s.release.is_some());
        for (index, stage) in rollout.spec.stages.iter().enumerate() {
            for (j, group_name) in stage.patch_groups.iter().enumerate() {
                let field = format!("spec.stages[{index}].patchGroups[{j}]");
                let Some(group) = inventory.group(namespace, group_name) else {
                    problems.push(format!(
                        "{field}: PatchGroup {namespace}/{group_name} not found"
                    ));
                    continue;
                };
                // Reported, and the group stays in its stage: with the stage's cutoff
                // applied to the policy it now follows, never released to that policy's
                // own approvals by a spec mistake (say, a policy renamed in one commit
                // and the rollout in the next).
                if group.spec.policy_ref.name != *policy_name {
                    problems.push(format!(
                        "{field}: PatchGroup {group_name} follows PatchPolicy {}, not the \
                         rollout's {policy_name}",
                        group.spec.policy_ref.name
                    ));
                }
                let key = (namespace.to_owned(), group_name.clone());
                if let Some((rollout, stage)) = self.claims.get(&key) {
                    problems.push(format!(
                        "{field}: PatchGroup {group_name} is already in stage {stage} of \
                         PatchRollout {rollout}"
                    ));
                    continue;
                }
                self.claims
                    .insert(key.clone(), (name.to_owned(), stage.name.clone()));
                if !evaluated {
                    continue;
                }
                self.groups.insert(
                    key,
                    Assignment {
                        rollout: name.to_owned(),
                        stage: stage.name.clone(),
                        index,
                        release: released.get(stage.name.as_str()).cloned(),
                    },
                );
            }
        }
        if !problems.is_empty() {
            self.problems.insert(key, problems);
        }
    }

    /// Why some of a rollout's operating systems are not staged (empty: all are).
    pub fn unstaged(&self, namespace: &str, rollout: &str) -> &[String] {
        self.unstaged
            .get(&(namespace.to_owned(), rollout.to_owned()))
            .map_or(&[], Vec::as_slice)
    }

    pub fn assignment(&self, namespace: &str, group: &str) -> Option<&Assignment> {
        self.groups.get(&(namespace.to_owned(), group.to_owned()))
    }

    /// What is wrong with a rollout's references (empty: nothing).
    pub fn problems(&self, namespace: &str, rollout: &str) -> &[String] {
        self.problems
            .get(&(namespace.to_owned(), rollout.to_owned()))
            .map_or(&[], Vec::as_slice)
    }

    /// Whether any rollout stages any group.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

/// Why an operating system's nodes are not staged. PatchRule's ApproveAfterDays and
/// ApproveUntilDate are "Not supported for Debian Server or Ubuntu Server"
/// (<https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PatchRule.html>),
/// so no cutoff can hold them back; the one other way, an explicit list of the packages
/// the stage before installed, takes at most 50 entries (ApprovedPatches in
/// <https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CreatePatchBaseline.html>),
/// fewer than one month of a distribution's updates, so it would not be the same release.
fn unstaged_message(policy: &str, os: OperatingSystem) -> String {
    format!(
        "spec.policyRef: PatchPolicy {policy} has a {os} baseline, and SSM approves {os} \
         patches as released (approval rules take no release date: \
         https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PatchRule.html; \
         an approved list holds at most 50 packages): no stage can hold those nodes to \
         what the stage before installed, so they follow the policy's own baseline in \
         every stage (docs/rollout.md). Give them a policy of their own to stop this",
        os = os.as_str()
    )
}

/// The release each stage's baselines approve, from the status.
fn released_stages(status: Option<&PatchRolloutStatus>) -> HashMap<&str, StageRelease> {
    let Some(status) = status else {
        return HashMap::new();
    };
    status
        .stages
        .iter()
        .filter_map(|s| {
            Some((
                s.name.as_str(),
                StageRelease {
                    token: s.release.clone()?,
                    cutoff: s.cutoff.clone()?,
                },
            ))
        })
        .collect()
}

/// A stage's baseline for one of the policy's specs: every approval rule approves what
/// was released on or before the cutoff (SSM's ApproveUntilDate, replacing any
/// ApproveAfterDays; an earlier ApproveUntilDate of the policy's own stays); without a
/// release, no rule approves anything, so only the policy's explicitly approved patches
/// are approved.
pub fn release_spec(spec: &BaselineSpec, cutoff: Option<&str>) -> BaselineSpec {
    let mut staged = spec.clone();
    match cutoff {
        None => staged.approval_rules.clear(),
        Some(cutoff) => {
            for rule in &mut staged.approval_rules {
                rule.approve_after_days = None;
                let until = match rule.approve_until_date.take() {
                    // YYYY-MM-DD compares as the date it is.
                    Some(own) if own.as_str() < cutoff => own,
                    _ => cutoff.to_owned(),
                };
                rule.approve_until_date = Some(until);
            }
        }
    }
    staged
}

/// What one group's nodes in one account-region showed for a release.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupEvidence {
    pub nodes: u32,
    pub installed: u32,
    pub failed: u32,
    pub pending_reboot: u32,
    /// The last run of an Install window targeting the group here.
    pub last_install: Option<WindowRun>,
}

/// Counts the nodes of `group` (its `Patch Group` value) by their last report: an Install
/// judged against one of `release_baselines` (by name) that left nothing failed and
/// nothing missing is installed; a report under a release baseline with failed patches,
/// failed; anything else (an older release's baseline, a Scan, patches still missing) not
/// yet. Nodes judged against one of `unstaged` (the policy's own baselines of operating
/// systems no stage can hold back, such as Ubuntu) are not the stage's to count.
pub fn group_evidence(
    states: &[PatchStateReading],
    registrations: &[ObservedRegistration],
    group: &str,
    release_baselines: &BTreeSet<String>,
    unstaged: &BTreeSet<String>,
) -> GroupEvidence {
    let names: HashMap<&str, &str> = registrations
        .iter()
        .filter_map(|r| Some((r.baseline_id.as_str(), r.baseline_name.as_deref()?)))
        .collect();
    let mut evidence = GroupEvidence::default();
    for state in states.iter().filter(|s| s.patch_group == group) {
        let name = names.get(state.baseline_id.as_str());
        if name.is_some_and(|name| unstaged.contains(*name)) {
            continue;
        }
        evidence.nodes += 1;
        if !name.is_some_and(|name| release_baselines.contains(*name)) {
            continue;
        }
        if state.failed > 0 {
            evidence.failed += 1;
        } else if state.install && state.missing == 0 {
            evidence.installed += 1;
            if state.installed_pending_reboot > 0 {
                evidence.pending_reboot += 1;
            }
        }
    }
    evidence
}

impl GroupEvidence {
    /// Adds another reading's counts; the later of the two Install runs stays.
    pub fn add(&mut self, other: &GroupEvidence) {
        self.nodes += other.nodes;
        self.installed += other.installed;
        self.failed += other.failed;
        self.pending_reboot += other.pending_reboot;
        if let Some(run) = &other.last_install
            && self
                .last_install
                .as_ref()
                .is_none_or(|last| run.started() > last.started())
        {
            self.last_install = Some(run.clone());
        }
    }
}

/// One group's evidence summed over its account-regions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupTotals {
    pub group: String,
    pub evidence: GroupEvidence,
    pub account_regions: u32,
}

/// A stage's evidence from its groups' totals (None when no account-region reported).
pub fn stage_evidence(groups: &[GroupTotals]) -> Option<StageEvidence> {
    if groups.iter().all(|g| g.account_regions == 0) {
        return None;
    }
    let mut sum = GroupEvidence::default();
    let mut account_regions = 0;
    let mut failed_groups = Vec::new();
    for g in groups {
        sum.add(&g.evidence);
        account_regions += g.account_regions;
        if g.evidence.failed > 0 {
            failed_groups.push(GroupFailures {
                patch_group: g.group.clone(),
                failed: g.evidence.failed,
            });
        }
    }
    failed_groups.sort_by(|a, b| {
        b.failed
            .cmp(&a.failed)
            .then_with(|| a.patch_group.cmp(&b.patch_group))
    });
    failed_groups.truncate(MAX_FAILED_GROUPS);
    Some(StageEvidence {
        nodes: sum.nodes,
        installed: sum.installed,
        failed: sum.failed,
        pending_reboot: sum.pending_reboot,
        account_regions,
        failed_groups,
        window_execution: sum.last_install.map(|run| run.execution_id),
    })
}

/// The most groups a stage's evidence names.
pub const MAX_FAILED_GROUPS: usize = 10;

/// `N` or `N%` of `total`, as SSM reads MaxErrors: a percentage rounds down.
pub fn most_failed(spec: &str, total: u32) -> u32 {
    match spec.strip_suffix('%') {
        Some(percent) => {
            let percent: u64 = percent.parse().unwrap_or(0);
            u32::try_from(u64::from(total) * percent / 100).unwrap_or(u32::MAX)
        }
        None => spec.parse().unwrap_or(0),
    }
}

/// `N` or `N%` of `total` nodes that must have installed: a percentage rounds up and,
/// above 0, needs at least one node (an empty stage proves nothing).
pub fn least_installed(spec: &str, total: u32) -> u32 {
    match spec.strip_suffix('%') {
        Some(percent) => {
            let percent: u64 = percent.parse().unwrap_or(100);
            let needed = (u64::from(total) * percent).div_ceil(100);
            let needed = u32::try_from(needed).unwrap_or(u32::MAX);
            if percent > 0 { needed.max(1) } else { 0 }
        }
        None => spec.parse().unwrap_or(u32::MAX),
    }
}

/// A soak (`30s`, `15m`, `12h`, `7d`), None when it is not one.
pub fn parse_soak(soak: &str) -> Option<SignedDuration> {
    let unit = soak.chars().last()?;
    let number: i64 = soak.get(..soak.len() - 1)?.parse().ok()?;
    let seconds = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        _ => return None,
    };
    Some(SignedDuration::from_secs(number.checked_mul(seconds)?))
}

/// The day (UTC) of `now`, as a cutoff.
pub fn today(now: Timestamp) -> String {
    now.strftime("%Y-%m-%d").to_string()
}

/// A stage's move, for an Event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub stage: String,
    pub to: StageState,
    pub message: String,
}

/// What one evaluation decided.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// None while problems hold a rollout that never started a release: a release's
    /// cutoff is taken when it can start, not while the spec is wrong.
    pub release: Option<ReleaseStatus>,
    pub stages: Vec<StageStatus>,
    pub transitions: Vec<Transition>,
    /// Stages whose release changed: their groups' baselines change.
    pub moved: Vec<String>,
}

impl Evaluation {
    /// The first failed stage, if any.
    pub fn failed(&self) -> Option<&StageStatus> {
        self.stages.iter().find(|s| s.state == StageState::Failed)
    }

    /// Whether every stage passed the current release.
    pub fn complete(&self) -> bool {
        self.stages.iter().all(|s| s.state == StageState::Passed)
    }
}

/// Moves a rollout's stages on the evidence, in order: a stage takes the current release
/// when the stage before passed it (and, when Manual, a person approved it); it soaks
/// once its gate holds and passes when the soak elapsed with the gate holding; more failed
/// nodes than the gate allows fail it and hold every later stage where it is. Nothing
/// moves while `problems` is not empty, and a stage without `evidence` (keyed by stage
/// name, read for its current release) keeps its state.
pub fn evaluate(
    rollout: &PatchRollout,
    evidence: &BTreeMap<String, StageEvidence>,
    problems: &[String],
    now: Timestamp,
) -> Evaluation {
    let previous = rollout.status.as_ref();
    // While problems hold the rollout, a new token starts nothing.
    let release = if problems.is_empty() {
        Some(current_release(rollout, now))
    } else {
        previous.and_then(|s| s.release.clone())
    };
    let mut evaluation = Evaluation {
        release: release.clone(),
        stages: Vec::new(),
        transitions: Vec::new(),
        moved: Vec::new(),
    };
    let mut open = problems.is_empty();
    for (index, spec) in rollout.spec.stages.iter().enumerate() {
        let before = previous
            .and_then(|s| s.stages.iter().find(|st| st.name == spec.name))
            .cloned()
            .unwrap_or_else(|| StageStatus {
                name: spec.name.clone(),
                release: None,
                cutoff: None,
                state: StageState::Waiting,
                since: Time(now),
                evidence: None,
                message: String::new(),
            });
        let mut stage = before.clone();
        let previous_name = index
            .checked_sub(1)
            .and_then(|i| rollout.spec.stages.get(i))
            .map(|s| s.name.as_str());
        let Some(release) = &release else {
            // Problems hold a rollout that never started: every stage as it is.
            stage.message = "held: the rollout's spec has problems (see Stalled)".into();
            evaluation.stages.push(stage);
            continue;
        };
        // A stage has the current release when it took it: the same token and cutoff, and
        // a state it reaches only by taking it. A Waiting stage that still holds a token
        // that comes back (A, then B, then A again) waits to take it again.
        let has_release = stage.release.as_deref() == Some(release.token.as_str())
            && stage.cutoff.as_deref() == Some(release.cutoff.as_str())
            && matches!(
                stage.state,
                StageState::Installing
                    | StageState::Soaking
                    | StageState::Passed
                    | StageState::Failed
            );
        if !has_release {
            if !problems.is_empty() {
                stage.message = "held: the rollout's spec has problems (see Stalled)".into();
            } else if !open {
                let previous_name = previous_name.unwrap_or_default();
                set_state(&mut stage, StageState::Waiting, now);
                stage.message = format!(
                    "waiting for stage {previous_name} to pass release {}",
                    release.token
                );
            } else if spec.approval == Approval::Manual
                && spec.approved_release.as_deref() != Some(release.token.as_str())
            {
                set_state(&mut stage, StageState::AwaitingApproval, now);
                stage.message = format!(
                    "release {} awaits approval: set spec.stages[{index}].approvedRelease \
                     to {}",
                    release.token, release.token
                );
            } else {
                stage.release = Some(release.token.clone());
                stage.cutoff = Some(release.cutoff.clone());
                stage.evidence = None;
                // Since the move, even from Installing (a new release's clock starts).
                stage.state = StageState::Installing;
                stage.since = Time(now);
                stage.message = format!(
                    "baselines approve patches released up to {}; waiting for the \
                     stage's nodes to install them",
                    release.cutoff
                );
                evaluation.moved.push(spec.name.clone());
            }
            open = false;
        } else {
            if problems.is_empty() {
                advance(
                    &mut stage,
                    spec,
                    index,
                    release,
                    evidence.get(&spec.name),
                    now,
                );
            }
            open = open && stage.state == StageState::Passed;
        }
        if stage.state != before.state
            || stage.release != before.release
            || stage.since != before.since
        {
            evaluation.transitions.push(Transition {
                stage: stage.name.clone(),
                to: stage.state,
                message: stage.message.clone(),
            });
        }
        evaluation.stages.push(stage);
    }
    evaluation
}

/// The release in force: the one in the status while the spec's token is unchanged, else
/// a new one starting now.
fn current_release(rollout: &PatchRollout, now: Timestamp) -> ReleaseStatus {
    let spec = &rollout.spec.release;
    match rollout.status.as_ref().and_then(|s| s.release.as_ref()) {
        Some(release) if release.token == spec.token => release.clone(),
        _ => ReleaseStatus {
            token: spec.token.clone(),
            cutoff: spec.cutoff.clone().unwrap_or_else(|| today(now)),
            started_at: Time(now),
        },
    }
}

fn set_state(stage: &mut StageStatus, state: StageState, now: Timestamp) {
    if stage.state != state {
        stage.state = state;
        stage.since = Time(now);
    }
}

/// A stage that has the current release: override, fail, soak or pass on its evidence.
fn advance(
    stage: &mut StageStatus,
    spec: &StageSpec,
    index: usize,
    release: &ReleaseStatus,
    evidence: Option<&StageEvidence>,
    now: Timestamp,
) {
    if stage.state != StageState::Passed
        && spec.override_release.as_deref() == Some(release.token.as_str())
    {
        set_state(stage, StageState::Passed, now);
        stage.message = format!(
            "passed by a person's override (spec.stages[{index}].overrideRelease), \
             whatever the gate says"
        );
        return;
    }
    if !matches!(stage.state, StageState::Installing | StageState::Soaking) {
        return;
    }
    let Some(evidence) = evidence else {
        return;
    };
    stage.evidence = Some(evidence.clone());
    let allowed = most_failed(&spec.gate.max_failed, evidence.nodes);
    let needed = least_installed(&spec.gate.min_installed, evidence.nodes);
    if evidence.failed > allowed {
        set_state(stage, StageState::Failed, now);
        let groups: Vec<String> = evidence
            .failed_groups
            .iter()
            .map(|g| format!("{} in PatchGroup {}", g.failed, g.patch_group))
            .collect();
        stage.message = format!(
            "gate failed: {} of {} nodes failed to install release {} ({}), more than \
             the {} spec.stages[{index}].gate.maxFailed allows; later stages are held \
             until a new release or spec.stages[{index}].overrideRelease",
            evidence.failed,
            evidence.nodes,
            release.token,
            groups.join(", "),
            allowed
        );
        return;
    }
    if evidence.installed < needed {
        set_state(stage, StageState::Installing, now);
        stage.message = format!(
            "{} of {} nodes installed release {}; the gate needs {needed}",
            evidence.installed, evidence.nodes, release.token
        );
        return;
    }
    set_state(stage, StageState::Soaking, now);
    let soak = parse_soak(&spec.soak).unwrap_or(SignedDuration::ZERO);
    let soaked = now.duration_since(stage.since.0) >= soak;
    if soaked {
        set_state(stage, StageState::Passed, now);
        stage.message = format!(
            "{} of {} nodes installed release {} and the gate held for {}",
            evidence.installed, evidence.nodes, release.token, spec.soak
        );
    } else {
        stage.message = format!(
            "{} of {} nodes installed release {}; the gate must hold for {} from `since`",
            evidence.installed, evidence.nodes, release.token, spec.soak
        );
    }
}
