//! Requests as they arrive on the event bus, and their validation.
//!
//! Parsing is two steps: the event's `detail` must have exactly the known
//! fields (anything else is a typo an operator wants to hear about), then each
//! value is checked against the naming rules and the environment's config.
//! Either step fails with a [`FieldError`] naming the field.

use crate::config::EnvironmentSet;
use crate::validate::{shown, typed, EnvironmentName, FieldError, ImageRef, TenantName};
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `source` of every event stepdeploy reads or writes.
pub const EVENT_SOURCE: &str = "stepdeploy";
/// `detail-type` asking for a deployment.
pub const DEPLOY_REQUESTED: &str = "Tenant Deployment Requested";
/// `detail-type` asking for a tenant to be removed from an environment.
pub const TEARDOWN_REQUESTED: &str = "Tenant Teardown Requested";
/// `detail-type` published when a deployment succeeded.
pub const DEPLOY_SUCCEEDED: &str = "Tenant Deployment Succeeded";
/// `detail-type` published when a deployment failed (after rollback).
pub const DEPLOY_FAILED: &str = "Tenant Deployment Failed";
/// `detail-type` asking to put a tenant's recorded release back.
pub const ROLLBACK_REQUESTED: &str = "Tenant Rollback Requested";
/// `detail-type` asking to finish a failed run's rollback.
pub const CLEANUP_REQUESTED: &str = "Tenant Cleanup Requested";
/// `detail-type` published for an event with stepdeploy's source that no
/// rule understood (a misspelt detail-type).
pub const REQUEST_NOT_UNDERSTOOD: &str = "Request Not Understood";
/// Requests stepdeploy acts on.
pub const REQUESTS: [&str; 5] = [
    DEPLOY_REQUESTED,
    ROLLBACK_REQUESTED,
    TEARDOWN_REQUESTED,
    CLEANUP_REQUESTED,
    crate::rollout::ROLLOUT_REQUESTED,
];
/// Every `detail-type` stepdeploy reads or writes on its bus (the
/// not-understood rule matches everything else).
pub const KNOWN_DETAIL_TYPES: [&str; 10] = [
    DEPLOY_REQUESTED,
    ROLLBACK_REQUESTED,
    TEARDOWN_REQUESTED,
    CLEANUP_REQUESTED,
    DEPLOY_SUCCEEDED,
    DEPLOY_FAILED,
    REQUEST_NOT_UNDERSTOOD,
    crate::rollout::ROLLOUT_REQUESTED,
    crate::rollout::ROLLOUT_SUCCEEDED,
    crate::rollout::ROLLOUT_HALTED,
];

/// Most labels one tenant deployment may carry.
pub const MAX_LABELS: usize = 16;

/// `detail` of a deployment request, exactly as it may appear on the bus.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct DeployDetail {
    tenant: String,
    environment: String,
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    alb_priority: Option<u32>,
    #[serde(default)]
    auto_promote: Option<bool>,
    requested_by: String,
    #[serde(default)]
    request_id: Option<String>,
    #[serde(default)]
    labels: Option<serde_json::Value>,
    #[serde(default)]
    rollout: Option<String>,
    #[serde(default)]
    window_override: Option<String>,
}

/// `detail` of a rollback request.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RollbackDetail {
    tenant: String,
    environment: String,
    #[serde(default)]
    release: Option<u32>,
    #[serde(default)]
    restore_database: Option<bool>,
    #[serde(default)]
    window_override: Option<String>,
    requested_by: String,
    #[serde(default)]
    request_id: Option<String>,
}

/// `detail` of a teardown request.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct TeardownDetail {
    tenant: String,
    environment: String,
    requested_by: String,
    #[serde(default)]
    request_id: Option<String>,
}

