//! Step 2, MySQL: make the database, the user and its grant agree with the
//! secret. The user keeps its password when it already logs in with the
//! secret's; otherwise it is set to it.

use super::secret::Secret;
use super::PHASE;
use crate::credentials::MasterCredentials;
use crate::error::DatabaseError;
use crate::ports::{Database, DbChange, DbState, DumpPlace, Endpoint, SqlError};
use stepdeploy_shared::ledger::{LedgerEntry, LedgerKind};
use stepdeploy_shared::state::StateStore;
use stepdeploy_shared::DeploymentPlan;

/// The environment's MySQL server, as the master user.
pub struct Server<'a, D> {
    /// The agent.
    pub db: &'a D,
    /// Where the server is.
    pub at: Endpoint,
    /// The master login.
    pub master: &'a MasterCredentials,
}

impl<'a, D: Database> Server<'a, D> {
    /// The server `plan`'s environment names.
    pub fn of(plan: &DeploymentPlan, db: &'a D, master: &'a MasterCredentials) -> Self {
        let rds = &plan.env.rds;
        let at = Endpoint {
            host: rds.endpoint.clone(),
            port: rds.port,
            tls: rds.tls,
        };
        Self { db, at, master }
    }

    /// What exists of the tenant's database and user.
    pub async fn inspect(&self, plan: &DeploymentPlan) -> Result<DbState, DatabaseError> {
        let names = &plan.names;
        self.db
            .inspect(&self.at, self.master, &names.database, &names.db_user)
            .await
            .map_err(|e| self.error(e))
    }

    /// Before the image changes: the tenant's database to `plan.backup`, so
    /// a rollback can bring this release's data back. `None`: no dump asked.
    pub async fn dump(&self, plan: &DeploymentPlan) -> Result<Option<String>, DatabaseError> {
        let Some(key) = &plan.backup else {
            return Ok(None);
        };
        let place = DumpPlace::of(plan, key);
        self.db
            .dump(&self.at, self.master, &place)
            .await
            .map_err(|e| self.error(e))?;
        Ok(Some(key.clone()))
    }

    /// A rollback with `--restore-database`: the dump its plan names loaded
    /// into the tenant's database. `None`: nothing to restore.
    pub async fn restore(&self, plan: &DeploymentPlan) -> Result<Option<String>, DatabaseError> {
        let Some(key) = plan.restore.as_ref().and_then(|r| r.database_dump.as_ref()) else {
            return Ok(None);
        };
        let place = DumpPlace::of(plan, key);
        self.db
            .restore(&self.at, self.master, &place)
            .await
            .map_err(|e| self.error(e))?;
        Ok(Some(key.clone()))
    }

    fn error(&self, source: SqlError) -> DatabaseError {
        DatabaseError::Sql {
            endpoint: format!("{}:{}", self.at.host, self.at.port),
            source,
        }
    }
}

/// Converges MySQL from `found` (what [`Server::inspect`] saw) to the secret.
pub async fn converge(
    plan: &DeploymentPlan,
    server: &Server<'_, impl Database>,
    found: DbState,
    secret: &Secret,
    ledger: &impl StateStore,
    changes: &mut Vec<String>,
) -> Result<(), DatabaseError> {
    let names = &plan.names;
    let agrees = found.user_exists
        && !secret.fresh
        && server
            .db
            .can_login(
                &server.at,
                &names.db_user,
                &secret.password,
                &names.database,
            )
            .await;
    let change = DbChange {
        database: &names.database,
        user: &names.db_user,
        password: &secret.password,
        create_database: !found.database_exists,
        create_user: !found.user_exists,
        set_password: found.user_exists && !agrees,
        grant: !found.granted || !found.user_exists || !found.database_exists,
    };
    if change.create_database {
        let entry = LedgerEntry::created(LedgerKind::MysqlDatabase, &names.database, PHASE);
        ledger.record(&plan.execution, &entry).await?;
    }
    if change.create_user {
        let entry = LedgerEntry::created(LedgerKind::MysqlUser, &names.db_user, PHASE);
        ledger.record(&plan.execution, &entry).await?;
    }
    if change.create_database || change.create_user || change.set_password || change.grant {
        server
            .db
            .apply(&server.at, server.master, &change)
            .await
            .map_err(|e| server.error(e))?;
    }
    changes.extend(described(&change));
    Ok(())
}

/// What `change` did, in the output's words.
fn described(change: &DbChange<'_>) -> Vec<String> {
    let (database, user) = (change.database, change.user);
    let mut out = Vec::new();
    if change.create_database {
        out.push(format!("created database {database}"));
    }
    if change.create_user {
        out.push(format!("created user {user}"));
    }
    if change.set_password {
        out.push(format!("set the password of {user} to the secret's"));
    }
    if change.grant && !change.create_user {
        out.push(format!("granted {user} on {database}"));
    }
    out
}
