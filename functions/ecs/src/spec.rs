//! The desired task definition, derived from the plan alone, and its
//! fingerprint: a re-run compares fingerprints instead of field by field, so
//! an unchanged tenant registers nothing.

use serde::Serialize;
use sha2::{Digest, Sha256};
use stepdeploy_shared::DeploymentPlan;

/// Container name, port and volume operators know from the Terraform module.
pub const CONTAINER: &str = "wordpress";
/// The container's HTTP port.
pub const PORT: i32 = 80;
/// The EFS volume mounted at `wp-content`.
pub const VOLUME: &str = "wp-content";
/// Tag holding [`TaskSpec::fingerprint`] on registered task definitions.
pub const SPEC_TAG: &str = "stepdeploy:spec";

/// Everything that goes into one tenant's task definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskSpec {
    /// `{env}-{tenant}`.
    pub family: String,
    /// Container image.
    pub image: String,
    /// Fargate CPU units.
    pub cpu: String,
    /// Fargate memory (MiB).
    pub memory: String,
    /// Pull/secrets role.
    pub execution_role_arn: String,
    /// Task role.
    pub task_role_arn: String,
    /// Plain environment variables, sorted by name.
    pub environment: Vec<(String, String)>,
    /// Secrets: variable name → `valueFrom`.
    pub secrets: Vec<(String, String)>,
    /// EFS file system.
    pub efs_id: String,
    /// The tenant's access point.
    pub access_point_id: String,
    /// awslogs group, region and stream prefix.
    pub log_group: String,
    /// Region for awslogs.
    pub region: String,
    /// Stream prefix (the tenant).
    pub log_stream_prefix: String,
}

/// Forces HTTPS behind CloudFront/ALB and pins the site URL to the tenant's host.
fn config_extra(host: &str) -> String {
    format!(
        "if (isset($_SERVER['HTTP_X_FORWARDED_PROTO']) && $_SERVER['HTTP_X_FORWARDED_PROTO'] === 'https') {{ $_SERVER['HTTPS'] = 'on'; }}\n\
         if (isset($_SERVER['HTTP_CLOUDFRONT_FORWARDED_PROTO']) && $_SERVER['HTTP_CLOUDFRONT_FORWARDED_PROTO'] === 'https') {{ $_SERVER['HTTPS'] = 'on'; }}\n\
         define('FORCE_SSL_ADMIN', true);\n\
         define('WP_HOME', 'https://{host}');\n\
         define('WP_SITEURL', 'https://{host}');"
    )
}

impl TaskSpec {
    /// The spec for `plan`, mounting `access_point_id`, reading the
    /// credentials from `secret_arn` (the full ARN database returned).
    pub fn for_plan(plan: &DeploymentPlan, access_point_id: &str, secret_arn: &str) -> Self {
        let env = &plan.env;
        let secret = secret_arn;
        Self {
            family: plan.names.task_family.clone(),
            image: plan.image.to_string(),
            cpu: env.defaults.cpu.to_string(),
            memory: env.defaults.memory.to_string(),
            execution_role_arn: env.task_execution_role_arn.clone(),
            task_role_arn: env.task_role_arn.clone(),
            environment: vec![
                (
                    "WORDPRESS_CONFIG_EXTRA".into(),
                    config_extra(&plan.names.host),
                ),
                (
                    "WORDPRESS_DB_HOST".into(),
                    format!("{}:{}", env.rds.endpoint, env.rds.port),
                ),
                ("WORDPRESS_DB_NAME".into(), plan.names.database.clone()),
                ("WORDPRESS_TABLE_PREFIX".into(), "wp_".into()),
            ],
            secrets: vec![
                (
                    "WORDPRESS_DB_PASSWORD".into(),
                    format!("{secret}:password::"),
                ),
                ("WORDPRESS_DB_USER".into(), format!("{secret}:username::")),
            ],
            efs_id: env.efs_id.clone(),
            access_point_id: access_point_id.to_string(),
            log_group: env.log_group.clone(),
            region: env.region.clone(),
            log_stream_prefix: plan.names.log_stream_prefix.clone(),
        }
    }

    /// SHA-256 of the spec (hex): equal fingerprints mean nothing to register.
    pub fn fingerprint(&self) -> String {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(Sha256::digest(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::fake::{plan, SECRET};

    #[test]
    fn task_spec_matches_the_operators_module() {
        let p = plan("wordpress:6.4-apache", 140);
        let spec = TaskSpec::for_plan(&p, "fsap-1", SECRET);
        assert_eq!(spec.family, "sit-goldencrust");
        assert_eq!((spec.cpu.as_str(), spec.memory.as_str()), ("512", "1024"));
        let env: std::collections::HashMap<_, _> = spec.environment.iter().cloned().collect();
        assert_eq!(env["WORDPRESS_DB_NAME"], "goldencrust_db");
        assert_eq!(env["WORDPRESS_TABLE_PREFIX"], "wp_");
        assert!(env["WORDPRESS_CONFIG_EXTRA"]
            .contains("define('WP_HOME', 'https://goldencrust.wpsit.kimmyai.io');"));
        assert!(env["WORDPRESS_CONFIG_EXTRA"].contains("HTTP_CLOUDFRONT_FORWARDED_PROTO"));
        assert_eq!(
            spec.secrets,
            [
                (
                    "WORDPRESS_DB_PASSWORD".to_string(),
                    format!("{SECRET}:password::")
                ),
                (
                    "WORDPRESS_DB_USER".to_string(),
                    format!("{SECRET}:username::")
                ),
            ]
        );
        assert_eq!(spec.log_stream_prefix, "goldencrust");
        assert_eq!(
            spec.fingerprint(),
            TaskSpec::for_plan(&p, "fsap-1", SECRET).fingerprint()
        );
        assert_ne!(
            spec.fingerprint(),
            TaskSpec::for_plan(&p, "fsap-2", SECRET).fingerprint()
        );
    }
}
