//! `cleanup`: finish the rollback of a failed or stopped run once whatever
//! stopped it is removed.

use super::deploy::{as_delivered, requester_or_user};
use super::{environment, environments, tenant};
use crate::args::{self, Global, Output};
use crate::error::CliError;
use crate::render::terminal_safe;
use crate::stack::Stack;
use serde_json::json;

/// `stepdeploy cleanup`: runs rollback again for one failed or stopped run
/// (rollback's `Tenant Cleanup Requested`, invoked and awaited), and says
/// what it undid or what is still left.
pub async fn cleanup(stack: &Stack, global: &Global, a: &args::Cleanup) -> Result<(), CliError> {
    let requested_by = requester_or_user(a.requested_by.clone())?;
    let detail = match &a.environment {
        Some(name) => {
            let envs = environments(global)?;
            let env = environment(&envs, name)?;
            let t = tenant(&a.target)?;
            json!({"tenant": t.as_str(), "environment": env.name.as_str(), "requested_by": requested_by})
        }
        None => json!({"execution": a.target, "requested_by": requested_by}),
    };
    let event = as_delivered(
        "Tenant Cleanup Requested",
        &detail,
        "stepdeploy-cli-cleanup",
    );
    match stack.invoke("rollback", &event).await? {
        Ok(out) => {
            let undone: Vec<String> = ["removed", "restored"]
                .iter()
                .flat_map(|k| out[*k].as_array().cloned().unwrap_or_default())
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            match global.output {
                Output::Json => println!("{}", json!({"complete": true, "result": out})),
                Output::Text => println!(
                    "cleanup finished: nothing is left{}{}",
                    if undone.is_empty() {
                        " (it was already clean)".to_string()
                    } else {
                        format!("; undone: {}", undone.join(", "))
                    },
                    if out["lock_released"] == true {
                        "; lock released"
                    } else {
                        ""
                    }
                ),
            }
            Ok(())
        }
        Err((kind, message)) => {
            let message = terminal_safe(&message);
            if kind == stepdeploy_shared::error_names::ROLLBACK_FAILED {
                Err(CliError::Refused(format!(
                    "cleanup could not finish: {message}"
                )))
            } else {
                Err(CliError::Refused(format!(
                    "cleanup refused ({kind}): {message}"
                )))
            }
        }
    }
}
