//! What the database phase needs in the environment's account, one service
//! per file: Secrets Manager and the MySQL server (through the
//! environment's MySQL agent); and the run's ledger.

pub mod mysql;
pub mod secrets;

pub use mysql::{Agent, Database, DbChange, DbState, DumpPlace, Endpoint, SqlError};
pub use secrets::{Secrets, SecretsManager, TenantSecret};

use aws_config::SdkConfig;
use stepdeploy_shared::aws::AwsConnector;
use stepdeploy_shared::state::DynamoStateStore;

/// database's ports in one environment.
#[derive(Clone)]
pub struct EnvPorts<S, L, D> {
    /// Secrets Manager.
    pub secrets: S,
    /// The state table (ledger).
    pub state: L,
    /// MySQL, through the environment's agent.
    pub db: D,
}

/// The AWS ports, built once per environment per cold start.
pub fn connector(
    base: SdkConfig,
) -> AwsConnector<EnvPorts<SecretsManager, DynamoStateStore, Agent>> {
    AwsConnector::with_env(base, "stepdeploy-database", |config, env| EnvPorts {
        secrets: SecretsManager(aws_sdk_secretsmanager::Client::new(config)),
        state: DynamoStateStore::new(
            aws_sdk_dynamodb::Client::new(config),
            env.state_table.clone(),
        ),
        db: Agent {
            lambda: aws_sdk_lambda::Client::new(config),
            function: env.mysql_agent_arn(),
        },
    })
}
