//! The domain half: what stepdeploy means by a tenant, an environment, a
//! request, a plan, a ledger entry and a phase's result. Nothing here calls
//! AWS, so every rule in it is tested without a network.

pub mod config;
pub mod contract;
pub mod errors;
pub mod identity;
pub mod ledger;
pub mod metrics;
pub mod names;
pub mod plan;
pub mod request;
pub mod rollout;
pub mod validate;
pub mod window;
