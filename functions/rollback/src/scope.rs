//! What undoing needs to know of a tenant.

use stepdeploy_shared::config::EnvironmentConfig;
use stepdeploy_shared::{DeploymentPlan, ResourceNames, TenantName};

/// The tenant, where it lives, its resources' names, and the run whose
/// changes are undone (or, for teardown, the run that removes the tenant).
#[derive(Debug, Clone, PartialEq)]
pub struct TenantScope {
    /// The environment, as this function's configs say.
    pub env: EnvironmentConfig,
    /// The tenant's resource names in it.
    pub names: ResourceNames,
    /// The tenant.
    pub tenant: TenantName,
    /// The run.
    pub execution: String,
}

impl From<&DeploymentPlan> for TenantScope {
    fn from(plan: &DeploymentPlan) -> Self {
        TenantScope {
            env: plan.env.clone(),
            names: plan.names.clone(),
            tenant: plan.tenant.clone(),
            execution: plan.execution.clone(),
        }
    }
}
