//! `stepdeploy`: the operator CLI. Thin `main`: parse the command line,
//! connect once, run the command, and turn any error into one line on stderr
//! and an exit code (1 error, 2 bad input, 3 the followed run failed).

mod args;
mod commands;
mod dora;
mod error;
mod fleet;
mod progress;
mod render;
mod stack;

use args::{Cli, Command, ConfigCommand, EventsCommand};
use clap::Parser;
use error::CliError;
use stack::Stack;
use std::process::ExitCode;
use stepdeploy_shared::aws::SdkOverrides;

async fn run(cli: Cli) -> Result<(), CliError> {
    let g = &cli.global;
    // Commands that need no AWS run without loading credentials.
    match &cli.command {
        Command::Config(ConfigCommand::Validate { files }) => {
            return commands::config_validate(g, files)
        }
        Command::Events(EventsCommand::Example {
            kind,
            tenant,
            environment,
        }) => return commands::events_example(g, *kind, tenant, environment),
        _ => {}
    }
    let overrides = SdkOverrides {
        endpoint_url: g.endpoint_url.clone(),
        profile: g.profile.clone(),
        region: g.region.clone(),
    };
    let stack = Stack::connect(&g.stack, &overrides).await;
    match &cli.command {
        Command::Deploy(a) => commands::deploy(&stack, g, a).await,
        Command::Rollout(a) => commands::rollout(&stack, g, a).await,
        Command::Watch(a) => commands::watch(&stack, g, a).await,
        Command::Status(a) => commands::status(&stack, g, a).await,
        Command::History(a) => commands::history(&stack, g, a).await,
        Command::Teardown(a) => commands::teardown(&stack, g, a).await,
        Command::Cleanup(a) => commands::cleanup(&stack, g, a).await,
        Command::Releases(a) => commands::releases(&stack, g, a).await,
        Command::Rollback(a) => commands::rollback(&stack, g, a).await,
        Command::Stats(a) => commands::stats(&stack, g, a).await,
        Command::Config(_) | Command::Events(_) => Ok(()),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stepdeploy: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
