//! The agent's one outside system: the MySQL server the caller names. No
//! trait: the agent's own logic is the checks in [`crate::handler`], tested
//! without a server; the statements here run against the local stack's
//! MariaDB end to end. Every name reaching SQL here has been checked
//! (`[a-z0-9_]`), every password is `[A-Za-z0-9]`.

use crate::dump::{ident, statements, Writer};
use crate::error::AgentError;
use mysql_async::prelude::Queryable;
use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::mysql::{DbState, Endpoint, Login};

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

    /// Whether `login` can connect to `database` (any failure is `false`).
    pub async fn can_login(&self, at: &Endpoint, login: &Login, database: &str) -> bool {
        match mysql_async::Conn::new(self.opts(at, login, Some(database))).await {
            Ok(conn) => {
                let _ = conn.disconnect().await;
                true
            }
            Err(_) => false,
        }
    }

    /// A connection as the master user, for the statements below.
    pub async fn connect(&self, at: &Endpoint, master: &Login) -> Result<Session, AgentError> {
        let endpoint = format!("{}:{}", at.host, at.port);
        let conn = mysql_async::Conn::new(self.opts(at, master, None))
            .await
            .map_err(sql(&endpoint, "connect as the master user"))?;
        Ok(Session { conn, endpoint })
    }
}

/// Turns a driver error into [`AgentError::Sql`] naming what was being done.
fn sql(
    endpoint: &str,
    operation: impl Into<String>,
) -> impl FnOnce(mysql_async::Error) -> AgentError {
    let (endpoint, operation) = (endpoint.to_string(), operation.into());
    move |source| AgentError::Sql {
        endpoint,
        operation,
        source,
    }
}

/// What [`Session::apply`] changes, one statement each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Changes {
    pub create_database: bool,
    pub create_user: bool,
    /// The user exists with another password.
    pub set_password: bool,
    pub grant: bool,
}

/// One connection as the master user.
pub struct Session {
    conn: mysql_async::Conn,
    /// `host:port`, for errors.
    endpoint: String,
}

impl Session {
    fn failed(
        &self,
        operation: impl Into<String>,
    ) -> impl FnOnce(mysql_async::Error) -> AgentError {
        sql(&self.endpoint, operation)
    }

    /// Whether the database, the user and the user's grant on it exist.
    pub async fn inspect(&mut self, database: &str, user: &str) -> Result<DbState, AgentError> {
        let database_exists: Option<String> = self
            .conn
            .exec_first(
                "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
                (database,),
            )
            .await
            .map_err(self.failed("look up the database"))?;
        let user_exists: Option<String> = self
            .conn
            .exec_first(
                "SELECT User FROM mysql.user WHERE User = ? AND Host = '%'",
                (user,),
            )
            .await
            .map_err(self.failed("look up the user"))?;
        let granted: Option<String> = self
            .conn
            .exec_first(
                "SELECT User FROM mysql.db WHERE Db = ? AND User = ? AND Host = '%'",
                (database, user),
            )
            .await
            .map_err(self.failed("look up the grant"))?;
        Ok(DbState {
            database_exists: database_exists.is_some(),
            user_exists: user_exists.is_some(),
            granted: granted.is_some(),
        })
    }

    /// Makes the database and the user as `changes` says, in that order.
    pub async fn apply(
        &mut self,
        db: &str,
        user: &str,
        password: &str,
        changes: Changes,
    ) -> Result<(), AgentError> {
        let mut statements = Vec::new();
        if changes.create_database {
            statements.push((
                format!("CREATE DATABASE {db}"),
                format!("CREATE DATABASE IF NOT EXISTS `{db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"),
            ));
        }
        if changes.create_user {
            statements.push((
                format!("CREATE USER {user}"),
                format!("CREATE USER IF NOT EXISTS '{user}'@'%' IDENTIFIED BY '{password}'"),
            ));
        }
        if changes.set_password {
            statements.push((
                format!("ALTER USER {user}"),
                format!("ALTER USER '{user}'@'%' IDENTIFIED BY '{password}'"),
            ));
        }
        if changes.grant {
            statements.push((
                format!("GRANT ON {db} TO {user}"),
                format!("GRANT ALL PRIVILEGES ON `{db}`.* TO '{user}'@'%'"),
            ));
        }
        for (what, statement) in statements {
            self.conn
                .query_drop(statement)
                .await
                .map_err(self.failed(what))?;
        }
        Ok(())
    }

