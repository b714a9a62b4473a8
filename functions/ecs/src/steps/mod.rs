//! The phase's five steps, in the order the handler runs them; each finds
//! its resource or creates it (through
//! [`create_or_adopt`](stepdeploy_shared::retry::create_or_adopt), so a
//! create whose answer was lost is adopted, never made twice), puts a drifted
//! one back, and writes every change to the run's ledger first (the
//! write-ahead rule of [`stepdeploy_shared::ledger`]).

mod access_point;
mod listener_rule;
mod service;
mod target_group;
mod task_definition;

pub use access_point::ensure_access_point;
pub use listener_rule::ensure_listener_rule;
pub use service::ensure_service;
pub use target_group::ensure_target_group;
pub use task_definition::ensure_task_definition;

use crate::error::EcsError;
use crate::ports::Tags;
use stepdeploy_shared::ledger::{LedgerEntry, LedgerKind};
use stepdeploy_shared::state::StateStore;
use stepdeploy_shared::DeploymentPlan;

/// The tags every resource the phase creates gets.
fn tags(plan: &DeploymentPlan) -> Tags {
    vec![
        ("Tenant".into(), plan.tenant.to_string()),
        ("Environment".into(), plan.environment.to_string()),
        ("ManagedBy".into(), "stepdeploy".into()),
    ]
}

/// The run's ledger writer and the list of changes the phase reports.
pub struct Recorder<'a, S> {
    state: &'a S,
    execution: &'a str,
    changes: Vec<String>,
}

impl<'a, S: StateStore> Recorder<'a, S> {
    /// A recorder writing to `execution`'s ledger in `state`.
    pub fn new(state: &'a S, execution: &'a str) -> Self {
        Self {
            state,
            execution,
            changes: Vec::new(),
        }
    }

    /// Writes the ledger entry for a change about to be made: a create under
    /// the name rollback finds it by, an update with the value to put back.
    async fn write_ahead(
        &self,
        kind: LedgerKind,
        id: &str,
        created: bool,
        previous: Option<String>,
    ) -> Result<(), EcsError> {
        let entry = LedgerEntry {
            kind,
            id: id.into(),
            created,
            phase: "ecs".into(),
            previous,
        };
        self.state.record(self.execution, &entry).await?;
        Ok(())
    }

    /// Notes a change made (`created`, else updated), for the output.
    fn changed(&mut self, kind: LedgerKind, id: &str, created: bool) {
        let verb = if created { "created" } else { "updated" };
        self.note(format!("{verb} {kind} {id}"));
    }

    /// Notes a change that needs no ledger entry (nothing to undo).
    fn note(&mut self, change: String) {
        self.changes.push(change);
    }

    /// The changes noted so far, in order (taken: the list starts again).
    pub fn changes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.changes)
    }
}
