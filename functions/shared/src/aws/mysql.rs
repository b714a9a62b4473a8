//! The MySQL agent's contract: what database, rollback and teardown ask the
//! small function that each environment account runs next to its RDS (in
//! its VPC), and what it answers.
//!
//! Why an agent: RDS sits in a private VPC of the environment's account (prod
//! in another Region); the orchestrator's functions cannot reach it without
//! peering every VPC and NAT for the AWS APIs. The agent runs inside that VPC
//! and makes no AWS call at all (the caller reads the secrets through the
//! deploy role and passes the credentials in the invocation), so its VPC
//! needs no NAT and no endpoints. Invocation payloads are not logged by
//! Lambda, CloudTrail or the agent; [`Secret`] keeps them out of `Debug`.

use serde::{Deserialize, Serialize};

/// A password on the wire: serialised as itself, never printed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Where MySQL is and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Require TLS (trusting RDS's CAs).
    pub tls: bool,
}

/// A MySQL login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Login {
    /// User.
    pub username: String,
    /// Password.
    pub password: Secret,
}

/// What exists on the server for the tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DbState {
    /// `{tenant}_db` exists.
    pub database_exists: bool,
    /// `{tenant}_user`@`%` exists.
    pub user_exists: bool,
    /// The user has privileges on the database.
    pub granted: bool,
}

/// What the agent is asked to do. Names are validated `[a-z0-9_]` on both
/// sides (they come from validated tenants).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum MySqlRequest {
    /// What exists for `database`/`user` (as the master user).
    Inspect {
        /// Database name.
        database: String,
        /// User name.
        user: String,
    },
    /// Converge: database, user (created with or set to `password`), grant.
    Apply {
        /// Database name.
        database: String,
        /// User name.
        user: String,
        /// The password the user must have.
        password: Secret,
        /// Create the database.
        create_database: bool,
        /// Create the user.
        create_user: bool,
        /// Set the existing user's password.
        set_password: bool,
        /// Grant privileges on the database.
        grant: bool,
    },
    /// Whether `login` can log in and use `database` (not as the master user).
    CanLogin {
        /// The tenant's login.
        login: Login,
        /// Its database.
        database: String,
    },
    /// `DROP USER IF EXISTS`.
    DropUser {
        /// User name.
        user: String,
    },
    /// `DROP DATABASE IF EXISTS`.
    DropDatabase {
        /// Database name.
        database: String,
    },
    /// Keeps a removed tenant's data: moves every table of `database` into
    /// `retained_as` (created if needed) with `RENAME TABLE`, then drops the
    /// emptied `database`. Nothing to do if `database` does not exist; a
    /// partly moved database finishes moving. Views, routines and events are
    /// not moved (WordPress has none).
    RetainDatabase {
        /// Database name.
        database: String,
        /// Where its tables go.
        retained_as: String,
    },
    /// Dumps `database` (every base table: `DROP`/`CREATE`/`INSERT`
    /// statements, read in one consistent snapshot) to `s3://bucket/key`,
    /// encrypted (SSE-S3). The key must be under `_backups/`.
    Dump {
        /// Database name.
        database: String,
        /// The environment's config bucket.
        bucket: String,
        /// Where the dump goes.
        key: String,
    },
    /// Replaces every table of `database` by the dump at `s3://bucket/key`
    /// (tables the dump does not have are dropped).
    Restore {
        /// Database name.
        database: String,
        /// The environment's config bucket.
        bucket: String,
        /// The dump.
        key: String,
    },
}

/// What a dump or a restore moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpFigures {
    /// Tables.
    pub tables: u32,
    /// Rows (a dump counts them; a restore does not).
    pub rows: Option<u64>,
    /// Size of the dump.
    pub bytes: u64,
}

/// One invocation of the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MySqlCall {
    /// The server.
    pub endpoint: Endpoint,
    /// The master login (unused by `CanLogin`).
    pub master: Login,
    /// What to do.
    pub request: MySqlRequest,
}

/// The agent's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum MySqlResponse {
    /// For `Inspect`.
    State(DbState),
    /// For `CanLogin`.
    Login {
        /// Logged in and could use the database.
        ok: bool,
    },
    /// For `Apply` and the drops.
    Done,
    /// For `Dump` and `Restore`.
    Moved(DumpFigures),
}

