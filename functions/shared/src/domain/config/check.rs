//! What the types alone cannot say about an environment: ids, ARNs in the
//! environment's own account, AWS's limits, the approval rules.

use super::{
    ApprovalConfig, DnsConfig, EnvironmentConfig, PriorityRange, VerifyConfig,
    LOAD_BALANCER_TENANTS, VERIFY_MAX_ATTEMPTS,
};
use crate::validate::FieldError;

impl EnvironmentConfig {
    /// Checks what the types alone cannot, section by section, in the order
    /// a reader meets the fields.
    pub(super) fn check(&self) -> Result<(), FieldError> {
        self.check_account()?;
        self.check_present()?;
        self.alb_priority_range.check()?;
        self.check_load_balancers()?;
        self.verify.check_limits()?;
        check_task_size(self.defaults.cpu, self.defaults.memory)?;
        check_bucket(&self.config_bucket)?;
        if let Some(approval) = &self.approval {
            approval.check()?;
        }
        if let Some(approval) = &self.override_approval {
            approval.check_in("override_approval")?;
        }
        self.verify.check_rounds()?;
        check_urls(&self.verify, &self.dns)?;
        if let Some(backup) = &self.database_backup {
            if !(1..=3650).contains(&backup.retention_days) {
                return Err(FieldError::new(
                    "database_backup.retention_days",
                    format!(
                        "{} is not 1 to 3650 days (S3 expires the dumps after this)",
                        backup.retention_days
                    ),
                ));
            }
        }
        if let Some(queue) = &self.queue {
            if !(60..=14_400).contains(&queue.max_wait_seconds) {
                return Err(FieldError::new(
                    "queue.max_wait_seconds",
                    format!(
                        "{} is not 60 to 14400 seconds (how long a request waits for the tenant's current run; each 10-second try adds to the run's history, which Step Functions caps at 25,000 events)",
                        queue.max_wait_seconds
                    ),
                ));
            }
        }
        if let Some(windows) = &self.deployment_windows {
            windows
                .check()
                .map_err(|e| FieldError::new(e.field.clone(), e.reason.clone()))?;
        }
        if self.promote_to.as_ref() == Some(&self.name) {
            return Err(FieldError::new(
                "promote_to",
                "cannot promote an environment to itself",
            ));
        }
        Ok(())
    }

    /// The account, region, ARNs in that account, and the ExternalId.
    fn check_account(&self) -> Result<(), FieldError> {
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
        Ok(())
    }

    /// Names that must not be empty, the hosted zone, subnets and domain.
    fn check_present(&self) -> Result<(), FieldError> {
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
        Ok(())
    }
}

impl EnvironmentConfig {
    /// Each additional load balancer: a listener of this account and region
    /// on a load balancer of its own, a valid range, no two ranges sharing a
    /// priority (a priority names its load balancer).
    fn check_load_balancers(&self) -> Result<(), FieldError> {
        let mut seen: Vec<(String, PriorityRange, String)> = vec![(
            "alb_priority_range".into(),
            self.alb_priority_range,
            load_balancer_of(&self.alb_listener_arn),
        )];
        for (i, lb) in self.additional_load_balancers.iter().enumerate() {
            let at = format!("additional_load_balancers[{i}]");
            check_arn(
                &format!("{at}.listener_arn"),
                &lb.listener_arn,
                "elasticloadbalancing",
                &self.region,
                &self.account_id,
                "listener/",
            )?;
            lb.priority_range
                .check_as(&format!("{at}.priority_range"))?;
            for (field, text) in [
                ("cloudfront.domain_name", &lb.cloudfront.domain_name),
                ("cloudfront.hosted_zone_id", &lb.cloudfront.hosted_zone_id),
            ] {
                if text.trim().is_empty() {
                    return Err(FieldError::new(
                        format!("{at}.{field}"),
                        "must not be empty",
                    ));
                }
            }
            let balancer = load_balancer_of(&lb.listener_arn);
            for (other, range, other_balancer) in &seen {
                if range.min <= lb.priority_range.max && lb.priority_range.min <= range.max {
                    return Err(FieldError::new(
                        format!("{at}.priority_range"),
                        format!(
                            "{}..={} overlaps {other} {}..={}: each load balancer needs its own priorities",
                            lb.priority_range.min, lb.priority_range.max, range.min, range.max
                        ),
                    ));
                }
                if *other_balancer == balancer {
                    return Err(FieldError::new(
                        format!("{at}.listener_arn"),
                        format!(
                            "is on the same load balancer as {} ({balancer}); the quotas are per load balancer",
                            other.replace("priority_range", "listener_arn")
                        ),
                    ));
                }
            }
            seen.push((format!("{at}.priority_range"), lb.priority_range, balancer));
        }
        Ok(())
    }
}

