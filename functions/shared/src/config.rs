//! Environment configuration: one versioned JSON file per environment
//! (`infra/environments/<env>.json`), so changing an account, a listener or a
//! quorum is a config change, never a code change.
//!
//! Loading is strict: unknown fields, missing fields, wrong types and values
//! that cannot work (an ARN in another account, an empty allow-list, a
//! priority range outside ALB's limits) are rejected with the file, the field
//! and the reason.

use crate::validate::{field_path, one_line, EnvironmentName, FieldError, ImageRef};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
];

impl EnvironmentConfig {
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

    /// Parses and checks one environment file's contents; `file` is only used in messages.
    pub fn from_json(file: &Path, text: &str) -> Result<Self, ConfigError> {
        let invalid = |field: String, reason: String| ConfigError::Invalid {
            file: file.to_path_buf(),
            field,
            reason,
        };
        // serde also reads a struct from an array, field by field, so a list in
        // the wrong order would load with its values swapped: sections are objects.
        // (Text that is not JSON is left to the typed parse, which says where.)
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
            for (field, section) in std::iter::once(("(document)", &value)).chain(
                SECTIONS
                    .iter()
                    .filter_map(|name| Some((*name, value.get(*name)?))),
            ) {
                if section.is_array() {
                    return Err(invalid(
                        field.into(),
                        "is an array; write it as an object with named fields".into(),
                    ));
                }
            }
        }
        let de = &mut serde_json::Deserializer::from_str(text);
        let config: Self = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
            let path = field_path(e.path());
            let inner = e.into_inner();
            // serde reports a missing field at its parent; name it fully.
            let message = inner.to_string();
            // serde quotes unknown keys raw: keep the reason on one line.
            let reason = || one_line(&strip_position(&message), 1000);
            let (field, reason) = match missing_field(&message) {
                Some(name) if path.is_empty() => (name.to_string(), "is missing".to_string()),
                Some(name) => (format!("{path}.{name}"), "is missing".to_string()),
                None if path.is_empty() || path == "?" => ("(document)".to_string(), reason()),
                None => (path, reason()),
            };
            invalid(field, reason)
        })?;
        // Nothing may follow the document.
        de.end().map_err(|e| {
            invalid(
                "(document)".into(),
                one_line(&strip_position(&e.to_string()), 1000),
            )
        })?;
        if let Some(stem) = file.file_stem().and_then(|s| s.to_str()) {
            if stem != config.name.as_str() {
                return Err(invalid(
                    "name".into(),
                    format!(
                        "is {:?} but the file is {stem}.json; they must agree",
                        config.name.as_str()
                    ),
                ));
            }
        }
        config
            .check()
            .map_err(|e: FieldError| invalid(e.field, e.reason))?;
        Ok(config)
    }

    /// Reads one environment file.
    pub fn load(file: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Io {
            file: file.to_path_buf(),
            source,
        })?;
        Self::from_json(file, &text)
    }

    /// Checks what the types alone cannot.
    fn check(&self) -> Result<(), FieldError> {
        let account = self.account_id.as_str();
        if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
            return Err(FieldError::new(
                "account_id",
                format!("{account:?} is not a 12-digit AWS account id"),
            ));
        }
        let region_ok = {
            let parts: Vec<&str> = self.region.split('-').collect();
            parts.len() >= 3
                && parts.iter().all(|p| {
                    !p.is_empty()
                        && p.chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                })
                && parts
                    .last()
                    .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
        };
        if !region_ok {
            return Err(FieldError::new(
                "region",
                format!(
                    "{:?} is not an AWS region name (e.g. eu-west-1)",
                    self.region
                ),
            ));
        }
        check_arn(
            "deploy_role_arn",
            &self.deploy_role_arn,
            "iam",
            "",
            account,
            "role/",
        )?;
        check_arn(
            "task_execution_role_arn",
            &self.task_execution_role_arn,
            "iam",
            "",
            account,
            "role/",
        )?;
        check_arn(
            "task_role_arn",
            &self.task_role_arn,
            "iam",
            "",
            account,
            "role/",
        )?;
        check_arn(
            "alb_listener_arn",
            &self.alb_listener_arn,
            "elasticloadbalancing",
            &self.region,
            account,
            "listener/",
        )?;
        check_arn(
            "rds.master_secret_arn",
            &self.rds.master_secret_arn,
            "secretsmanager",
            &self.region,
            account,
            "secret:",
        )?;
        let ext = &self.external_id;
        if ext.len() < 2
            || ext.len() > 1224
            || !ext
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+=,.@:/-_".contains(c))
        {
            return Err(FieldError::new(
                "external_id",
                "must be 2 to 1224 of A-Z a-z 0-9 + = , . @ : / - _",
            ));
        }
        for (field, value) in [
            ("cluster", &self.cluster),
            ("vpc_id", &self.vpc_id),
            ("ecs_security_group", &self.ecs_security_group),
            ("efs_id", &self.efs_id),
            ("rds.endpoint", &self.rds.endpoint),
            ("log_group", &self.log_group),
            ("hosted_zone_id", &self.hosted_zone_id),
            ("cloudfront.domain_name", &self.cloudfront.domain_name),
            ("cloudfront.hosted_zone_id", &self.cloudfront.hosted_zone_id),
            ("state_table", &self.state_table),
            ("config_bucket", &self.config_bucket),
        ] {
            if value.trim().is_empty() {
                return Err(FieldError::new(field, "is empty"));
            }
        }
        if self.hosted_zone_id.starts_with("/hostedzone/") {
            return Err(FieldError::new(
                "hosted_zone_id",
                "give the bare id, without /hostedzone/",
            ));
        }
        if self.private_subnets.is_empty()
            || self.private_subnets.iter().any(|s| s.trim().is_empty())
        {
            return Err(FieldError::new(
                "private_subnets",
                "needs at least one subnet id, none empty",
            ));
        }
        check_domain(&self.domain)?;
        let PriorityRange { min, max } = self.alb_priority_range;
        if min < 1 || max > 50_000 || min > max {
            return Err(FieldError::new(
                "alb_priority_range",
                format!("{min}..={max} is not a range within ALB's 1..=50000 with min <= max"),
            ));
        }
        if max - min + 1 > LOAD_BALANCER_TENANTS {
            return Err(FieldError::new(
                "alb_priority_range",
                format!(
                    "{min}..={max} promises {} tenants, but one load balancer holds at most \
                     {LOAD_BALANCER_TENANTS} (AWS quotas: 100 target groups per Application Load \
                     Balancer, hard; 100 rules per load balancer, default)",
                    max - min + 1
                ),
            ));
        }
        if self.verify.max_attempts > VERIFY_MAX_ATTEMPTS || self.verify.interval_seconds > 3_600 {
            return Err(FieldError::new(
                "verify",
                format!(
                    "max_attempts is at most {VERIFY_MAX_ATTEMPTS} and interval_seconds at most \
                     3600 (each round adds about 11 events to the execution history, which \
                     Step Functions caps at 25,000)"
                ),
            ));
        }
        check_task_size(self.defaults.cpu, self.defaults.memory)?;
        let bucket_ok = (3..=63).contains(&self.config_bucket.len())
            && self
                .config_bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
        if !bucket_ok {
            return Err(FieldError::new(
                "config_bucket",
                format!("{:?} is not a valid S3 bucket name", self.config_bucket),
            ));
        }
        if let Some(approval) = &self.approval {
            if approval.approvers.is_empty() {
                return Err(FieldError::new(
                    "approval.approvers",
                    "is empty; name who may approve, or set approval to null",
                ));
            }
            let mut seen = std::collections::HashSet::new();
            for (i, approver) in approval.approvers.iter().enumerate() {
                let field = format!("approval.approvers[{i}]");
                // One mailbox, one vote: `lead@` and `Lead+p@` are one approver.
                let id = crate::identity::canonical_email(&field, approver)?;
                if !seen.insert(id.clone()) {
                    return Err(FieldError::new(
                        field,
                        format!("{approver:?} is listed twice (as {id:?})"),
                    ));
                }
            }
            let n = approval.approvals_required;
            if n < 1 || n as usize > approval.approvers.len() {
                return Err(FieldError::new(
                    "approval.approvals_required",
                    format!(
                        "is {n}; it must be between 1 and the number of approvers ({})",
                        approval.approvers.len()
                    ),
                ));
            }
            if approval.timeout_seconds < 60 || approval.timeout_seconds > 365 * 86_400 {
                return Err(FieldError::new(
                    "approval.timeout_seconds",
                    "must be between 60 s and one year",
                ));
            }
        }
        if self.verify.interval_seconds < 1 || self.verify.max_attempts < 1 {
            return Err(FieldError::new(
                "verify",
                "interval_seconds and max_attempts must be at least 1",
            ));
        }
        for (field, url) in [
            ("verify.base_url", &self.verify.base_url),
            ("dns.check_base_url", &self.dns.check_base_url),
        ] {
            if let Some(url) = url {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(FieldError::new(
                        field,
                        format!("{url:?} must be an http:// or https:// URL"),
                    ));
                }
            }
        }
        if self.promote_to.as_ref() == Some(&self.name) {
            return Err(FieldError::new(
                "promote_to",
                "cannot promote an environment to itself",
            ));
        }
        Ok(())
    }
}