/// A validated deployment request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployRequest {
    /// Tenant to deploy.
    pub tenant: TenantName,
    /// Environment to deploy to (known to the config).
    pub environment: EnvironmentName,
    /// Image to run; the environment's default when absent.
    pub image: Option<ImageRef>,
    /// ALB priority wanted; allocated when absent.
    pub alb_priority: Option<u32>,
    /// Whether to request the next environment's deployment on success.
    pub auto_promote: bool,
    /// Who asked (e-mail or user name); may not approve their own run.
    pub requested_by: String,
    /// The sender's idempotency key: re-sending an event with the same one starts no second run.
    pub request_id: Option<String>,
    /// The tenant's labels (`ring: canary`), kept in the registry for
    /// rollouts to select on; `None` keeps the recorded ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// The fleet rollout execution (ARN) this deployment is a child of: in an
    /// approval environment its quorum stands for the child's gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<String>,
    /// A rollback: put a recorded release back (bootstrap resolves its image).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreRequest>,
    /// Deploy outside the environment's deployment window, for this reason
    /// (the quorum decides; 1 to 500 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_override: Option<String>,
}

/// What a `Tenant Rollback Requested` event asks to put back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    /// The release number; `None`: the newest earlier release that ran
    /// another image than the current one.
    pub release: Option<u32>,
    /// Also load the database dump taken before the release that replaced
    /// it (the tenant's data as it was when that release last ran).
    pub restore_database: bool,
}

/// A validated teardown request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeardownRequest {
    /// Tenant to remove.
    pub tenant: TenantName,
    /// Environment to remove it from.
    pub environment: EnvironmentName,
    /// Who asked.
    pub requested_by: String,
    /// The sender's idempotency key.
    pub request_id: Option<String>,
}

/// What an event asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Request {
    /// Create or update the tenant.
    Deploy(DeployRequest),
    /// Remove the tenant.
    Teardown(TeardownRequest),
}

impl Request {
    /// Tenant the request is about.
    pub fn tenant(&self) -> &TenantName {
        match self {
            Self::Deploy(r) => &r.tenant,
            Self::Teardown(r) => &r.tenant,
        }
    }

    /// Environment the request is about.
    pub fn environment(&self) -> &EnvironmentName {
        match self {
            Self::Deploy(r) => &r.environment,
            Self::Teardown(r) => &r.environment,
        }
    }

    /// Who asked.
    pub fn requested_by(&self) -> &str {
        match self {
            Self::Deploy(r) => &r.requested_by,
            Self::Teardown(r) => &r.requested_by,
        }
    }

    /// Parses and validates a raw EventBridge event against the known environments.
    pub fn from_event(
        event: &serde_json::Value,
        environments: &EnvironmentSet,
    ) -> Result<Self, FieldError> {
        // serde would also read a struct from an array, field by field.
        if !event.is_object() {
            return Err(FieldError::new(
                "event",
                format!(
                    "invalid type: {}, expected a JSON object (an EventBridge event)",
                    json_kind(event)
                ),
            ));
        }
        let event: EventBridgeEvent<serde_json::Value> = typed(event.clone(), "", "event")?;
        if event.source != EVENT_SOURCE {
            return Err(FieldError::new(
                "source",
                format!(
                    "is {}; stepdeploy only reads events from source {EVENT_SOURCE:?}",
                    shown(&event.source)
                ),
            ));
        }
        match event.detail_type.as_str() {
            DEPLOY_REQUESTED => {
                let detail: DeployDetail = typed(object(event.detail)?, "detail", "event")?;
                Ok(Self::Deploy(validate_deploy(detail, environments)?))
            }
            ROLLBACK_REQUESTED => {
                let detail: RollbackDetail = typed(object(event.detail)?, "detail", "event")?;
                Ok(Self::Deploy(validate_rollback(detail, environments)?))
            }
            TEARDOWN_REQUESTED => {
                let detail: TeardownDetail = typed(object(event.detail)?, "detail", "event")?;
                Ok(Self::Teardown(validate_teardown(detail, environments)?))
            }
            other => Err(FieldError::new(
                "detail-type",
                format!(
                    "is {}; expected {DEPLOY_REQUESTED:?}, {ROLLBACK_REQUESTED:?} or {TEARDOWN_REQUESTED:?}",
                    shown(other)
                ),
            )),
        }
    }
}

/// `detail` as an object: serde would also read a struct from an array, field by field.
fn object(detail: serde_json::Value) -> Result<serde_json::Value, FieldError> {
    if detail.is_object() {
        Ok(detail)
    } else {
        Err(FieldError::new(
            "detail",
            format!(
                "invalid type: {}, expected a JSON object with the request's fields",
                json_kind(&detail)
            ),
        ))
    }
}

