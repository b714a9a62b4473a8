//! What rollback and teardown act on, one small trait per service, and the
//! connector that gives them for an environment (through its deploy role).
//!
//! The traits speak in names and ids; the AWS adapters beside this file
//! (`ecs.rs`, `efs.rs`, `elb.rs`, `secrets.rs`, `route53.rs`, `s3.rs`,
//! `mysql.rs`, `state.rs`) are the only code in the crate that calls the SDK,
//! and they classify SDK errors with the modeled predicates (or the error
//! code where the model has none), never with message text.

mod ecs;
mod efs;
mod elb;
mod mysql;
mod route53;
mod s3;
mod secrets;
mod state;

pub use ecs::EcsAdapter;
pub use efs::EfsAdapter;
pub use elb::ElbAdapter;
pub use mysql::{MySqlAdapter, MySqlError};
pub use route53::Route53Adapter;
pub use s3::S3Adapter;
pub use secrets::SecretsAdapter;

use aws_config::SdkConfig;
use std::future::Future;
use stepdeploy_shared::aws::EnvCache;
use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::config::{EnvironmentConfig, RdsConfig};
use stepdeploy_shared::mysql::DbState;
use stepdeploy_shared::state::{DynamoStateStore, RegistryRecord, StateStore};

/// What a delete found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// It was there and is gone now.
    Removed,
    /// It was not there (never created, or removed by an earlier attempt).
    AlreadyGone,
}

/// One page of a listing, and where the next one starts (`None` on the last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// What this page holds.
    pub items: Vec<T>,
    /// The next page's token.
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// A page; an empty token (as some services answer on the last page) is none.
    pub fn new(items: Vec<T>, next: Option<&str>) -> Self {
        Page {
            items,
            next: next.filter(|t| !t.is_empty()).map(str::to_string),
        }
    }
}

