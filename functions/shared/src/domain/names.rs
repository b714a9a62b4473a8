//! Naming rules: every AWS and MySQL name stepdeploy creates, derived from
//! (environment, tenant) in one place, matching the names operators already
//! use (`{env}-{tenant}-service`, `{tenant}_db`, `{tenant}.wp{env}.{domain}` …).

use crate::validate::{EnvironmentName, TenantName};
use serde::{Deserialize, Serialize};

/// The names of one tenant's resources in one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceNames {
    /// ECS task definition family: `{env}-{tenant}`.
    pub task_family: String,
    /// ECS service: `{env}-{tenant}-service`.
    pub service: String,
    /// ELBv2 target group: `{env}-{tenant}-tg`.
    pub target_group: String,
    /// Public host name: `{tenant}.wp{env}.{domain}`.
    pub host: String,
    /// Secrets Manager secret holding the tenant's DB credentials.
    pub db_secret: String,
    /// MySQL database: `{tenant}_db`.
    pub database: String,
    /// MySQL user: `{tenant}_user`.
    pub db_user: String,
    /// EFS access point root directory: `/{tenant}`.
    pub efs_path: String,
    /// Tenant config document key in the config bucket: `{env}/{tenant}.json`.
    pub config_key: String,
    /// Prefix for verification reports in the config bucket.
    pub reports_prefix: String,
    /// CloudWatch Logs stream prefix (awslogs): the tenant.
    pub log_stream_prefix: String,
}

impl ResourceNames {
    /// Derives every name for `tenant` in `env`, whose sites live under `domain`.
    pub fn new(env: &EnvironmentName, tenant: &TenantName, domain: &str) -> Self {
        let (e, t) = (env.as_str(), tenant.as_str());
        Self {
            task_family: format!("{e}-{t}"),
            service: format!("{e}-{t}-service"),
            target_group: format!("{e}-{t}-tg"),
            host: format!("{t}.wp{e}.{domain}"),
            db_secret: format!("{e}-{t}-db-credentials"),
            database: format!("{t}_db"),
            db_user: format!("{t}_user"),
            efs_path: format!("/{t}"),
            config_key: format!("{e}/{t}.json"),
            reports_prefix: format!("{e}/{t}/reports/"),
            log_stream_prefix: t.to_string(),
        }
    }
}

/// Keeps `[a-z0-9]` and turns anything else into `-`, for names built from untrusted text.
fn slug(raw: &str, max: usize) -> String {
    let s: String = raw
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(max)
        .collect();
    if s.is_empty() {
        "unknown".into()
    } else {
        s
    }
}

