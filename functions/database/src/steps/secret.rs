//! Step 1, the secret: keep a usable one, else write a fresh password into
//! it (restoring it from a scheduled deletion, or creating it, first).

use super::PHASE;
use crate::credentials::{CredentialsDocument, Password};
use crate::error::DatabaseError;
use crate::ports::{Secrets, TenantSecret};
use stepdeploy_shared::ledger::{LedgerEntry, LedgerKind};
use stepdeploy_shared::retry::create_or_adopt;
use stepdeploy_shared::state::StateStore;
use stepdeploy_shared::DeploymentPlan;

/// The tenant secret as this run leaves it.
pub struct Secret {
    /// Its full ARN.
    pub arn: String,
    /// The password it holds: the one the MySQL user must have.
    pub password: Password,
    /// Whether this run wrote that password (then MySQL cannot have it yet).
    pub fresh: bool,
}

/// Makes sure the tenant secret exists and holds a usable password.
pub async fn ensure(
    plan: &DeploymentPlan,
    secrets: &impl Secrets,
    ledger: &impl StateStore,
    changes: &mut Vec<String>,
) -> Result<Secret, DatabaseError> {
    let name = &plan.names.db_secret;
    match secrets.tenant_secret(name).await? {
        Some(TenantSecret {
            arn,
            password: Some(password),
            pending_deletion: false,
        }) => Ok(Secret {
            arn,
            password,
            fresh: false,
        }),
        Some(secret) => {
            if secret.pending_deletion {
                secrets.restore(&secret.arn).await?;
            }
            let password = Password::generate().map_err(DatabaseError::Random)?;
            secrets.put(&secret.arn, &document(plan, &password)).await?;
            changes.push(format!("rotated {name}"));
            Ok(Secret {
                arn: secret.arn,
                password,
                fresh: true,
            })
        }
        None => {
            let password = Password::generate().map_err(DatabaseError::Random)?;
            let entry = LedgerEntry::created(LedgerKind::DbSecret, name, PHASE);
            ledger.record(&plan.execution, &entry).await?;
            let (stored, tags) = (document(plan, &password), tags(plan));
            let arn = create_or_adopt(
                || secrets.create(name, &stored, &tags),
                || async {
                    Ok(secrets
                        .tenant_secret(name)
                        .await?
                        .filter(|s| !s.pending_deletion)
                        .map(|s| s.arn))
                },
            )
            .await?;
            changes.push(format!("created {arn}"));
            Ok(Secret {
                arn,
                password,
                fresh: true,
            })
        }
    }
}

/// The secret's JSON document for `password`.
fn document(plan: &DeploymentPlan, password: &Password) -> String {
    let (names, rds) = (&plan.names, &plan.env.rds);
    serde_json::to_string(&CredentialsDocument {
        username: names.db_user.clone(),
        password: password.clone(),
        database: names.database.clone(),
        host: rds.endpoint.clone(),
        port: rds.port,
    })
    .unwrap_or_default()
}

/// The tags a created secret carries.
fn tags(plan: &DeploymentPlan) -> Vec<(String, String)> {
    vec![
        ("Tenant".to_string(), plan.tenant.to_string()),
        ("Environment".to_string(), plan.environment.to_string()),
        ("ManagedBy".to_string(), "stepdeploy".to_string()),
    ]
}