/// ECS: task definitions and services.
pub trait EcsResources: Send + Sync {
    /// One page of the ACTIVE task definition ARNs whose family starts with
    /// `family` (`crate::find` reads them all).
    fn task_definitions_page(
        &self,
        family: &str,
        token: Option<String>,
    ) -> impl Future<Output = Result<Page<String>, AwsCallError>> + Send;
    /// Deregisters a task definition revision.
    fn deregister_task_definition(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<Removal, AwsCallError>> + Send;
    /// Whether `service` is ACTIVE on `cluster`.
    fn service_active(
        &self,
        cluster: &str,
        service: &str,
    ) -> impl Future<Output = Result<bool, AwsCallError>> + Send;
    /// Deletes `service` (forced: its tasks stop with it).
    fn delete_service(
        &self,
        cluster: &str,
        service: &str,
    ) -> impl Future<Output = Result<Removal, AwsCallError>> + Send;
    /// Rolls `service` back to `task_definition`.
    fn restore_service(
        &self,
        cluster: &str,
        service: &str,
        task_definition: &str,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
}

/// EFS: access points.
pub trait EfsResources: Send + Sync {
    /// One page of the access points of `file_system`: the ids of those
    /// rooted at `path` that are not being deleted (`crate::find` reads every page).
    fn access_points_page(
        &self,
        file_system: &str,
        path: &str,
        token: Option<String>,
    ) -> impl Future<Output = Result<Page<String>, AwsCallError>> + Send;
    /// Deletes an access point.
    fn delete_access_point(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Removal, AwsCallError>> + Send;
}

/// ELBv2: target groups and the shared listener's rules.
pub trait ElbResources: Send + Sync {
    /// The ARNs of the target groups called `name` (none if there is none).
    fn target_groups_named(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Vec<String>, AwsCallError>> + Send;
    /// The ARNs of the rules on `listener` whose host header names `host`, every page.
    fn rules_for_host(
        &self,
        listener: &str,
        host: &str,
    ) -> impl Future<Output = Result<Vec<String>, AwsCallError>> + Send;
    /// Deletes a target group.
    fn delete_target_group(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<Removal, AwsCallError>> + Send;
    /// Deletes a listener rule.
    fn delete_rule(&self, arn: &str) -> impl Future<Output = Result<Removal, AwsCallError>> + Send;
    /// Puts a rule back at `priority`.
    fn restore_rule_priority(
        &self,
        rule: &str,
        priority: i32,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
    /// Points a rule back at `target_group`.
    fn restore_rule_forward(
        &self,
        rule: &str,
        target_group: &str,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
}

/// Secrets Manager: the tenant's database secret.
pub trait SecretResources: Send + Sync {
    /// The ARN of the secret called `name`, unless there is none or it is
    /// scheduled for deletion.
    fn live_secret(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<String>, AwsCallError>> + Send;
    /// Schedules the secret's deletion after `recovery_days` (one already
    /// scheduled counts as already gone).
    fn schedule_deletion(
        &self,
        id: &str,
        recovery_days: i64,
    ) -> impl Future<Output = Result<Removal, AwsCallError>> + Send;
}

/// Route53: the tenant's A (alias) record.
pub trait DnsResources: Send + Sync {
    /// A record set as the zone holds it (what a delete must name).
    type Record: Send + Sync;
    /// The A record called `fqdn` (`host.`) in `zone`, if any.
    fn a_record(
        &self,
        zone: &str,
        fqdn: &str,
    ) -> impl Future<Output = Result<Option<Self::Record>, AwsCallError>> + Send;
    /// Deletes `record` from `zone`.
    fn delete_record(
        &self,
        zone: &str,
        record: Self::Record,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
    /// Sets `fqdn` in `zone` to an alias of `target` (a CloudFront
    /// distribution in `target_zone`).
    fn upsert_alias(
        &self,
        zone: &str,
        fqdn: &str,
        target: &str,
        target_zone: &str,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
}

/// S3: the tenant config documents in the config bucket (versioned).
pub trait DocumentStore: Send + Sync {
    /// Makes `version` of `key` the current one again.
    fn restore_version(
        &self,
        bucket: &str,
        key: &str,
        version: &str,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
    /// Deletes `key` (a delete marker on a versioned bucket).
    fn delete(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
}

/// The environment's MySQL, as its master user (through the MySQL agent).
pub trait MySqlAdmin: Send + Sync {
    /// What exists of `database` and `user`.
    fn inspect(
        &self,
        rds: &RdsConfig,
        database: &str,
        user: &str,
    ) -> impl Future<Output = Result<DbState, MySqlError>> + Send;
    /// `DROP USER IF EXISTS`.
    fn drop_user(
        &self,
        rds: &RdsConfig,
        user: &str,
    ) -> impl Future<Output = Result<(), MySqlError>> + Send;
    /// `DROP DATABASE IF EXISTS`.
    fn drop_database(
        &self,
        rds: &RdsConfig,
        database: &str,
    ) -> impl Future<Output = Result<(), MySqlError>> + Send;
    /// Moves the tables of `database` into `retained_as`, then drops it.
    fn retain_database(
        &self,
        rds: &RdsConfig,
        database: &str,
        retained_as: &str,
    ) -> impl Future<Output = Result<(), MySqlError>> + Send;
}

/// The state table's tenant registry and lock reads that are not part of
/// [`StateStore`].
pub trait Registry: Send + Sync {
    /// The run holding `tenant`'s lock, expired or not.
    fn lock_owner(
        &self,
        tenant: &str,
    ) -> impl Future<Output = Result<Option<String>, AwsCallError>> + Send;
    /// Whether the registry has a deployment of `tenant`.
    fn is_registered(
        &self,
        tenant: &str,
    ) -> impl Future<Output = Result<bool, AwsCallError>> + Send;
    /// The tenants holding a priority, sorted.
    fn claimed_tenants(&self) -> impl Future<Output = Result<Vec<String>, AwsCallError>> + Send;
    /// Puts `record` back as `tenant`'s registry record.
    fn update_registry(
        &self,
        tenant: &str,
        record: &RegistryRecord,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
    /// Takes back the record `execution` wrote; `false` if it is not that run's.
    fn unregister(
        &self,
        tenant: &str,
        execution: &str,
    ) -> impl Future<Output = Result<bool, AwsCallError>> + Send;
    /// Removes `tenant` from the registry.
    fn forget_tenant(&self, tenant: &str) -> impl Future<Output = Result<(), AwsCallError>> + Send;
    /// Takes back release `number` if `execution` recorded it; `false` if not.
    fn remove_release(
        &self,
        tenant: &str,
        number: u32,
        execution: &str,
    ) -> impl Future<Output = Result<bool, AwsCallError>> + Send;
}

/// Every port of one environment.
pub trait Resources: Send + Sync {
    /// ECS.
    type Ecs: EcsResources;
    /// EFS.
    type Efs: EfsResources;
    /// ELBv2.
    type Elb: ElbResources;
    /// Secrets Manager.
    type Secrets: SecretResources;
    /// Route53.
    type Dns: DnsResources;
    /// The config bucket.
    type Documents: DocumentStore;
    /// MySQL.
    type MySql: MySqlAdmin;
    /// The state table (locks, claims, ledger).
    type State: StateStore;
    /// The state table's registry.
    type Registry: Registry;
    /// ECS.
    fn ecs(&self) -> &Self::Ecs;
    /// EFS.
    fn efs(&self) -> &Self::Efs;
    /// ELBv2.
    fn elb(&self) -> &Self::Elb;
    /// Secrets Manager.
    fn secrets(&self) -> &Self::Secrets;
    /// Route53.
    fn dns(&self) -> &Self::Dns;
    /// The config bucket.
    fn documents(&self) -> &Self::Documents;
    /// MySQL.
    fn mysql(&self) -> &Self::MySql;
    /// The state table.
    fn state(&self) -> &Self::State;
    /// The registry.
    fn registry(&self) -> &Self::Registry;
}

/// Gives the ports for an environment.
pub trait Connector: Send + Sync {
    /// The ports.
    type Ports: Resources;
    /// Ports acting in `env`'s account.
    fn connect(&self, env: &EnvironmentConfig) -> impl Future<Output = Self::Ports> + Send;
}

/// The AWS adapters of one environment's account.
#[derive(Clone)]
pub struct AwsPorts {
    ecs: EcsAdapter,
    efs: EfsAdapter,
    elb: ElbAdapter,
    secrets: SecretsAdapter,
    dns: Route53Adapter,
    documents: S3Adapter,
    mysql: MySqlAdapter,
    state: DynamoStateStore,
}

impl AwsPorts {
    /// Clients in the account `config` acts in.
    pub fn new(config: &SdkConfig, env: &EnvironmentConfig) -> Self {
        let secrets = aws_sdk_secretsmanager::Client::new(config);
        AwsPorts {
            ecs: EcsAdapter(aws_sdk_ecs::Client::new(config)),
            efs: EfsAdapter(aws_sdk_efs::Client::new(config)),
            elb: ElbAdapter(aws_sdk_elasticloadbalancingv2::Client::new(config)),
            secrets: SecretsAdapter(secrets.clone()),
            dns: Route53Adapter(aws_sdk_route53::Client::new(config)),
            documents: S3Adapter(stepdeploy_shared::aws::s3_client(config)),
            mysql: MySqlAdapter {
                secrets,
                agent: stepdeploy_shared::mysql::MySqlAgent {
                    lambda: aws_sdk_lambda::Client::new(config),
                    function: env.mysql_agent_arn(),
                },
            },
            state: DynamoStateStore::new(
                aws_sdk_dynamodb::Client::new(config),
                env.state_table.clone(),
            ),
        }
    }
}

impl Resources for AwsPorts {
    type Ecs = EcsAdapter;
    type Efs = EfsAdapter;
    type Elb = ElbAdapter;
    type Secrets = SecretsAdapter;
    type Dns = Route53Adapter;
    type Documents = S3Adapter;
    type MySql = MySqlAdapter;
    type State = DynamoStateStore;
    type Registry = DynamoStateStore;
    fn ecs(&self) -> &EcsAdapter {
        &self.ecs
    }
    fn efs(&self) -> &EfsAdapter {
        &self.efs
    }
    fn elb(&self) -> &ElbAdapter {
        &self.elb
    }
    fn secrets(&self) -> &SecretsAdapter {
        &self.secrets
    }
    fn dns(&self) -> &Route53Adapter {
        &self.dns
    }
    fn documents(&self) -> &S3Adapter {
        &self.documents
    }
    fn mysql(&self) -> &MySqlAdapter {
        &self.mysql
    }
    fn state(&self) -> &DynamoStateStore {
        &self.state
    }
    fn registry(&self) -> &DynamoStateStore {
        &self.state
    }
}

/// Assumes each environment's deploy role once per cold start and keeps the
/// clients (rollback's, and teardown's: one AssumeRole per environment).
pub struct AwsConnector(EnvCache<AwsPorts>);

impl AwsConnector {
    /// A connector on top of the orchestrator's own config.
    pub fn new(base: SdkConfig) -> Self {
        Self(EnvCache::new(base, "stepdeploy-rollback"))
    }
}

impl Connector for AwsConnector {
    type Ports = AwsPorts;

    async fn connect(&self, env: &EnvironmentConfig) -> AwsPorts {
        self.0.get(env, |config| AwsPorts::new(config, env)).await
    }
}
