//! The CLI's errors: each renders as one line an operator can act on, and
//! maps to an exit code scripts can branch on.

use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::config::ConfigError;
use stepdeploy_shared::validate::FieldError;

/// Exit code of a failed or aborted run that the CLI followed (`--wait`, `watch`).
pub const EXIT_RUN_FAILED: u8 = 3;
/// Exit code of bad input (clap also uses 2 for usage errors).
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit code of everything else (AWS unreachable or refusing, missing resources).
pub const EXIT_ERROR: u8 = 1;

/// Everything that can stop a command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// An argument that fails stepdeploy's own validation (the same rules bootstrap applies).
    #[error("{0}")]
    Invalid(#[from] FieldError),
    /// An environment config that does not load.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// Several config files failed (`config validate`); each was printed already.
    #[error("{failed} of {total} environment config(s) invalid")]
    ConfigsInvalid {
        /// How many failed.
        failed: usize,
        /// How many were checked.
        total: usize,
    },
    /// Something the operator named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A command that needs a decision the operator has not given.
    #[error("{0}")]
    Refused(String),
    /// No answer from AWS (or the local stack) at all.
    #[error("cannot reach AWS{at} for {operation}: {hint}", at = endpoint.as_deref().map(|e| format!(" at {e}")).unwrap_or_default())]
    Unreachable {
        /// The endpoint override in use, if any.
        endpoint: Option<String>,
        /// The call that got no answer.
        operation: &'static str,
        /// What to do about it.
        hint: &'static str,
        /// The SDK error.
        #[source]
        source: Box<AwsCallError>,
    },
    /// AWS answered with an error.
    #[error("{0}")]
    Aws(Box<AwsCallError>),
    /// The run the CLI followed did not succeed.
    #[error("execution {name} {status}{detail}", detail = error.as_deref().map(|e| format!(": {e}")).unwrap_or_default())]
    RunFailed {
        /// Execution name.
        name: String,
        /// Final status (`FAILED`, `ABORTED`, `TIMED_OUT`).
        status: String,
        /// Error name and cause, when the run gave them.
        error: Option<String>,
    },
    /// Reading the terminal or writing output failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl CliError {
    /// Wraps a failed AWS call, telling "nobody answered" apart from "AWS said no".
    pub fn aws(endpoint: Option<&str>, err: AwsCallError) -> Self {
        if err.unreachable {
            Self::Unreachable {
                endpoint: endpoint.map(str::to_string),
                operation: err.operation,
                hint: if endpoint.is_some() {
                    "no answer; is the local stack up? (local/up)"
                } else {
                    "no answer; check the network, --region and credentials"
                },
                source: Box::new(err),
            }
        } else {
            Self::Aws(Box::new(err))
        }
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Invalid(_) | Self::Config(_) | Self::ConfigsInvalid { .. } | Self::Refused(_) => {
                EXIT_BAD_INPUT
            }
            Self::RunFailed { .. } => EXIT_RUN_FAILED,
            _ => EXIT_ERROR,
        }
    }
}
