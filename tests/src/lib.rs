//! Harness for the integration tests: brings the local stack up (once, with
//! `local/up`, which is idempotent), and gives AWS clients for the
//! orchestrator account and for each environment's account (the latter
//! through the local stack's admin role, as an operator looks around).
//!
//! One module per concern; everything is re-exported here, so tests import
//! `stepdeploy_tests::…` without knowing the layout.

mod approvals;
mod clients;
mod events;
mod executions;
mod inventory;
mod invoke;
mod mysql;
mod site;
mod stack;
mod state;

pub use approvals::*;
pub use clients::*;
pub use events::*;
pub use executions::*;
pub use inventory::*;
pub use invoke::*;
pub use mysql::*;
pub use site::*;
pub use stack::*;
pub use state::*;
