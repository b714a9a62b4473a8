//! MySQL, through the agent each environment account runs next to its RDS
//! (`stepdeploy_shared::mysql`), invoked through the deploy role.

use crate::credentials::{MasterCredentials, Password};
use std::future::Future;
use stepdeploy_shared::mysql::{
    DumpFigures, Login, MySqlAgent, MySqlCall, MySqlRequest, MySqlResponse, Secret,
};

pub use stepdeploy_shared::mysql::{DbState, Endpoint};

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
    /// Dumps `database` to `s3://bucket/key` (the agent writes it).
    fn dump(
        &self,
        at: &Endpoint,
        master: &MasterCredentials,
        dump: &DumpPlace<'_>,
    ) -> impl Future<Output = Result<DumpFigures, SqlError>> + Send;
    /// Replaces `database`'s tables by the dump at `s3://bucket/key`.
    fn restore(
        &self,
        at: &Endpoint,
        master: &MasterCredentials,
        dump: &DumpPlace<'_>,
    ) -> impl Future<Output = Result<DumpFigures, SqlError>> + Send;
}

/// A database and where its dump is.
#[derive(Debug, Clone, Copy)]
pub struct DumpPlace<'a> {
    /// The database name (validated: `[a-z0-9_]`).
    pub database: &'a str,
    /// The environment's config bucket.
    pub bucket: &'a str,
    /// The dump's key (under `_backups/`).
    pub key: &'a str,
}

impl<'a> DumpPlace<'a> {
    /// The tenant's database of `plan`, its dump at `key` in the config bucket.
    pub fn of(plan: &'a stepdeploy_shared::DeploymentPlan, key: &'a str) -> Self {
        Self {
            database: &plan.names.database,
            bucket: &plan.env.config_bucket,
            key,
        }
    }
}

/// A dump or restore request's answer: what moved.
async fn moved(
    agent: &Agent,
    at: &Endpoint,
    master: &MasterCredentials,
    request: MySqlRequest,
) -> Result<DumpFigures, SqlError> {
    match agent.call(&call(at, master, request)).await? {
        MySqlResponse::Moved(figures) => Ok(figures),
        other => Err(unexpected(agent, other)),
    }
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

    async fn dump(
        &self,
        at: &Endpoint,
        master: &MasterCredentials,
        dump: &DumpPlace<'_>,
    ) -> Result<DumpFigures, SqlError> {
        let request = MySqlRequest::Dump {
            database: dump.database.into(),
            bucket: dump.bucket.into(),
            key: dump.key.into(),
        };
        moved(self, at, master, request).await
    }

    async fn restore(
        &self,
        at: &Endpoint,
        master: &MasterCredentials,
        dump: &DumpPlace<'_>,
    ) -> Result<DumpFigures, SqlError> {
        let request = MySqlRequest::Restore {
            database: dump.database.into(),
            bucket: dump.bucket.into(),
            key: dump.key.into(),
        };
        moved(self, at, master, request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

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