/// The `errorType` of a MySQL failure the agent reports.
pub const AGENT_SQL_ERROR: &str = "DatabaseError";

/// Why a call to the agent failed, without statements or secrets in it.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The agent reached MySQL and MySQL refused (what was being done, and why).
    #[error("{0}")]
    Refused(String),
    /// The agent did not answer as agreed.
    #[error("MySQL agent {function}: {reason}")]
    Broken {
        /// The agent's ARN.
        function: String,
        /// Why.
        reason: String,
    },
    /// Invoking the agent failed (access denied, throttled, …).
    #[error(transparent)]
    Invoke(#[from] crate::aws_error::AwsCallError),
}

impl AgentError {
    /// The name Step Functions sees: the AWS error's own for a failed
    /// invocation (so Retry/Catch see `AwsThrottled`), else `DatabaseError`.
    pub fn error_name(&self) -> &'static str {
        match self {
            Self::Invoke(e) => e.error_name(),
            _ => crate::error_names::DATABASE_ERROR,
        }
    }
}

/// An environment's MySQL agent, invoked through its deploy role.
#[derive(Clone)]
pub struct MySqlAgent {
    /// Lambda in the environment's account.
    pub lambda: aws_sdk_lambda::Client,
    /// The agent's ARN (`EnvironmentConfig::mysql_agent_arn`).
    pub function: String,
}

impl MySqlAgent {
    /// One request; a MySQL refusal is [`AgentError::Refused`].
    pub async fn call(&self, call: &MySqlCall) -> Result<MySqlResponse, AgentError> {
        let broken = |reason: String| AgentError::Broken {
            function: self.function.clone(),
            reason,
        };
        let payload = serde_json::to_vec(call).map_err(|e| broken(e.to_string()))?;
        let out = self
            .lambda
            .invoke()
            .function_name(&self.function)
            .payload(payload.into())
            .send()
            .await
            .map_err(|e| crate::aws_error::AwsCallError::new("lambda:Invoke (MySQL agent)", e))?;
        let body = out.payload().map(|b| b.as_ref()).unwrap_or_default();
        if out.function_error().is_some() {
            let error: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
            let message = error["errorMessage"]
                .as_str()
                .unwrap_or("no message")
                .to_string();
            return Err(match error["errorType"].as_str() {
                Some(AGENT_SQL_ERROR) => AgentError::Refused(message),
                other => broken(format!("{}: {message}", other.unwrap_or("error"))),
            });
        }
        serde_json::from_slice(body).map_err(|e| broken(format!("unexpected answer: {e}")))
    }

    /// A request that answers [`MySqlResponse::Done`].
    pub async fn run(&self, call: &MySqlCall) -> Result<(), AgentError> {
        match self.call(call).await? {
            MySqlResponse::Done => Ok(()),
            other => Err(AgentError::Broken {
                function: self.function.clone(),
                reason: format!("answered {other:?}"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_travel_but_never_print() {
        let call = MySqlCall {
            endpoint: Endpoint {
                host: "db".into(),
                port: 3306,
                tls: true,
            },
            master: Login {
                username: "admin".into(),
                password: Secret("master-pw".into()),
            },
            request: MySqlRequest::Apply {
                database: "acme_db".into(),
                user: "acme_user".into(),
                password: Secret("tenant-pw".into()),
                create_database: true,
                create_user: true,
                set_password: false,
                grant: true,
            },
        };
        let wire = serde_json::to_value(&call).expect("json");
        assert_eq!(wire["request"]["action"], "apply");
        assert_eq!(wire["request"]["password"], "tenant-pw");
        assert_eq!(
            serde_json::from_value::<MySqlCall>(wire).expect("back"),
            call
        );
        let shown = format!("{call:?}");
        assert!(
            !shown.contains("master-pw") && !shown.contains("tenant-pw"),
            "{shown}"
        );
        assert_eq!(
            serde_json::to_value(MySqlResponse::State(DbState::default())).expect("json")
                ["outcome"],
            "state"
        );
    }
}
