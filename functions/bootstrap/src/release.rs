//! The release history as bootstrap reads it: what the tenant runs now, the
//! release a rollback puts back, and whether this run dumps the database
//! first.

use crate::error::BootstrapError;
use stepdeploy_shared::config::{EnvironmentConfig, BACKUP_PREFIX};
use stepdeploy_shared::plan::{CurrentRelease, DeploymentPlan, RestorePlan};
use stepdeploy_shared::request::RestoreRequest;
use stepdeploy_shared::state::{Release, StateStore};
use stepdeploy_shared::validate::{ImageRef, TenantName};

/// What the environment runs for `tenant` now; `None` for a tenant never
/// deployed there.
pub async fn current(
    tenant: &str,
    state: &impl StateStore,
) -> Result<Option<CurrentRelease>, BootstrapError> {
    let Some(record) = state.registry(tenant).await? else {
        return Ok(None);
    };
    // The newest release is the registry's deployment unless the registry
    // predates the history (deployed before releases were recorded).
    let latest = state
        .latest_release(tenant)
        .await?
        .filter(|r| r.execution == record.last_execution);
    Ok(Some(CurrentRelease {
        image: record.image,
        since: latest.as_ref().map_or(record.updated_at, |r| r.at.clone()),
        release: latest.map(|r| r.number),
    }))
}

/// A rollback's target: its image and what the plan records of it.
#[derive(Debug)]
pub struct Found {
    /// The release's image.
    pub image: ImageRef,
    /// For the plan.
    pub plan: RestorePlan,
}

/// The release `asked` names (default: the newest earlier release with
/// another image than the current one) and, when asked, the dump to load:
/// the one taken just before the release that replaced it.
pub async fn resolve(
    tenant: &TenantName,
    env: &EnvironmentConfig,
    asked: RestoreRequest,
    state: &impl StateStore,
) -> Result<Found, BootstrapError> {
    let releases = state.releases(tenant.as_str()).await?;
    let not_found = |why: String| BootstrapError::ReleaseNotFound {
        tenant: tenant.to_string(),
        environment: env.name.to_string(),
        why,
    };
    let Some(latest) = releases.last() else {
        return Err(not_found(
            "it has no recorded releases there, so there is nothing to put back".into(),
        ));
    };
    let target = match asked.release {
        Some(number) => releases
            .iter()
            .find(|r| r.number == number)
            .ok_or_else(|| {
                not_found(format!(
                    "it has no release {number} (releases {}..={}; `stepdeploy releases {tenant} --env {}` lists them)",
                    releases[0].number, latest.number, env.name
                ))
            })?,
        None => releases
            .iter()
            .rev()
            .find(|r| r.image != latest.image)
            .ok_or_else(|| {
                not_found(format!(
                    "every release ran {} (the current image): there is no previous image to go back to",
                    latest.image
                ))
            })?,
    };
    if target.number == latest.number {
        return Err(not_found(format!(
            "release {} is the current release; name an earlier one",
            target.number
        )));
    }
    let database_dump = if asked.restore_database {
        Some(dump_after(&releases, target, tenant, env)?)
    } else {
        None
    };
    let image = ImageRef::parse(&target.image).map_err(|e| {
        not_found(format!(
            "release {} records an image stepdeploy no longer accepts: {e}",
            target.number
        ))
    })?;
    Ok(Found {
        image,
        plan: RestorePlan {
            release: target.number,
            released_at: target.at.clone(),
            database_dump,
        },
    })
}

/// The dump that holds `target`'s data: taken by the release after it,
/// before that one changed the image.
fn dump_after(
    releases: &[Release],
    target: &Release,
    tenant: &TenantName,
    env: &EnvironmentConfig,
) -> Result<String, BootstrapError> {
    let next = releases.iter().find(|r| r.number > target.number);
    if let Some(dump) = next.and_then(|r| r.database_dump.clone()) {
        return Ok(dump);
    }
    let why = match (next, &env.database_backup) {
        (_, None) => format!(
            "--restore-database: {} takes no database dumps (no database_backup in its config); roll back without restoring the database",
            env.name
        ),
        (Some(next), Some(_)) => format!(
            "--restore-database: release {} took no dump before it replaced release {} (dumps are taken before an image change), so no dump holds release {}'s data; roll back without restoring the database",
            next.number, target.number, target.number
        ),
        (None, Some(_)) => format!("--restore-database: no release followed {}", target.number),
    };
    Err(BootstrapError::ReleaseNotFound {
        tenant: tenant.to_string(),
        environment: env.name.to_string(),
        why,
    })
}

/// The key this run dumps the database to first: in an environment with
/// `database_backup`, for a tenant that runs another image now, or whose
/// database this run restores (so the restore can be undone). `None`: no
/// dump.
pub fn backup_key(plan: &DeploymentPlan, current: Option<&CurrentRelease>) -> Option<String> {
    plan.env.database_backup.as_ref()?;
    let current = current?;
    let restores = plan
        .restore
        .as_ref()
        .is_some_and(|r| r.database_dump.is_some());
    if current.image == plan.image.as_str() && !restores {
        return None;
    }
    let run = plan.execution.rsplit(':').next().unwrap_or(&plan.execution);
    Some(format!("{BACKUP_PREFIX}{}/{run}.sql", plan.tenant))
}
