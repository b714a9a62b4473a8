//! Where notify writes: the outcome topic and the event bus in the
//! orchestrator's account; the config bucket, the registry, the ledger and
//! the lock in the run's environment account. One trait, so the handler's
//! tests record every write in order; [`AwsNotify`] is the AWS side.

use aws_config::SdkConfig;
use std::future::Future;
use stepdeploy_shared::aws::{s3_client, AwsConnector, Connect};
use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::config::EnvironmentConfig;
use stepdeploy_shared::ledger::LedgerEntry;
use stepdeploy_shared::publish;
use stepdeploy_shared::state::{DynamoStateStore, RegistryRecord, Release, StateStore};

/// Where messages and events go (orchestrator account).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// SNS topic for outcomes (`STEPDEPLOY_NOTIFICATION_TOPIC_ARN`).
    pub topic_arn: Option<String>,
    /// Event bus (`STEPDEPLOY_EVENT_BUS`, default `stepdeploy`).
    pub event_bus: String,
}

impl Settings {
    /// Reads the environment variables.
    pub fn from_env() -> Self {
        Self {
            topic_arn: std::env::var("STEPDEPLOY_NOTIFICATION_TOPIC_ARN")
                .ok()
                .filter(|v| !v.is_empty()),
            event_bus: std::env::var("STEPDEPLOY_EVENT_BUS")
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "stepdeploy".into()),
        }
    }
}