/// `app/{name}/{id}` of a listener ARN: its load balancer.
fn load_balancer_of(listener_arn: &str) -> String {
    let resource = listener_arn.split(':').nth(5).unwrap_or_default();
    resource
        .trim_start_matches("listener/")
        .rsplit_once('/')
        .map(|(lb, _)| lb.to_string())
        .unwrap_or_default()
}

impl PriorityRange {
    /// Within ALB's limits, and no wider than one load balancer holds.
    pub(super) fn check(&self) -> Result<(), FieldError> {
        self.check_as("alb_priority_range")
    }

    /// [`PriorityRange::check`], the errors naming `field`.
    pub(super) fn check_as(&self, field: &str) -> Result<(), FieldError> {
        let PriorityRange { min, max } = *self;
        if min < 1 || max > 50_000 || min > max {
            return Err(FieldError::new(
                field,
                format!("{min}..={max} is not a range within ALB's 1..=50000 with min <= max"),
            ));
        }
        if max - min + 1 > LOAD_BALANCER_TENANTS {
            return Err(FieldError::new(
                field,
                format!(
                    "{min}..={max} promises {} tenants, but one load balancer holds at most \
                     {LOAD_BALANCER_TENANTS} (AWS quotas: 100 target groups per Application Load \
                     Balancer, hard; 100 rules per load balancer, default); add a load balancer \
                     (additional_load_balancers) for more",
                    max - min + 1
                ),
            ));
        }
        Ok(())
    }
}

impl VerifyConfig {
    /// Within what one execution's history can hold.
    pub(super) fn check_limits(&self) -> Result<(), FieldError> {
        if self.max_attempts > VERIFY_MAX_ATTEMPTS || self.interval_seconds > 3_600 {
            return Err(FieldError::new(
                "verify",
                format!(
                    "max_attempts is at most {VERIFY_MAX_ATTEMPTS} and interval_seconds at most \
                     3600 (each round adds about 11 events to the execution history, which \
                     Step Functions caps at 25,000)"
                ),
            ));
        }
        Ok(())
    }

    /// At least one round, at least a second apart.
    pub(super) fn check_rounds(&self) -> Result<(), FieldError> {
        if self.interval_seconds < 1 || self.max_attempts < 1 {
            return Err(FieldError::new(
                "verify",
                "interval_seconds and max_attempts must be at least 1",
            ));
        }
        Ok(())
    }
}

impl ApprovalConfig {
    /// Approvers distinct (canonically), a reachable quorum, a sane timeout.
    pub(super) fn check(&self) -> Result<(), FieldError> {
        self.check_in("approval")
    }

    /// [`check`](Self::check), naming fields under `section`.
    pub(super) fn check_in(&self, section: &str) -> Result<(), FieldError> {
        if self.approvers.is_empty() {
            return Err(FieldError::new(
                format!("{section}.approvers"),
                format!("is empty; name who may approve, or set {section} to null"),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, approver) in self.approvers.iter().enumerate() {
            let field = format!("{section}.approvers[{i}]");
            // One mailbox, one vote: `lead@` and `Lead+p@` are one approver.
            let id = crate::identity::canonical_email(&field, approver)?;
            if !seen.insert(id.clone()) {
                return Err(FieldError::new(
                    field,
                    format!("{approver:?} is listed twice (as {id:?})"),
                ));
            }
        }
        let n = self.approvals_required;
        if n < 1 || n as usize > self.approvers.len() {
            return Err(FieldError::new(
                format!("{section}.approvals_required"),
                format!(
                    "is {n}; it must be between 1 and the number of approvers ({})",
                    self.approvers.len()
                ),
            ));
        }
        if self.timeout_seconds < 60 || self.timeout_seconds > 365 * 86_400 {
            return Err(FieldError::new(
                format!("{section}.timeout_seconds"),
                "must be between 60 s and one year",
            ));
        }
        Ok(())
    }
}

/// Base URLs the checks may be pointed at (the local stack's stand-in).
fn check_urls(verify: &VerifyConfig, dns: &DnsConfig) -> Result<(), FieldError> {
    for (field, url) in [
        ("verify.base_url", &verify.base_url),
        ("dns.check_base_url", &dns.check_base_url),
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
    Ok(())
}

/// A valid S3 bucket name.
fn check_bucket(bucket: &str) -> Result<(), FieldError> {
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    if !bucket_ok {
        return Err(FieldError::new(
            "config_bucket",
            format!("{bucket:?} is not a valid S3 bucket name"),
        ));
    }
    Ok(())
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
