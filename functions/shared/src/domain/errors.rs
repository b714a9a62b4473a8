//! Stable `error_type` names returned by the Lambdas and matched by the state
//! machines' `Retry`/`Catch` clauses.
//!
//! These strings are part of the public contract: operators branch on them in
//! the Step Functions console and the ASL files name them. A test checks that
//! every `ErrorEquals` in `statemachines/*.asl.json` is a built-in or one of
//! [`error_names::ALL`].

use lambda_runtime::Diagnostic;

/// Every `error_type` stepdeploy returns.
pub mod error_names {
    /// The request or a phase payload is malformed; retrying cannot help.
    pub const VALIDATION_FAILED: &str = "ValidationFailed";
    /// An environment configuration file is missing, unreadable or invalid.
    pub const CONFIG_INVALID: &str = "ConfigInvalid";
    /// Another run holds the tenant/environment lock.
    pub const DEPLOYMENT_LOCKED: &str = "DeploymentLocked";
    /// The requested ALB priority belongs to another listener rule.
    pub const PRIORITY_IN_USE: &str = "PriorityInUse";
    /// Every priority in the environment's range is taken.
    pub const PRIORITY_EXHAUSTED: &str = "PriorityExhausted";
    /// The environment's load balancer holds as many tenants as AWS's quotas allow.
    pub const ENVIRONMENT_FULL: &str = "EnvironmentFull";
    /// AWS kept throttling after the SDK's own retries; the state machine retries with backoff.
    pub const AWS_THROTTLED: &str = "AwsThrottled";
    /// AWS kept answering 5xx (or not at all) after the SDK's own retries; the
    /// state machine retries with backoff (every phase is safe to run again).
    pub const AWS_UNAVAILABLE: &str = "AwsUnavailable";
    /// The deploy role is not allowed to make a call (a setup problem, not transient).
    pub const AWS_ACCESS_DENIED: &str = "AwsAccessDenied";
    /// Any other AWS API failure.
    pub const AWS_SERVICE_ERROR: &str = "AwsServiceError";
    /// MySQL refused a connection or a statement.
    pub const DATABASE_ERROR: &str = "DatabaseError";
    /// The deployment did not become healthy within the allowed attempts.
    pub const VERIFICATION_FAILED: &str = "VerificationFailed";
    /// The tenant's public URL did not answer as expected after the DNS change.
    pub const DNS_CHECK_FAILED: &str = "DnsCheckFailed";
    /// An approver rejected the production deployment.
    pub const APPROVAL_REJECTED: &str = "ApprovalRejected";
    /// Not enough approvals arrived before the gate's timeout.
    pub const APPROVAL_TIMED_OUT: &str = "ApprovalTimedOut";
    /// A run in an approval environment went on without a valid quorum record
    /// for its execution (resumed outside the gate, or a phase invoked directly).
    pub const APPROVAL_BYPASSED: &str = "ApprovalBypassed";
    /// A teardown named a tenant that has no trace in that environment.
    pub const TENANT_NOT_FOUND: &str = "TenantNotFound";
    /// Rollback could not remove everything the run created.
    pub const ROLLBACK_FAILED: &str = "RollbackFailed";
    /// A bug or an unexpected state inside stepdeploy itself.
    pub const INTERNAL_ERROR: &str = "InternalError";
    /// A fleet rollout stopped: a wave spent its failure budget (the
    /// rollout state machine's last state; later waves were not started).
    pub const ROLLOUT_HALTED: &str = "RolloutHalted";
    /// A rollback named a release the tenant does not have (or one that
    /// cannot be put back as asked: the current one, or no database dump).
    pub const RELEASE_NOT_FOUND: &str = "ReleaseNotFound";
    /// Outside the environment's deployment window or in a freeze, where
    /// the environment refuses rather than waits.
    pub const OUTSIDE_DEPLOYMENT_WINDOW: &str = crate::window::OUTSIDE_DEPLOYMENT_WINDOW;
    /// A newer request for the same tenant and environment replaced this
    /// one while it waited in the queue.
    pub const SUPERSEDED: &str = "Superseded";

    /// The errors a deploy run ends with when a check stopped it before it
    /// changed anything: the request was bad or named no release, the
    /// tenant was busy or the environment full, the window was closed, a
    /// newer request superseded it, or the approvers said no (or nothing).
    /// Such a run is a refused request, not a deployment that failed: the
    /// delivery metrics leave it out and `stepdeploy stats` counts it
    /// apart. `ApprovalBypassed` is not one: a forged approval is a failure
    /// everyone should see.
    pub const REFUSALS: &[&str] = &[
        VALIDATION_FAILED,
        CONFIG_INVALID,
        DEPLOYMENT_LOCKED,
        ENVIRONMENT_FULL,
        PRIORITY_EXHAUSTED,
        RELEASE_NOT_FOUND,
        OUTSIDE_DEPLOYMENT_WINDOW,
        SUPERSEDED,
        APPROVAL_REJECTED,
        APPROVAL_TIMED_OUT,
    ];

    /// Whether a run that failed with `name` was refused ([`REFUSALS`]):
    /// the one rule the metrics and `stepdeploy stats` both apply.
    pub fn is_refusal(name: &str) -> bool {
        REFUSALS.contains(&name)
    }

