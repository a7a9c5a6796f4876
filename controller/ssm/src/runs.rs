//! Emergency runs through Run Command: send AWS-RunPatchBaseline to the instances of some
//! patch groups, find a command patchfleet sent by its Comment marker, read a command's
//! status. The decisions (send or not) are the planner's (`patchfleet_planner::runs`).

use aws_sdk_ssm::types as sdk;
use patchfleet_planner::model::{DesiredRun, ObservedCommand};

use crate::convert;
use crate::edge::{Session, SsmClient};
use crate::error::{EdgeError, ErrorKind};

/// ListCommands pages hold at most 50 commands
/// (<https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_ListCommands.html>).
const COMMANDS_PAGE: i32 = 50;

/// The tag key patch groups are known by
/// (<https://docs.aws.amazon.com/systems-manager/latest/userguide/patch-manager-patch-groups.html>).
const PATCH_GROUP_TAG_TARGET: &str = "tag:Patch Group";

/// Sends the run: AWS-RunPatchBaseline with the task's Operation and RebootOption, to the
/// instances tagged `Patch Group` with one of the run's groups, at the task's rate
/// controls (<https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_SendCommand.html>).
pub async fn send_run(client: &SsmClient, run: &DesiredRun) -> Result<ObservedCommand, EdgeError> {
    let s = Session::new(client);
    let target = sdk::Target::builder()
        .key(PATCH_GROUP_TAG_TARGET)
        .set_values(Some(run.patch_groups.iter().cloned().collect()))
        .build();
    let out = s
        .send(
            "SendCommand",
            s.ssm()
                .send_command()
                .document_name(convert::RUN_PATCH_BASELINE)
                .targets(target)
                .set_parameters(Some(convert::run_patch_baseline_parameters(
                    run.operation,
                    run.reboot_option,
                )))
                .max_concurrency(&run.max_concurrency)
                .max_errors(&run.max_errors)
                .comment(&run.comment)
                .customize()
                .config_override(single_attempt())
                .send(),
        )
        .await?;
    // Without a command id there is nothing to follow: the next pass finds the command
    // by its marker, if it was sent.
    out.command()
        .map(command_from_sdk)
        .filter(|c| !c.command_id.is_empty())
        .ok_or_else(|| {
            EdgeError::new(
                ErrorKind::Other,
                client.scope(),
                "SendCommand",
                "the reply names no command",
            )
        })
}

/// SendCommand is not idempotent (no client token): an SDK retry after a reply lost on
/// the way back would run the patch twice. One attempt only; a failure leaves the run
/// unknown, and the next pass looks for its marker before sending again.
fn single_attempt() -> aws_sdk_ssm::config::Builder {
    aws_sdk_ssm::config::Builder::default()
        .retry_config(aws_sdk_ssm::config::retry::RetryConfig::standard().with_max_attempts(1))
}

/// The command with this id, as ListCommands reports it now; None when SSM no longer
/// knows it (commands are kept for 30 days).
pub async fn read_command(
    client: &SsmClient,
    command_id: &str,
) -> Result<Option<ObservedCommand>, EdgeError> {
    let s = Session::new(client);
    let out = s
        .send(
            "ListCommands",
            s.ssm().list_commands().command_id(command_id).send(),
        )
        .await;
    match out {
        Ok(out) => Ok(out.commands().first().map(command_from_sdk)),
        Err(error) if error.code.as_deref() == Some("InvalidCommandId") => Ok(None),
        Err(error) => Err(error),
    }
}

/// The newest AWS-RunPatchBaseline command whose Comment starts with `marker`, if SSM
/// still lists one.
pub async fn find_command(
    client: &SsmClient,
    marker: &str,
) -> Result<Option<ObservedCommand>, EdgeError> {
    let s = Session::new(client);
    let filter = sdk::CommandFilter::builder()
        .key(sdk::CommandFilterKey::DocumentName)
        .value(convert::RUN_PATCH_BASELINE)
        .build()
        .map_err(|e| {
            EdgeError::new(
                ErrorKind::Validation,
                client.scope(),
                "ListCommands",
                e.to_string(),
            )
        })?;
    s.find_in_pages(
        "ListCommands",
        |token| {
            s.ssm()
                .list_commands()
                .filters(filter.clone())
                .max_results(COMMANDS_PAGE)
                .set_next_token(token)
                .send()
        },
        |out| {
            let page: Vec<ObservedCommand> = out.commands().iter().map(command_from_sdk).collect();
            patchfleet_planner::runs::find_command(marker, &page).cloned()
        },
    )
    .await
}

fn command_from_sdk(c: &sdk::Command) -> ObservedCommand {
    ObservedCommand {
        command_id: c.command_id().unwrap_or_default().to_owned(),
        comment: c.comment().map(str::to_owned),
        status: c
            .status()
            .map_or("Pending", sdk::CommandStatus::as_str)
            .to_owned(),
        status_details: c.status_details().map(str::to_owned),
        target_count: c.target_count(),
        completed_count: c.completed_count(),
        error_count: c.error_count(),
        requested_at: c.requested_date_time().and_then(|t| {
            t.fmt(aws_sdk_ssm::primitives::DateTimeFormat::DateTime)
                .ok()
        }),
    }
}