/// The Step Functions execution name for a request: `{tenant}-{env}-{id}`,
/// at most 80 characters of `[a-z0-9-]`, where `id` is the request's
/// `request_id` or the event's id. The trigger names runs with it and the
/// CLI finds them with it, so one rule serves both.
pub fn execution_name(tenant: &str, environment: &str, id: &str) -> String {
    let (t, e, i) = (
        slug(tenant, crate::validate::TENANT_MAX_LEN),
        slug(environment, crate::validate::ENVIRONMENT_MAX_LEN),
        slug(id, 64),
    );
    let prefix = format!("{t}-{e}-");
    // Slugging is lossy (`Release_7` and `release-7`, `ACME` and `acme`): a
    // request whose parts are not already in name form gets a digest of
    // them, so an invalid request cannot take the name a valid one will use.
    let lossy = t != tenant || e != environment || i != id;
    let mut name = if lossy {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(format!("{tenant}\n{environment}\n{id}").as_bytes());
        let suffix = format!("-x{}", &hex_lower(&digest)[..10]);
        let room = limits::EXECUTION_NAME.saturating_sub(prefix.len() + suffix.len());
        format!("{prefix}{}{suffix}", &i[..i.len().min(room)])
    } else {
        format!("{prefix}{i}")
    };
    name.truncate(limits::EXECUTION_NAME);
    name
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The tenant and environment an execution name starts with, if it is one of ours.
pub fn parse_execution_name(name: &str) -> Option<(&str, &str)> {
    let mut parts = name.splitn(3, '-');
    let tenant = parts.next().filter(|t| !t.is_empty())?;
    let env = parts.next().filter(|e| !e.is_empty())?;
    parts.next()?;
    Some((tenant, env))
}

/// Service limits the derived names must respect.
pub mod limits {
    /// ELBv2 target group name.
    pub const TARGET_GROUP: usize = 32;
    /// ECS service name and task definition family.
    pub const ECS_NAME: usize = 255;
    /// Secrets Manager secret name.
    pub const SECRET_NAME: usize = 512;
    /// MySQL (and RDS MySQL) database name.
    pub const MYSQL_DATABASE: usize = 64;
    /// MySQL 5.7+/8 user name (MariaDB allows 80; RDS MySQL is the stricter).
    pub const MYSQL_USER: usize = 32;
    /// One DNS label.
    pub const DNS_LABEL: usize = 63;
    /// A whole DNS name.
    pub const DNS_NAME: usize = 253;
    /// Step Functions execution name.
    pub const EXECUTION_NAME: usize = 80;
}

/// SNS's longest subject: "under 100 characters", ASCII, no line breaks.
pub const SNS_SUBJECT_MAX: usize = 99;

/// `text` as a subject SNS accepts: other characters (line breaks, non-ASCII)
/// become spaces or `?`, and a longer text is cut to 99 characters ending in
/// `...` (Publish refuses the message otherwise: a failure mail must not fail).
pub fn sns_subject(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| match c {
            ' '..='~' => c,
            c if c.is_whitespace() => ' ',
            _ => '?',
        })
        .collect();
    if clean.len() <= SNS_SUBJECT_MAX {
        clean
    } else {
        format!("{}...", &clean[..SNS_SUBJECT_MAX - 3])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sns_subjects_are_short_printable_ascii() {
        let long = "stepdeploy: abcdefghijklmnopqrst failed in abcdefgh at approval (States.ExceedToleratedFailureThreshold)";
        assert!(long.len() > 99);
        let subject = sns_subject(long);
        assert_eq!(subject.len(), 99);
        assert!(subject.ends_with("..."));
        assert_eq!(sns_subject("a\nb — c"), "a b ? c");
        assert_eq!(sns_subject("short"), "short");
    }
    use crate::validate::{ENVIRONMENT_MAX_LEN, TENANT_MAX_LEN};

    fn names(env: &str, tenant: &str) -> ResourceNames {
        ResourceNames::new(
            &EnvironmentName::parse(env).expect("env"),
            &TenantName::parse(tenant).expect("tenant"),
            "kimmyai.io",
        )
    }

    #[test]
    fn matches_operator_conventions() {
        let n = names("sit", "goldencrust");
        assert_eq!(n.task_family, "sit-goldencrust");
        assert_eq!(n.service, "sit-goldencrust-service");
        assert_eq!(n.target_group, "sit-goldencrust-tg");
        assert_eq!(n.host, "goldencrust.wpsit.kimmyai.io");
        assert_eq!(n.db_secret, "sit-goldencrust-db-credentials");
        assert_eq!(n.database, "goldencrust_db");
        assert_eq!(n.db_user, "goldencrust_user");
        assert_eq!(n.efs_path, "/goldencrust");
        assert_eq!(n.config_key, "sit/goldencrust.json");
        assert_eq!(n.reports_prefix, "sit/goldencrust/reports/");
    }

    #[test]
    fn longest_allowed_names_fit_every_limit() {
        let env = "e".repeat(ENVIRONMENT_MAX_LEN);
        let tenant = "t".repeat(TENANT_MAX_LEN);
        let n = names(&env, &tenant);
        assert!(
            n.target_group.len() <= limits::TARGET_GROUP,
            "{}",
            n.target_group
        );
        assert!(n.service.len() <= limits::ECS_NAME);
        assert!(n.task_family.len() <= limits::ECS_NAME);
        assert!(n.db_secret.len() <= limits::SECRET_NAME);
        assert!(n.database.len() <= limits::MYSQL_DATABASE);
        assert!(n.db_user.len() <= limits::MYSQL_USER);
        assert!(n.host.split('.').all(|l| l.len() <= limits::DNS_LABEL));
        assert!(n.host.len() <= limits::DNS_NAME);
        // `{tenant}-{env}-{event id}` with a UUID event id names the execution.
        assert!(tenant.len() + 1 + env.len() + 1 + 36 <= limits::EXECUTION_NAME);
        // And the limit is tight: one more character would break the target group.
        assert_eq!(n.target_group.len(), limits::TARGET_GROUP);
    }
}

/// Now, RFC 3339 UTC (`2026-11-30T14:02:07Z`), as stepdeploy dates what it records.
pub fn now_rfc3339() -> String {
    aws_smithy_types::DateTime::from(std::time::SystemTime::now())
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}

/// Milliseconds since the epoch of an RFC 3339 moment, with `Z` or an
/// offset, to any fraction (Step Functions writes `…T14:02:07.973Z`, the
/// local engine `…T14:02:07.973309+00:00`); `None` if it is not one.
pub fn epoch_millis(at: &str) -> Option<u64> {
    let at: jiff::Timestamp = at.parse().ok()?;
    u64::try_from(at.as_millisecond()).ok()
}

/// A moment for people: ISO-8601 UTC to the minute and how far it is from
/// `now` (`2026-11-30T14:02Z, in 23 h 12 min`; `…, 5 min ago`).
pub fn when(epoch: u64, now: u64) -> String {
    let at = aws_smithy_types::DateTime::from_secs(i64::try_from(epoch).unwrap_or(i64::MAX))
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default();
    // `2026-11-30T14:02:07Z` → `2026-11-30T14:02Z`.
    let at = match at.get(..16) {
        Some(minute) if at.len() >= 16 => format!("{minute}Z"),
        _ => at,
    };
    let span = |secs: u64| {
        let (d, h, m) = (secs / 86_400, secs % 86_400 / 3_600, secs % 3_600 / 60);
        match (d, h) {
            (0, 0) => format!("{m} min"),
            (0, _) => format!("{h} h {m} min"),
            _ => format!("{d} d {h} h"),
        }
    };
    if epoch >= now {
        format!("{at}, in {}", span(epoch - now))
    } else {
        format!("{at}, {} ago", span(now - epoch))
    }
}

#[cfg(test)]
mod when_tests {
    use super::when;

    #[test]
    fn moments_read_as_utc_and_relative() {
        let now = 1_796_040_000; // 2026-11-30T12:00:00Z
        assert_eq!(
            when(now + 23 * 3_600 + 12 * 60 + 7, now),
            "2026-12-01T11:12Z, in 23 h 12 min"
        );
        assert_eq!(when(now - 300, now), "2026-11-30T11:55Z, 5 min ago");
        assert_eq!(
            when(now + 3 * 86_400 + 7_200, now),
            "2026-12-03T14:00Z, in 3 d 2 h"
        );
    }
}

#[cfg(test)]
mod moments {
    #[test]
    fn rfc3339_moments_in_both_spellings_are_read() {
        let z = super::epoch_millis("2026-11-30T14:02:07.973Z");
        assert_eq!(z, Some(1_796_047_327_973));
        assert_eq!(super::epoch_millis("2026-11-30T14:02:07.973309+00:00"), z);
        assert_eq!(super::epoch_millis("2026-11-30T16:02:07.973+02:00"), z);
        assert_eq!(super::epoch_millis("yesterday"), None);
        assert!(super::epoch_millis("2026-11-30T10:04:05.500000+00:00").is_some());
    }
}
