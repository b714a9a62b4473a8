//! AWS configs for the orchestrator account and for each environment's
//! account (through its admin role, as an operator would look around).

use crate::stack::{ensure_stack, repo, ENDPOINT, REGION};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use stepdeploy_shared::config::EnvironmentConfig;

/// The orchestrator account's config (what the trigger and state machines use).
pub async fn orchestrator() -> SdkConfig {
    ensure_stack();
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(ENDPOINT)
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "stepdeploy-tests",
        ))
        .load()
        .await
}

/// The local config of environment `name`, as the seed wrote it.
pub fn environment(name: &str) -> EnvironmentConfig {
    ensure_stack();
    EnvironmentConfig::load(&repo().join(format!("local/.state/environments/{name}.json")))
        .expect("local environment config")
}

/// A config acting in environment `name`'s account through its deploy role.
pub async fn in_environment(name: &str) -> SdkConfig {
    // The tests look around as an operator with admin rights there would:
    // through the local stack's admin role, not the deploy role, whose trust
    // policy (from infra/target-account-role.yaml) admits only the
    // orchestrator's phase functions.
    let mut env = environment(name);
    env.deploy_role_arn = format!(
        "arn:aws:iam::{}:role/stepdeploy-local-admin",
        env.account_id
    );
    stepdeploy_shared::aws::assume_environment_role(&orchestrator().await, &env, "stepdeploy-tests")
        .await
}
