//! Environment configuration: one versioned JSON file per environment
//! (`infra/environments/<env>.json`), so changing an account, a listener or a
//! quorum is a config change, never a code change.
//!
//! Loading is strict: unknown fields, missing fields, wrong types and values
//! that cannot work (an ARN in another account, an empty allow-list, a
//! priority range outside ALB's limits) are rejected with the file, the field
//! and the reason.

mod check;
mod load;

pub use load::EnvironmentSet;

use crate::validate::{EnvironmentName, ImageRef};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Where the functions read environment configs from: a directory of `<env>.json` files.
pub const CONFIG_DIR_VAR: &str = "STEPDEPLOY_CONFIG_DIR";

/// Days a removed tenant's secret stays restorable (Secrets Manager's
/// recovery window; rollback and teardown delete with it, never forced).
pub const RETENTION_DAYS: i64 = 7;

/// One environment: the account it lives in and the shared infrastructure tenants use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentConfig {
    /// The environment's name; must equal the file's name.
    pub name: EnvironmentName,
    /// The AWS account the environment lives in (12 digits).
    pub account_id: String,
    /// The region its resources live in.
    pub region: String,
    /// The role the phases assume in that account.
    pub deploy_role_arn: String,
    /// The `sts:ExternalId` the deploy role's trust policy requires.
    pub external_id: String,
    /// ECS cluster name.
    pub cluster: String,
    /// VPC of the tasks and target groups.
    pub vpc_id: String,
    /// Private subnets for the Fargate tasks.
    pub private_subnets: Vec<String>,
    /// Security group for the tasks.
    pub ecs_security_group: String,
    /// The shared ALB's HTTPS listener that gets one host-header rule per tenant.
    pub alb_listener_arn: String,
    /// Listener rule priorities stepdeploy may allocate.
    #[serde(default)]
    pub alb_priority_range: PriorityRange,
    /// EFS file system holding every tenant's `wp-content`.
    pub efs_id: String,
    /// The environment's MySQL (RDS) instance.
    pub rds: RdsConfig,
    /// Role ECS uses to pull images and read secrets; gets the per-tenant secrets policy.
    pub task_execution_role_arn: String,
    /// Role the WordPress task runs as.
    pub task_role_arn: String,
    /// CloudWatch Logs group the tasks log to (awslogs).
    pub log_group: String,
    /// Parent domain: tenants are served at `{tenant}.wp{env}.{domain}`.
    pub domain: String,
    /// Route53 hosted zone for the tenants' records (bare id, no `/hostedzone/`).
    pub hosted_zone_id: String,
    /// The CloudFront distribution in front of the ALB.
    pub cloudfront: CloudFrontConfig,
    /// Image and task size used when a request does not say.
    pub defaults: TaskDefaults,
    /// DynamoDB table for locks, the tenant registry and run ledgers (created on first use).
    pub state_table: String,
    /// S3 bucket for tenant config documents and reports (created on first use).
    pub config_bucket: String,
    /// Human approval before deploying (`null`: none).
    #[serde(default)]
    pub approval: Option<ApprovalConfig>,
    /// Post-deployment verification.
    pub verify: VerifyConfig,
    /// Route53 record and HTTPS check.
    pub dns: DnsConfig,
    /// Environment a successful `auto_promote` deployment is promoted to.
    #[serde(default)]
    pub promote_to: Option<EnvironmentName>,
    /// Load balancers beyond the first (`alb_listener_arn`,
    /// `alb_priority_range`, `cloudfront`), for an environment with more
    /// tenants than one ALB holds ([`LOAD_BALANCER_TENANTS`]). Each has its
    /// own priority range, disjoint from the others', so a tenant's priority
    /// says which load balancer it is on; new tenants go to the first with room.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_load_balancers: Vec<LoadBalancerConfig>,
    /// Dump a tenant's database before a deployment changes its image, so a
    /// rollback can restore it (`null`: no dumps; the production default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_backup: Option<DatabaseBackupConfig>,
    /// When deployments may start: allow windows in a time zone, freezes,
    /// per-label rules, and whether a request outside waits or is refused
    /// (`null`: any time). See [`crate::window`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_windows: Option<crate::window::DeploymentWindows>,
    /// Who approves a deployment outside the deployment window where the
    /// environment has no `approval` (an override needs a quorum
    /// everywhere); `null`: an override is refused there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_approval: Option<ApprovalConfig>,
    /// A request for a tenant another run is changing waits its turn
    /// instead of failing with `DeploymentLocked` (`null`: it fails).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueConfig>,
}

