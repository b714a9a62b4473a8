//! What the database phase needs: Secrets Manager and the MySQL server, as
//! small traits, with their adapters.

use crate::secret::{MasterCredentials, Password};
use aws_config::SdkConfig;
use mysql_async::prelude::Queryable;
use std::future::Future;
use stepdeploy_shared::aws::EnvCache;
use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::config::EnvironmentConfig;
use stepdeploy_shared::state::DynamoStateStore;
use stepdeploy_shared::timing::{External, InFlight};

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

/// Where MySQL is and how to reach it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Require TLS.
    pub tls: bool,
}

/// What exists on the server for the tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DbState {
    /// `{tenant}_db` exists.
    pub database_exists: bool,
    /// `{tenant}_user`@`%` exists.
    pub user_exists: bool,
    /// The user has privileges on the database.
    pub granted: bool,
}

/// A MySQL failure, without statements or secrets in it.
#[derive(Debug, thiserror::Error)]
#[error("{operation}: {source}")]
pub struct SqlError {
    /// What was being done (`CREATE USER goldencrust_user`).
    pub operation: String,
    /// The driver's error.
    #[source]
    pub source: mysql_async::Error,
}

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

/// Quotes an identifier; only `[a-z0-9_]` is ever passed (derived from a validated tenant).
fn ident(name: &str) -> Result<String, SqlError> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(SqlError {
            operation: format!("quote identifier {name:?}"),
            source: mysql_async::Error::Other("identifier outside [a-z0-9_]".into()),
        });
    }
    Ok(format!("`{name}`"))
}

/// mysql_async adapter (TLS when the environment asks for it, trusting
/// RDS's CAs, compiled in, and the extra bundle if one is named).
pub struct MySql {
    /// Extra CA bundle for TLS, from `STEPDEPLOY_RDS_CA_BUNDLE`.
    pub ca_bundle: Option<std::path::PathBuf>,
}

impl MySql {
    fn opts(
        &self,
        at: &Endpoint,
        user: &str,
        password: &str,
        database: Option<&str>,
    ) -> mysql_async::Opts {
        let mut builder = mysql_async::OptsBuilder::default()
            .ip_or_hostname(at.host.clone())
            .tcp_port(at.port)
            .user(Some(user.to_string()))
            .pass(Some(password.to_string()))
            .db_name(database.map(str::to_string))
            .prefer_socket(false);
        if at.tls {
            let mut roots = vec![stepdeploy_shared::tls::RDS_CA_BUNDLE.into()];
            roots.extend(self.ca_bundle.clone().map(Into::into));
            builder =
                builder.ssl_opts(Some(mysql_async::SslOpts::default().with_root_certs(roots)));
        }
        builder.into()
    }

    async fn master(
        &self,
        at: &Endpoint,
        master: &MasterCredentials,
    ) -> Result<mysql_async::Conn, SqlError> {
        mysql_async::Conn::new(self.opts(at, &master.username, &master.password, None))
            .await
            .map_err(|source| SqlError {
                operation: format!("connect to {}:{} as the master user", at.host, at.port),
                source,
            })
    }
}

impl Database for MySql {
    async fn inspect(
        &self,
        at: &Endpoint,
        master: &MasterCredentials,
        database: &str,
        user: &str,
    ) -> Result<DbState, SqlError> {
        let _clock = InFlight::start(External::Mysql);
        let mut conn = self.master(at, master).await?;
        fn op(what: &'static str) -> impl FnOnce(mysql_async::Error) -> SqlError {
            move |source| SqlError {
                operation: what.to_string(),
                source,
            }
        }
        let database_exists: Option<String> = conn
            .exec_first(
                "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
                (database,),
            )
            .await
            .map_err(op("look up the database"))?;
        let user_exists: Option<String> = conn
            .exec_first(
                "SELECT User FROM mysql.user WHERE User = ? AND Host = '%'",
                (user,),
            )
            .await
            .map_err(op("look up the user"))?;
        let granted: Option<String> = conn
            .exec_first(
                "SELECT User FROM mysql.db WHERE Db = ? AND User = ? AND Host = '%'",
                (database, user),
            )
            .await
            .map_err(op("look up the grant"))?;
        conn.disconnect().await.map_err(op("disconnect"))?;
        Ok(DbState {
            database_exists: database_exists.is_some(),
            user_exists: user_exists.is_some(),
            granted: granted.is_some(),
        })
    }

