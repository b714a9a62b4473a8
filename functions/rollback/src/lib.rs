//! Undoing a run, entry by entry: the rollback Lambda's logic, also used by
//! teardown (which undoes every resource a tenant has, found by name).
//!
//! The phases write the ledger ahead of each change (see
//! `stepdeploy_shared::ledger`); an entry that names its resource instead of
//! carrying its id is looked up ([`find`]) and what is not there counts as
//! already gone.
//!
//! - [`handle`]: which of the three inputs this is (the state machine's
//!   `{state}`, a status-change event, a cleanup request; see [`cleanup`]);
//! - `run`: the ledger, newest first, each entry once; the lock;
//! - [`undo()`]: one entry, through the ports ([`ports`]: one small trait per
//!   service, and the AWS adapters).

pub mod cleanup;
mod error;
#[cfg(any(test, feature = "testing"))]
pub mod fake;
pub mod find;
pub mod ports;
mod run;
mod scope;
#[cfg(test)]
mod tests;
pub mod undo;

pub use error::{cleanup_command, RollbackError};
pub use ports::{AwsConnector, Connector, Resources};
pub use scope::TenantScope;
pub use undo::{undo, UndoError, Undone, SECRET_RECOVERY_DAYS};

use serde::Deserialize;
use stepdeploy_shared::contract::RunState;
pub use stepdeploy_shared::contract::{LeftBehind, RollbackOutput};

/// What the state machine passes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackInput {
    /// The whole execution state.
    pub state: RunState,
}

/// The environment configs, loaded once per cold start (the error kept to
/// answer every invocation with it).
pub type Environments = Result<
    stepdeploy_shared::EnvironmentSet,
    std::sync::Arc<stepdeploy_shared::config::ConfigError>,
>;

fn configs(
    environments: &Environments,
) -> Result<&stepdeploy_shared::EnvironmentSet, RollbackError> {
    environments
        .as_ref()
        .map_err(|e| RollbackError::Validation(format!("environment configuration: {e}")))
}

/// Runs rollback for one failed execution: the state machine's `{state}`,
/// an "Execution Status Change" event of a run that ended without reaching
/// its Catch, or an operator's cleanup request (see [`cleanup`]).
pub async fn handle<C: Connector>(
    input: serde_json::Value,
    connector: &C,
    history: &impl cleanup::History,
    reports: &impl cleanup::Reports,
    environments: &Environments,
) -> Result<RollbackOutput, RollbackError> {
    // Each path boxed: a rollback's future nests every port's calls, deeper
    // than the compiler lays out inside the Lambda runtime's own future.
    if cleanup::is_cleanup_request(&input) {
        let request = cleanup::cleanup_request(input, connector, history, reports, environments);
        return Box::pin(request).await;
    }
    if cleanup::is_status_change(&input) {
        let rollback = cleanup::after_status_change(input, connector, history, environments);
        return Box::pin(rollback).await;
    }
    let RollbackInput { state } = stepdeploy_shared::lambda::input(input)
        .map_err(|d| RollbackError::Validation(d.error_message))?;
    Box::pin(run::roll_back(state, connector, history, environments)).await
}
