//! The state machines' runs: finding them by name prefix, waiting for them
//! to end, and reading their histories for assertions.

use crate::clients::orchestrator;
use std::time::{Duration, Instant};

/// The deploy state machine's ARN.
pub const DEPLOY_STATE_MACHINE: &str =
    "arn:aws:states:eu-west-1:123456789012:stateMachine:stepdeploy-deploy-tenant";

/// The teardown state machine.
pub const TEARDOWN_STATE_MACHINE: &str =
    "arn:aws:states:eu-west-1:123456789012:stateMachine:stepdeploy-teardown-tenant";

/// The fleet rollout state machine.
pub const ROLLOUT_STATE_MACHINE: &str =
    "arn:aws:states:eu-west-1:123456789012:stateMachine:stepdeploy-rollout-fleet";

/// Every deploy execution whose name starts with `prefix` (all pages), running or not.
pub async fn deploy_execution_names(prefix: &str) -> Vec<String> {
    let sfn = aws_sdk_sfn::Client::new(&orchestrator().await);
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let page = sfn
            .list_executions()
            .state_machine_arn(DEPLOY_STATE_MACHINE)
            .set_next_token(token)
            .send()
            .await
            .expect("list executions");
        names.extend(
            page.executions()
                .iter()
                .filter(|e| e.name().starts_with(prefix))
                .map(|e| e.name().to_string()),
        );
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return names;
        }
    }
}

/// The deploy execution whose name starts with `prefix`; with `finished`, once it is no longer running.
pub async fn find_execution(
    prefix: &str,
    finished: bool,
    within: std::time::Duration,
) -> aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput {
    find_execution_of(DEPLOY_STATE_MACHINE, prefix, finished, within).await
}

/// [`find_execution`] on any state machine.
pub async fn find_execution_of(
    state_machine: &str,
    prefix: &str,
    finished: bool,
    within: std::time::Duration,
) -> aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput {
    let sfn = aws_sdk_sfn::Client::new(&orchestrator().await);
    let deadline = std::time::Instant::now() + within;
    loop {
        let list = sfn
            .list_executions()
            .state_machine_arn(state_machine)
            .send()
            .await
            .expect("list executions");
        if let Some(found) = list
            .executions()
            .iter()
            .find(|e| e.name().starts_with(prefix))
        {
            let described = sfn
                .describe_execution()
                .execution_arn(found.execution_arn())
                .send()
                .await
                .expect("describe");
            if !finished || described.status() != &aws_sdk_sfn::types::ExecutionStatus::Running {
                return described;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {} execution named {prefix}* within {within:?}",
            if finished { "finished" } else { "started" }
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// Every deploy execution whose name starts with `prefix` (all pages of the list), described, once at least `count` of them have finished; the running ones are left out.
pub async fn finished_executions(
    prefix: &str,
    count: usize,
    within: Duration,
) -> Vec<aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput> {
    finished_executions_of(DEPLOY_STATE_MACHINE, prefix, count, within).await
}

/// [`finished_executions`] on any state machine.
pub async fn finished_executions_of(
    state_machine: &str,
    prefix: &str,
    count: usize,
    within: Duration,
) -> Vec<aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput> {
    let sfn = aws_sdk_sfn::Client::new(&orchestrator().await);
    let deadline = Instant::now() + within;
    loop {
        let mut arns = Vec::new();
        let mut token = None;
        loop {
            let page = sfn
                .list_executions()
                .state_machine_arn(state_machine)
                .set_next_token(token)
                .send()
                .await
                .expect("list executions");
            arns.extend(
                page.executions()
                    .iter()
                    .filter(|e| e.name().starts_with(prefix))
                    .map(|e| e.execution_arn().to_string()),
            );
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        let mut done = Vec::new();
        for arn in &arns {
            let described = sfn
                .describe_execution()
                .execution_arn(arn)
                .send()
                .await
                .expect("describe");
            if described.status() != &aws_sdk_sfn::types::ExecutionStatus::Running {
                done.push(described);
            }
        }
        if done.len() >= count {
            return done;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {count} executions {prefix}* ({} started) finished within {within:?}",
            done.len(),
            arns.len()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The names of the states an execution entered, in order.
pub async fn states_entered(arn: &str) -> Vec<String> {
    let sfn = aws_sdk_sfn::Client::new(&orchestrator().await);
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let page = sfn
            .get_execution_history()
            .execution_arn(arn)
            .max_results(1000)
            .set_next_token(token)
            .send()
            .await
            .expect("history");
        names.extend(
            page.events()
                .iter()
                .filter_map(|e| e.state_entered_event_details())
                .map(|d| d.name().to_string()),
        );
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return names;
        }
    }
}

/// The input of the first entry into state `name`, as JSON (`None` if the
/// execution has not entered it): what a Wait or Choice state saw.
pub async fn state_input(arn: &str, name: &str) -> Option<serde_json::Value> {
    let sfn = aws_sdk_sfn::Client::new(&orchestrator().await);
    let mut pages = sfn
        .get_execution_history()
        .execution_arn(arn)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.expect("history");
        if let Some(entered) = page
            .events()
            .iter()
            .filter_map(|e| e.state_entered_event_details())
            .find(|d| d.name() == name)
        {
            return serde_json::from_str(entered.input().unwrap_or("null")).ok();
        }
    }
    None
}

/// A finished execution's events, one line each, for assertion messages.
pub async fn history(arn: &str) -> String {
    let sfn = aws_sdk_sfn::Client::new(&orchestrator().await);
    let events = sfn
        .get_execution_history()
        .execution_arn(arn)
        .max_results(1000)
        .send()
        .await
        .expect("history");
    events
        .events()
        .iter()
        .map(|e| {
            format!(
                "{:?} {:?} {:?}",
                e.r#type(),
                e.state_entered_event_details().map(|d| d.name()),
                e.task_failed_event_details()
                    .map(|d| (d.error(), d.cause()))
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
