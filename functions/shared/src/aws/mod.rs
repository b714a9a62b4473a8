//! The AWS half: SDK configuration and the per-environment connector
//! ([`sdk`], re-exported here), one error type for a failed call, and the
//! adapters every phase shares (state table, approvals table, guard, listener
//! rules, MySQL agent, retries, TLS roots, the HTTP probe, timing).

pub mod approvals;
pub mod error;
pub mod guard;
pub mod http;
pub mod listener;
pub mod mysql;
pub mod publish;
pub mod retry;
pub mod sdk;
pub mod state;
pub mod timing;
pub mod tls;

pub use sdk::*;
