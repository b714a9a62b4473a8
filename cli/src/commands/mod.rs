//! What each command does, one module per command or command group.
//! Requests are validated with the same rules bootstrap applies before
//! anything is put on the bus, so a typo never starts a run.

mod cleanup;
mod config;
mod deploy;
mod history;
mod releases;
mod rollout;
mod stats;
mod status;
mod watch;

pub use cleanup::cleanup;
pub use config::{config_validate, events_example};
pub use deploy::{deploy, teardown};
pub use history::history;
pub use releases::{releases, rollback};
pub use rollout::rollout;
pub use stats::stats;
pub use status::status;
pub use watch::watch;

use crate::args::Global;
use crate::error::CliError;
use stepdeploy_shared::config::{EnvironmentConfig, EnvironmentSet};
use stepdeploy_shared::validate::FieldError;
use stepdeploy_shared::{EnvironmentName, TenantName};

/// The environment configs (`--config-dir` / `STEPDEPLOY_CONFIG_DIR`).
fn environments(global: &Global) -> Result<EnvironmentSet, CliError> {
    let dir = global.config_dir.as_deref().ok_or_else(|| {
        CliError::Refused(
            "no environment configs: pass --config-dir DIR or set STEPDEPLOY_CONFIG_DIR (for the local stack: source local/env.sh)".into(),
        )
    })?;
    Ok(EnvironmentSet::load_dir(dir)?)
}

/// A known environment's config, or an error listing the known ones.
fn environment<'a>(
    envs: &'a EnvironmentSet,
    name: &str,
) -> Result<&'a EnvironmentConfig, CliError> {
    EnvironmentName::parse(name).map_err(|e| e.within("--env"))?;
    envs.get(name).map_err(|_| {
        CliError::Invalid(FieldError::new(
            "--env",
            format!(
                "unknown environment {name:?} (known: {})",
                envs.names().join(", ")
            ),
        ))
    })
}

/// A tenant argument, checked by bootstrap's rule.
fn tenant(name: &str) -> Result<TenantName, CliError> {
    Ok(TenantName::parse(name).map_err(|e| FieldError::new("tenant", e.reason))?)
}
