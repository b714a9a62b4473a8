//! The one place every stepdeploy Lambda takes its rules from, in two
//! halves: [`domain`] (names, validation, config, requests, plan, ledger, the
//! phase contract, error names; no AWS) and [`aws`] (SDK config and the
//! per-environment connector, AWS errors, state table, guard, …), plus
//! [`lambda`], the one Lambda entry every `main` uses.
//!
//! Phases never derive a name or read an environment's settings on their own:
//! they go through this crate so that dev, sit and prod stay consistent and
//! the state machines can rely on one set of `error_type` names.

pub mod aws;
pub mod domain;
pub mod lambda;

// The modules by their short names, as every crate has always used them.
pub use aws::error as aws_error;
pub use aws::{approvals, guard, http, listener, mysql, publish, retry, state, timing, tls};
pub use domain::{
    config, contract, errors, identity, ledger, names, plan, request, rollout, validate, window,
};

pub use config::{EnvironmentConfig, EnvironmentSet};
pub use errors::error_names;
pub use names::ResourceNames;
pub use plan::DeploymentPlan;
pub use request::{DeployRequest, Request, TeardownRequest};
pub use validate::{EnvironmentName, ImageRef, TenantName};

/// Sets up structured logging the way the Lambda runtime expects it
/// (`AWS_LAMBDA_LOG_FORMAT`, `AWS_LAMBDA_LOG_LEVEL`), once per cold start.
/// Later calls do nothing, so a `main` that logs before
/// [`lambda::serve`] calls it first.
pub fn init_tracing() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(lambda_runtime::tracing::init_default_subscriber);
}