/// What a JSON value is, for messages.
pub(crate) fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// `request_id`: 1 to 36 of `[A-Za-z0-9_-]` (a UUID fits), as it becomes part of the execution name.
pub(crate) fn check_request_id(value: Option<&str>) -> Result<(), FieldError> {
    match value {
        Some(id)
            if id.is_empty()
                || id.len() > 36
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
        {
            Err(FieldError::new(
                "detail.request_id",
                format!(
                    "{} must be 1 to 36 letters, digits, - or _ (a UUID fits)",
                    shown(id)
                ),
            ))
        }
        _ => Ok(()),
    }
}

/// What every request names: the tenant, a known environment, and the
/// requester in canonical form ([`crate::identity`]); an e-mail address in
/// environments with approvers, where the requester may not approve.
struct Common {
    tenant: TenantName,
    environment: EnvironmentName,
    requested_by: String,
}

fn validate_common(
    tenant: &str,
    environment: &str,
    requested_by: &str,
    environments: &EnvironmentSet,
) -> Result<Common, FieldError> {
    let tenant = TenantName::parse(tenant).map_err(|e| e.within("detail"))?;
    let environment = EnvironmentName::parse(environment).map_err(|e| e.within("detail"))?;
    let env = environments.get(environment.as_str()).map_err(|_| {
        FieldError::new(
            "detail.environment",
            format!(
                "unknown environment {:?} (known: {})",
                environment.as_str(),
                environments.names().join(", ")
            ),
        )
    })?;
    let requested_by = if env.approval.is_some() {
        crate::identity::canonical_email("detail.requested_by", requested_by)?
    } else {
        crate::identity::canonical("detail.requested_by", requested_by)?
    };
    Ok(Common {
        tenant,
        environment,
        requested_by,
    })
}

fn validate_deploy(
    detail: DeployDetail,
    environments: &EnvironmentSet,
) -> Result<DeployRequest, FieldError> {
    let Common {
        tenant,
        environment,
        requested_by,
    } = validate_common(
        &detail.tenant,
        &detail.environment,
        &detail.requested_by,
        environments,
    )?;
    let image = detail
        .image
        .as_deref()
        .map(ImageRef::parse)
        .transpose()
        .map_err(|e| e.within("detail"))?;
    if let Some(priority) = detail.alb_priority {
        let env = environments
            .get(environment.as_str())
            .map_err(|e| FieldError::new("detail.environment", e.to_string()))?;
        if !env.priority_allowed(priority) {
            let ranges: Vec<String> = env
                .load_balancers()
                .iter()
                .map(|lb| format!("{}..={}", lb.priority_range.min, lb.priority_range.max))
                .collect();
            return Err(FieldError::new(
                "detail.alb_priority",
                format!(
                    "{priority} is outside {}'s range {}",
                    environment,
                    ranges.join(", ")
                ),
            ));
        }
    }
    check_request_id(detail.request_id.as_deref())?;
    let requested_by = overrider(requested_by, detail.window_override.as_deref())?;
    let labels = detail.labels.as_ref().map(check_labels).transpose()?;
    if let Some(rollout) = detail.rollout.as_deref() {
        check_rollout_arn(rollout)?;
    }
    Ok(DeployRequest {
        tenant,
        environment,
        image,
        alb_priority: detail.alb_priority,
        auto_promote: detail.auto_promote.unwrap_or(false),
        requested_by,
        request_id: detail.request_id,
        labels,
        rollout: detail.rollout,
        restore: None,
        window_override: check_override(detail.window_override)?,
    })
}

/// An override goes through a quorum the requester may not join: they must
/// be an e-mail address, as in approval environments.
fn overrider(requested_by: String, window_override: Option<&str>) -> Result<String, FieldError> {
    if window_override.is_some() {
        crate::identity::canonical_email("detail.requested_by", &requested_by)
    } else {
        Ok(requested_by)
    }
}

