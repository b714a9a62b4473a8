//! [`SecretResources`] on Secrets Manager.

use super::{Removal, SecretResources};
use stepdeploy_shared::aws_error::AwsCallError;

/// Secrets Manager adapter.
#[derive(Clone)]
pub struct SecretsAdapter(pub aws_sdk_secretsmanager::Client);

impl SecretResources for SecretsAdapter {
    async fn live_secret(&self, name: &str) -> Result<Option<String>, AwsCallError> {
        match self.0.describe_secret().secret_id(name).send().await {
            Ok(d) if d.deleted_date().is_none() => Ok(Some(d.arn().unwrap_or(name).to_string())),
            Ok(_) => Ok(None),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(AwsCallError::new("secretsmanager:DescribeSecret", e)),
        }
    }

    // A recovery window, not a forced delete: a forced delete finishes
    // asynchronously, so a redeploy right after could not create the secret
    // again; a scheduled one is restored by the next deployment's database
    // phase (and an operator can restore it for 7 days).
    async fn schedule_deletion(
        &self,
        id: &str,
        recovery_days: i64,
    ) -> Result<Removal, AwsCallError> {
        match self
            .0
            .delete_secret()
            .secret_id(id)
            .recovery_window_in_days(recovery_days)
            .send()
            .await
        {
            Ok(_) => Ok(Removal::Removed),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(Removal::AlreadyGone)
            }
            // Already scheduled for deletion (an earlier attempt): done.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_invalid_request_exception()) =>
            {
                let scheduled = self
                    .0
                    .describe_secret()
                    .secret_id(id)
                    .send()
                    .await
                    .map(|d| d.deleted_date().is_some())
                    .unwrap_or(false);
                if scheduled {
                    Ok(Removal::AlreadyGone)
                } else {
                    Err(AwsCallError::new("secretsmanager:DeleteSecret", e))
                }
            }
            Err(e) => Err(AwsCallError::new("secretsmanager:DeleteSecret", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_secretsmanager::operation::delete_secret::DeleteSecretError;
    use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput;
    use aws_sdk_secretsmanager::types::error::InvalidRequestException;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    fn refused() -> DeleteSecretError {
        DeleteSecretError::InvalidRequestException(
            InvalidRequestException::builder()
                .message("already scheduled for deletion")
                .build(),
        )
    }

    #[tokio::test]
    async fn a_secret_already_scheduled_for_deletion_is_already_gone() {
        let delete = mock!(aws_sdk_secretsmanager::Client::delete_secret)
            .match_requests(|r| r.recovery_window_in_days() == Some(7))
            .then_error(refused);
        let describe = mock!(aws_sdk_secretsmanager::Client::describe_secret).then_output(|| {
            DescribeSecretOutput::builder()
                .arn("arn:secret")
                .deleted_date(aws_smithy_types::DateTime::from_secs(1))
                .build()
        });
        let client = mock_client!(
            aws_sdk_secretsmanager,
            RuleMode::MatchAny,
            [&delete, &describe]
        );
        let secrets = SecretsAdapter(client);
        assert_eq!(
            secrets
                .schedule_deletion("sit-acme-db-credentials", 7)
                .await
                .expect("answered"),
            Removal::AlreadyGone
        );
        assert_eq!(
            secrets
                .live_secret("sit-acme-db-credentials")
                .await
                .expect("answered"),
            None,
            "a scheduled secret is no trace"
        );
    }

    #[tokio::test]
    async fn an_invalid_request_on_a_live_secret_is_an_error() {
        let delete = mock!(aws_sdk_secretsmanager::Client::delete_secret).then_error(refused);
        let describe = mock!(aws_sdk_secretsmanager::Client::describe_secret)
            .then_output(|| DescribeSecretOutput::builder().arn("arn:secret").build());
        let client = mock_client!(
            aws_sdk_secretsmanager,
            RuleMode::MatchAny,
            [&delete, &describe]
        );
        let err = SecretsAdapter(client)
            .schedule_deletion("sit-acme-db-credentials", 7)
            .await
            .expect_err("not scheduled");
        assert!(
            err.to_string()
                .starts_with("secretsmanager:DeleteSecret failed"),
            "{err}"
        );
    }
}
