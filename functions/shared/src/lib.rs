//! The one place every stepdeploy Lambda takes its rules from: domain types,
//! naming conventions, validation, error names, environment configuration,
//! AWS SDK configuration and tracing set-up.
//!
//! Phases never derive a name or read an environment's settings on their own:
//! they go through this crate so that dev, sit and prod stay consistent and
//! the state machines can rely on one set of `error_type` names.

pub mod approvals;
pub mod aws;
pub mod aws_error;
pub mod config;
pub mod contract;
pub mod errors;
pub mod guard;
pub mod http;
pub mod identity;
pub mod lambda;
pub mod ledger;
pub mod listener;
pub mod mysql;
pub mod names;
pub mod plan;
pub mod request;
pub mod retry;
pub mod rollout;
pub mod state;
pub mod timing;
pub mod tls;
pub mod validate;

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
