//! The Emergency step of an account pass: each desired run is sent once per run token,
//! then its command is followed until Run Command finishes it. What is known of a run
//! comes from this process's last pass and from the MaintenanceWindow's status (which
//! survives restarts); the planner decides (`patchfleet_planner::runs`), this module
//! only calls the edge and tells.

use std::collections::BTreeMap;

use patchfleet_api::v1alpha1::EmergencyRun;
use patchfleet_planner::Inventory;
use patchfleet_planner::model::{AccountRegion, Desired, DesiredRun, Owner};
use patchfleet_planner::runs::{RunStep, emergency_run, run_step};
use patchfleet_ssm::{EdgeError, SsmClient, runs};
use tracing::{info, warn};

use super::{Context, events};

/// The runs after this pass, by window, and the first error met (the other runs still
/// went ahead: one window's failure does not hold up another's).
pub async fn pass_runs(
    ctx: &Context,
    client: &SsmClient,
    region: &AccountRegion,
    desired: &Desired,
    inventory: &Inventory,
    remembered: &BTreeMap<Owner, EmergencyRun>,
) -> (BTreeMap<Owner, EmergencyRun>, Option<EdgeError>) {
    let mut after = BTreeMap::new();
    let mut first_error = None;
    for (owner, run) in &desired.runs {
        let recorded = recorded_runs(inventory, owner, region);
        let known: Vec<&EmergencyRun> = remembered.get(owner).into_iter().chain(recorded).collect();
        match advance(ctx, client, region, run, &known).await {
            Ok(entry) => {
                let before = known.iter().find(|k| k.run_token == run.run_token);
                announce_finish(ctx, region, owner, before.copied(), &entry).await;
                after.insert(owner.clone(), entry);
            }
            Err(error) => {
                warn!(%error, window = %owner, "emergency run");
                events::warning(ctx, owner, error.reason(), format!("{region}: {error}")).await;
                // Keep what was known, so the status does not forget a sent command.
                if let Some(known) = known.first() {
                    after.insert(owner.clone(), (*known).clone());
                }
                first_error.get_or_insert(error);
            }
        }
    }
    (after, first_error)
}

async fn advance(
    ctx: &Context,
    client: &SsmClient,
    region: &AccountRegion,
    run: &DesiredRun,
    known: &[&EmergencyRun],
) -> Result<EmergencyRun, EdgeError> {
    match run_step(run, known.iter().copied()) {
        RunStep::Settled => Ok(known
            .iter()
            .find(|k| k.run_token == run.run_token)
            .map(|k| (*k).clone())
            .unwrap_or_else(|| unknown(region, run, ""))),
        RunStep::Refresh { command_id } => {
            Ok(match runs::read_command(client, &command_id).await? {
                Some(command) => emergency_run(region, &run.run_token, &command),
                None => unknown(region, run, &command_id),
            })
        }
        RunStep::FindOrSend => {
            let marker = DesiredRun::marker(&ctx.settings.cluster_id, &run.owner, &run.run_token);
            if let Some(command) = runs::find_command(client, &marker).await? {
                info!(command = %command.command_id, window = %run.owner, "emergency run found already sent");
                return Ok(emergency_run(region, &run.run_token, &command));
            }
            let command = runs::send_run(client, run).await?;
            let groups: Vec<&str> = run.patch_groups.iter().map(String::as_str).collect();
            info!(command = %command.command_id, window = %run.owner, "emergency run sent");
            events::normal(
                ctx,
                &run.owner,
                "EmergencyRunSent",
                format!(
                    "{region}: run token {}: command {} sends AWS-RunPatchBaseline {:?} to \
                     patch groups {}",
                    run.run_token,
                    command.command_id,
                    run.operation,
                    groups.join(", ")
                ),
            )
            .await;
            Ok(emergency_run(region, &run.run_token, &command))
        }
    }
}

/// A command SSM no longer lists (it keeps them 30 days): finished as far as patchfleet
/// can tell, so it is not polled for ever.
fn unknown(region: &AccountRegion, run: &DesiredRun, command_id: &str) -> EmergencyRun {
    EmergencyRun {
        account_id: region.account_id.clone(),
        region: region.region.clone(),
        run_token: run.run_token.clone(),
        command_id: command_id.to_owned(),
        status: "Unknown".to_owned(),
        status_details: Some("SSM no longer lists this command".to_owned()),
        target_count: 0,
        completed_count: 0,
        error_count: 0,
        requested_at: None,
    }
}

/// The runs the window's status records for this account-region.
fn recorded_runs<'i>(
    inventory: &'i Inventory,
    owner: &Owner,
    region: &AccountRegion,
) -> impl Iterator<Item = &'i EmergencyRun> {
    inventory
        .window(&owner.namespace, &owner.name)
        .and_then(|w| w.status.as_ref())
        .into_iter()
        .flat_map(|s| s.emergency_runs.iter())
        .filter(|r| r.account_id == region.account_id && r.region == region.region)
}

/// An Event when this pass saw the command finish.
async fn announce_finish(
    ctx: &Context,
    region: &AccountRegion,
    owner: &Owner,
    before: Option<&EmergencyRun>,
    after: &EmergencyRun,
) {
    let was_running = before.is_some_and(|b| !b.is_finished() && b.command_id == after.command_id);
    if !was_running || !after.is_finished() {
        return;
    }
    let note = format!(
        "{region}: run token {}: command {} finished {} ({} of {} instances completed, {} \
         failed)",
        after.run_token,
        after.command_id,
        after.status,
        after.completed_count,
        after.target_count,
        after.error_count
    );
    if after.status == "Success" {
        events::normal(ctx, owner, "EmergencyRunSucceeded", note).await;
    } else {
        events::warning(ctx, owner, "EmergencyRunFailed", note).await;
    }
}