/// Where notify writes.
pub trait NotifyPorts: Send + Sync {
    /// Publishes to the outcome topic with filterable attributes.
    fn publish(
        &self,
        subject: &str,
        message: &str,
        attributes: &[(&str, &str)],
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
    /// Puts one event on the bus.
    fn put_event(
        &self,
        detail_type: &str,
        detail: &serde_json::Value,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
    /// The version of the config document now (`"null"` in a bucket that was
    /// not versioned when it was written), `None` if there is none.
    fn document_version(
        &self,
        env: &EnvironmentConfig,
        key: &str,
    ) -> impl Future<Output = Result<Option<String>, AwsCallError>> + Send;
    /// The registry's record of the tenant's last deployment, if any.
    fn registry(
        &self,
        env: &EnvironmentConfig,
        tenant: &str,
    ) -> impl Future<Output = Result<Option<RegistryRecord>, AwsCallError>> + Send;
    /// Appends an entry to the run's ledger in the environment's state table.
    fn record(
        &self,
        env: &EnvironmentConfig,
        execution: &str,
        entry: &LedgerEntry,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
    /// Writes the config document in the environment's bucket; the version
    /// S3 gave it (`None` in a bucket without versioning).
    fn put_document(
        &self,
        env: &EnvironmentConfig,
        key: &str,
        body: String,
    ) -> impl Future<Output = Result<Option<String>, AwsCallError>> + Send;
    /// The tenant's newest release, if any.
    fn latest_release(
        &self,
        env: &EnvironmentConfig,
        tenant: &str,
    ) -> impl Future<Output = Result<Option<Release>, AwsCallError>> + Send;
    /// Records a release; `false` if its number was taken.
    fn add_release(
        &self,
        env: &EnvironmentConfig,
        tenant: &str,
        release: &Release,
    ) -> impl Future<Output = Result<bool, AwsCallError>> + Send;
    /// Updates the registry in the environment's state table.
    fn update_registry(
        &self,
        env: &EnvironmentConfig,
        tenant: &str,
        record: &RegistryRecord,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
    /// Releases the tenant lock held by `owner`.
    fn release_lock(
        &self,
        env: &EnvironmentConfig,
        tenant: &str,
        owner: &str,
    ) -> impl Future<Output = Result<bool, AwsCallError>> + Send;
}

/// The AWS adapter: orchestrator clients built once, environment clients
/// once per environment (through its deploy role).
pub struct AwsNotify {
    settings: Settings,
    sns: aws_sdk_sns::Client,
    events: aws_sdk_eventbridge::Client,
    envs: AwsConnector<(aws_sdk_s3::Client, DynamoStateStore)>,
}

impl AwsNotify {
    /// Clients for the orchestrator account.
    pub fn new(base: SdkConfig, settings: Settings) -> Self {
        Self {
            sns: aws_sdk_sns::Client::new(&base),
            events: aws_sdk_eventbridge::Client::new(&base),
            envs: AwsConnector::with_env(base, "stepdeploy-notify", |config, env| {
                (
                    s3_client(config),
                    DynamoStateStore::new(
                        aws_sdk_dynamodb::Client::new(config),
                        env.state_table.clone(),
                    ),
                )
            }),
            settings,
        }
    }

    async fn env(&self, env: &EnvironmentConfig) -> (aws_sdk_s3::Client, DynamoStateStore) {
        self.envs.connect(env).await
    }
}

impl NotifyPorts for AwsNotify {
    async fn publish(
        &self,
        subject: &str,
        message: &str,
        attributes: &[(&str, &str)],
    ) -> Result<(), AwsCallError> {
        let Some(topic) = &self.settings.topic_arn else {
            tracing::warn!("STEPDEPLOY_NOTIFICATION_TOPIC_ARN is not set; no message published");
            return Ok(());
        };
        publish::publish(
            &self.sns,
            "sns:Publish",
            topic,
            subject,
            message,
            attributes,
        )
        .await
    }

    async fn put_event(
        &self,
        detail_type: &str,
        detail: &serde_json::Value,
    ) -> Result<(), AwsCallError> {
        publish::put_event(
            &self.events,
            "events:PutEvents",
            &self.settings.event_bus,
            detail_type,
            detail,
        )
        .await
    }

    async fn document_version(
        &self,
        env: &EnvironmentConfig,
        key: &str,
    ) -> Result<Option<String>, AwsCallError> {
        let (s3, _) = self.env(env).await;
        match s3
            .head_object()
            .bucket(&env.config_bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(out.version_id().unwrap_or("null").to_string())),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(None),
            Err(e) => Err(AwsCallError::new("s3:HeadObject (config document)", e)),
        }
    }

    async fn registry(
        &self,
        env: &EnvironmentConfig,
        tenant: &str,
    ) -> Result<Option<RegistryRecord>, AwsCallError> {
        let (_, state) = self.env(env).await;
        state.registry(tenant).await
    }

    async fn record(
        &self,
        env: &EnvironmentConfig,
        execution: &str,
        entry: &LedgerEntry,
    ) -> Result<(), AwsCallError> {
        let (_, state) = self.env(env).await;
        state.record(execution, entry).await
    }

    async fn put_document(
        &self,
        env: &EnvironmentConfig,
        key: &str,
        body: String,
    ) -> Result<Option<String>, AwsCallError> {
        let (s3, _) = self.env(env).await;
        let out = s3
            .put_object()
            .bucket(&env.config_bucket)
            .key(key)
            .content_type("application/json")
            .body(body.into_bytes().into())
            .send()
            .await
            .map_err(|e| AwsCallError::new("s3:PutObject (config document)", e))?;
        Ok(out.version_id)
    }

    async fn latest_release(
        &self,
        env: &EnvironmentConfig,
        tenant: &str,
    ) -> Result<Option<Release>, AwsCallError> {
        let (_, state) = self.env(env).await;
        state.latest_release(tenant).await
    }

    async fn add_release(
        &self,
        env: &EnvironmentConfig,
        tenant: &str,
        release: &Release,
    ) -> Result<bool, AwsCallError> {
        let (_, state) = self.env(env).await;
        state.add_release(tenant, release).await
    }

    async fn update_registry(
        &self,
        env: &EnvironmentConfig,
        tenant: &str,
        record: &RegistryRecord,
    ) -> Result<(), AwsCallError> {
        let (_, state) = self.env(env).await;
        state.update_registry(tenant, record).await
    }

    async fn release_lock(
        &self,
        env: &EnvironmentConfig,
        tenant: &str,
        owner: &str,
    ) -> Result<bool, AwsCallError> {
        let (_, state) = self.env(env).await;
        state.release_lock(tenant, owner).await
    }
}