/// `detail.window_override`: the reason, 1 to 500 printable characters.
fn check_override(reason: Option<String>) -> Result<Option<String>, FieldError> {
    let Some(reason) = reason else {
        return Ok(None);
    };
    let reason = reason.trim().to_string();
    if reason.is_empty() || reason.chars().count() > 500 || reason.chars().any(char::is_control) {
        return Err(FieldError::new(
            "detail.window_override",
            "must give the reason for deploying outside the window: 1 to 500 characters, one line",
        ));
    }
    Ok(Some(reason))
}

/// A rollback is a deployment of a recorded release: the same pipeline,
/// gate and guard; bootstrap finds the release's image.
fn validate_rollback(
    detail: RollbackDetail,
    environments: &EnvironmentSet,
) -> Result<DeployRequest, FieldError> {
    let Common {
        tenant,
        environment,
        requested_by,
    } = validate_common(
        &detail.tenant,
        &detail.environment,
        &detail.requested_by,
        environments,
    )?;
    let requested_by = overrider(requested_by, detail.window_override.as_deref())?;
    if detail.release == Some(0) {
        return Err(FieldError::new(
            "detail.release",
            "releases are numbered from 1 (`stepdeploy releases` lists them)",
        ));
    }
    check_request_id(detail.request_id.as_deref())?;
    Ok(DeployRequest {
        tenant,
        environment,
        image: None,
        alb_priority: None,
        auto_promote: false,
        requested_by,
        request_id: detail.request_id,
        labels: None,
        rollout: None,
        restore: Some(RestoreRequest {
            release: detail.release,
            restore_database: detail.restore_database.unwrap_or(false),
        }),
        window_override: check_override(detail.window_override)?,
    })
}

/// `detail.labels`: an object of at most [`MAX_LABELS`] string values, keys
/// and values by [`crate::rollout::check_label`].
fn check_labels(value: &serde_json::Value) -> Result<BTreeMap<String, String>, FieldError> {
    let Some(object) = value.as_object() else {
        return Err(FieldError::new(
            "detail.labels",
            format!(
                "invalid type: {}, expected an object of labels, e.g. {{\"ring\": \"canary\"}}",
                json_kind(value)
            ),
        ));
    };
    if object.len() > MAX_LABELS {
        return Err(FieldError::new(
            "detail.labels",
            format!("has {} labels; at most {MAX_LABELS}", object.len()),
        ));
    }
    let mut labels = BTreeMap::new();
    for (key, value) in object {
        let field = format!("detail.labels.{key}");
        crate::rollout::check_label("detail.labels", key)?;
        let Some(text) = value.as_str() else {
            return Err(FieldError::new(
                field,
                format!("invalid type: {}, expected a string", json_kind(value)),
            ));
        };
        crate::rollout::check_label(&field, text)?;
        labels.insert(key.clone(), text.to_string());
    }
    Ok(labels)
}

/// `detail.rollout`: a Step Functions execution ARN (the rollout run that
/// started this deployment; the rollout state machine sets it).
fn check_rollout_arn(arn: &str) -> Result<(), FieldError> {
    let parts: Vec<&str> = arn.split(':').collect();
    let valid = arn.len() <= 2048
        && parts.len() == 8
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "states"
        && parts[5] == "execution"
        && parts[6..].iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    if valid {
        Ok(())
    } else {
        Err(FieldError::new(
            "detail.rollout",
            format!(
                "{} is not a Step Functions execution ARN (arn:aws:states:REGION:ACCOUNT:execution:MACHINE:NAME); only the rollout state machine sets it",
                shown(arn)
            ),
        ))
    }
}

