//! Step 1: the tenant's EFS access point (its `wp-content` directory).

use super::{tags, Recorder};
use crate::error::EcsError;
use crate::ports::{AccessPoint, AccessPoints, TaskDefinitionState};
use stepdeploy_shared::ledger::LedgerKind;
use stepdeploy_shared::retry::create_or_adopt;
use stepdeploy_shared::state::StateStore;
use stepdeploy_shared::DeploymentPlan;

/// The access point rooted at the tenant's path, created if missing; the
/// one `current` (the family's latest task definition) mounts is looked at first.
pub async fn ensure_access_point(
    efs: &impl AccessPoints,
    plan: &DeploymentPlan,
    current: Option<&TaskDefinitionState>,
    rec: &mut Recorder<'_, impl StateStore>,
) -> Result<AccessPoint, EcsError> {
    let (efs_id, path) = (&plan.env.efs_id, &plan.names.efs_path);
    let mounted = current.and_then(|td| td.access_point_id.as_deref());
    if let Some(ap) = efs.find_access_point(efs_id, path, mounted).await? {
        return Ok(ap);
    }
    rec.write_ahead(LedgerKind::EfsAccessPoint, path, true, None)
        .await?;
    // The token makes AWS answer a repeated create of this run with the same
    // access point; another run gets its own.
    let token = client_token(&plan.tenant.to_string(), &plan.execution);
    let tags = tags(plan);
    let ap = create_or_adopt(
        || efs.create_access_point(efs_id, path, &token, &tags),
        || efs.find_access_point(efs_id, path, None),
    )
    .await?;
    rec.changed(LedgerKind::EfsAccessPoint, &ap.id, true);
    Ok(ap)
}

/// EFS's idempotency token for this run's access point: the same for every
/// attempt of the run (an answered repeat returns the same access point),
/// another for the next run (a token is not reused after a rollback).
fn client_token(tenant: &str, execution: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = hex::encode(Sha256::digest(execution.as_bytes()));
    format!("{tenant}-{}", &digest[..32])
}
