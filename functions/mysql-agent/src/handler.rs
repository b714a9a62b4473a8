//! One MySQL request per invocation, against the server the caller names.
//! Identifiers are checked (`[a-z0-9_]`) before they are quoted into SQL;
//! passwords are stepdeploy's own alphabet (`[A-Za-z0-9]`, checked by the
//! caller's `Password` and again here) and never leave this function.

use crate::dump::HEADER;
use crate::error::AgentError;
use crate::ports::{Backups, Changes, MySql};
use stepdeploy_shared::config::BACKUP_PREFIX;
use stepdeploy_shared::mysql::{DumpFigures, MySqlCall, MySqlRequest, MySqlResponse};
use stepdeploy_shared::timing::{External, InFlight};

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

/// A dump's key: under [`BACKUP_PREFIX`], `[A-Za-z0-9._/-]`, no `..`.
fn backup_key(key: &str) -> Result<&str, AgentError> {
    let ok = key.starts_with(BACKUP_PREFIX)
        && !key.contains("..")
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/' | b'-'));
    ok.then_some(key).ok_or_else(|| {
        AgentError::Validation(format!(
            "{key:?} is not a dump key ({BACKUP_PREFIX}…, [A-Za-z0-9._/-])"
        ))
    })
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
        MySqlRequest::Dump { database, key, .. } | MySqlRequest::Restore { database, key, .. } => {
            checked(database).and(backup_key(key))
        }
    }
    .map(|_| ())
}

/// Runs one [`MySqlCall`]: every name checked before anything connects.
pub async fn handle(
    call: MySqlCall,
    mysql: &MySql,
    backups: &Backups,
) -> Result<MySqlResponse, AgentError> {
    let MySqlCall {
        endpoint,
        master,
        request,
    } = call;
    validate(&request)?;
    let _clock = InFlight::start(External::Mysql);
    if let MySqlRequest::CanLogin { login, database } = &request {
        let database = checked(database)?;
        let ok = mysql.can_login(&endpoint, login, database).await;
        return Ok(MySqlResponse::Login { ok });
    }
    let mut session = mysql.connect(&endpoint, &master).await?;
    let response = match request {
        MySqlRequest::CanLogin { .. } => unreachable!("answered above"),
        MySqlRequest::Inspect { database, user } => {
            let (database, user) = (checked(&database)?, checked(&user)?);
            MySqlResponse::State(session.inspect(database, user).await?)
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
            let changes = Changes {
                create_database,
                create_user,
                set_password,
                grant,
            };
            session.apply(db, user, password, changes).await?;
            MySqlResponse::Done
        }
        MySqlRequest::DropUser { user } => {
            session.drop_user(checked(&user)?).await?;
            MySqlResponse::Done
        }
        MySqlRequest::DropDatabase { database } => {
            session.drop_database(checked(&database)?).await?;
            MySqlResponse::Done
        }
        MySqlRequest::RetainDatabase {
            database,
            retained_as,
        } => {
            let (database, retained_as) = (checked(&database)?, checked(&retained_as)?);
            session.retain_database(database, retained_as).await?;
            MySqlResponse::Done
        }
        MySqlRequest::Dump {
            database,
            bucket,
            key,
        } => {
            // The key names the run: there already means this run dumped
            // before (a retry), and what it holds is the data to keep.
            if let Some(bytes) = backups.existing(&bucket, backup_key(&key)?).await? {
                tracing::info!(%database, %key, bytes, "already dumped by this run");
                session.disconnect().await?;
                return Ok(MySqlResponse::Moved(DumpFigures {
                    tables: 0,
                    rows: None,
                    bytes,
                }));
            }
            let at = stepdeploy_shared::names::now_rfc3339();
            let writer = session.dump(checked(&database)?, &at).await?;
            let (tables, rows) = (writer.tables, writer.rows);
            let text = writer.finish();
            let bytes = text.len() as u64;
            backups.put(&bucket, backup_key(&key)?, text).await?;
            tracing::info!(%database, %key, tables, rows, bytes, "dumped");
            MySqlResponse::Moved(DumpFigures {
                tables,
                rows: Some(rows),
                bytes,
            })
        }
        MySqlRequest::Restore {
            database,
            bucket,
            key,
        } => {
            let text = backups.get(&bucket, backup_key(&key)?).await?;
            if !text.starts_with(HEADER) {
                return Err(AgentError::Validation(format!(
                    "s3://{bucket}/{key} is not a stepdeploy dump; nothing was changed"
                )));
            }
            let tables = session.restore(checked(&database)?, &text).await?;
            tracing::info!(%database, %key, tables, "restored");
            MySqlResponse::Moved(DumpFigures {
                tables,
                rows: None,
                bytes: text.len() as u64,
            })
        }
    };
    session.disconnect().await?;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use stepdeploy_shared::errors::ErrorName;

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
        // Not a MySqlCall: refused by the entry helper, naming the field.
        let err = stepdeploy_shared::lambda::input::<MySqlCall>(
            serde_json::json!({"request": {"action": "drop_user"}}),
        )
        .expect_err("bad");
        assert_eq!(err.error_type, "ValidationFailed");
        assert!(
            err.error_message.contains("request.user"),
            "{}",
            err.error_message
        );
        let call: MySqlCall = serde_json::from_value(serde_json::json!({
            "endpoint": {"host": "127.0.0.1", "port": 1, "tls": false},
            "master": {"username": "admin", "password": "pw"},
            "request": {"action": "drop_user", "user": "bad name"}
        }))
        .expect("a MySqlCall");
        let err = handle(call, &MySql, &backups()).await.expect_err("refused");
        // Refused before any connection (port 1 would be a DatabaseError).
        assert_eq!(err.error_name(), "ValidationFailed");
    }

    /// An S3 client that would fail any call it made (none is made).
    fn backups() -> Backups {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("eu-west-1"))
            .endpoint_url("http://127.0.0.1:1")
            .build();
        Backups(aws_sdk_s3::Client::from_conf(config))
    }

    #[tokio::test]
    async fn a_dump_goes_only_under_backups_and_is_refused_before_connecting() {
        for key in [
            "sit/goldencrust.json",
            "_backups/../x",
            "_backups/a b.sql",
            "",
        ] {
            let call: MySqlCall = serde_json::from_value(serde_json::json!({
                "endpoint": {"host": "127.0.0.1", "port": 1, "tls": false},
                "master": {"username": "admin", "password": "pw"},
                "request": {"action": "restore", "database": "acme_db", "bucket": "b", "key": key}
            }))
            .expect("a MySqlCall");
            let err = handle(call, &MySql, &backups()).await.expect_err("refused");
            assert_eq!(err.error_name(), "ValidationFailed", "{key}: {err}");
        }
        assert!(backup_key("_backups/acme/acme-prod-1.sql").is_ok());
    }
}