    /// Drops the user if it exists.
    pub async fn drop_user(&mut self, user: &str) -> Result<(), AgentError> {
        self.conn
            .query_drop(format!("DROP USER IF EXISTS '{user}'@'%'"))
            .await
            .map_err(self.failed(format!("DROP USER {user}")))
    }

    /// Drops the database if it exists.
    pub async fn drop_database(&mut self, database: &str) -> Result<(), AgentError> {
        self.conn
            .query_drop(format!("DROP DATABASE IF EXISTS `{database}`"))
            .await
            .map_err(self.failed(format!("DROP DATABASE {database}")))
    }

    /// Moves every table of `database` to `retained_as`, then drops
    /// `database`; nothing when it does not exist.
    pub async fn retain_database(
        &mut self,
        database: &str,
        retained_as: &str,
    ) -> Result<(), AgentError> {
        let exists: Option<String> = self
            .conn
            .exec_first(
                "SELECT schema_name FROM information_schema.schemata WHERE schema_name = ?",
                (database,),
            )
            .await
            .map_err(self.failed(format!("look up database {database}")))?;
        if exists.is_none() {
            return Ok(());
        }
        self.conn
            .query_drop(format!("CREATE DATABASE IF NOT EXISTS `{retained_as}`"))
            .await
            .map_err(self.failed(format!("CREATE DATABASE {retained_as}")))?;
        let tables: Vec<String> = self
            .conn
            .exec(
                "SELECT table_name FROM information_schema.tables \
                 WHERE table_schema = ? AND table_type = 'BASE TABLE'",
                (database,),
            )
            .await
            .map_err(self.failed(format!("list the tables of {database}")))?;
        for table in &tables {
            // Table names come from the server; quoted with backticks doubled.
            let quoted = table.replace('`', "``");
            self.conn
                .query_drop(format!(
                    "RENAME TABLE `{database}`.`{quoted}` TO `{retained_as}`.`{quoted}`"
                ))
                .await
                .map_err(self.failed(format!("RENAME TABLE {database}.* TO {retained_as}")))?;
        }
        self.drop_database(database).await
    }

    /// Dumps every base table of `database` in one consistent snapshot
    /// (InnoDB's: other sessions go on writing meanwhile).
    pub async fn dump(&mut self, database: &str, at: &str) -> Result<Writer, AgentError> {
        for statement in [
            "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
            "START TRANSACTION WITH CONSISTENT SNAPSHOT",
        ] {
            self.conn
                .query_drop(statement)
                .await
                .map_err(self.failed(format!("dump {database}: {statement}")))?;
        }
        let tables: Vec<String> = self
            .conn
            .exec(
                "SELECT table_name FROM information_schema.tables \
                 WHERE table_schema = ? AND table_type = 'BASE TABLE' ORDER BY table_name",
                (database,),
            )
            .await
            .map_err(self.failed(format!("list the tables of {database}")))?;
        let mut writer = Writer::new(database, at);
        for table in &tables {
            let qualified = format!("{}.{}", ident(database), ident(table));
            let create: Option<(String, String)> = self
                .conn
                .query_first(format!("SHOW CREATE TABLE {qualified}"))
                .await
                .map_err(self.failed(format!("SHOW CREATE TABLE {database}.{table}")))?;
            let Some((_, create)) = create else { continue };
            let rows: Vec<mysql_async::Row> = self
                .conn
                .query(format!("SELECT * FROM {qualified}"))
                .await
                .map_err(self.failed(format!("read {database}.{table}")))?;
            let rows: Vec<Vec<Option<Vec<u8>>>> = rows
                .into_iter()
                .map(|row| row.unwrap().into_iter().map(cell).collect())
                .collect();
            writer.table(table, &create, &rows);
        }
        self.conn
            .query_drop("COMMIT")
            .await
            .map_err(self.failed(format!("dump {database}: COMMIT")))?;
        Ok(writer)
    }