/// How requests for a busy tenant wait.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// Longest a request waits for its turn (60 to 14400 s: each try adds
    /// to the run's history, which Step Functions caps at 25,000 events)
    /// before it fails with `DeploymentLocked`.
    #[serde(default = "default_queue_wait")]
    pub max_wait_seconds: u64,
    /// A newer request for the same tenant replaces the older waiting ones
    /// (they fail with `Superseded`); `false`: all run, first come first
    /// served.
    #[serde(default = "default_supersede")]
    pub supersede: bool,
}

fn default_queue_wait() -> u64 {
    3_600
}
fn default_supersede() -> bool {
    true
}

/// The database dumps taken before an image change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseBackupConfig {
    /// Days S3 keeps a dump (a lifecycle rule on [`BACKUP_PREFIX`] of the
    /// config bucket) before it expires.
    pub retention_days: u32,
}

/// Where in the config bucket the database dumps go.
pub const BACKUP_PREFIX: &str = "_backups/";

/// One of an environment's load balancers: its HTTPS listener, the
/// priorities (so the tenants) it takes, and the CloudFront distribution in
/// front of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadBalancerConfig {
    /// The HTTPS listener that gets one host-header rule per tenant.
    pub listener_arn: String,
    /// Listener rule priorities of this load balancer (at most 100).
    pub priority_range: PriorityRange,
    /// The distribution whose origin is this load balancer.
    pub cloudfront: CloudFrontConfig,
}

impl EnvironmentConfig {
    /// Every load balancer, the first (the top-level fields) first.
    pub fn load_balancers(&self) -> Vec<LoadBalancerConfig> {
        let first = LoadBalancerConfig {
            listener_arn: self.alb_listener_arn.clone(),
            priority_range: self.alb_priority_range,
            cloudfront: self.cloudfront.clone(),
        };
        std::iter::once(first)
            .chain(self.additional_load_balancers.iter().cloned())
            .collect()
    }

    /// This config as the phases see it on `lb`: its listener, range and
    /// distribution in the top-level fields (every phase reads those).
    /// The others stay listed (in `additional_load_balancers`), so the view
    /// still knows every load balancer.
    pub fn on_load_balancer(&self, lb: &LoadBalancerConfig) -> Self {
        let others = self
            .load_balancers()
            .into_iter()
            .filter(|other| other.listener_arn != lb.listener_arn)
            .collect();
        Self {
            alb_listener_arn: lb.listener_arn.clone(),
            alb_priority_range: lb.priority_range,
            cloudfront: lb.cloudfront.clone(),
            additional_load_balancers: others,
            ..self.clone()
        }
    }

    /// This config on the load balancer whose range holds `priority` (the
    /// tenant's); unchanged when no range does (0: no priority yet).
    pub fn for_priority(&self, priority: u32) -> Self {
        match self
            .additional_load_balancers
            .iter()
            .find(|lb| lb.priority_range.contains(priority))
        {
            Some(lb) if !self.alb_priority_range.contains(priority) => self.on_load_balancer(lb),
            _ => self.clone(),
        }
    }

    /// The copy of this config a run's plan carries: on the tenant's load
    /// balancer ([`Self::for_priority`]) and without `deployment_windows`.
    /// Only bootstrap judges the windows, from its own config; a plan passes
    /// through every state and the execution history, and a schedule of
    /// many windows and freezes has no business there.
    pub fn in_plan(&self, priority: u32) -> Self {
        Self {
            deployment_windows: None,
            ..self.for_priority(priority)
        }
    }

    /// Whether `priority` is in any load balancer's range.
    pub fn priority_allowed(&self, priority: u32) -> bool {
        self.load_balancers()
            .iter()
            .any(|lb| lb.priority_range.contains(priority))
    }

    /// Tenants the environment holds: [`LOAD_BALANCER_TENANTS`] per load balancer at most.
    pub fn capacity(&self) -> u32 {
        self.load_balancers()
            .iter()
            .map(|lb| {
                (lb.priority_range.max - lb.priority_range.min + 1).min(LOAD_BALANCER_TENANTS)
            })
            .sum()
    }
}

/// Tenants one load balancer can hold: one target group and one listener
/// rule each, and an ALB holds at most 100 target groups (hard quota) and 100
/// rules (default quota, excluding the default rule).
pub const LOAD_BALANCER_TENANTS: u32 = 100;

/// Rounds of verify checks at most: each adds about 11 events to the
/// execution history (Wait, Task, Pass and Choice states), which Step
/// Functions caps at 25,000 events per execution.
pub const VERIFY_MAX_ATTEMPTS: u32 = 500;

/// Inclusive range of ALB listener rule priorities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorityRange {
    /// Lowest priority stepdeploy may use.
    pub min: u32,
    /// Highest priority stepdeploy may use.
    pub max: u32,
}

impl Default for PriorityRange {
    fn default() -> Self {
        Self { min: 10, max: 109 }
    }
}

impl PriorityRange {
    /// Whether `priority` lies in the range.
    pub fn contains(&self, priority: u32) -> bool {
        (self.min..=self.max).contains(&priority)
    }
}