    /// All of the above, for checks that the ASL only names errors that exist.
    pub const ALL: &[&str] = &[
        VALIDATION_FAILED,
        CONFIG_INVALID,
        DEPLOYMENT_LOCKED,
        PRIORITY_IN_USE,
        PRIORITY_EXHAUSTED,
        ENVIRONMENT_FULL,
        AWS_THROTTLED,
        AWS_UNAVAILABLE,
        AWS_ACCESS_DENIED,
        AWS_SERVICE_ERROR,
        DATABASE_ERROR,
        VERIFICATION_FAILED,
        DNS_CHECK_FAILED,
        APPROVAL_REJECTED,
        APPROVAL_TIMED_OUT,
        APPROVAL_BYPASSED,
        TENANT_NOT_FOUND,
        ROLLBACK_FAILED,
        INTERNAL_ERROR,
        ROLLOUT_HALTED,
        RELEASE_NOT_FOUND,
        OUTSIDE_DEPLOYMENT_WINDOW,
        SUPERSEDED,
    ];
}

/// Implemented by each phase's error enum: the stable name Step Functions sees.
pub trait ErrorName {
    /// One of [`error_names::ALL`].
    fn error_name(&self) -> &'static str;
}

/// Builds the Lambda error response for an error that names itself.
///
/// Phases implement `From<TheirError> for Diagnostic` with this, so the
/// `errorType` in the execution history is the stable name and the
/// `errorMessage` is the error's `Display` (which never carries secrets).
pub fn diagnostic<E: ErrorName + std::fmt::Display>(err: &E) -> Diagnostic {
    Diagnostic {
        error_type: err.error_name().to_string(),
        error_message: err.to_string(),
    }
}

/// How an AWS SDK error should be surfaced, decided from the error's code
/// (the protocol's modeled field), never from its message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsFailureKind {
    /// Throttled: worth retrying later.
    Throttled,
    /// A server-side failure (5xx) or no answer: worth retrying later.
    Unavailable,
    /// Access denied: the deploy role lacks a permission.
    AccessDenied,
    /// Anything else.
    Other,
}

impl AwsFailureKind {
    /// Classifies by the error code AWS returned (`None` for transport failures).
    pub fn from_code(code: Option<&str>) -> Self {
        match code {
            Some(
                "Throttling"
                | "ThrottlingException"
                | "ThrottledException"
                | "TooManyRequestsException"
                | "RequestLimitExceeded"
                | "RequestThrottled"
                | "RequestThrottledException"
                | "SlowDown"
                | "ProvisionedThroughputExceededException"
                | "PriorRequestNotComplete"
                // A DynamoDB transaction cancelled by a conflicting one (not by
                // its own condition: callers answer those as lost races first,
                // see `state::ConditionalWriteError`): retried like throttling.
                | "TransactionCanceledException"
                | "TransactionConflictException"
                | "TransactionInProgressException",
            ) => Self::Throttled,
            // SNS says AuthorizationError.
            Some(
                "AccessDenied"
                | "AccessDeniedException"
                | "UnauthorizedOperation"
                | "AuthorizationError",
            ) => {
                Self::AccessDenied
            }
            Some(
                "InternalError"
                | "InternalFailure"
                | "InternalServerError"
                | "InternalServerException"
                | "InternalServiceError"
                | "ServiceUnavailable"
                | "ServiceUnavailableException"
                | "RequestTimeout"
                | "RequestTimeoutException",
            ) => Self::Unavailable,
            _ => Self::Other,
        }
    }

    /// The `error_type` for this kind.
    pub fn error_name(self) -> &'static str {
        match self {
            Self::Throttled => error_names::AWS_THROTTLED,
            Self::Unavailable => error_names::AWS_UNAVAILABLE,
            Self::AccessDenied => error_names::AWS_ACCESS_DENIED,
            Self::Other => error_names::AWS_SERVICE_ERROR,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_pascal_case() {
        let mut seen = std::collections::HashSet::new();
        for name in error_names::ALL {
            assert!(seen.insert(*name), "duplicate error name {name}");
            assert!(name.chars().next().is_some_and(|c| c.is_ascii_uppercase()));
            assert!(name.chars().all(|c| c.is_ascii_alphanumeric()), "{name}");
            assert!(!name.starts_with("States.") && !name.starts_with("Lambda."));
        }
    }

    #[test]
    fn classifies_codes() {
        assert_eq!(
            AwsFailureKind::from_code(Some("ThrottlingException")),
            AwsFailureKind::Throttled
        );
        assert_eq!(
            AwsFailureKind::from_code(Some("AccessDeniedException")),
            AwsFailureKind::AccessDenied
        );
        assert_eq!(
            AwsFailureKind::from_code(Some("ValidationError")),
            AwsFailureKind::Other
        );
        assert_eq!(AwsFailureKind::from_code(None), AwsFailureKind::Other);
        assert_eq!(
            AwsFailureKind::from_code(Some("ServiceUnavailable")),
            AwsFailureKind::Unavailable
        );
        assert_eq!(
            AwsFailureKind::Unavailable.error_name(),
            error_names::AWS_UNAVAILABLE
        );
        assert_eq!(
            AwsFailureKind::Throttled.error_name(),
            error_names::AWS_THROTTLED
        );
    }

    #[derive(Debug, thiserror::Error)]
    #[error("tenant: must start with a letter")]
    struct Sample;
    impl ErrorName for Sample {
        fn error_name(&self) -> &'static str {
            error_names::VALIDATION_FAILED
        }
    }

    #[test]
    fn diagnostic_carries_stable_name_and_message() {
        let d = diagnostic(&Sample);
        assert_eq!(d.error_type, "ValidationFailed");
        assert_eq!(d.error_message, "tenant: must start with a letter");
    }
}
