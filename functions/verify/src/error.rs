//! verify's errors and the stable names Step Functions branches on. A
//! failing check is not an error: it is in the round's output, and the state
//! machine decides (another round, or `VerificationFailed`).

use lambda_runtime::Diagnostic;
use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::errors::{diagnostic, ErrorName};

/// Why a round could not even run its checks.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// An AWS read failed (not a failed check: the check could not be made).
    #[error(transparent)]
    Aws(#[from] AwsCallError),
}

impl ErrorName for VerifyError {
    fn error_name(&self) -> &'static str {
        match self {
            Self::Aws(e) => e.error_name(),
        }
    }
}

impl From<VerifyError> for Diagnostic {
    fn from(err: VerifyError) -> Self {
        diagnostic(&err)
    }
}
