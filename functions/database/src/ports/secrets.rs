//! Secrets Manager: the RDS master credentials and the tenant's own secret.

use crate::credentials::{MasterCredentials, Password};
use std::future::Future;
use stepdeploy_shared::aws_error::AwsCallError;

/// The tenant secret as it stands.
#[derive(Debug, Clone)]
pub struct TenantSecret {
    /// Its full ARN.
    pub arn: String,
    /// Its password, if the document holds one stepdeploy could have written.
    pub password: Option<Password>,
    /// Scheduled for deletion (a rollback or teardown removed it recently).
    pub pending_deletion: bool,
}

/// Secrets Manager, as the phase uses it: the master secret read, the tenant's kept.
pub trait Secrets: Send + Sync {
    /// The RDS master credentials.
    fn master(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<MasterCredentials, AwsCallError>> + Send;
    /// The tenant secret called `name`, if any.
    fn tenant_secret(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<TenantSecret>, AwsCallError>> + Send;
    /// Creates it; returns its ARN.
    fn create(
        &self,
        name: &str,
        document: &str,
        tags: &[(String, String)],
    ) -> impl Future<Output = Result<String, AwsCallError>> + Send;
    /// Undoes a scheduled deletion.
    fn restore(&self, arn: &str) -> impl Future<Output = Result<(), AwsCallError>> + Send;
    /// Stores a new version of the document.
    fn put(
        &self,
        arn: &str,
        document: &str,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
}

/// Secrets Manager adapter.
#[derive(Clone)]
pub struct SecretsManager(pub aws_sdk_secretsmanager::Client);

impl Secrets for SecretsManager {
    async fn master(&self, arn: &str) -> Result<MasterCredentials, AwsCallError> {
        let out = self
            .0
            .get_secret_value()
            .secret_id(arn)
            .send()
            .await
            .map_err(|e| AwsCallError::new("secretsmanager:GetSecretValue (master)", e))?;
        serde_json::from_str(out.secret_string().unwrap_or_default()).map_err(|_| {
            // Never echo the document: it holds the master password.
            AwsCallError::other(
                "secretsmanager:GetSecretValue (master)",
                std::io::Error::other("the master secret is not JSON with username and password"),
            )
        })
    }

    async fn tenant_secret(&self, name: &str) -> Result<Option<TenantSecret>, AwsCallError> {
        let described = match self.0.describe_secret().secret_id(name).send().await {
            Ok(d) => d,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(AwsCallError::new("secretsmanager:DescribeSecret", e)),
        };
        let arn = described.arn().unwrap_or_default().to_string();
        if described.deleted_date().is_some() {
            return Ok(Some(TenantSecret {
                arn,
                password: None,
                pending_deletion: true,
            }));
        }
        let value = self
            .0
            .get_secret_value()
            .secret_id(&arn)
            .send()
            .await
            .map_err(|e| AwsCallError::new("secretsmanager:GetSecretValue", e))?;
        let password = value
            .secret_string()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
            .and_then(|doc| doc["password"].as_str().and_then(Password::from_stored));
        Ok(Some(TenantSecret {
            arn,
            password,
            pending_deletion: false,
        }))
    }

    async fn create(
        &self,
        name: &str,
        document: &str,
        tags: &[(String, String)],
    ) -> Result<String, AwsCallError> {
        let mut create = self
            .0
            .create_secret()
            .name(name)
            .description("stepdeploy: WordPress database credentials")
            .secret_string(document);
        for (key, value) in tags {
            create = create.tags(
                aws_sdk_secretsmanager::types::Tag::builder()
                    .key(key)
                    .value(value)
                    .build(),
            );
        }
        // Sent once: the handler retries it with create_or_adopt, which looks
        // for the secret before creating it again.
        let out = create
            .customize()
            .config_override(
                aws_sdk_secretsmanager::config::Builder::default()
                    .retry_config(aws_config::retry::RetryConfig::disabled()),
            )
            .send()
            .await
            .map_err(|e| AwsCallError::new("secretsmanager:CreateSecret", e))?;
        Ok(out.arn().unwrap_or_default().to_string())
    }

    async fn restore(&self, arn: &str) -> Result<(), AwsCallError> {
        self.0
            .restore_secret()
            .secret_id(arn)
            .send()
            .await
            .map_err(|e| AwsCallError::new("secretsmanager:RestoreSecret", e))?;
        Ok(())
    }

    async fn put(&self, arn: &str, document: &str) -> Result<(), AwsCallError> {
        self.0
            .put_secret_value()
            .secret_id(arn)
            .secret_string(document)
            .send()
            .await
            .map_err(|e| AwsCallError::new("secretsmanager:PutSecretValue", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_secretsmanager::operation::describe_secret::{
        DescribeSecretError, DescribeSecretOutput,
    };
    use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueOutput;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    #[tokio::test]
    async fn tenant_secret_missing_pending_or_present() {
        let missing = mock!(aws_sdk_secretsmanager::Client::describe_secret)
            .match_requests(|r| r.secret_id() == Some("missing"))
            .then_error(|| {
                DescribeSecretError::ResourceNotFoundException(
                    aws_sdk_secretsmanager::types::error::ResourceNotFoundException::builder()
                        .build(),
                )
            });
        let pending = mock!(aws_sdk_secretsmanager::Client::describe_secret)
            .match_requests(|r| r.secret_id() == Some("pending"))
            .then_output(|| {
                DescribeSecretOutput::builder()
                    .arn("arn:pending")
                    .deleted_date(aws_smithy_types::DateTime::from_secs(1))
                    .build()
            });
        let present = mock!(aws_sdk_secretsmanager::Client::describe_secret)
            .match_requests(|r| r.secret_id() == Some("present"))
            .then_output(|| DescribeSecretOutput::builder().arn("arn:present").build());
        let value = mock!(aws_sdk_secretsmanager::Client::get_secret_value).then_output(|| {
            GetSecretValueOutput::builder()
                .secret_string(r#"{"username":"u","password":"abcdefghijklmnopqrstuvwx"}"#)
                .build()
        });
        let client = mock_client!(
            aws_sdk_secretsmanager,
            RuleMode::MatchAny,
            [&missing, &pending, &present, &value]
        );
        let secrets = SecretsManager(client);
        assert!(secrets
            .tenant_secret("missing")
            .await
            .expect("answered")
            .is_none());
        let p = secrets
            .tenant_secret("pending")
            .await
            .expect("answered")
            .expect("exists");
        assert!(p.pending_deletion && p.password.is_none());
        let s = secrets
            .tenant_secret("present")
            .await
            .expect("answered")
            .expect("exists");
        assert_eq!(
            s.password.as_ref().map(Password::expose),
            Some("abcdefghijklmnopqrstuvwx")
        );
        assert_eq!(value.num_calls(), 1, "a pending secret's value is not read");
    }
}
