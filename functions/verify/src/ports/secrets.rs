//! Secrets Manager, for the `secret` check: the tenant secret is there.

use std::future::Future;
use stepdeploy_shared::aws_error::AwsCallError;

/// The tenant secret's presence.
pub trait Secrets: Send + Sync {
    /// Whether the secret exists (and is not scheduled for deletion).
    fn secret_exists(&self, name: &str) -> impl Future<Output = Result<bool, AwsCallError>> + Send;
}

/// Secrets Manager adapter.
#[derive(Clone)]
pub struct SecretsManager(pub aws_sdk_secretsmanager::Client);

impl Secrets for SecretsManager {
    async fn secret_exists(&self, name: &str) -> Result<bool, AwsCallError> {
        match self.0.describe_secret().secret_id(name).send().await {
            Ok(d) => Ok(d.deleted_date().is_none()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(AwsCallError::new("secretsmanager:DescribeSecret", e)),
        }
    }
}
