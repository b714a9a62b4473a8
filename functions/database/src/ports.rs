//! What the database phase needs: Secrets Manager and the MySQL server, as
//! small traits, with their adapters. MySQL is reached through the MySQL
//! agent each environment account runs next to its RDS
//! (`stepdeploy_shared::mysql`), invoked through the deploy role.

use crate::secret::{MasterCredentials, Password};
use aws_config::SdkConfig;
use std::future::Future;
use stepdeploy_shared::aws::EnvCache;
use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::config::EnvironmentConfig;
use stepdeploy_shared::mysql::{Login, MySqlAgent, MySqlCall, MySqlRequest, MySqlResponse, Secret};
use stepdeploy_shared::state::DynamoStateStore;

pub use stepdeploy_shared::mysql::{DbState, Endpoint};

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

/// Secrets Manager.
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

/// A MySQL failure, without statements or secrets in it.
pub use stepdeploy_shared::mysql::AgentError as SqlError;

/// The MySQL server, as the master user.
pub trait Database: Send + Sync {
    /// What exists for `database`/`user`.
    fn inspect(
        &self,
        at: &Endpoint,
        master: &MasterCredentials,
        database: &str,
        user: &str,
    ) -> impl Future<Output = Result<DbState, SqlError>> + Send;
    /// Converges: database, user (created with or set to `password` when asked), grant.
    fn apply(
        &self,
        at: &Endpoint,
        master: &MasterCredentials,
        change: &DbChange<'_>,
    ) -> impl Future<Output = Result<(), SqlError>> + Send;
    /// Whether `user` can log in with `password` and use `database`.
    fn can_login(
        &self,
        at: &Endpoint,
        user: &str,
        password: &Password,
        database: &str,
    ) -> impl Future<Output = bool> + Send;
}

/// What [`Database::apply`] should do.
#[derive(Debug)]
pub struct DbChange<'a> {
    /// The database name (validated: `[a-z0-9_]`).
    pub database: &'a str,
    /// The user name (validated: `[a-z0-9_]`).
    pub user: &'a str,
    /// The password the user must have.
    pub password: &'a Password,
    /// Create the database.
    pub create_database: bool,
    /// Create the user.
    pub create_user: bool,
    /// Set the existing user's password.
    pub set_password: bool,
    /// Grant privileges on the database.
    pub grant: bool,
}

/// The MySQL agent of one environment, invoked through its deploy role.
pub type Agent = MySqlAgent;

fn call(at: &Endpoint, master: &MasterCredentials, request: MySqlRequest) -> MySqlCall {
    MySqlCall {
        endpoint: at.clone(),
        master: Login {
            username: master.username.clone(),
            password: Secret(master.password.clone()),
        },
        request,
    }
}

fn unexpected(agent: &Agent, answer: MySqlResponse) -> SqlError {
    SqlError::Broken {
        function: agent.function.clone(),
        reason: format!("answered {answer:?}"),
    }
}

impl Database for Agent {
    async fn inspect(
        &self,
        at: &Endpoint,
        master: &MasterCredentials,
        database: &str,
        user: &str,
    ) -> Result<DbState, SqlError> {
        let request = MySqlRequest::Inspect {
            database: database.into(),
            user: user.into(),
        };
        match self.call(&call(at, master, request)).await? {
            MySqlResponse::State(state) => Ok(state),
            other => Err(unexpected(self, other)),
        }
    }

    async fn apply(
        &self,
        at: &Endpoint,
        master: &MasterCredentials,
        change: &DbChange<'_>,
    ) -> Result<(), SqlError> {
        let request = MySqlRequest::Apply {
            database: change.database.into(),
            user: change.user.into(),
            password: Secret(change.password.expose().into()),
            create_database: change.create_database,
            create_user: change.create_user,
            set_password: change.set_password,
            grant: change.grant,
        };
        self.run(&call(at, master, request)).await
    }