/// `missing field `x`` → `x`.
fn missing_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next()
}

/// Drops serde_json's " at line L column C" so the reason reads as a sentence.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

fn check_arn(
    field: &str,
    arn: &str,
    service: &str,
    region: &str,
    account: &str,
    resource_prefix: &str,
) -> Result<(), FieldError> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let shape = format!("arn:aws:{service}:{region}:{account}:{resource_prefix}…");
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == service
        && parts[3] == region
        && parts[5].starts_with(resource_prefix)
        && parts[5].len() > resource_prefix.len();
    if !ok {
        return Err(FieldError::new(
            field,
            format!("{arn:?} is not of the form {shape}"),
        ));
    }
    if parts[4] != account {
        return Err(FieldError::new(
            field,
            format!(
                "{arn:?} is in account {} but the environment's account_id is {account}",
                parts[4].escape_debug()
            ),
        ));
    }
    Ok(())
}

fn check_domain(domain: &str) -> Result<(), FieldError> {
    let ok = domain.len() <= 200
        && domain.contains('.')
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        });
    if ok {
        Ok(())
    } else {
        Err(FieldError::new(
            "domain",
            format!("{domain:?} is not a lowercase DNS domain such as kimmyai.io"),
        ))
    }
}

/// Fargate's valid CPU/memory pairs.
fn check_task_size(cpu: u32, memory: u32) -> Result<(), FieldError> {
    let memory_ok = match cpu {
        256 => [512, 1024, 2048].contains(&memory),
        512 => (1024..=4096).contains(&memory) && memory.is_multiple_of(1024),
        1024 => (2048..=8192).contains(&memory) && memory.is_multiple_of(1024),
        2048 => (4096..=16384).contains(&memory) && memory.is_multiple_of(1024),
        4096 => (8192..=30720).contains(&memory) && memory.is_multiple_of(1024),
        8192 => (16384..=61440).contains(&memory) && memory.is_multiple_of(4096),
        16384 => (32768..=122880).contains(&memory) && memory.is_multiple_of(8192),
        _ => {
            return Err(FieldError::new(
                "defaults.cpu",
                format!(
                    "{cpu} is not a Fargate CPU size (256, 512, 1024, 2048, 4096, 8192, 16384)"
                ),
            ))
        }
    };
    if memory_ok {
        Ok(())
    } else {
        Err(FieldError::new(
            "defaults.memory",
            format!("{memory} MiB is not valid with {cpu} CPU units on Fargate"),
        ))
    }
}

