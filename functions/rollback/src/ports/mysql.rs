//! [`MySqlAdmin`] through the environment's MySQL agent, as the master user
//! (its secret read through the deploy role; see `stepdeploy_shared::mysql`).

use super::MySqlAdmin;
use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::config::RdsConfig;
use stepdeploy_shared::mysql::{
    AgentError, DbState, Endpoint, Login, MySqlAgent, MySqlCall, MySqlRequest, MySqlResponse,
    Secret,
};

/// Why a MySQL request could not be made or was refused.
#[derive(Debug, thiserror::Error)]
pub enum MySqlError {
    /// The master secret could not be read.
    #[error(transparent)]
    Master(AwsCallError),
    /// The master secret is not the JSON document RDS writes.
    #[error("the master secret is not JSON")]
    MasterNotJson,
    /// The agent failed or MySQL refused.
    #[error(transparent)]
    Agent(#[from] AgentError),
    /// The agent answered an inspection with something else (its answer).
    #[error("the MySQL agent answered {0} to inspect")]
    Unexpected(String),
}

/// The MySQL agent, with the Secrets Manager client that reads the master login.
#[derive(Clone)]
pub struct MySqlAdapter {
    /// Secrets Manager in the environment's account.
    pub secrets: aws_sdk_secretsmanager::Client,
    /// The agent.
    pub agent: MySqlAgent,
}

impl MySqlAdapter {
    /// A call to the agent as the master user.
    async fn master_call(
        &self,
        rds: &RdsConfig,
        request: MySqlRequest,
    ) -> Result<MySqlCall, MySqlError> {
        let secret = self
            .secrets
            .get_secret_value()
            .secret_id(&rds.master_secret_arn)
            .send()
            .await
            .map_err(|e| {
                MySqlError::Master(AwsCallError::new(
                    "secretsmanager:GetSecretValue (master)",
                    e,
                ))
            })?;
        let doc: serde_json::Value =
            serde_json::from_str(secret.secret_string().unwrap_or_default())
                .map_err(|_| MySqlError::MasterNotJson)?;
        let text = |k: &str| doc[k].as_str().unwrap_or_default().to_string();
        Ok(MySqlCall {
            endpoint: Endpoint {
                host: rds.endpoint.clone(),
                port: rds.port,
                tls: rds.tls,
            },
            master: Login {
                username: text("username"),
                password: Secret(text("password")),
            },
            request,
        })
    }

    async fn run(&self, rds: &RdsConfig, request: MySqlRequest) -> Result<(), MySqlError> {
        let call = self.master_call(rds, request).await?;
        Ok(self.agent.run(&call).await?)
    }
}

impl MySqlAdmin for MySqlAdapter {
    async fn inspect(
        &self,
        rds: &RdsConfig,
        database: &str,
        user: &str,
    ) -> Result<DbState, MySqlError> {
        let request = MySqlRequest::Inspect {
            database: database.to_string(),
            user: user.to_string(),
        };
        let call = self.master_call(rds, request).await?;
        match self.agent.call(&call).await? {
            MySqlResponse::State(state) => Ok(state),
            other => Err(MySqlError::Unexpected(format!("{other:?}"))),
        }
    }

    async fn drop_user(&self, rds: &RdsConfig, user: &str) -> Result<(), MySqlError> {
        let request = MySqlRequest::DropUser {
            user: user.to_string(),
        };
        self.run(rds, request).await
    }

    async fn drop_database(&self, rds: &RdsConfig, database: &str) -> Result<(), MySqlError> {
        let request = MySqlRequest::DropDatabase {
            database: database.to_string(),
        };
        self.run(rds, request).await
    }

    async fn retain_database(
        &self,
        rds: &RdsConfig,
        database: &str,
        retained_as: &str,
    ) -> Result<(), MySqlError> {
        let request = MySqlRequest::RetainDatabase {
            database: database.to_string(),
            retained_as: retained_as.to_string(),
        };
        self.run(rds, request).await
    }
}