    async fn can_login(
        &self,
        at: &Endpoint,
        user: &str,
        password: &Password,
        database: &str,
    ) -> bool {
        let login = Login {
            username: user.into(),
            password: Secret(password.expose().into()),
        };
        // The master login is not used for this request.
        let none = MasterCredentials {
            username: String::new(),
            password: String::new(),
        };
        let request = MySqlRequest::CanLogin {
            login,
            database: database.into(),
        };
        matches!(
            self.call(&call(at, &none, request)).await,
            Ok(MySqlResponse::Login { ok: true })
        )
    }
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

/// Ports for one environment.
#[derive(Clone)]
pub struct EnvPorts<S, L, D> {
    /// Secrets Manager.
    pub secrets: S,
    /// MySQL, through the environment's agent.
    pub db: D,
    /// The state table (ledger).
    pub state: L,
}

/// Gives the AWS ports for an environment (through its deploy role).
pub trait Connector: Send + Sync {
    /// Secrets port.
    type Secrets: Secrets;
    /// MySQL port.
    type Db: Database;
    /// State port.
    type State: stepdeploy_shared::state::StateStore;
    /// Ports acting in `env`'s account.
    fn connect(
        &self,
        env: &EnvironmentConfig,
    ) -> impl Future<Output = EnvPorts<Self::Secrets, Self::State, Self::Db>> + Send;
}

/// Assumes each environment's deploy role once per cold start and keeps the clients.
pub struct AwsConnector(EnvCache<EnvPorts<SecretsManager, DynamoStateStore, Agent>>);

impl AwsConnector {
    /// A connector on top of the orchestrator's own config.
    pub fn new(base: SdkConfig) -> Self {
        Self(EnvCache::new(base, "stepdeploy-database"))
    }
}

impl Connector for AwsConnector {
    type Secrets = SecretsManager;
    type Db = Agent;
    type State = DynamoStateStore;

    async fn connect(
        &self,
        env: &EnvironmentConfig,
    ) -> EnvPorts<SecretsManager, DynamoStateStore, Agent> {
        self.0
            .get(env, |config| EnvPorts {
                secrets: SecretsManager(aws_sdk_secretsmanager::Client::new(config)),
                db: Agent {
                    lambda: aws_sdk_lambda::Client::new(config),
                    function: env.mysql_agent_arn(),
                },
                state: DynamoStateStore::new(
                    aws_sdk_dynamodb::Client::new(config),
                    env.state_table.clone(),
                ),
            })
            .await
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

    #[tokio::test]
    async fn the_agent_is_invoked_with_the_call_and_its_errors_are_told_apart() {
        use aws_sdk_lambda::operation::invoke::InvokeOutput;
        use aws_smithy_types::Blob;
        let inspect = mock!(aws_sdk_lambda::Client::invoke)
            .match_requests(|r| {
                let call: serde_json::Value = serde_json::from_slice(
                    r.payload().map(|b| b.as_ref()).unwrap_or_default(),
                )
                .unwrap_or_default();
                r.function_name() == Some("arn:agent")
                    && call["request"]["action"] == "inspect"
                    && call["master"]["password"] == "master-pw"
            })
            .then_output(|| {
                InvokeOutput::builder()
                    .status_code(200)
                    .payload(Blob::new(
                        r#"{"outcome":"state","database_exists":true,"user_exists":false,"granted":false}"#,
                    ))
                    .build()
            });
        let refused = mock!(aws_sdk_lambda::Client::invoke)
            .match_requests(|r| {
                String::from_utf8_lossy(r.payload().map(|b| b.as_ref()).unwrap_or_default())
                    .contains("\"apply\"")
            })
            .then_output(|| {
                InvokeOutput::builder()
                    .status_code(200)
                    .function_error("Unhandled")
                    .payload(Blob::new(
                        r#"{"errorType":"DatabaseError","errorMessage":"CREATE USER acme_user: Access denied"}"#,
                    ))
                    .build()
            });
        let agent = Agent {
            lambda: mock_client!(aws_sdk_lambda, RuleMode::MatchAny, [&inspect, &refused]),
            function: "arn:agent".into(),
        };
        let at = Endpoint {
            host: "db".into(),
            port: 3306,
            tls: true,
        };
        let master = MasterCredentials {
            username: "admin".into(),
            password: "master-pw".into(),
        };
        let state = agent
            .inspect(&at, &master, "acme_db", "acme_user")
            .await
            .expect("state");
        assert!(state.database_exists && !state.user_exists);
        let password = Password::generate().expect("csprng");
        let change = DbChange {
            database: "acme_db",
            user: "acme_user",
            password: &password,
            create_database: false,
            create_user: true,
            set_password: false,
            grant: true,
        };
        let err = agent
            .apply(&at, &master, &change)
            .await
            .expect_err("refused");
        assert!(
            matches!(&err, SqlError::Refused(m) if m == "CREATE USER acme_user: Access denied"),
            "{err}"
        );
    }
}
