//! Paginated SSM lists: one helper for every `NextToken` loop.
//!
//! Each page is one call through [`Session::send`], so it waits for the account's rate
//! limit and is counted like any other call. The SDK's own paginators (`into_paginator()`)
//! do not fit here: their stream sends the next request from inside the SDK when it is
//! polled, so the rate limit cannot be taken before each request, and learning that the
//! stream has ended takes one more poll, which `send` would count as a call (call counts
//! are exact: a converged account costs three list calls).

use std::convert::Infallible;
use std::future::Future;

use aws_sdk_ssm::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ssm::operation::describe_instance_information::DescribeInstanceInformationOutput;
use aws_sdk_ssm::operation::describe_instance_patch_states::DescribeInstancePatchStatesOutput;
use aws_sdk_ssm::operation::describe_instance_patch_states_for_patch_group::DescribeInstancePatchStatesForPatchGroupOutput;
use aws_sdk_ssm::operation::describe_instance_patches::DescribeInstancePatchesOutput;
use aws_sdk_ssm::operation::describe_maintenance_window_execution_task_invocations::DescribeMaintenanceWindowExecutionTaskInvocationsOutput;
use aws_sdk_ssm::operation::describe_maintenance_window_execution_tasks::DescribeMaintenanceWindowExecutionTasksOutput;
use aws_sdk_ssm::operation::describe_maintenance_window_executions::DescribeMaintenanceWindowExecutionsOutput;
use aws_sdk_ssm::operation::describe_maintenance_window_targets::DescribeMaintenanceWindowTargetsOutput;
use aws_sdk_ssm::operation::describe_maintenance_window_tasks::DescribeMaintenanceWindowTasksOutput;
use aws_sdk_ssm::operation::describe_maintenance_windows::DescribeMaintenanceWindowsOutput;
use aws_sdk_ssm::operation::describe_patch_baselines::DescribePatchBaselinesOutput;
use aws_sdk_ssm::operation::describe_patch_groups::DescribePatchGroupsOutput;
use aws_sdk_ssm::operation::list_commands::ListCommandsOutput;

use crate::edge::Session;
use crate::error::EdgeError;

/// One page of a paginated SSM operation's output.
pub(crate) trait Page {
    /// The token of the next page; `None` or empty on the last page.
    fn next_token(&self) -> Option<&str>;
}

macro_rules! pages {
    ($($output:ty),* $(,)?) => {
        $(impl Page for $output {
            fn next_token(&self) -> Option<&str> {
                <$output>::next_token(self)
            }
        })*
    };
}

pages!(
    DescribePatchBaselinesOutput,
    DescribePatchGroupsOutput,
    DescribeMaintenanceWindowsOutput,
    DescribeMaintenanceWindowTargetsOutput,
    DescribeMaintenanceWindowTasksOutput,
    ListCommandsOutput,
    DescribeInstanceInformationOutput,
    DescribeInstancePatchStatesOutput,
    DescribeInstancePatchesOutput,
    DescribeInstancePatchStatesForPatchGroupOutput,
    DescribeMaintenanceWindowExecutionsOutput,
    DescribeMaintenanceWindowExecutionTasksOutput,
    DescribeMaintenanceWindowExecutionTaskInvocationsOutput,
);

impl Session<'_> {
    /// Reads every page of `operation` in order, handing each to `each`. `call` sends the
    /// request for one page, given the previous page's token (`None` for the first).
    pub async fn each_page<T, E, R, Fut>(
        &self,
        operation: &'static str,
        call: impl FnMut(Option<String>) -> Fut,
        mut each: impl FnMut(&T),
    ) -> Result<(), EdgeError>
    where
        T: Page,
        Fut: Future<Output = Result<T, SdkError<E, R>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        self.find_in_pages(operation, call, |page| {
            each(page);
            None::<Infallible>
        })
        .await
        .map(|_| ())
    }

    /// Reads the pages of `operation` in order until `find` finds something in one, and
    /// returns it; `None` when no page had it. Pages after the one found are not read.
    pub async fn find_in_pages<T, E, R, Fut, B>(
        &self,
        operation: &'static str,
        mut call: impl FnMut(Option<String>) -> Fut,
        mut find: impl FnMut(&T) -> Option<B>,
    ) -> Result<Option<B>, EdgeError>
    where
        T: Page,
        Fut: Future<Output = Result<T, SdkError<E, R>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        let mut token = None;
        loop {
            let page = self.send(operation, call(token)).await?;
            if let Some(found) = find(&page) {
                return Ok(Some(found));
            }
            token = page
                .next_token()
                .filter(|t| !t.is_empty())
                .map(str::to_owned);
            if token.is_none() {
                return Ok(None);
            }
        }
    }
}