    async fn apply(
        &self,
        at: &Endpoint,
        master: &MasterCredentials,
        change: &DbChange<'_>,
    ) -> Result<(), SqlError> {
        let _clock = InFlight::start(External::Mysql);
        let db = ident(change.database)?;
        let user = change.user;
        ident(user)?;
        // The password comes from our own alphabet ([A-Za-z0-9]), checked by Password, so it is a safe literal.
        let password = change.password.expose();
        let mut conn = self.master(at, master).await?;
        if change.create_database {
            conn.query_drop(format!("CREATE DATABASE IF NOT EXISTS {db} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
                .await
                .map_err(|source| SqlError { operation: format!("CREATE DATABASE {db}"), source })?;
        }
        if change.create_user {
            conn.query_drop(format!(
                "CREATE USER IF NOT EXISTS '{user}'@'%' IDENTIFIED BY '{password}'"
            ))
            .await
            .map_err(|source| SqlError {
                operation: format!("CREATE USER {user}"),
                source,
            })?;
        }
        if change.set_password {
            conn.query_drop(format!(
                "ALTER USER '{user}'@'%' IDENTIFIED BY '{password}'"
            ))
            .await
            .map_err(|source| SqlError {
                operation: format!("ALTER USER {user}"),
                source,
            })?;
        }
        if change.grant {
            conn.query_drop(format!("GRANT ALL PRIVILEGES ON {db}.* TO '{user}'@'%'"))
                .await
                .map_err(|source| SqlError {
                    operation: format!("GRANT ON {db} TO {user}"),
                    source,
                })?;
        }
        conn.disconnect().await.map_err(|source| SqlError {
            operation: "disconnect".into(),
            source,
        })
    }

    async fn can_login(
        &self,
        at: &Endpoint,
        user: &str,
        password: &Password,
        database: &str,
    ) -> bool {
        let _clock = InFlight::start(External::Mysql);
        match mysql_async::Conn::new(self.opts(at, user, password.expose(), Some(database))).await {
            Ok(conn) => {
                let _ = conn.disconnect().await;
                true
            }
            Err(_) => false,
        }
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
pub struct EnvPorts<S, L> {
    /// Secrets Manager.
    pub secrets: S,
    /// The state table (ledger).
    pub state: L,
}

/// Gives the AWS ports for an environment (through its deploy role).
pub trait Connector: Send + Sync {
    /// Secrets port.
    type Secrets: Secrets;
    /// State port.
    type State: stepdeploy_shared::state::StateStore;
    /// Ports acting in `env`'s account.
    fn connect(
        &self,
        env: &EnvironmentConfig,
    ) -> impl Future<Output = EnvPorts<Self::Secrets, Self::State>> + Send;
}

/// Assumes each environment's deploy role once per cold start and keeps the clients.
pub struct AwsConnector(EnvCache<EnvPorts<SecretsManager, DynamoStateStore>>);

impl AwsConnector {
    /// A connector on top of the orchestrator's own config.
    pub fn new(base: SdkConfig) -> Self {
        Self(EnvCache::new(base, "stepdeploy-database"))
    }
}

impl Connector for AwsConnector {
    type Secrets = SecretsManager;
    type State = DynamoStateStore;

    async fn connect(&self, env: &EnvironmentConfig) -> EnvPorts<SecretsManager, DynamoStateStore> {
        self.0
            .get(env, |config| EnvPorts {
                secrets: SecretsManager(aws_sdk_secretsmanager::Client::new(config)),
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

    #[test]
    fn identifiers_are_checked_before_quoting() {
        assert_eq!(ident("goldencrust_db").expect("valid"), "`goldencrust_db`");
        assert!(ident("x`; DROP DATABASE mysql; --").is_err());
        assert!(ident("").is_err());
    }
}
