//! database's domain logic: the tenant secret and the MySQL user always
//! agree. A re-run keeps both when they work together; otherwise it makes
//! them agree again (the secret's password is the truth, a missing or
//! unusable one is replaced by a fresh password on both sides).
//!
//! The password goes from the CSPRNG to Secrets Manager and MySQL only: it is
//! never logged, returned or put in the state machine's payload.
//!
//! Every change is written to the run's ledger before it is made (see
//! `stepdeploy_shared::ledger`); the secret's create is adopted, never
//! repeated, when its answer is lost (see `stepdeploy_shared::retry`).
//!
//! The task execution role reads the secret through one static statement on
//! `{env}-*-db-credentials-*` that the environment's stack
//! (`infra/target-account-role.yaml`) attaches, not a policy per tenant: all
//! tenants share that role (so per-tenant policies isolated nothing), a role's
//! inline policies total at most 10,240 characters (about 40 tenants), and
//! the deploy role needs no IAM write permission at all.

use crate::error::DatabaseError;
use crate::ports::{Database, EnvPorts, Secrets};
use crate::steps::mysql::{self, Server};
use crate::steps::secret;
use serde::Deserialize;
use stepdeploy_shared::aws::Connect;
use stepdeploy_shared::contract::DatabaseOutput;
use stepdeploy_shared::state::StateStore;
use stepdeploy_shared::DeploymentPlan;

/// What the state machine passes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseInput {
    /// bootstrap's plan.
    pub plan: DeploymentPlan,
}