/// Every environment stepdeploy knows, by name.
#[derive(Debug, Clone, Default)]
pub struct EnvironmentSet {
    environments: BTreeMap<String, EnvironmentConfig>,
}

impl EnvironmentSet {
    /// Loads every `*.json` in `dir` and checks that promotions name known environments.
    pub fn load_dir(dir: &Path) -> Result<Self, ConfigError> {
        let entries = std::fs::read_dir(dir).map_err(|source| ConfigError::Io {
            file: dir.to_path_buf(),
            source,
        })?;
        let mut files = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|source| ConfigError::Io {
                    file: dir.to_path_buf(),
                    source,
                })?
                .path();
            if path.extension().is_some_and(|e| e == "json") {
                files.push(path);
            }
        }
        files.sort();
        let mut set = Self::default();
        for file in &files {
            let config = EnvironmentConfig::load(file)?;
            set.environments.insert(config.name.to_string(), config);
        }
        for (name, config) in &set.environments {
            if let Some(next) = &config.promote_to {
                if !set.environments.contains_key(next.as_str()) {
                    return Err(ConfigError::Invalid {
                        file: dir.join(format!("{name}.json")),
                        field: "promote_to".into(),
                        reason: format!(
                            "names \"{next}\", which has no config file in {}",
                            dir.display()
                        ),
                    });
                }
            }
        }
        Ok(set)
    }

    /// Loads the directory named by [`CONFIG_DIR_VAR`].
    pub fn from_env() -> Result<Self, ConfigError> {
        let dir = std::env::var_os(CONFIG_DIR_VAR).ok_or(ConfigError::NotConfigured)?;
        Self::load_dir(Path::new(&dir))
    }

    /// The config for `name`, or an error listing the known environments.
    pub fn get(&self, name: &str) -> Result<&EnvironmentConfig, ConfigError> {
        self.environments
            .get(name)
            .ok_or_else(|| ConfigError::UnknownEnvironment {
                name: name.to_string(),
                known: self.names().join(", "),
            })
    }

    /// Known environment names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.environments.keys().cloned().collect()
    }

    /// Builds a set from configs already loaded (tests, the CLI).
    pub fn from_configs(configs: impl IntoIterator<Item = EnvironmentConfig>) -> Self {
        Self {
            environments: configs
                .into_iter()
                .map(|c| (c.name.to_string(), c))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_file(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../infra/environments")
            .join(name)
    }

    fn dev_json() -> serde_json::Value {
        let text = std::fs::read_to_string(repo_file("dev.json")).expect("dev.json");
        serde_json::from_str(&text).expect("json")
    }

    fn load_value(value: &serde_json::Value) -> Result<EnvironmentConfig, ConfigError> {
        EnvironmentConfig::from_json(Path::new("infra/environments/dev.json"), &value.to_string())
    }

    fn rejection(value: &serde_json::Value) -> String {
        load_value(value).expect_err("must be rejected").to_string()
    }

    #[test]
    fn checked_in_environments_load() {
        let set = EnvironmentSet::load_dir(&repo_file("")).expect("infra/environments loads");
        assert_eq!(set.names(), ["dev", "prod", "sit"]);
        let prod = set.get("prod").expect("prod");
        let approval = prod.approval.as_ref().expect("prod needs approval");
        assert_eq!(approval.approvals_required, 2);
        assert!(!prod.verify.enabled && prod.dns.enabled);
        let dev = set.get("dev").expect("dev");
        assert_eq!(dev.alb_priority_range, PriorityRange { min: 10, max: 109 });
        assert_eq!(dev.promote_to.as_ref().map(|e| e.as_str()), Some("sit"));
        assert!(dev.approval.is_none() && dev.verify.enabled && !dev.dns.enabled);
    }

    #[test]
    fn unknown_environment_lists_known_ones() {
        let set = EnvironmentSet::load_dir(&repo_file("")).expect("loads");
        let e = set.get("qa").expect_err("unknown");
        assert_eq!(
            e.to_string(),
            "environment: unknown environment \"qa\" (known: dev, prod, sit)"
        );
    }

    #[test]
    fn missing_field_names_file_and_field() {
        let mut v = dev_json();
        v.as_object_mut().expect("object").remove("cluster");
        assert_eq!(
            rejection(&v),
            "infra/environments/dev.json: cluster: is missing"
        );
        let mut v = dev_json();
        v["rds"]
            .as_object_mut()
            .expect("object")
            .remove("master_secret_arn");
        assert_eq!(
            rejection(&v),
            "infra/environments/dev.json: rds.master_secret_arn: is missing"
        );
    }

    #[test]
    fn wrong_type_and_unknown_field() {
        let mut v = dev_json();
        v["defaults"]["cpu"] = serde_json::json!("lots");
        let msg = rejection(&v);
        assert!(
            msg.starts_with(
                "infra/environments/dev.json: defaults.cpu: invalid type: string \"lots\""
            ),
            "{msg}"
        );
        let mut v = dev_json();
        v["vpc"] = serde_json::json!("vpc-1");
        let msg = rejection(&v);
        assert!(
            msg.starts_with("infra/environments/dev.json: vpc: unknown field `vpc`"),
            "{msg}"
        );
    }

    #[test]
    fn semantic_checks() {
        let cases: Vec<(&str, serde_json::Value, &str)> = vec![
            (
                "account_id",
                serde_json::json!("12345"),
                "account_id: \"12345\" is not a 12-digit AWS account id",
            ),
            (
                "deploy_role_arn",
                serde_json::json!("arn:aws:iam::999999999999:role/x"),
                "is in account 999999999999 but the environment's account_id is 111111111111",
            ),
            (
                "region",
                serde_json::json!("Ireland"),
                "region: \"Ireland\" is not an AWS region name",
            ),
            (
                "alb_priority_range",
                serde_json::json!({"min": 300, "max": 10}),
                "alb_priority_range: 300..=10",
            ),
            (
                "alb_priority_range",
                serde_json::json!({"min": 10, "max": 260}),
                "promises 251 tenants, but one load balancer holds at most 100",
            ),
            (
                "verify",
                serde_json::json!({"enabled": true, "interval_seconds": 15, "max_attempts": 5000}),
                "max_attempts is at most 500",
            ),
            (
                "domain",
                serde_json::json!("Kimmy AI"),
                "domain: \"Kimmy AI\" is not a lowercase DNS domain",
            ),
            (
                "private_subnets",
                serde_json::json!([]),
                "private_subnets: needs at least one subnet",
            ),
            (
                "hosted_zone_id",
                serde_json::json!("/hostedzone/Z1"),
                "without /hostedzone/",
            ),
            (
                "name",
                serde_json::json!("sit"),
                "name: is \"sit\" but the file is dev.json",
            ),
            (
                "promote_to",
                serde_json::json!("dev"),
                "promote_to: cannot promote an environment to itself",
            ),
        ];
        for (field, value, expected) in cases {
            let mut v = dev_json();
            v[field] = value;
            let msg = rejection(&v);
            assert!(msg.contains(expected), "{field}: {msg}");
            assert!(msg.starts_with("infra/environments/dev.json: "), "{msg}");
        }
    }

    #[test]
    fn task_size_and_approval_rules() {
        let mut v = dev_json();
        v["defaults"]["memory"] = serde_json::json!(100);
        assert!(rejection(&v).contains("defaults.memory: 100 MiB is not valid with 512 CPU units"));
        let mut v = dev_json();
        v["approval"] = serde_json::json!({"approvers": ["a@x.io"], "approvals_required": 2});
        assert!(rejection(&v).contains("approval.approvals_required: is 2; it must be between 1 and the number of approvers (1)"));
        let mut v = dev_json();
        v["approval"] = serde_json::json!({"approvers": ["a@x.io", "A@x.io"]});
        assert!(rejection(&v).contains("approval.approvers[1]: \"A@x.io\" is listed twice"));
        let mut v = dev_json();
        v["approval"] = serde_json::json!({"approvers": ["a@x.io", "b@x.io"]});
        let config = load_value(&v).expect("defaults apply");
        let approval = config.approval.expect("approval");
        assert_eq!(
            (approval.approvals_required, approval.timeout_seconds),
            (2, 86_400)
        );
    }

    #[test]
    fn invalid_json_is_reported() {
        let e =
            EnvironmentConfig::from_json(Path::new("x/dev.json"), "{ not json").expect_err("bad");
        assert!(
            e.to_string()
                .starts_with("x/dev.json: (document): key must be a string"),
            "{e}"
        );
    }

    #[test]
    fn promotion_to_unknown_environment_is_rejected() {
        let dir =
            std::env::temp_dir().join(format!("stepdeploy-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let mut v = dev_json();
        v["promote_to"] = serde_json::json!("qa");
        std::fs::write(dir.join("dev.json"), v.to_string()).expect("write");
        let e = EnvironmentSet::load_dir(&dir).expect_err("qa unknown");
        std::fs::remove_dir_all(&dir).expect("cleanup");
        assert!(
            e.to_string()
                .contains("dev.json: promote_to: names \"qa\", which has no config file in"),
            "{e}"
        );
    }

    // Found by tests/props.rs.
    #[test]
    fn nothing_may_follow_the_document() {
        let text = format!("{} trailing", dev_json());
        let e = EnvironmentConfig::from_json(Path::new("x/dev.json"), &text).expect_err("trailing");
        assert_eq!(e.to_string(), "x/dev.json: (document): trailing characters");
    }

    // Found by tests/props.rs: serde reads a struct from an array, so these loaded.
    #[test]
    fn sections_are_objects() {
        let mut v = dev_json();
        let cf = v["cloudfront"].clone();
        // In the wrong order, the two strings would load swapped.
        v["cloudfront"] = serde_json::json!([cf["hosted_zone_id"], cf["domain_name"]]);
        assert_eq!(
            rejection(&v),
            "infra/environments/dev.json: cloudfront: is an array; write it as an object with named fields"
        );
        let v = dev_json();
        let fields = v.as_object().expect("object");
        let as_list: Vec<serde_json::Value> = fields.values().cloned().collect();
        assert_eq!(
            rejection(&serde_json::Value::Array(as_list)),
            "infra/environments/dev.json: (document): is an array; write it as an object with named fields"
        );
        // SECTIONS names every field that is itself an object.
        for file in ["dev.json", "sit.json", "prod.json"] {
            let text = std::fs::read_to_string(repo_file(file)).expect("config");
            let v: serde_json::Value = serde_json::from_str(&text).expect("json");
            for (name, value) in v.as_object().expect("object") {
                assert_eq!(
                    value.is_object(),
                    SECTIONS.contains(&name.as_str()) && !value.is_null(),
                    "{file}: {name}"
                );
            }
        }
    }

    // Found by tests/props.rs.
    #[test]
    fn rejections_stay_on_one_line() {
        let mut v = dev_json();
        v["\t"] = serde_json::json!(1);
        let msg = rejection(&v);
        assert!(
            msg.starts_with("infra/environments/dev.json: \"\\t\": unknown field `\\t`"),
            "{msg}"
        );
        let mut v = dev_json();
        v["deploy_role_arn"] = serde_json::json!("arn:aws:iam::1111\n11111111:role/x");
        assert!(!rejection(&v).contains('\n'));
    }
}
