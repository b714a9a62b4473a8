//! Commands that need no AWS: `config validate` checks environment configs,
//! `events example` prints a request event ready to put on the bus.

use super::deploy::new_request_id;
use super::tenant;
use crate::args::{self, Global, Output};
use crate::error::CliError;
use crate::render::print_json;
use serde::Serialize;
use serde_json::json;
use std::path::{Path, PathBuf};
use stepdeploy_shared::config::{EnvironmentConfig, EnvironmentSet};
use stepdeploy_shared::request::ROLLBACK_REQUESTED;
use stepdeploy_shared::request::{DEPLOY_REQUESTED, TEARDOWN_REQUESTED};
use stepdeploy_shared::rollout::ROLLOUT_REQUESTED;
use stepdeploy_shared::EnvironmentName;

/// One file's verdict in `config validate`.
#[derive(Debug, Serialize)]
struct Checked {
    file: PathBuf,
    environment: Option<String>,
    error: Option<String>,
}

/// `stepdeploy config validate`.
pub fn config_validate(global: &Global, files: &[PathBuf]) -> Result<(), CliError> {
    let dir = global.config_dir.clone();
    let files: Vec<PathBuf> = if files.is_empty() {
        let dir = dir.as_deref().ok_or_else(|| {
            CliError::Refused(
                "name files to check, or a directory with --config-dir / STEPDEPLOY_CONFIG_DIR"
                    .into(),
            )
        })?;
        json_files(dir)?
    } else {
        files.to_vec()
    };
    let mut checked: Vec<Checked> = files
        .iter()
        .map(|file| match EnvironmentConfig::load(file) {
            Ok(env) => Checked {
                file: file.clone(),
                environment: Some(env.name.to_string()),
                error: None,
            },
            Err(e) => Checked {
                file: file.clone(),
                environment: None,
                error: Some(e.to_string()),
            },
        })
        .collect();
    // Checked as a set too, when they all load: `promote_to` must name a known environment.
    if checked.iter().all(|c| c.error.is_none()) {
        let configs: Vec<EnvironmentConfig> = files
            .iter()
            .filter_map(|f| EnvironmentConfig::load(f).ok())
            .collect();
        let set = EnvironmentSet::from_configs(configs);
        for c in &mut checked {
            let Some(env) = c.environment.as_deref().and_then(|n| set.get(n).ok()) else {
                continue;
            };
            if let Some(next) = &env.promote_to {
                if set.get(next.as_str()).is_err() {
                    c.error = Some(format!(
                        "{}: promote_to: names {next:?}, which is not among the files checked ({})",
                        c.file.display(),
                        set.names().join(", ")
                    ));
                }
            }
        }
    }
    let failed = checked.iter().filter(|c| c.error.is_some()).count();
    match global.output {
        Output::Json => print_json(&checked)?,
        Output::Text => {
            for c in &checked {
                match (&c.error, &c.environment) {
                    (Some(e), _) => println!("error {e}"),
                    (None, Some(env)) => println!("ok    {} ({env})", c.file.display()),
                    (None, None) => {}
                }
            }
        }
    }
    if failed > 0 {
        return Err(CliError::ConfigsInvalid {
            failed,
            total: checked.len(),
        });
    }
    Ok(())
}

/// The `*.json` files of `dir`, sorted: the environment configs it holds.
fn json_files(dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    let read = std::fs::read_dir(dir).map_err(|e| {
        std::io::Error::new(e.kind(), format!("{}: cannot read: {e}", dir.display()))
    })?;
    let mut files: Vec<PathBuf> = read
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(CliError::NotFound(format!(
            "{}: no <env>.json files",
            dir.display()
        )));
    }
    Ok(files)
}

/// `stepdeploy events example`: a PutEvents entry list.
pub fn events_example(
    global: &Global,
    kind: args::EventKind,
    tenant_name: &str,
    env: &str,
) -> Result<(), CliError> {
    tenant(tenant_name)?;
    EnvironmentName::parse(env).map_err(|e| e.within("--env"))?;
    let (detail_type, detail) = match kind {
        args::EventKind::Deploy => (
            DEPLOY_REQUESTED,
            json!({"tenant": tenant_name, "environment": env, "requested_by": "jane@example.com",
                   "request_id": new_request_id()}),
        ),
        args::EventKind::Teardown => (
            TEARDOWN_REQUESTED,
            json!({"tenant": tenant_name, "environment": env, "requested_by": "jane@example.com",
                   "request_id": new_request_id()}),
        ),
        // The previous release (no `release`), image only.
        args::EventKind::Rollback => (
            ROLLBACK_REQUESTED,
            json!({"tenant": tenant_name, "environment": env, "requested_by": "jane@example.com",
                   "restore_database": false, "request_id": new_request_id()}),
        ),
        // Every tenant of the environment: the tenant first, as a canary
        // wave, then a quarter of the fleet per wave, a minute apart.
        args::EventKind::Rollout => (
            ROLLOUT_REQUESTED,
            json!({"environment": env, "image": "wordpress:6.5-apache", "tenants": "all",
                   "waves": [{"tenants": [tenant_name]}, {"percent": 25}, {"percent": 25}, {"percent": 25}],
                   "max_parallel": 5, "failure_budget": {"per_wave": 0, "overall": "10%"},
                   "bake_seconds": 60, "requested_by": "jane@example.com",
                   "request_id": new_request_id()}),
        ),
    };
    print_json(&json!([{
        "Source": stepdeploy_shared::request::EVENT_SOURCE,
        "DetailType": detail_type,
        "EventBusName": global.stack,
        "Detail": detail.to_string(),
    }]))
}
