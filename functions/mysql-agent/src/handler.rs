//! One MySQL request per invocation, against the server the caller names.
//! Identifiers are checked (`[a-z0-9_]`) before they are quoted into SQL;
//! passwords are stepdeploy's own alphabet (`[A-Za-z0-9]`, checked by the
//! caller's `Password` and again here) and never leave this function.

use lambda_runtime::Diagnostic;
use mysql_async::prelude::Queryable;
use stepdeploy_shared::error_names;
use stepdeploy_shared::errors::{diagnostic, ErrorName};
use stepdeploy_shared::mysql::{DbState, Endpoint, Login, MySqlCall, MySqlRequest, MySqlResponse};
use stepdeploy_shared::timing::{External, InFlight};

/// Why a request failed. No variant carries a password or a statement with one.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The payload is not a [`MySqlCall`], or a name is not `[a-z0-9_]`.
    #[error("invalid request: {0}")]
    Validation(String),
    /// MySQL refused a connection or a statement.
    #[error("MySQL at {endpoint}: {operation}: {source}")]
    Sql {
        /// host:port.
        endpoint: String,
        /// What was being done (`CREATE USER acme_user`).
        operation: String,
        /// The driver's error.
        #[source]
        source: mysql_async::Error,
    },
}

impl ErrorName for AgentError {
    fn error_name(&self) -> &'static str {
        match self {
            Self::Validation(_) => error_names::VALIDATION_FAILED,
            Self::Sql { .. } => error_names::DATABASE_ERROR,
        }
    }
}

impl From<AgentError> for Diagnostic {
    fn from(err: AgentError) -> Self {
        diagnostic(&err)
    }
}

/// `[a-z0-9_]`, non-empty: safe to quote.
fn checked(name: &str) -> Result<&str, AgentError> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    ok.then_some(name)
        .ok_or_else(|| AgentError::Validation(format!("{name:?} is not [a-z0-9_]")))
}

/// `[A-Za-z0-9]`, as stepdeploy generates them: safe as a SQL literal.
fn password_literal(password: &str) -> Result<&str, AgentError> {
    let ok = !password.is_empty() && password.bytes().all(|b| b.is_ascii_alphanumeric());
    ok.then_some(password)
        .ok_or_else(|| AgentError::Validation("the password is not [A-Za-z0-9]".into()))
}

/// Every name and password of `request`, before anything connects.
fn validate(request: &MySqlRequest) -> Result<(), AgentError> {
    match request {
        MySqlRequest::Inspect { database, user } => checked(database).and(checked(user)),
        MySqlRequest::Apply {
            database,
            user,
            password,
            ..
        } => checked(database)
            .and(checked(user))
            .and(password_literal(&password.0)),
        MySqlRequest::CanLogin { database, .. } => checked(database),
        MySqlRequest::DropUser { user } => checked(user),
        MySqlRequest::DropDatabase { database } => checked(database),
        MySqlRequest::RetainDatabase {
            database,
            retained_as,
        } => checked(database).and(checked(retained_as)),
    }
    .map(|_| ())
}

/// mysql_async, TLS when asked, trusting RDS's CAs (compiled in,
/// `stepdeploy_shared::tls::RDS_CA_BUNDLE`): every RDS server certificate
/// chains to one of them.
pub struct MySql;

impl MySql {
    fn opts(&self, at: &Endpoint, login: &Login, database: Option<&str>) -> mysql_async::Opts {
        let mut builder = mysql_async::OptsBuilder::default()
            .ip_or_hostname(at.host.clone())
            .tcp_port(at.port)
            .user(Some(login.username.clone()))
            .pass(Some(login.password.0.clone()))
            .db_name(database.map(str::to_string))
            .prefer_socket(false);
        if at.tls {
            let roots = vec![stepdeploy_shared::tls::RDS_CA_BUNDLE.into()];
            builder =
                builder.ssl_opts(Some(mysql_async::SslOpts::default().with_root_certs(roots)));
        }
        builder.into()
    }
}

