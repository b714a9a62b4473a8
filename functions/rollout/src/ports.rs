//! What a rollout needs, as four small ports: the environment's fleet (its
//! registry) and its config bucket (the report), in the environment's
//! account; the announcement (SNS + the bus) and the child runs (Step
//! Functions), in the orchestrator's. With the AWS adapters.

use aws_config::SdkConfig;
use std::collections::BTreeMap;
use std::future::Future;
use stepdeploy_shared::aws::EnvCache;
use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::config::EnvironmentConfig;
use stepdeploy_shared::rollout::FleetTenant;
use stepdeploy_shared::state::DynamoStateStore;
use stepdeploy_shared::validate::{ImageRef, TenantName};

/// Environment variable: the deploy state machine (children's ARNs are its runs).
pub const DEPLOY_ARN_VAR: &str = "STEPDEPLOY_DEPLOY_STATE_MACHINE_ARN";
/// Environment variable: the notifications topic.
pub const TOPIC_VAR: &str = "STEPDEPLOY_NOTIFICATION_TOPIC_ARN";
/// Environment variable: the event bus (default `stepdeploy`).
pub const BUS_VAR: &str = "STEPDEPLOY_EVENT_BUS";

/// The tenants deployed in an environment, as its registry records them.
pub trait Fleet: Send + Sync {
    /// Every tenant with a recorded deployment (a claim alone is not one).
    fn tenants(
        &self,
        env: &EnvironmentConfig,
    ) -> impl Future<Output = Result<Vec<FleetTenant>, AwsCallError>> + Send;
}

/// The rollout report in the environment's config bucket.
pub trait Reports: Send + Sync {
    /// Writes (replaces) the report at `key`.
    fn put(
        &self,
        env: &EnvironmentConfig,
        key: &str,
        body: String,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
}

/// The outcome, said to people (SNS) and to systems (the bus).
pub trait Announce: Send + Sync {
    /// Publishes `message` and puts one `detail_type` event.
    fn announce(
        &self,
        subject: &str,
        message: &str,
        detail_type: &str,
        detail: &serde_json::Value,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
}

/// A child run as Step Functions describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildRun {
    /// `RUNNING`, `SUCCEEDED`, `FAILED`, `TIMED_OUT`, `ABORTED`.
    pub status: String,
    /// The run's error name, if it failed.
    pub error: Option<String>,
    /// The run's cause, if it failed.
    pub cause: Option<String>,
    /// From its start to its end, once it ended.
    pub duration_seconds: Option<u64>,
}

/// The deploy state machine's runs.
pub trait Children: Send + Sync {
    /// The ARN of the deploy run named `name`.
    fn arn_of(&self, name: &str) -> Option<String>;
    /// The run, `None` if there is none.
    fn describe(
        &self,
        execution: &str,
    ) -> impl Future<Output = Result<Option<ChildRun>, AwsCallError>> + Send;
}

/// Environment clients (assumed role), built once per environment.
#[derive(Clone)]
struct EnvClients {
    state: aws_sdk_dynamodb::Client,
    s3: aws_sdk_s3::Client,
}

/// The AWS side of every port.
pub struct AwsPorts {
    envs: EnvCache<EnvClients>,
    sns: aws_sdk_sns::Client,
    events: aws_sdk_eventbridge::Client,
    sfn: aws_sdk_sfn::Client,
    topic: Option<String>,
    bus: String,
    deploy_machine: Option<String>,
}

/// The ports on `config` (the orchestrator's) and the function's settings.
pub fn aws(config: SdkConfig) -> AwsPorts {
    let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
    AwsPorts {
        sns: aws_sdk_sns::Client::new(&config),
        events: aws_sdk_eventbridge::Client::new(&config),
        sfn: aws_sdk_sfn::Client::new(&config),
        topic: var(TOPIC_VAR),
        bus: var(BUS_VAR).unwrap_or_else(|| "stepdeploy".into()),
        deploy_machine: var(DEPLOY_ARN_VAR),
        envs: EnvCache::new(config, "stepdeploy-rollout"),
    }
}

impl AwsPorts {
    async fn env(&self, env: &EnvironmentConfig) -> EnvClients {
        self.envs
            .get(env, |config| EnvClients {
                state: aws_sdk_dynamodb::Client::new(config),
                s3: stepdeploy_shared::aws::s3_client(config),
            })
            .await
    }
}

impl Fleet for AwsPorts {
    async fn tenants(&self, env: &EnvironmentConfig) -> Result<Vec<FleetTenant>, AwsCallError> {
        let clients = self.env(env).await;
        let store = DynamoStateStore::new(clients.state, env.state_table.clone());
        let entries = store.registry_entries().await?;
        Ok(entries
            .into_iter()
            .filter_map(|entry| {
                let record = entry.record?;
                Some(FleetTenant {
                    // A registry key that is not a tenant name is not ours to deploy.
                    name: TenantName::parse(&entry.tenant).ok()?,
                    labels: record.labels.into_iter().collect::<BTreeMap<_, _>>(),
                    image: ImageRef::parse(&record.image).ok(),
                })
            })
            .collect())
    }
}

impl Reports for AwsPorts {
    async fn put(
        &self,
        env: &EnvironmentConfig,
        key: &str,
        body: String,
    ) -> Result<(), AwsCallError> {
        let clients = self.env(env).await;
        clients
            .s3
            .put_object()
            .bucket(&env.config_bucket)
            .key(key)
            .content_type("application/json")
            .body(body.into_bytes().into())
            .send()
            .await
            .map_err(|e| AwsCallError::new("s3:PutObject (rollout report)", e))?;
        Ok(())
    }
}

impl Announce for AwsPorts {
    async fn announce(
        &self,
        subject: &str,
        message: &str,
        detail_type: &str,
        detail: &serde_json::Value,
    ) -> Result<(), AwsCallError> {
        match &self.topic {
            Some(topic) => {
                stepdeploy_shared::publish::publish(
                    &self.sns,
                    "sns:Publish (rollout outcome)",
                    topic,
                    subject,
                    message,
                    &[("kind", "rollout")],
                )
                .await?
            }
            None => tracing::warn!("{TOPIC_VAR} is not set; no message published"),
        }
        stepdeploy_shared::publish::put_event(
            &self.events,
            "events:PutEvents (rollout outcome)",
            &self.bus,
            detail_type,
            detail,
        )
        .await
    }
}

impl Children for AwsPorts {
    fn arn_of(&self, name: &str) -> Option<String> {
        let machine = self.deploy_machine.as_deref()?;
        Some(format!(
            "{}:{name}",
            machine.replacen(":stateMachine:", ":execution:", 1)
        ))
    }

    async fn describe(&self, execution: &str) -> Result<Option<ChildRun>, AwsCallError> {
        match self
            .sfn
            .describe_execution()
            .execution_arn(execution)
            .send()
            .await
        {
            Ok(out) => Ok(Some(ChildRun {
                status: out.status().as_str().to_string(),
                error: out.error().map(str::to_string),
                cause: out.cause().map(str::to_string),
                duration_seconds: out
                    .stop_date()
                    .and_then(|stop| u64::try_from(stop.secs() - out.start_date().secs()).ok()),
            })),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_execution_does_not_exist()) =>
            {
                Ok(None)
            }
            Err(e) => Err(AwsCallError::new("states:DescribeExecution (child)", e)),
        }
    }
}