    /// Replaces every table of `database` by the dump's: the tables it has
    /// now are dropped first, so tables a later release added go too.
    pub async fn restore(&mut self, database: &str, dump: &str) -> Result<u32, AgentError> {
        let statements = statements(dump);
        let tables: Vec<String> = self
            .conn
            .exec(
                "SELECT table_name FROM information_schema.tables \
                 WHERE table_schema = ? AND table_type = 'BASE TABLE'",
                (database,),
            )
            .await
            .map_err(self.failed(format!("list the tables of {database}")))?;
        self.conn
            .query_drop(format!("USE {}", ident(database)))
            .await
            .map_err(self.failed(format!("USE {database}")))?;
        self.conn
            .query_drop("SET FOREIGN_KEY_CHECKS=0")
            .await
            .map_err(self.failed("SET FOREIGN_KEY_CHECKS=0"))?;
        for table in &tables {
            self.conn
                .query_drop(format!("DROP TABLE IF EXISTS {}", ident(table)))
                .await
                .map_err(self.failed(format!("DROP TABLE {database}.{table}")))?;
        }
        let mut created = 0;
        for (n, statement) in statements.iter().enumerate() {
            if statement.starts_with("CREATE TABLE") {
                created += 1;
            }
            // The statement itself may hold tenant data: the error names its place only.
            self.conn
                .query_drop(*statement)
                .await
                .map_err(self.failed(format!(
                    "restore {database}: statement {} of {}",
                    n + 1,
                    statements.len()
                )))?;
        }
        Ok(created)
    }

    /// Closes the connection.
    pub async fn disconnect(self) -> Result<(), AgentError> {
        let failed = self.failed("disconnect");
        self.conn.disconnect().await.map_err(failed)
    }
}

/// Where the dumps are kept: the environment's config bucket, through the
/// agent's own role (`s3:PutObject`/`GetObject` on `_backups/*` only).
pub struct Backups(pub aws_sdk_s3::Client);

impl Backups {
    /// Stores a dump, encrypted at rest (SSE-S3).
    pub async fn put(&self, bucket: &str, key: &str, text: String) -> Result<(), AgentError> {
        self.0
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("application/sql")
            .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::Aes256)
            .body(text.into_bytes().into())
            .send()
            .await
            .map_err(|e| AwsCallError::new("s3:PutObject (database dump)", e))?;
        Ok(())
    }

    /// The size of the dump at `key`, if this run already wrote it (a
    /// retried phase must not overwrite the data it saved with what it
    /// restored since).
    pub async fn existing(&self, bucket: &str, key: &str) -> Result<Option<u64>, AgentError> {
        match self.0.head_object().bucket(bucket).key(key).send().await {
            Ok(out) => Ok(Some(
                out.content_length
                    .and_then(|n| u64::try_from(n).ok())
                    .unwrap_or_default(),
            )),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(None),
            Err(e) => Err(AwsCallError::new("s3:HeadObject (database dump)", e).into()),
        }
    }

    /// Reads a dump back.
    pub async fn get(&self, bucket: &str, key: &str) -> Result<String, AgentError> {
        let out = self
            .0
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| AwsCallError::new("s3:GetObject (database dump)", e))?;
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| AwsCallError::other("s3:GetObject (database dump body)", e))?
            .into_bytes();
        String::from_utf8(bytes.to_vec()).map_err(|_| {
            AgentError::Validation(format!(
                "s3://{bucket}/{key} is not a stepdeploy dump (not UTF-8)"
            ))
        })
    }
}

/// A value as the text protocol returns it (bytes), `None` for `NULL`.
fn cell(value: mysql_async::Value) -> Option<Vec<u8>> {
    match value {
        mysql_async::Value::NULL => None,
        mysql_async::Value::Bytes(bytes) => Some(bytes),
        // The text protocol answers bytes; a typed value is written as text.
        other => Some(other.as_sql(false).trim_matches('\'').as_bytes().to_vec()),
    }
}