fn validate_teardown(
    detail: TeardownDetail,
    environments: &EnvironmentSet,
) -> Result<TeardownRequest, FieldError> {
    let Common {
        tenant,
        environment,
        requested_by,
    } = validate_common(
        &detail.tenant,
        &detail.environment,
        &detail.requested_by,
        environments,
    )?;
    check_request_id(detail.request_id.as_deref())?;
    Ok(TeardownRequest {
        tenant,
        environment,
        requested_by,
        request_id: detail.request_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::Path;

    fn environments() -> EnvironmentSet {
        EnvironmentSet::load_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/environments"),
        )
        .expect("configs")
    }

    fn event(detail_type: &str, detail: serde_json::Value) -> serde_json::Value {
        json!({
            "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
            "detail-type": detail_type, "source": "stepdeploy", "account": "123456789012",
            "time": "2026-11-22T10:00:00Z", "region": "eu-west-1", "resources": [],
            "detail": detail
        })
    }

    fn deploy(detail: serde_json::Value) -> Result<Request, FieldError> {
        Request::from_event(&event(DEPLOY_REQUESTED, detail), &environments())
    }

    #[test]
    fn minimal_and_full_deploy_requests() {
        let r = deploy(json!({"tenant": "goldencrust", "environment": "sit", "requested_by": "jane@kimmyai.io"})).expect("valid");
        let Request::Deploy(d) = r else {
            panic!("deploy expected")
        };
        assert_eq!(
            (
                d.tenant.as_str(),
                d.environment.as_str(),
                d.auto_promote,
                d.image,
                d.alb_priority
            ),
            ("goldencrust", "sit", false, None, None)
        );
        let r = deploy(json!({"tenant": "goldencrust", "environment": "dev", "image": "wordpress:6.5-apache", "alb_priority": 40, "auto_promote": true, "requested_by": "jane"})).expect("valid");
        let Request::Deploy(d) = r else {
            panic!("deploy expected")
        };
        assert_eq!(
            d.image.map(|i| i.to_string()).as_deref(),
            Some("wordpress:6.5-apache")
        );
        assert_eq!((d.alb_priority, d.auto_promote), (Some(40), true));
    }

    #[test]
    fn teardown_request() {
        let r = Request::from_event(
            &event(
                TEARDOWN_REQUESTED,
                json!({"tenant": "goldencrust", "environment": "prod", "requested_by": "Ops+Teardown@Example.com"}),
            ),
            &environments(),
        )
        .expect("valid");
        assert!(matches!(r, Request::Teardown(_)));
        assert_eq!(
            (
                r.tenant().as_str(),
                r.environment().as_str(),
                r.requested_by()
            ),
            ("goldencrust", "prod", "ops@example.com"),
            "the requester in canonical form"
        );
        // Where a quorum decides, the requester must be an address the
        // self-approval rule can compare.
        for (who, why) in [
            ("ops", "not an e-mail address"),
            ("cto@example.com\u{200B}", "U+200B"),
            ("c\u{0442}o@example.com", "not an e-mail address"),
        ] {
            let e = Request::from_event(
                &event(
                    TEARDOWN_REQUESTED,
                    json!({"tenant": "goldencrust", "environment": "prod", "requested_by": who}),
                ),
                &environments(),
            )
            .expect_err("refused");
            assert_eq!(e.field, "detail.requested_by");
            assert!(e.reason.contains(why), "{who:?}: {}", e.reason);
        }
        let e = Request::from_event(&event(TEARDOWN_REQUESTED, json!({"tenant": "goldencrust", "environment": "prod", "requested_by": "ops@example.com", "image": "x"})), &environments()).expect_err("no image on teardown");
        assert_eq!(e.field, "detail.image");
        assert!(
            e.reason.starts_with("unknown field `image`"),
            "{}",
            e.reason
        );
    }

    #[test]
    fn bad_requests_name_the_field() {
        let base = json!({"tenant": "goldencrust", "environment": "sit", "requested_by": "jane"});
        let with = |k: &str, v: serde_json::Value| {
            let mut d = base.clone();
            d[k] = v;
            d
        };
        let cases = [
            (
                with("tenant", json!("Golden-Crust")),
                "detail.tenant",
                "must start with a lowercase letter",
            ),
            (
                with("environment", json!("qa")),
                "detail.environment",
                "unknown environment \"qa\" (known: dev, prod, sit)",
            ),
            (
                with("environment", json!("Prod")),
                "detail.environment",
                "must start with a lowercase letter",
            ),
            (
                with("alb_priority", json!(5)),
                "detail.alb_priority",
                "5 is outside sit's range 10..=109",
            ),
            (
                with("alb_priority", json!(-1)),
                "detail.alb_priority",
                "invalid value: integer `-1`",
            ),
            (
                with("image", json!("Not An Image")),
                "detail.image",
                "is not an image reference",
            ),
            (
                with("requested_by", json!("")),
                "detail.requested_by",
                "is empty",
            ),
            (
                with("auto_promote", json!("yes")),
                "detail.auto_promote",
                "invalid type: string \"yes\", expected a boolean",
            ),
            (
                with("colour", json!("blue")),
                "detail.colour",
                "unknown field `colour`",
            ),
            (
                json!({"environment": "sit", "requested_by": "jane"}),
                "detail.tenant",
                "is missing",
            ),
            (json!("goldencrust"), "detail", "invalid type: string"),
        ];
        for (detail, field, why) in cases {
            let e = deploy(detail.clone()).expect_err(&detail.to_string());
            assert_eq!(e.field, field, "{detail}: {e}");
            assert!(e.reason.contains(why), "{detail}: {}", e.reason);
        }
    }

    #[test]
    fn request_ids_are_checked() {
        let ok = deploy(json!({"tenant": "goldencrust", "environment": "sit", "requested_by": "jane", "request_id": "2f1c7a52-5d8e-4a51-9d0e-0c8d1b1e8f01"})).expect("valid");
        let Request::Deploy(d) = ok else {
            panic!("deploy expected")
        };
        assert_eq!(
            d.request_id.as_deref(),
            Some("2f1c7a52-5d8e-4a51-9d0e-0c8d1b1e8f01")
        );
        let e = deploy(json!({"tenant": "goldencrust", "environment": "sit", "requested_by": "jane", "request_id": "no spaces"})).expect_err("bad id");
        assert_eq!(e.field, "detail.request_id");
    }

    #[test]
    fn wrong_source_or_detail_type() {
        let mut e = event(DEPLOY_REQUESTED, json!({}));
        e["source"] = json!("aws.ec2");
        assert_eq!(
            Request::from_event(&e, &environments())
                .expect_err("source")
                .field,
            "source"
        );
        let e = event("Tenant Deployment Requestd", json!({}));
        let err = Request::from_event(&e, &environments()).expect_err("type");
        assert_eq!(err.field, "detail-type");
        let err = Request::from_event(&json!({"detail": {}}), &environments()).expect_err("shape");
        assert_eq!(err.to_string(), "detail-type: is missing");
    }

    // Found by tests/props.rs.
    #[test]
    fn arrays_are_not_events_or_details() {
        // serde reads a struct from an array too: this teardown was accepted.
        let e = Request::from_event(
            &event(
                TEARDOWN_REQUESTED,
                json!(["goldencrust", "dev", "jane", null]),
            ),
            &environments(),
        )
        .expect_err("an array is not a detail");
        assert_eq!(
            e.to_string(),
            "detail: invalid type: array, expected a JSON object with the request's fields"
        );
        let e = Request::from_event(
            &json!(["0", "id", TEARDOWN_REQUESTED, "stepdeploy"]),
            &environments(),
        )
        .expect_err("an array is not an event");
        assert_eq!(
            e.to_string(),
            "event: invalid type: array, expected a JSON object (an EventBridge event)"
        );
    }

    // Found by tests/props.rs.
    #[test]
    fn rejections_stay_on_one_short_line() {
        let base = json!({"tenant": "goldencrust", "environment": "sit", "requested_by": "jane"});
        let mut d = base.clone();
        d["ten\nant"] = json!(1);
        let e = deploy(d).expect_err("unknown field");
        assert_eq!(e.field, "detail.\"ten\\nant\"");
        assert!(!e.to_string().contains('\n'), "{e}");
        let mut d = base.clone();
        d["tenant"] = json!("X".repeat(100_000));
        let e = deploy(d).expect_err("long tenant");
        assert!(
            e.to_string().len() < 400,
            "{} characters",
            e.to_string().len()
        );
        assert!(e.reason.contains("(100000 characters)"), "{e}");
        let mut e = event(&"x".repeat(10_000), base);
        let err = Request::from_event(&e, &environments()).expect_err("type");
        assert!(err.to_string().len() < 400);
        e["source"] = json!("\u{1b}[31m".repeat(1000));
        let err = Request::from_event(&e, &environments()).expect_err("source");
        assert!(err.to_string().len() < 400 && !err.to_string().contains('\u{1b}'));
    }
}
