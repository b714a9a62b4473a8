//! database's steps, in order: the tenant secret, then MySQL made to agree
//! with it. Each takes only the ports it uses, records what it is about to
//! create in the run's ledger first (`stepdeploy_shared::ledger`), and says
//! what it changed.

pub mod mysql;
pub mod secret;

/// The phase name in the ledger.
const PHASE: &str = "database";