/// Runs one [`MySqlCall`].
pub async fn handle(input: serde_json::Value, mysql: &MySql) -> Result<MySqlResponse, AgentError> {
    let MySqlCall {
        endpoint,
        master,
        request,
    } = serde_json::from_value(input).map_err(|e| {
        AgentError::Validation(format!("expected {{endpoint, master, request}}: {e}"))
    })?;
    validate(&request)?;
    let _clock = InFlight::start(External::Mysql);
    let at = format!("{}:{}", endpoint.host, endpoint.port);
    let sql = |operation: String| {
        let at = at.clone();
        move |source| AgentError::Sql {
            endpoint: at,
            operation,
            source,
        }
    };
    if let MySqlRequest::CanLogin { login, database } = &request {
        let database = checked(database)?;
        return Ok(MySqlResponse::Login {
            ok: match mysql_async::Conn::new(mysql.opts(&endpoint, login, Some(database))).await {
                Ok(conn) => {
                    let _ = conn.disconnect().await;
                    true
                }
                Err(_) => false,
            },
        });
    }
    let mut conn = mysql_async::Conn::new(mysql.opts(&endpoint, &master, None))
        .await
        .map_err(sql("connect as the master user".into()))?;
    let response = match request {
        MySqlRequest::CanLogin { .. } => unreachable!("answered above"),
        MySqlRequest::Inspect { database, user } => {
            let (database, user) = (checked(&database)?, checked(&user)?);
            let database_exists: Option<String> = conn
                .exec_first(
                    "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
                    (database,),
                )
                .await
                .map_err(sql("look up the database".into()))?;
            let user_exists: Option<String> = conn
                .exec_first(
                    "SELECT User FROM mysql.user WHERE User = ? AND Host = '%'",
                    (user,),
                )
                .await
                .map_err(sql("look up the user".into()))?;
            let granted: Option<String> = conn
                .exec_first(
                    "SELECT User FROM mysql.db WHERE Db = ? AND User = ? AND Host = '%'",
                    (database, user),
                )
                .await
                .map_err(sql("look up the grant".into()))?;
            MySqlResponse::State(DbState {
                database_exists: database_exists.is_some(),
                user_exists: user_exists.is_some(),
                granted: granted.is_some(),
            })
        }
        MySqlRequest::Apply {
            database,
            user,
            password,
            create_database,
            create_user,
            set_password,
            grant,
        } => {
            let (db, user) = (checked(&database)?, checked(&user)?);
            let password = password_literal(&password.0)?;
            let mut statements = Vec::new();
            if create_database {
                statements.push((
                    format!("CREATE DATABASE {db}"),
                    format!("CREATE DATABASE IF NOT EXISTS `{db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"),
                ));
            }
            if create_user {
                statements.push((
                    format!("CREATE USER {user}"),
                    format!("CREATE USER IF NOT EXISTS '{user}'@'%' IDENTIFIED BY '{password}'"),
                ));
            }
            if set_password {
                statements.push((
                    format!("ALTER USER {user}"),
                    format!("ALTER USER '{user}'@'%' IDENTIFIED BY '{password}'"),
                ));
            }
            if grant {
                statements.push((
                    format!("GRANT ON {db} TO {user}"),
                    format!("GRANT ALL PRIVILEGES ON `{db}`.* TO '{user}'@'%'"),
                ));
            }
            for (what, statement) in statements {
                conn.query_drop(statement).await.map_err(sql(what))?;
            }
            MySqlResponse::Done
        }
        MySqlRequest::DropUser { user } => {
            let user = checked(&user)?;
            conn.query_drop(format!("DROP USER IF EXISTS '{user}'@'%'"))
                .await
                .map_err(sql(format!("DROP USER {user}")))?;
            MySqlResponse::Done
        }
        MySqlRequest::DropDatabase { database } => {
            let database = checked(&database)?;
            conn.query_drop(format!("DROP DATABASE IF EXISTS `{database}`"))
                .await
                .map_err(sql(format!("DROP DATABASE {database}")))?;
            MySqlResponse::Done
        }
        MySqlRequest::RetainDatabase {
            database,
            retained_as,
        } => {
            let (database, retained_as) = (checked(&database)?, checked(&retained_as)?);
            let exists: Option<String> = conn
                .exec_first(
                    "SELECT schema_name FROM information_schema.schemata WHERE schema_name = ?",
                    (database,),
                )
                .await
                .map_err(sql(format!("look up database {database}")))?;
            if exists.is_some() {
                conn.query_drop(format!("CREATE DATABASE IF NOT EXISTS `{retained_as}`"))
                    .await
                    .map_err(sql(format!("CREATE DATABASE {retained_as}")))?;
                let tables: Vec<String> = conn
                    .exec(
                        "SELECT table_name FROM information_schema.tables \
                         WHERE table_schema = ? AND table_type = 'BASE TABLE'",
                        (database,),
                    )
                    .await
                    .map_err(sql(format!("list the tables of {database}")))?;
                for table in &tables {
                    // Table names come from the server; quoted with backticks doubled.
                    let quoted = table.replace('`', "``");
                    conn.query_drop(format!(
                        "RENAME TABLE `{database}`.`{quoted}` TO `{retained_as}`.`{quoted}`"
                    ))
                    .await
                    .map_err(sql(format!("RENAME TABLE {database}.* TO {retained_as}")))?;
                }
                conn.query_drop(format!("DROP DATABASE IF EXISTS `{database}`"))
                    .await
                    .map_err(sql(format!("DROP DATABASE {database}")))?;
            }
            MySqlResponse::Done
        }
    };
    conn.disconnect().await.map_err(sql("disconnect".into()))?;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_passwords_are_checked_before_they_reach_sql() {
        assert_eq!(checked("goldencrust_db").expect("valid"), "goldencrust_db");
        assert!(checked("x`; DROP DATABASE mysql; --").is_err());
        assert!(checked("").is_err());
        assert!(password_literal("abcDEF123").is_ok());
        assert!(password_literal("a'b").is_err());
    }

    #[tokio::test]
    async fn a_bad_payload_is_validation_failed_and_connects_nowhere() {
        let mysql = MySql;
        let err = handle(
            serde_json::json!({"request": {"action": "drop_user"}}),
            &mysql,
        )
        .await
        .expect_err("bad");
        assert_eq!(err.error_name(), "ValidationFailed");
        let err = handle(
            serde_json::json!({
                "endpoint": {"host": "127.0.0.1", "port": 1, "tls": false},
                "master": {"username": "admin", "password": "pw"},
                "request": {"action": "drop_user", "user": "bad name"}
            }),
            &mysql,
        )
        .await
        .expect_err("refused");
        // Refused before any connection (port 1 would be a DatabaseError).
        assert_eq!(err.error_name(), "ValidationFailed");
    }
}
