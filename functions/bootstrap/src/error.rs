//! bootstrap's errors and the stable names Step Functions branches on.

use lambda_runtime::Diagnostic;
use std::sync::Arc;
use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::config::ConfigError;
use stepdeploy_shared::error_names;
use stepdeploy_shared::errors::{diagnostic, ErrorName};
use stepdeploy_shared::guard::GuardError;
use stepdeploy_shared::validate::FieldError;

/// Why bootstrap refused or failed a run.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// The event (or the state machine's payload) is invalid; nothing was created.
    #[error("invalid request: {0}")]
    Validation(#[from] FieldError),
    /// The environment configs could not be loaded at cold start.
    #[error("environment configuration is invalid: {0}")]
    Config(#[source] Arc<ConfigError>),
    /// Another run holds this tenant/environment.
    #[error("{tenant} in {environment} is being changed by {owner} (requested by {requested_by}); try again when it has finished (its lock expires {})", stepdeploy_shared::names::when(*expires_at, *now))]
    Locked {
        tenant: String,
        environment: String,
        /// Execution holding the lock.
        owner: String,
        /// Who requested that run.
        requested_by: String,
        /// When the lock may be taken over.
        expires_at: u64,
        /// When this was refused (for "in 23 h 12 min").
        now: u64,
    },
    /// The requested priority is used by another rule or tenant.
    #[error("detail.alb_priority: {priority} is in use by {holder} on the {environment} listener")]
    PriorityInUse {
        /// The priority asked for.
        priority: u32,
        /// Who holds it (tenant or rule host names).
        holder: String,
        environment: String,
    },
    /// No free priority left in the environment's range.
    #[error("no free ALB priority in {environment}'s range {min}..={max}; widen alb_priority_range or remove unused tenants")]
    PriorityExhausted {
        environment: String,
        /// The environment's `alb_priority_range`.
        min: u32,
        max: u32,
    },
    /// The listener cannot take another tenant's rule.
    #[error("{environment}'s load balancers are full: {rules} rules are used or claimed, and the environment holds {quota} tenants (an Application Load Balancer holds at most 100 rules (default quota) and 100 target groups (hard quota)); remove unused tenants or add a load balancer (additional_load_balancers) before adding {tenant}")]
    EnvironmentFull {
        environment: String,
        /// The tenant that does not fit.
        tenant: String,
        /// Rules on the listener (without the default) and claims not yet a rule.
        rules: usize,
        /// What the environment's load balancers hold.
        quota: u32,
    },
    /// Outside the environment's deployment window (or in a freeze), and it
    /// refuses rather than waits; nothing was made.
    #[error("{environment}: {reason}")]
    OutsideWindow {
        environment: String,
        /// The window or freeze, and the next opening.
        reason: String,
    },
    /// A newer request for the tenant replaced this one while it waited.
    #[error("{tenant} in {environment}: a newer request ({by}, requested by {requested_by}) replaced this one while it waited; nothing was changed")]
    Superseded {
        tenant: String,
        environment: String,
        /// The newer run.
        by: String,
        /// Who asked for it.
        requested_by: String,
    },
    /// A rollback named a release that cannot be put back; nothing was made.
    #[error("cannot roll {tenant} in {environment} back: {why}")]
    ReleaseNotFound {
        tenant: String,
        environment: String,
        /// Why, and what to do instead.
        why: String,
    },
    /// The claim after the gate was not admitted (see `stepdeploy_shared::guard`).
    #[error(transparent)]
    Guard(#[from] GuardError),
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] AwsCallError),
}

impl ErrorName for BootstrapError {
    fn error_name(&self) -> &'static str {
        match self {
            Self::Validation(_) => error_names::VALIDATION_FAILED,
            Self::Config(_) => error_names::CONFIG_INVALID,
            Self::Locked { .. } => error_names::DEPLOYMENT_LOCKED,
            Self::PriorityInUse { .. } => error_names::PRIORITY_IN_USE,
            Self::PriorityExhausted { .. } => error_names::PRIORITY_EXHAUSTED,
            Self::EnvironmentFull { .. } => error_names::ENVIRONMENT_FULL,
            Self::ReleaseNotFound { .. } => error_names::RELEASE_NOT_FOUND,
            Self::OutsideWindow { .. } => error_names::OUTSIDE_DEPLOYMENT_WINDOW,
            Self::Superseded { .. } => error_names::SUPERSEDED,
            Self::Guard(e) => e.error_name(),
            Self::Aws(e) => e.error_name(),
        }
    }
}

impl From<BootstrapError> for Diagnostic {
    fn from(err: BootstrapError) -> Self {
        diagnostic(&err)
    }
}