/// The environment's MySQL server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RdsConfig {
    /// Host name of the instance or cluster writer.
    pub endpoint: String,
    /// MySQL port.
    #[serde(default = "default_mysql_port")]
    pub port: u16,
    /// Secrets Manager secret with the master `username` and `password`.
    pub master_secret_arn: String,
    /// Whether connections must use TLS (RDS: yes; the local MariaDB: no).
    #[serde(default = "default_tls")]
    pub tls: bool,
}

fn default_tls() -> bool {
    true
}

fn default_mysql_port() -> u16 {
    3306
}

/// The CloudFront distribution tenant records alias to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudFrontConfig {
    /// `dxxxxxxxx.cloudfront.net`.
    pub domain_name: String,
    /// CloudFront's alias hosted zone id (`Z2FDTNDATAQYW2` in every partition-wide region).
    pub hosted_zone_id: String,
}

/// Defaults for the WordPress task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskDefaults {
    /// Image used when the request names none.
    pub image: ImageRef,
    /// Fargate CPU units.
    pub cpu: u32,
    /// Fargate memory (MiB).
    pub memory: u32,
}

/// Who must approve a deployment, and how many of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalConfig {
    /// Allow-list of approvers (e-mail addresses); each gets their own links.
    pub approvers: Vec<String>,
    /// Distinct approvals needed to proceed.
    #[serde(default = "default_quorum")]
    pub approvals_required: u32,
    /// How long the gate waits before failing with `ApprovalTimedOut`.
    #[serde(default = "default_approval_timeout")]
    pub timeout_seconds: u64,
}

fn default_quorum() -> u32 {
    2
}
fn default_approval_timeout() -> u64 {
    86_400
}

/// Post-deployment checks, polled by the state machine's Wait loop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyConfig {
    /// Whether the verify phase runs.
    pub enabled: bool,
    /// Seconds between rounds of checks.
    #[serde(default = "default_interval")]
    pub interval_seconds: u32,
    /// Rounds before giving up with `VerificationFailed`.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// Where the HTTP check connects instead of `https://{host}` (local stand-in only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
}

fn default_interval() -> u32 {
    15
}
fn default_attempts() -> u32 {
    40
}

/// Route53 record and the HTTPS check after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsConfig {
    /// Whether the dns phase runs.
    pub enabled: bool,
    /// Where the HTTPS check connects instead of `https://{host}` (local stand-in only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_base_url: Option<String>,
}

/// Why a config file was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Io {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid JSON, or a field is missing, unknown or of the wrong type.
    #[error("{file}: {field}: {reason}")]
    Invalid {
        /// The file.
        file: PathBuf,
        /// Path of the field in the document (`.` for the whole document).
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// No config exists for a requested environment.
    #[error("environment: unknown environment {name:?} (known: {known})")]
    UnknownEnvironment {
        /// The name asked for.
        name: String,
        /// The environments that do exist.
        known: String,
    },
    /// The config directory is not set.
    #[error("{CONFIG_DIR_VAR} is not set: it must name the directory holding <env>.json files")]
    NotConfigured,
}

/// The fields of [`EnvironmentConfig`] that are structs.
const SECTIONS: &[&str] = &[
    "alb_priority_range",
    "rds",
    "cloudfront",
    "defaults",
    "approval",
    "verify",
    "dns",
    "database_backup",
    "deployment_windows",
    "queue",
    "override_approval",
];

impl EnvironmentConfig {
    /// The quorum a run needs: the environment's `approval`, or, for a run
    /// that overrides the deployment window, `override_approval`.
    pub fn approval_for(&self, window_override: bool) -> Option<&ApprovalConfig> {
        self.approval
            .as_ref()
            .or(self.override_approval.as_ref().filter(|_| window_override))
    }

    /// The environment's read-only role (`{deploy_role_arn}-read`, created by
    /// `infra/target-account-role.yaml` for its `OperatorPrincipalArns`):
    /// operators read the registry through it; the deploy role trusts only
    /// the orchestrator's phase functions.
    pub fn read_role_arn(&self) -> String {
        format!("{}-read", self.deploy_role_arn)
    }

    /// The environment's MySQL agent (`{deploy role name}-mysql`, created by
    /// `infra/target-account-role.yaml` in the VPC of its RDS), which the
    /// phases invoke through the deploy role for every MySQL statement.
    pub fn mysql_agent_arn(&self) -> String {
        let role = self
            .deploy_role_arn
            .rsplit('/')
            .next()
            .unwrap_or("stepdeploy-deploy");
        format!(
            "arn:aws:lambda:{}:{}:function:{role}-mysql",
            self.region, self.account_id
        )
    }
}

#[cfg(test)]
mod tests;
