//! One MySQL request per invocation, against the server the caller names.
//! Identifiers are checked (`[a-z0-9_]`) before they are quoted into SQL;
//! passwords are stepdeploy's own alphabet (`[A-Za-z0-9]`, checked by the
//! caller's `Password` and again here) and never leave this function.

use crate::error::AgentError;
use crate::ports::{Changes, MySql};
use stepdeploy_shared::mysql::{MySqlCall, MySqlRequest, MySqlResponse};
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

/// Runs one [`MySqlCall`]: every name checked before anything connects.
pub async fn handle(call: MySqlCall, mysql: &MySql) -> Result<MySqlResponse, AgentError> {
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
        let err = handle(call, &MySql).await.expect_err("refused");
        // Refused before any connection (port 1 would be a DatabaseError).
        assert_eq!(err.error_name(), "ValidationFailed");
    }
}
