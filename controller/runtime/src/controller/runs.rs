//! The Emergency step of an account pass: each desired run is sent once per run token,
//! then its command is followed until Run Command finishes it (also when the window is
//! disabled or changes strategy meanwhile). What is known of a run comes from this
//! process's last pass and from the MaintenanceWindow's status (which survives restarts);
//! the planner decides (`patchfleet_planner::runs`), this module only calls the edge and
//! tells.

use std::collections::BTreeMap;

use patchfleet_api::v1alpha1::{EmergencyRun, MaintenanceWindow};
use patchfleet_planner::Inventory;
use patchfleet_planner::inventory::window_owner;
use patchfleet_planner::model::{AccountRegion, Desired, DesiredRun, Owner};
use patchfleet_planner::runs::{
    COMMAND_HISTORY_DAYS, RunStep, emergency_run, recorded_runs, run_step,
};
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
    for (owner, run) in desired.runs.iter().filter(|(_, run)| run.enabled) {
        let window = inventory.window(&owner.namespace, &owner.name);
        let known = known_runs(remembered, window, owner, region);
        let step = run_step(run, known.iter().copied());
        let current = match step {
            RunStep::Settled(entry) | RunStep::Refresh(entry) => Some(entry),
            RunStep::FindOrSend => None,
        };
        let advanced = match step {
            RunStep::Settled(entry) => Ok(entry.clone()),
            RunStep::Refresh(entry) => refresh(client, entry).await,
            RunStep::FindOrSend => find_or_send(ctx, client, region, run).await,
        };
        match advanced {
            Ok(entry) => {
                announce_finish(ctx, region, owner, current, &entry).await;
                after.insert(owner.clone(), entry);
            }
            Err(error) => {
                warn!(%error, window = %owner, "emergency run");
                events::warning(ctx, owner, error.reason(), format!("{region}: {error}")).await;
                // Keep what was known, so the status does not forget a sent command.
                if let Some(entry) = current.or(known.first().copied()) {
                    after.insert(owner.clone(), entry.clone());
                }
                first_error.get_or_insert(error);
            }
        }
    }
    // The last run of a window that sends nothing now (disabled, another strategy, no
    // longer reaching here) is followed to its end all the same.
    for window in &inventory.windows {
        let owner = window_owner(window);
        if desired.runs.get(&owner).is_some_and(|run| run.enabled) {
            continue;
        }
        let known = known_runs(remembered, Some(window), &owner, region);
        let Some(entry) = known.first().copied() else {
            continue;
        };
        let followed = if entry.is_finished() {
            Ok(entry.clone())
        } else {
            refresh(client, entry).await
        };
        match followed {
            Ok(next) => {
                announce_finish(ctx, region, &owner, Some(entry), &next).await;
                after.insert(owner, next);
            }
            Err(error) => {
                warn!(%error, window = %owner, "following an emergency run");
                after.insert(owner, entry.clone());
                first_error.get_or_insert(error);
            }
        }
    }
    (after, first_error)
}

/// The records of a window's runs in this account-region: memory first (newer), then
/// the window's status.
fn known_runs<'a>(
    remembered: &'a BTreeMap<Owner, EmergencyRun>,
    window: Option<&'a MaintenanceWindow>,
    owner: &Owner,
    region: &AccountRegion,
) -> Vec<&'a EmergencyRun> {
    let recorded = window.into_iter().flat_map(|w| recorded_runs(w, region));
    remembered.get(owner).into_iter().chain(recorded).collect()
}

/// The command's status now. A command SSM does not list is unknown only once it is older
/// than SSM's command history; before that it is read again next time.
async fn refresh(client: &SsmClient, entry: &EmergencyRun) -> Result<EmergencyRun, EdgeError> {
    let region = client.target();
    Ok(match runs::read_command(client, &entry.command_id).await? {
        Some(command) => emergency_run(region, &entry.run_token, &command),
        None if beyond_history(entry) => EmergencyRun {
            status: "Unknown".to_owned(),
            status_details: Some("SSM no longer lists this command".to_owned()),
            ..entry.clone()
        },
        None => entry.clone(),
    })
}

fn beyond_history(entry: &EmergencyRun) -> bool {
    let requested = entry
        .requested_at
        .as_deref()
        .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok());
    match requested {
        Some(at) => {
            let age = k8s_openapi::jiff::Timestamp::now().duration_since(at);
            age.as_secs() > COMMAND_HISTORY_DAYS * 24 * 3600
        }
        // Not known when it was sent: SSM's answer is all there is.
        None => true,
    }
}

async fn find_or_send(
    ctx: &Context,
    client: &SsmClient,
    region: &AccountRegion,
    run: &DesiredRun,
) -> Result<EmergencyRun, EdgeError> {
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
            "{region}: run token {}: command {} sends AWS-RunPatchBaseline {:?} to patch \
             groups {}",
            run.run_token,
            command.command_id,
            run.operation,
            groups.join(", ")
        ),
    )
    .await;
    Ok(emergency_run(region, &run.run_token, &command))
}

/// An Event when this pass saw the command finish (not when SSM merely forgot it).
async fn announce_finish(
    ctx: &Context,
    region: &AccountRegion,
    owner: &Owner,
    before: Option<&EmergencyRun>,
    after: &EmergencyRun,
) {
    let was_running = before.is_some_and(|b| !b.is_finished() && b.command_id == after.command_id);
    if !was_running || !after.is_finished() || after.status == "Unknown" {
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
