//! Emergency runs: what to do about one desired run in one account-region, given what is
//! already known of it. Run Command keeps no idempotency token and commands carry no
//! tags, so "once per run token" rests on two records: the MaintenanceWindow's status
//! (and the controller's memory of its last pass), and, when neither knows the token, the
//! command's Comment marker found in SSM (a command sent just before a crash, whose status
//! write was lost). Only when both are silent is the command sent.

use patchfleet_api::v1alpha1::{EmergencyRun, MaintenanceWindow};

use crate::model::{AccountRegion, DesiredRun, ObservedCommand};

/// The next step for one desired run, with the record it rests on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunStep<'k> {
    /// Sent and finished: nothing to do, no call to make.
    Settled(&'k EmergencyRun),
    /// Sent, not finished: read its status again (ListCommands by CommandId).
    Refresh(&'k EmergencyRun),
    /// Not known to have been sent: look for its marker in SSM, send it if absent.
    FindOrSend,
}

/// Decides the step from the records of this account-region's runs (memory first, then
/// status): the first one for the desired token counts.
pub fn run_step<'k>(
    desired: &DesiredRun,
    known: impl IntoIterator<Item = &'k EmergencyRun>,
) -> RunStep<'k> {
    match known
        .into_iter()
        .find(|run| run.run_token == desired.run_token)
    {
        Some(run) if run.is_finished() => RunStep::Settled(run),
        Some(run) => RunStep::Refresh(run),
        None => RunStep::FindOrSend,
    }
}

/// SSM keeps commands for 30 days
/// (<https://docs.aws.amazon.com/systems-manager/latest/userguide/monitor-commands.html>):
/// only a command older than that may be missing from ListCommands for good.
pub const COMMAND_HISTORY_DAYS: i64 = 30;

/// The runs the window's status records for one account-region.
pub fn recorded_runs<'w>(
    window: &'w MaintenanceWindow,
    account_region: &AccountRegion,
) -> impl Iterator<Item = &'w EmergencyRun> {
    window
        .status
        .iter()
        .flat_map(|s| s.emergency_runs.iter())
        .filter(|r| r.account_id == account_region.account_id && r.region == account_region.region)
}

/// The command of `commands` (as ListCommands lists them) that carries the run's marker.
pub fn find_command<'c>(
    marker: &str,
    commands: impl IntoIterator<Item = &'c ObservedCommand>,
) -> Option<&'c ObservedCommand> {
    commands.into_iter().find(|c| {
        c.comment
            .as_deref()
            .is_some_and(|comment| comment.starts_with(marker))
    })
}

/// The status entry for a command of `run_token` in `account_region`.
pub fn emergency_run(
    account_region: &AccountRegion,
    run_token: &str,
    command: &ObservedCommand,
) -> EmergencyRun {
    EmergencyRun {
        account_id: account_region.account_id.clone(),
        region: account_region.region.clone(),
        run_token: run_token.to_owned(),
        command_id: command.command_id.clone(),
        status: command.status.clone(),
        status_details: command.status_details.clone(),
        target_count: command.target_count,
        completed_count: command.completed_count,
        error_count: command.error_count,
        requested_at: command.requested_at.clone(),
    }
}
