//! Rolling one run back: read its ledger, undo it newest first (each entry
//! once), and release the lock when nothing is left.

use crate::cleanup::History;
use crate::ports::{Connector, Resources};
use crate::scope::TenantScope;
use crate::undo::{undo, Undone};
use crate::{configs, Environments, LeftBehind, RollbackError, RollbackOutput};
use stepdeploy_shared::contract::RunState;
use stepdeploy_shared::ledger::{LedgerEntry, LedgerKind};
use stepdeploy_shared::state::StateStore;
use stepdeploy_shared::DeploymentPlan;

/// Undoes the ledger of the run whose execution state is `state`.
pub(crate) async fn roll_back<C: Connector>(
    state: RunState,
    connector: &C,
    history: &impl History,
    environments: &Environments,
) -> Result<RollbackOutput, RollbackError> {
    // Without a plan bootstrap failed, and bootstrap cleans up after itself.
    let Some(plan) = plan_of(state, environments)? else {
        return Ok(RollbackOutput::default());
    };
    refuse_succeeded(history, &plan.execution).await?;
    let ports = connector.connect(&plan.env).await;
    let scope = TenantScope::from(&plan);
    let ledger = ports.state().ledger(&scope.execution).await?;
    let output = undo_ledger(&scope, &ports, newest_first_once(ledger)).await;
    if !output.left.is_empty() {
        tracing::warn!(left = output.left.len(), "rollback could not finish");
        return Err(RollbackError::Incomplete {
            execution: scope.execution,
            removed: output.removed,
            left: output.left,
        });
    }
    let lock_released = ports
        .state()
        .release_lock(scope.tenant.as_str(), &scope.execution)
        .await?;
    tracing::info!(
        removed = output.removed.len(),
        restored = output.restored.len(),
        "rolled back"
    );
    Ok(RollbackOutput {
        lock_released,
        ..output
    })
}

/// The run's plan, its environment as this function's configs say (not as
/// the payload does).
fn plan_of(
    run: RunState,
    environments: &Environments,
) -> Result<Option<DeploymentPlan>, RollbackError> {
    let Some(stepdeploy_shared::contract::Step {
        output: mut plan, ..
    }) = run.plan
    else {
        return Ok(None);
    };
    stepdeploy_shared::guard::reresolve(&mut plan, configs(environments)?)
        .map_err(|e| RollbackError::Validation(e.to_string()))?;
    Ok(Some(plan))
}

/// Undo only a run that did not succeed: a succeeded run's ledger is the
/// tenant's current state, and undoing it (a direct invoke with that run's
/// plan) would remove a live tenant without any approval.
async fn refuse_succeeded(history: &impl History, execution: &str) -> Result<(), RollbackError> {
    match history.status(execution).await?.as_deref() {
        Some("RUNNING" | "FAILED" | "TIMED_OUT" | "ABORTED") => Ok(()),
        other => Err(RollbackError::Validation(format!(
            "execution {execution} is {}: rollback undoes only runs that are failing or ended without success",
            other.unwrap_or("unknown")
        ))),
    }
}

/// The ledger newest first; an entry a retried phase wrote twice, once.
fn newest_first_once(mut ledger: Vec<LedgerEntry>) -> Vec<LedgerEntry> {
    let mut seen = Vec::new();
    ledger.reverse();
    ledger.retain(|e| {
        let new = !seen.contains(e);
        seen.push(e.clone());
        new
    });
    ledger
}

/// Undoes every entry, going past a failure: most entries do not depend on
/// each other, and the report then names everything that is left.
async fn undo_ledger<P: Resources>(
    scope: &TenantScope,
    ports: &P,
    ledger: Vec<LedgerEntry>,
) -> RollbackOutput {
    let mut output = RollbackOutput::default();
    for entry in &ledger {
        let line = format!("{} {}", entry.kind, entry.id);
        // The priority goes back to the pool only once nothing else is left:
        // a listener rule still standing would otherwise share it.
        if entry.kind == LedgerKind::PriorityClaim && !output.left.is_empty() {
            output.left.push(LeftBehind {
                resource: line,
                error: "kept until the rest is removed".into(),
            });
            continue;
        }
        match undo(scope, ports, entry).await {
            Ok(Undone::Removed | Undone::AlreadyGone) => output.removed.push(line),
            Ok(Undone::Restored) => output.restored.push(line),
            Err(error) => output.left.push(LeftBehind {
                resource: line,
                error: error.to_string(),
            }),
        }
    }
    output
}
