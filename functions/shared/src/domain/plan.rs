//! The resolved plan bootstrap hands to every later phase: which tenant, which
//! environment (with its whole config, so phases never re-read files), the
//! derived names, the image and the ALB priority, and which phases run.

use crate::config::EnvironmentConfig;
use crate::names::ResourceNames;
use crate::validate::{EnvironmentName, ImageRef, TenantName};
use serde::{Deserialize, Serialize};

/// Which optional phases this run includes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseSwitches {
    /// Production approval gate before any change.
    pub approval: bool,
    /// Wait/verify loop after the database phase.
    pub verify: bool,
    /// Route53 record and HTTPS check.
    pub dns: bool,
    /// Environment to request next on success (`auto_promote` and a next one without approval).
    pub promote_to: Option<EnvironmentName>,
}

/// Everything later phases need, resolved once by bootstrap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentPlan {
    /// Tenant being deployed.
    pub tenant: TenantName,
    /// Target environment.
    pub environment: EnvironmentName,
    /// The Step Functions execution doing the work: lock owner and ledger key.
    pub execution: String,
    /// Who asked.
    pub requested_by: String,
    /// Image to run.
    pub image: ImageRef,
    /// Listener rule priority reserved for the tenant.
    pub alb_priority: u32,
    /// Whether `auto_promote` was asked for.
    pub auto_promote: bool,
    /// Derived resource names.
    pub names: ResourceNames,
    /// Optional phases.
    pub phases: PhaseSwitches,
    /// The environment's config as loaded by bootstrap.
    pub env: EnvironmentConfig,
    /// When bootstrap ran (RFC 3339), for the config document and log queries.
    pub started_at: String,
    /// Labels the request set for the tenant (the registry keeps them for
    /// rollouts to select on); `None` keeps the recorded ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<std::collections::BTreeMap<String, String>>,
    /// The fleet rollout run (ARN) that started this one: in an approval
    /// environment its quorum covers this deployment, and the run has no
    /// gate of its own (the guard checks the rollout's record instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<String>,
    /// What the environment runs for the tenant now (from the registry and
    /// the release history): the approval mail's "now", the database
    /// phase's "does the image change".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<CurrentRelease>,
    /// A rollback: the release being put back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestorePlan>,
    /// Where the database phase dumps the tenant's database before the image
    /// changes (a key in the config bucket); `None`: no dump for this run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    /// Outside the deployment window, in an environment that waits: when to
    /// ask again (the state machine's Wait reads it). `None`: go on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowWait>,
    /// Deploy outside the deployment window, for this reason (needs the
    /// environment's quorum).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_override: Option<String>,
    /// Waiting for another run of the tenant: when to try again, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued: Option<Queued>,
}

/// A run waiting its turn for a tenant another run holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Queued {
    /// When to try again, RFC 3339 UTC (the Wait state's `TimestampPath`).
    pub wait_until: String,
    /// Who goes first: the run holding the tenant, or an earlier request.
    pub behind: String,
    /// 1: next.
    pub position: u32,
    /// When this run joined the queue, RFC 3339 UTC.
    pub since: String,
}

/// A run waiting for its deployment window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowWait {
    /// The opening, RFC 3339 UTC (`TimestampPath` of the Wait state).
    pub wait_until: String,
    /// Why, for the console and `watch`.
    pub reason: String,
}

/// The tenant's deployment as the environment runs it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CurrentRelease {
    /// Image running now.
    pub image: String,
    /// When it went live (RFC 3339).
    pub since: String,
    /// Its release number (`None` for a deployment older than the history).
    pub release: Option<u32>,
}

/// What a rollback puts back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestorePlan {
    /// The release whose image (and, if asked, data) comes back.
    pub release: u32,
    /// When that release went live.
    pub released_at: String,
    /// The dump to load into the tenant's database (key in the config
    /// bucket), when the rollback restores data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_dump: Option<String>,
}

/// A plan for `goldencrust` in `sit` (from `infra/environments/sit.json`),
/// with the given image and priority, for the phases' unit tests.
#[cfg(any(test, feature = "testing"))]
pub fn sample(image: &str, alb_priority: u32) -> DeploymentPlan {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/environments");
    let set =
        crate::config::EnvironmentSet::load_dir(&dir).expect("checked-in environment configs load");
    let env = set.get("sit").expect("sit is configured").clone();
    let tenant = TenantName::parse("goldencrust").expect("valid tenant");
    let environment = EnvironmentName::parse("sit").expect("valid environment");
    DeploymentPlan {
        names: ResourceNames::new(&environment, &tenant, &env.domain),
        tenant,
        environment,
        execution: "arn:exec:1".into(),
        requested_by: "jane".into(),
        image: ImageRef::parse(image).expect("valid image"),
        alb_priority,
        auto_promote: false,
        phases: PhaseSwitches {
            approval: false,
            verify: true,
            dns: true,
            promote_to: None,
        },
        env,
        started_at: "2026-11-22T10:00:00Z".into(),
        labels: None,
        rollout: None,
        current: None,
        restore: None,
        backup: None,
        window: None,
        window_override: None,
        queued: None,
    }
}