/// Runs the phase for one state machine input.
pub async fn handle<S: Secrets, L: StateStore, D: Database>(
    DatabaseInput { plan }: DatabaseInput,
    connector: &impl Connect<EnvPorts<S, L, D>>,
) -> Result<DatabaseOutput, DatabaseError> {
    let ports = connector.connect(&plan.env).await;
    let master = ports
        .secrets
        .master(&plan.env.rds.master_secret_arn)
        .await?;
    let server = Server::of(&plan, &ports.db, &master);
    let found = server.inspect(&plan).await?;
    let mut changes = Vec::new();
    let secret = secret::ensure(&plan, &ports.secrets, &ports.state, &mut changes).await?;
    mysql::converge(&plan, &server, found, &secret, &ports.state, &mut changes).await?;
    // The dump first: it holds the data the running release wrote, which a
    // restore (next) replaces. Neither is undone by rollback: the dump is a
    // backup, and a failed rollback run's data is in its own dump.
    let backup = server.dump(&plan).await?;
    if let Some(key) = &backup {
        changes.push(format!(
            "dumped the database to s3://{}/{key}",
            plan.env.config_bucket
        ));
    }
    let restored = server.restore(&plan).await?;
    if let Some(key) = &restored {
        changes.push(format!(
            "restored the database from s3://{}/{key}",
            plan.env.config_bucket
        ));
    }
    Ok(DatabaseOutput {
        secret_arn: secret.arn,
        database: plan.names.database.clone(),
        username: plan.names.db_user.clone(),
        changes,
        backup,
        restored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::{MasterCredentials, Password};
    use crate::ports::{DbChange, DbState, DumpPlace, Endpoint, SqlError, TenantSecret};
    use std::sync::{Arc, Mutex};
    use stepdeploy_shared::aws::Same;
    use stepdeploy_shared::aws_error::AwsCallError;
    use stepdeploy_shared::ledger::LedgerEntry;
    use stepdeploy_shared::mysql::DumpFigures;
    use stepdeploy_shared::state::memory::MemoryState;

    /// Secrets, MySQL and the ledger in memory; `calls` lists every change made.
    #[derive(Default)]
    struct World {
        secret: Option<(String, String, bool)>,
        db: DbState,
        user_password: Option<String>,
        calls: Vec<String>,
        /// A change after which the phase dies (it is applied, then the call fails).
        crash_after: Option<&'static str>,
    }

    fn denied() -> AwsCallError {
        let err: aws_sdk_secretsmanager::error::SdkError<
            aws_sdk_secretsmanager::operation::create_secret::CreateSecretError,
            (),
        > = aws_sdk_secretsmanager::error::SdkError::service_error(
            aws_sdk_secretsmanager::operation::create_secret::CreateSecretError::generic(
                aws_sdk_secretsmanager::error::ErrorMetadata::builder()
                    .code("AccessDenied")
                    .build(),
            ),
            (),
        );
        AwsCallError::new("fake", err)
    }

    #[derive(Default, Clone)]
    struct Fake(Arc<Mutex<World>>, MemoryState);
    impl Fake {
        fn entries(&self) -> Vec<LedgerEntry> {
            self.1.entries()
        }

        fn with<T>(&self, f: impl FnOnce(&mut World) -> T) -> T {
            f(&mut self.0.lock().expect("lock"))
        }

        fn crash(&self, call: &str) -> Result<(), AwsCallError> {
            match self.with(|w| w.crash_after.take_if(|c| *c == call)) {
                Some(_) => Err(denied()),
                None => Ok(()),
            }
        }
    }

    impl Secrets for Fake {
        async fn master(&self, _arn: &str) -> Result<MasterCredentials, AwsCallError> {
            Ok(serde_json::from_value(
                serde_json::json!({"username": "admin", "password": "master-secret-pw"}),
            )
            .expect("json"))
        }
        async fn tenant_secret(&self, _name: &str) -> Result<Option<TenantSecret>, AwsCallError> {
            Ok(self.with(|w| {
                w.secret.clone().map(|(arn, doc, pending)| TenantSecret {
                    arn,
                    password: serde_json::from_str::<serde_json::Value>(&doc)
                        .ok()
                        .and_then(|d| d["password"].as_str().and_then(Password::from_stored)),
                    pending_deletion: pending,
                })
            }))
        }
        async fn create(
            &self,
            name: &str,
            document: &str,
            tags: &[(String, String)],
        ) -> Result<String, AwsCallError> {
            assert!(tags.iter().any(|(k, _)| k == "Tenant"));
            Ok(self.with(|w| {
                let arn = format!("arn:secret:{name}-AbCdEf");
                w.secret = Some((arn.clone(), document.into(), false));
                w.calls.push("CreateSecret".into());
                arn
            }))
            .and_then(|arn| self.crash("CreateSecret").map(|()| arn))
        }
        async fn restore(&self, _arn: &str) -> Result<(), AwsCallError> {
            self.with(|w| {
                w.calls.push("RestoreSecret".into());
                if let Some(s) = w.secret.as_mut() {
                    s.2 = false;
                }
            });
            Ok(())
        }
        async fn put(&self, _arn: &str, document: &str) -> Result<(), AwsCallError> {
            self.with(|w| {
                w.calls.push("PutSecretValue".into());
                if let Some(s) = w.secret.as_mut() {
                    s.1 = document.into();
                }
            });
            Ok(())
        }
    }

    impl Database for Fake {
        async fn inspect(
            &self,
            _at: &Endpoint,
            master: &MasterCredentials,
            _d: &str,
            _u: &str,
        ) -> Result<DbState, SqlError> {
            assert_eq!(master.username, "admin");
            Ok(self.with(|w| w.db))
        }
        async fn apply(
            &self,
            _at: &Endpoint,
            _m: &MasterCredentials,
            change: &DbChange<'_>,
        ) -> Result<(), SqlError> {
            self.with(|w| {
                if change.create_database {
                    w.db.database_exists = true;
                    w.calls.push("CREATE DATABASE".into());
                }
                if change.create_user || change.set_password {
                    w.db.user_exists = true;
                    w.user_password = Some(change.password.expose().into());
                    w.calls.push(
                        if change.create_user {
                            "CREATE USER"
                        } else {
                            "ALTER USER"
                        }
                        .into(),
                    );
                }
                if change.grant {
                    w.db.granted = true;
                    w.calls.push("GRANT".into());
                }
            });
            Ok(())
        }
        async fn can_login(
            &self,
            _at: &Endpoint,
            _user: &str,
            password: &Password,
            _db: &str,
        ) -> bool {
            self.with(|w| w.user_password.as_deref() == Some(password.expose()))
        }
        async fn dump(
            &self,
            _at: &Endpoint,
            _m: &MasterCredentials,
            dump: &DumpPlace<'_>,
        ) -> Result<DumpFigures, SqlError> {
            self.with(|w| {
                w.calls.push(format!(
                    "DUMP {} TO {}/{}",
                    dump.database, dump.bucket, dump.key
                ))
            });
            Ok(DumpFigures {
                tables: 12,
                rows: Some(40),
                bytes: 2048,
            })
        }
        async fn restore(
            &self,
            _at: &Endpoint,
            _m: &MasterCredentials,
            dump: &DumpPlace<'_>,
        ) -> Result<DumpFigures, SqlError> {
            self.with(|w| {
                w.calls
                    .push(format!("RESTORE {} FROM {}", dump.database, dump.key))
            });
            Ok(DumpFigures {
                tables: 12,
                rows: None,
                bytes: 2048,
            })
        }
    }

    fn plan() -> DeploymentPlan {
        stepdeploy_shared::plan::sample("wordpress:6.4-apache", 140)
    }

    async fn run(fake: &Fake) -> Result<DatabaseOutput, DatabaseError> {
        run_plan(fake, plan()).await
    }

    async fn run_plan(fake: &Fake, plan: DeploymentPlan) -> Result<DatabaseOutput, DatabaseError> {
        let ports = EnvPorts {
            secrets: fake.clone(),
            state: fake.1.clone(),
            db: fake.clone(),
        };
        handle(DatabaseInput { plan }, &Same(ports)).await
    }

    /// A dump before the image changes, then the restore a rollback asked
    /// for, each after the database and user converge; both reported.
    #[tokio::test]
    async fn the_dump_comes_before_the_restore_and_both_are_reported() {
        let fake = Fake::default();
        let mut plan = plan();
        plan.backup = Some("_backups/goldencrust/run-2.sql".into());
        plan.restore = Some(stepdeploy_shared::plan::RestorePlan {
            release: 1,
            released_at: "2026-11-29T10:00:00Z".into(),
            database_dump: Some("_backups/goldencrust/run-1.sql".into()),
        });
        let out = run_plan(&fake, plan).await.expect("ok");
        let calls = fake.with(|w| w.calls.clone());
        let at = |what: &str| calls.iter().position(|c| c.starts_with(what));
        assert!(
            at("GRANT") < at("DUMP") && at("DUMP") < at("RESTORE"),
            "{calls:?}"
        );
        assert!(calls.contains(
            &"DUMP goldencrust_db TO stepdeploy-config-sit-222222222222/_backups/goldencrust/run-2.sql".to_string()
        ));
        assert_eq!(
            out.backup.as_deref(),
            Some("_backups/goldencrust/run-2.sql")
        );
        assert_eq!(
            out.restored.as_deref(),
            Some("_backups/goldencrust/run-1.sql")
        );
        // A plain run dumps and restores nothing.
        let fake = Fake::default();
        let out = run(&fake).await.expect("ok");
        assert!(out.backup.is_none() && out.restored.is_none());
        assert!(!fake.with(|w| w.calls.iter().any(|c| c.starts_with("DUMP"))));
    }

    fn secret_password(fake: &Fake) -> String {
        fake.with(|w| {
            let doc: serde_json::Value =
                serde_json::from_str(&w.secret.as_ref().expect("secret").1).expect("json");
            doc["password"].as_str().expect("password").to_string()
        })
    }

    #[tokio::test]
    async fn first_run_creates_secret_then_user_with_the_same_password() {
        let fake = Fake::default();
        let out = run(&fake).await.expect("ok");
        assert_eq!(
            fake.with(|w| w.calls.clone()),
            ["CreateSecret", "CREATE DATABASE", "CREATE USER", "GRANT"]
        );
        assert_eq!(
            fake.with(|w| w.user_password.clone()),
            Some(secret_password(&fake))
        );
        let kinds: Vec<String> = fake.entries().iter().map(|e| e.kind.to_string()).collect();
        assert_eq!(kinds, ["db_secret", "mysql_database", "mysql_user"]);
        assert_eq!(
            out.secret_arn,
            "arn:secret:sit-goldencrust-db-credentials-AbCdEf"
        );
        let doc: serde_json::Value =
            serde_json::from_str(&fake.with(|w| w.secret.clone()).expect("secret").1)
                .expect("json");
        assert_eq!(
            (doc["username"].as_str(), doc["database"].as_str()),
            (Some("goldencrust_user"), Some("goldencrust_db"))
        );
        let password = secret_password(&fake);
        assert!(
            !serde_json::to_string(&out)
                .expect("json")
                .contains(&password),
            "the output never carries the password"
        );
    }

    #[tokio::test]
    async fn every_change_is_in_the_ledger_before_it_is_made() {
        for (call, recorded) in [("CreateSecret", vec!["db_secret"])] {
            let fake = Fake::default();
            fake.with(|w| w.crash_after = Some(call));
            run(&fake).await.expect_err("crashed");
            assert_eq!(
                fake.with(|w| w.calls.last().cloned()).as_deref(),
                Some(call)
            );
            let kinds: Vec<String> = fake.entries().iter().map(|e| e.kind.to_string()).collect();
            assert_eq!(kinds, recorded, "after {call}");
        }
        let fake = Fake::default();
        fake.with(|w| w.crash_after = Some("CreateSecret"));
        run(&fake).await.expect_err("crashed");
        assert_eq!(
            fake.entries()[0].id,
            "sit-goldencrust-db-credentials",
            "the secret is recorded by its name"
        );
        run(&fake).await.expect("a retry adopts the secret");
        assert_eq!(
            fake.with(|w| w.calls.iter().filter(|c| *c == "CreateSecret").count()),
            1
        );
    }

    #[tokio::test]
    async fn rerun_changes_nothing() {
        let fake = Fake::default();
        run(&fake).await.expect("first");
        let calls = fake.with(|w| w.calls.len());
        let out = run(&fake).await.expect("second");
        assert!(out.changes.is_empty(), "{:?}", out.changes);
        assert_eq!(fake.with(|w| w.calls.len()), calls);
    }

    #[tokio::test]
    async fn drifted_user_is_set_back_to_the_secrets_password() {
        let fake = Fake::default();
        run(&fake).await.expect("first");
        fake.with(|w| w.user_password = Some("drifted".into()));
        run(&fake).await.expect("realigned");
        assert_eq!(
            fake.with(|w| w.calls.last().cloned()),
            Some("ALTER USER".into())
        );
        assert_eq!(
            fake.with(|w| w.user_password.clone()),
            Some(secret_password(&fake))
        );
    }

    #[tokio::test]
    async fn secret_scheduled_for_deletion_is_restored_and_both_sides_rotated() {
        let fake = Fake::default();
        run(&fake).await.expect("first");
        let before = secret_password(&fake);
        fake.with(|w| w.secret.as_mut().expect("secret").2 = true);
        run(&fake).await.expect("restored");
        let after = secret_password(&fake);
        assert_ne!(before, after);
        assert_eq!(fake.with(|w| w.user_password.clone()), Some(after));
        assert!(fake.with(|w| w.calls.contains(&"RestoreSecret".to_string())));
    }

    #[test]
    fn bad_payload_is_validation_failed_naming_the_field() {
        let err = stepdeploy_shared::lambda::input::<DatabaseInput>(serde_json::json!({"plan": 1}))
            .expect_err("bad");
        assert_eq!(err.error_type, "ValidationFailed");
        assert!(err.error_message.contains("plan"), "{}", err.error_message);
    }
}
