//! bootstrap's input and flow: validate, resolve, ensure the backend, then
//! (outside approval environments) take the lock and the ALB priority
//! ([`crate::lock`]), and hand the plan to the next phases.
//!
//! Nothing is created until the request has passed validation, so a bad
//! event changes nothing.

use crate::error::BootstrapError;
use crate::lock::{self, Clock};
use crate::ports::{ConfigBucket, EnvPorts, ListenerRules};
use crate::window::Moment;
use serde::{Deserialize, Deserializer, Serialize};
use std::sync::Arc;
use stepdeploy_shared::approvals::Action;
use stepdeploy_shared::aws::Connect;
use stepdeploy_shared::config::{ConfigError, EnvironmentConfig, EnvironmentSet};
use stepdeploy_shared::guard::{Guard, Quorum, Runs};
use stepdeploy_shared::plan::{DeploymentPlan, PhaseSwitches};
use stepdeploy_shared::request::{Request, TEARDOWN_REQUESTED};
use stepdeploy_shared::state::StateStore;
use stepdeploy_shared::validate::{typed, FieldError};
use stepdeploy_shared::{DeployRequest, ResourceNames};

/// What the state machine passes to bootstrap: the request, or, in an
/// environment with approvers, the claim after the gate. A payload with an
/// `action` is a claim.
#[derive(Debug, Clone)]
pub enum BootstrapInput {
    /// `{event, execution, started_at}`.
    Request(RequestInput),
    /// `{action: "claim", plan}` (boxed: a plan is large).
    Claim(Box<ClaimInput>),
}

impl<'de> Deserialize<'de> for BootstrapInput {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let payload = serde_json::Value::deserialize(deserializer)?;
        let input = if payload.get("action").is_some() {
            typed(payload, "", "input").map(Self::Claim)
        } else {
            typed(payload, "", "input").map(Self::Request)
        };
        input.map_err(serde::de::Error::custom)
    }
}

/// The request the deploy state machine starts with.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RequestInput {
    /// The EventBridge event as delivered.
    pub event: serde_json::Value,
    /// `$$.Execution.Id`: lock owner and ledger key.
    pub execution: String,
    /// `$$.Execution.StartTime`.
    pub started_at: String,
}

/// The `Claim` step of an approval environment: the plan bootstrap made
/// before the gate, now approved.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimInput {
    /// Always `claim`.
    pub action: String,
    /// bootstrap's plan (its `alb_priority` is the requested one, or 0).
    pub plan: DeploymentPlan,
}

/// The guard, for the claim only: it takes the lock and a priority in an
/// approval environment, so only for an approved, running run. A request
/// carries no plan yet; bootstrap validates it itself.
pub async fn admit<R: Runs>(
    input: BootstrapInput,
    guard: &Guard<R>,
) -> Result<BootstrapInput, BootstrapError> {
    match input {
        BootstrapInput::Claim(mut claim) => {
            guard
                .check(&mut claim.plan, Quorum::Required, Action::Deploy)
                .await?;
            Ok(BootstrapInput::Claim(claim))
        }
        request => Ok(request),
    }
}

/// Runs bootstrap for one state machine input: plans a request, or claims
/// the lock and the priority for an approved plan.
pub async fn handle<S, L, B>(
    input: BootstrapInput,
    environments: &Result<EnvironmentSet, Arc<ConfigError>>,
    connector: &impl Connect<EnvPorts<S, L, B>>,
    clock: &impl Clock,
) -> Result<DeploymentPlan, BootstrapError>
where
    S: StateStore,
    L: ListenerRules,
    B: ConfigBucket,
{
    let environments = environments
        .as_ref()
        .map_err(|e| BootstrapError::Config(Arc::clone(e)))?;
    let input = match input {
        BootstrapInput::Request(input) => input,
        BootstrapInput::Claim(claim) => {
            let ClaimInput { action, plan } = *claim;
            if action != "claim" {
                return Err(FieldError::new("action", format!("unknown action {action:?}")).into());
            }
            let env = environments
                .get(plan.environment.as_str())
                .map_err(|e| FieldError::new("plan.environment", e.to_string()))?;
            let ports = connector.connect(env).await;
            let mut plan = plan;
            let labels = crate::window::labels_of(&plan, &ports.state).await?;
            crate::window::judge(&mut plan, env, &labels, clock.now(), Moment::Claim)?;
            if plan.window.is_some() {
                // Waits for the opening holding nothing; Claim runs again then.
                return Ok(plan);
            }
            return lock::claim(plan, env, &ports, clock).await;
        }
    };
    let request = deploy_request(&input.event, environments)?;
    let env = environments
        .get(request.environment.as_str())
        .map_err(|e| FieldError::new("detail.environment", e.to_string()))?;
    let ports = connector.connect(env).await;
    // A rollback's release is found before anything is made: a release that
    // does not exist changes nothing.
    let restore = match request.restore {
        Some(asked) => {
            Some(crate::release::resolve(&request.tenant, env, asked, &ports.state).await?)
        }
        None => None,
    };
    ports.state.ensure_table().await?;
    ports
        .bucket
        .ensure_bucket(&env.config_bucket, &env.region)
        .await?;
    let current = crate::release::current(request.tenant.as_str(), &ports.state).await?;
    let mut plan = plan_for(request, env, environments, input);
    if let Some(found) = restore {
        plan.image = found.image;
        plan.restore = Some(found.plan);
    }
    plan.backup = crate::release::backup_key(&plan, current.as_ref());
    plan.current = current;
    if let (Some(_), Some(backup)) = (&plan.backup, &env.database_backup) {
        ports
            .bucket
            .ensure_backup_retention(&env.config_bucket, backup.retention_days)
            .await?;
    }
    let labels = crate::window::labels_of(&plan, &ports.state).await?;
    let moment = if plan.phases.approval {
        Moment::BeforeGate
    } else {
        Moment::Claim
    };
    crate::window::judge(&mut plan, env, &labels, clock.now(), moment)?;
    if plan.window.is_some() {
        // Outside the window in an environment that waits: nothing is taken;
        // the state machine waits for the opening and plans again.
        return Ok(plan);
    }
    if plan.phases.approval {
        // Where humans decide, the lock and the priority are taken after the
        // gate (the Claim state): a pending request holds nothing, so it can
        // neither block the tenant for a day nor use up the range.
        return Ok(plan);
    }
    lock::claim(plan, env, &ports, clock).await
}

/// The event's deployment request; a teardown event is refused here.
fn deploy_request(
    event: &serde_json::Value,
    environments: &EnvironmentSet,
) -> Result<DeployRequest, BootstrapError> {
    match Request::from_event(event, environments)? {
        Request::Deploy(request) => Ok(request),
        Request::Teardown(_) => Err(FieldError::new(
            "detail-type",
            format!(
                "{TEARDOWN_REQUESTED:?} is run by the teardown state machine, not the deploy one"
            ),
        )
        .into()),
    }
}

/// The plan for `request` in `env`, before the claim: the requested priority
/// (0: none) until the claim picks one.
fn plan_for(
    request: DeployRequest,
    env: &EnvironmentConfig,
    environments: &EnvironmentSet,
    input: RequestInput,
) -> DeploymentPlan {
    // Automatic promotion stops before an environment with approvers.
    let promote_to = if request.auto_promote {
        env.promote_to.clone().filter(|next| {
            environments
                .get(next.as_str())
                .is_ok_and(|next_env| next_env.approval.is_none())
        })
    } else {
        None
    };
    DeploymentPlan {
        names: ResourceNames::new(&request.environment, &request.tenant, &env.domain),
        tenant: request.tenant,
        environment: request.environment,
        execution: input.execution,
        requested_by: request.requested_by,
        image: request.image.unwrap_or_else(|| env.defaults.image.clone()),
        alb_priority: request.alb_priority.unwrap_or(0),
        auto_promote: request.auto_promote,
        phases: PhaseSwitches {
            // An override of the deployment window is approved even where
            // deployments need no approval (`override_approval`).
            approval: env
                .approval_for(request.window_override.is_some())
                .is_some(),
            verify: env.verify.enabled,
            dns: env.dns.enabled,
            promote_to,
        },
        env: {
            // No priority yet: the first load balancer until the claim.
            let mut env = env.in_plan(0);
            env.approval = env.approval_for(request.window_override.is_some()).cloned();
            env
        },
        started_at: input.started_at,
        labels: request.labels,
        rollout: request.rollout,
        current: None,
        restore: None,
        backup: None,
        window: None,
        window_override: request.window_override,
        queued: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::ListenerRule;
    use serde_json::json;
    use std::path::Path;
    use std::sync::Mutex;
    use stepdeploy_shared::aws_error::AwsCallError;
    use stepdeploy_shared::errors::ErrorName;
    use stepdeploy_shared::state::memory::MemoryState;
    use stepdeploy_shared::state::LockHolder;

    /// The first load balancer's rules (any listener not in `.1`), and
    /// other listeners' by ARN.
    #[derive(Default, Clone)]
    struct FakeRules(
        Arc<Mutex<Vec<ListenerRule>>>,
        Arc<Mutex<std::collections::HashMap<String, Vec<ListenerRule>>>>,
    );
    impl ListenerRules for FakeRules {
        async fn rules(&self, listener: &str) -> Result<Vec<ListenerRule>, AwsCallError> {
            if let Some(rules) = self.1.lock().expect("lock").get(listener) {
                return Ok(rules.clone());
            }
            Ok(self.0.lock().expect("lock").clone())
        }
    }

    #[derive(Default, Clone)]
    struct FakeBucket(Arc<Mutex<Vec<String>>>);
    impl ConfigBucket for FakeBucket {
        async fn ensure_bucket(&self, bucket: &str, _region: &str) -> Result<bool, AwsCallError> {
            self.0.lock().expect("lock").push(bucket.into());
            Ok(true)
        }
        async fn ensure_backup_retention(
            &self,
            bucket: &str,
            days: u32,
        ) -> Result<(), AwsCallError> {
            self.0
                .lock()
                .expect("lock")
                .push(format!("{bucket} backups {days} d"));
            Ok(())
        }
    }

    #[derive(Default, Clone)]
    struct World {
        state: MemoryState,
        rules: FakeRules,
        bucket: FakeBucket,
    }
    impl Connect<EnvPorts<MemoryState, FakeRules, FakeBucket>> for World {
        async fn connect(
            &self,
            _env: &EnvironmentConfig,
        ) -> EnvPorts<MemoryState, FakeRules, FakeBucket> {
            EnvPorts {
                state: self.state.clone(),
                rules: self.rules.clone(),
                bucket: self.bucket.clone(),
            }
        }
    }

    struct FixedClock(u64);

    /// Tue 2026-12-01 10:00 in Johannesburg: inside prod's deployment
    /// window (Mon–Thu 08:00–16:00, infra/environments/prod.json).
    const NOW: u64 = 1_796_112_000;
    impl Clock for FixedClock {
        fn now(&self) -> u64 {
            self.0
        }
    }

    fn environments() -> Result<EnvironmentSet, Arc<ConfigError>> {
        Ok(EnvironmentSet::load_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/environments"),
        )
        .expect("configs"))
    }

    /// A payload as the state machine passes it, read as the entry helper reads it.
    fn typed(payload: serde_json::Value) -> BootstrapInput {
        serde_json::from_value(payload).expect("a well-formed payload")
    }

    fn input(detail: serde_json::Value, execution: &str) -> serde_json::Value {
        json!({
            "event": {"version": "0", "id": "e1", "detail-type": "Tenant Deployment Requested", "source": "stepdeploy",
                      "account": "123456789012", "time": "2026-11-22T10:00:00Z", "region": "eu-west-1", "resources": [], "detail": detail},
            "execution": execution,
            "started_at": "2026-11-22T10:00:01Z"
        })
    }

    fn rule(priority: u32, host: &str) -> ListenerRule {
        ListenerRule {
            arn: format!("arn:rule/{priority}"),
            priority: Some(priority),
            hosts: vec![host.into()],
            target_groups: vec![],
        }
    }

    /// goldencrust's first dev deployment (exec-1), which must plan.
    async fn goldencrust_plan(world: &World) -> DeploymentPlan {
        run(
            world,
            json!({"tenant": "goldencrust", "environment": "dev", "requested_by": "jane"}),
            "exec-1",
        )
        .await
        .expect("plan")
    }

    async fn run(
        world: &World,
        detail: serde_json::Value,
        execution: &str,
    ) -> Result<DeploymentPlan, BootstrapError> {
        handle(
            typed(input(detail, execution)),
            &environments(),
            world,
            &FixedClock(NOW),
        )
        .await
    }

    /// A release of goldencrust in `env`'s history, as notify records it.
    fn release(number: u32, image: &str, dump: Option<&str>) -> stepdeploy_shared::state::Release {
        stepdeploy_shared::state::Release {
            number,
            image: image.into(),
            task_definition: format!("arn:td:{number}"),
            config_version: Some(format!("v{number}")),
            at: format!("2026-11-2{number}T10:00:00Z"),
            requested_by: "jane@kimmyai.io".into(),
            approvers: vec![],
            execution: format!("exec-r{number}"),
            restored_from: None,
            database_dump: dump.map(str::to_string),
            database_restored_from: None,
        }
    }

    async fn rollback(
        world: &World,
        detail: serde_json::Value,
        execution: &str,
    ) -> Result<DeploymentPlan, BootstrapError> {
        let mut payload = input(detail, execution);
        payload["event"]["detail-type"] = json!("Tenant Rollback Requested");
        handle(typed(payload), &environments(), world, &FixedClock(NOW)).await
    }

    /// A rollback finds its release's image (by default the newest earlier
    /// release with another image), and in prod the dump that holds its
    /// data; a release that cannot be put back is refused before anything
    /// is made.
    #[tokio::test]
    async fn a_rollback_resolves_its_release_and_a_bad_one_changes_nothing() {
        let world = World::default();
        let prod = json!({"tenant": "goldencrust", "environment": "prod", "requested_by": "jane@kimmyai.io"});
        // No history: nothing to put back, and nothing made.
        let err = rollback(&world, prod.clone(), "exec-x")
            .await
            .expect_err("refused");
        assert_eq!(err.error_name(), "ReleaseNotFound");
        assert!(err.to_string().contains("no recorded releases"), "{err}");
        assert!(world.bucket.0.lock().expect("lock").is_empty());
        world.state.with(|t| {
            t.releases.insert(
                "goldencrust".into(),
                vec![
                    release(1, "wordpress:6.4-apache", None),
                    release(2, "wordpress:6.4-apache", None),
                    release(
                        3,
                        "wordpress:6.5-apache",
                        Some("_backups/goldencrust/exec-r3.sql"),
                    ),
                ],
            );
            t.records.insert(
                "goldencrust".into(),
                stepdeploy_shared::state::RegistryRecord {
                    image: "wordpress:6.5-apache".into(),
                    status: "active".into(),
                    last_execution: "exec-r3".into(),
                    updated_at: "2026-11-23T10:00:00Z".into(),
                    config_key: "prod/goldencrust.json".into(),
                    requested_by: "jane@kimmyai.io".into(),
                    labels: Default::default(),
                },
            );
        });
        let plan = rollback(&world, prod.clone(), "exec-b")
            .await
            .expect("plan");
        assert_eq!(plan.image.as_str(), "wordpress:6.4-apache");
        let restore = plan.restore.as_ref().expect("a rollback");
        assert_eq!(
            (restore.release, restore.database_dump.as_deref()),
            (2, None)
        );
        let current = plan.current.as_ref().expect("what runs now");
        assert_eq!(
            (current.image.as_str(), current.release),
            ("wordpress:6.5-apache", Some(3))
        );
        // prod keeps dumps: this image change dumps first.
        assert_eq!(
            plan.backup.as_deref(),
            Some("_backups/goldencrust/exec-b.sql")
        );
        assert!(world
            .bucket
            .0
            .lock()
            .expect("lock")
            .contains(&"stepdeploy-config-prod-333333333333 backups 35 d".to_string()));
        // Release 2's data is in the dump release 3 took.
        let mut with_data = prod.clone();
        with_data["restore_database"] = json!(true);
        let plan = rollback(&world, with_data.clone(), "exec-c")
            .await
            .expect("plan");
        assert_eq!(
            plan.restore.and_then(|r| r.database_dump).as_deref(),
            Some("_backups/goldencrust/exec-r3.sql")
        );
        // Release 1's data: release 2 took no dump (same image).
        with_data["release"] = json!(1);
        let err = rollback(&world, with_data, "exec-d")
            .await
            .expect_err("no dump");
        assert!(err.to_string().contains("release 2 took no dump"), "{err}");
        // Unknown and current releases.
        let mut detail = prod.clone();
        detail["release"] = json!(7);
        let err = rollback(&world, detail.clone(), "exec-e")
            .await
            .expect_err("unknown");
        assert!(
            err.to_string().contains("no release 7 (releases 1..=3"),
            "{err}"
        );
        detail["release"] = json!(3);
        let err = rollback(&world, detail, "exec-f")
            .await
            .expect_err("current");
        assert!(
            err.to_string().contains("release 3 is the current release"),
            "{err}"
        );
    }

    /// In an environment with approvers a pending request holds nothing:
    /// the lock and the priority are taken by the claim after the gate.
    #[tokio::test]
    async fn approval_environments_claim_after_the_gate() {
        let world = World::default();
        let detail = json!({"tenant": "goldencrust", "environment": "prod", "requested_by": "jane@kimmyai.io"});
        let pending = run(&world, detail.clone(), "exec-a").await.expect("plan");
        assert_eq!(pending.alb_priority, 0);
        assert!(world
            .state
            .claimed_priorities()
            .await
            .expect("claims")
            .is_empty());
        // A second pending request for the same tenant is not locked out.
        let other = run(&world, detail, "exec-b").await.expect("plan");
        let claim = |plan: &DeploymentPlan| typed(json!({"action": "claim", "plan": plan}));
        let claimed = handle(claim(&pending), &environments(), &world, &FixedClock(NOW))
            .await
            .expect("claimed");
        assert!(claimed.alb_priority > 0);
        assert_eq!(
            world
                .state
                .claimed_priorities()
                .await
                .expect("claims")
                .len(),
            1
        );
        // The other run's claim finds the tenant busy: prod queues it.
        let waiting = handle(claim(&other), &environments(), &world, &FixedClock(NOW))
            .await
            .expect("queued");
        let queued = waiting.queued.expect("in the queue");
        assert_eq!(
            (queued.behind.as_str(), waiting.alb_priority),
            ("exec-a", 0)
        );
    }

    #[tokio::test]
    async fn first_deploy_plans_and_allocates_lowest_free_priority() {
        let world = World::default();
        world.rules.0.lock().expect("lock").extend([
            rule(10, "a.wpdev.kimmyai.io"),
            rule(11, "b.wpdev.kimmyai.io"),
            rule(13, "c.wpdev.kimmyai.io"),
        ]);
        let plan = goldencrust_plan(&world).await;
        assert_eq!(plan.alb_priority, 12);
        assert_eq!(plan.names.service, "dev-goldencrust-service");
        assert_eq!(plan.image.as_str(), "wordpress:6.4-apache");
        assert_eq!(
            plan.phases,
            PhaseSwitches {
                approval: false,
                verify: true,
                dns: false,
                promote_to: None
            }
        );
        assert_eq!(plan.execution, "exec-1");
        assert_eq!(
            *world.bucket.0.lock().expect("lock"),
            ["stepdeploy-config-dev-111111111111"]
        );
        let ledger = world.state.ledger(&plan.execution).await.expect("ledger");
        assert_eq!(ledger.len(), 1);
        assert_eq!(
            (
                ledger[0].kind.as_str(),
                ledger[0].id.as_str(),
                ledger[0].created
            ),
            ("priority_claim", "12", true)
        );
        let lock = world
            .state
            .with(|t| t.locks.get("goldencrust").cloned().expect("locked"));
        assert_eq!(
            (lock.owner.as_str(), lock.expires_at),
            ("exec-1", NOW + 15 * 40 + 3_600)
        );
    }

    #[tokio::test]
    async fn rerun_of_same_execution_converges() {
        let world = World::default();
        let detail = json!({"tenant": "goldencrust", "environment": "dev", "requested_by": "jane"});
        let first = run(&world, detail.clone(), "exec-1").await.expect("first");
        let second = run(&world, detail, "exec-1")
            .await
            .expect("same execution retried");
        assert_eq!(first, second);
        assert_eq!(
            world.state.ledger("exec-1").await.expect("ledger").len(),
            1,
            "no second claim recorded"
        );
    }

    #[tokio::test]
    async fn redeploy_keeps_the_tenants_priority() {
        let world = World::default();
        world
            .rules
            .0
            .lock()
            .expect("lock")
            .push(rule(40, "goldencrust.wpdev.kimmyai.io"));
        let detail = json!({"tenant": "goldencrust", "environment": "dev", "requested_by": "jane"});
        let plan = run(&world, detail.clone(), "exec-1").await.expect("plan");
        assert_eq!(plan.alb_priority, 40, "live rule's priority is kept");
        world
            .state
            .release_lock("goldencrust", "exec-1")
            .await
            .expect("release");
        let plan = run(&world, detail, "exec-2").await.expect("plan");
        assert_eq!(plan.alb_priority, 40);
        assert!(
            world
                .state
                .ledger("exec-2")
                .await
                .expect("ledger")
                .is_empty(),
            "nothing new claimed"
        );
    }

    /// dev with `queue` set as given.
    fn queued_dev(queue: serde_json::Value) -> Result<EnvironmentSet, Arc<ConfigError>> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/environments");
        let mut dev: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("dev.json")).expect("dev.json"))
                .expect("json");
        dev["queue"] = queue;
        let tmp = std::env::temp_dir().join(format!(
            "stepdeploy-queue-{}-{}",
            std::process::id(),
            dev["queue"]["supersede"]
        ));
        std::fs::create_dir_all(&tmp).expect("tmp");
        for name in ["sit.json", "prod.json"] {
            std::fs::copy(dir.join(name), tmp.join(name)).expect("copy");
        }
        std::fs::write(tmp.join("dev.json"), dev.to_string()).expect("write");
        let set = EnvironmentSet::load_dir(&tmp).expect("dev with a queue");
        let _ = std::fs::remove_dir_all(&tmp);
        Ok(set)
    }

    /// With a queue, a request for a busy tenant waits (holding nothing),
    /// earlier requests go first, a newer one supersedes the older waiting
    /// one, and one that waited too long fails as it would without a queue.
    #[tokio::test]
    async fn a_busy_tenant_queues_first_come_first_served_or_newest_wins() {
        let at = |world: &World,
                  envs: &Result<EnvironmentSet, Arc<ConfigError>>,
                  exec: &str,
                  now: u64| {
            let payload = typed(input(
                json!({"tenant": "goldencrust", "environment": "dev", "requested_by": format!("{exec}@x.io")}),
                exec,
            ));
            let (world, envs) = (world.clone(), envs.clone());
            async move { handle(payload, &envs, &world, &FixedClock(now)).await }
        };
        // First come first served.
        let envs = queued_dev(json!({"max_wait_seconds": 600, "supersede": false}));
        let world = World::default();
        let a = at(&world, &envs, "exec-a", NOW).await.expect("a runs");
        assert!(a.queued.is_none() && a.alb_priority > 0);
        let b = at(&world, &envs, "exec-b", NOW + 1).await.expect("b waits");
        let queued = b.queued.expect("queued");
        assert_eq!((queued.behind.as_str(), queued.position), ("exec-a", 1));
        assert_eq!(b.alb_priority, 0, "nothing taken while waiting");
        let c = at(&world, &envs, "exec-c", NOW + 2).await.expect("c waits");
        assert_eq!(c.queued.as_ref().map(|q| q.position), Some(2));
        // a ends: b is next, c still waits behind b.
        world
            .state
            .release_lock("goldencrust", "exec-a")
            .await
            .expect("released");
        let c = at(&world, &envs, "exec-c", NOW + 12)
            .await
            .expect("c still waits");
        assert_eq!(c.queued.as_ref().map(|q| q.behind.as_str()), Some("exec-b"));
        let b = at(&world, &envs, "exec-b", NOW + 13).await.expect("b runs");
        assert!(b.queued.is_none());
        // c gives up after max_wait: DeploymentLocked, as without a queue.
        let err = at(&world, &envs, "exec-c", NOW + 2 + 600)
            .await
            .expect_err("waited enough");
        assert_eq!(err.error_name(), "DeploymentLocked");
        assert!(world
            .state
            .queue("goldencrust")
            .await
            .expect("queue")
            .is_empty());

        // Newest wins: d waits, e arrives, d is superseded.
        let envs = queued_dev(json!({"max_wait_seconds": 600, "supersede": true}));
        let world = World::default();
        at(&world, &envs, "exec-a", NOW).await.expect("a runs");
        at(&world, &envs, "exec-d", NOW + 1).await.expect("d waits");
        at(&world, &envs, "exec-e", NOW + 2).await.expect("e waits");
        let err = at(&world, &envs, "exec-d", NOW + 11)
            .await
            .expect_err("superseded");
        assert_eq!(err.error_name(), "Superseded");
        assert!(
            err.to_string()
                .contains("a newer request (exec-e, requested by exec-e@x.io)"),
            "{err}"
        );
        world
            .state
            .release_lock("goldencrust", "exec-a")
            .await
            .expect("released");
        let e = at(&world, &envs, "exec-e", NOW + 12).await.expect("e runs");
        assert!(e.queued.is_none() && e.alb_priority > 0);

        // A waiting run that died (not seen trying for a minute) holds
        // nobody back.
        let world = World::default();
        at(&world, &envs, "exec-a", NOW).await.expect("a runs");
        at(&world, &envs, "exec-f", NOW + 1)
            .await
            .expect("f waits, then dies");
        world
            .state
            .release_lock("goldencrust", "exec-a")
            .await
            .expect("released");
        let g = at(&world, &envs, "exec-g", NOW + 100)
            .await
            .expect("g runs");
        assert!(g.queued.is_none(), "{:?}", g.queued);
    }

    #[tokio::test]
    async fn second_run_for_same_tenant_is_locked_out_and_others_are_not() {
        let world = World::default();
        let detail = json!({"tenant": "goldencrust", "environment": "dev", "requested_by": "jane"});
        run(&world, detail.clone(), "exec-1").await.expect("first");
        let err = run(&world, detail, "exec-2").await.expect_err("locked");
        assert_eq!(err.error_name(), "DeploymentLocked");
        assert!(
            err.to_string()
                .contains("being changed by exec-1 (requested by jane)")
                && err.to_string().contains("its lock expires 2026-12-01T09:"),
            "{err}"
        );
        let other = run(
            &world,
            json!({"tenant": "acme", "environment": "dev", "requested_by": "bob"}),
            "exec-3",
        )
        .await
        .expect("other tenant");
        assert_eq!(other.alb_priority, 11);
    }

    #[tokio::test]
    async fn expired_lock_is_taken_over() {
        let world = World::default();
        world.state.with(|t| {
            t.locks.insert(
                "goldencrust".into(),
                LockHolder {
                    owner: "old".into(),
                    requested_by: "x".into(),
                    expires_at: 999,
                },
            )
        });
        let plan = run(
            &world,
            json!({"tenant": "goldencrust", "environment": "dev", "requested_by": "jane"}),
            "exec-2",
        )
        .await
        .expect("taken over");
        assert_eq!(plan.execution, "exec-2");
    }

    #[tokio::test]
    async fn requested_priority_rules() {
        let world = World::default();
        world
            .rules
            .0
            .lock()
            .expect("lock")
            .push(rule(40, "other.wpdev.kimmyai.io"));
        let err = run(&world, json!({"tenant": "goldencrust", "environment": "dev", "requested_by": "jane", "alb_priority": 40}), "exec-1").await.expect_err("in use");
        assert_eq!(err.error_name(), "PriorityInUse");
        assert_eq!(err.to_string(), "detail.alb_priority: 40 is in use by rule for other.wpdev.kimmyai.io on the dev listener");
        assert!(
            world.state.with(|t| t.locks.is_empty()),
            "lock released after a failed bootstrap"
        );
        world.state.with(|t| t.claims.insert(50, "acme".into()));
        let err = run(&world, json!({"tenant": "goldencrust", "environment": "dev", "requested_by": "jane", "alb_priority": 50}), "exec-2").await.expect_err("claimed");
        assert!(
            err.to_string().contains("50 is in use by tenant acme"),
            "{err}"
        );
        let plan = run(&world, json!({"tenant": "goldencrust", "environment": "dev", "requested_by": "jane", "alb_priority": 60}), "exec-3").await.expect("free");
        assert_eq!(plan.alb_priority, 60);
    }

    #[tokio::test]
    async fn pending_claims_are_skipped_and_a_full_range_is_exhausted() {
        let world = World::default();
        world.state.with(|t| t.claims.insert(10, "inflight".into()));
        let plan = goldencrust_plan(&world).await;
        assert_eq!(plan.alb_priority, 11);
        // One read of the claims, however many there are.
        assert_eq!(world.state.with(|t| t.claimed_queries), 1);
        // A claim made after that read (a concurrent run) is caught by the
        // conditional write, and the next free priority is taken.
        let world = World::default();
        world.state.with(|t| {
            t.claims.insert(10, "racer".into());
            t.claims_unseen.insert(10);
        });
        let plan = goldencrust_plan(&world).await;
        assert_eq!(plan.alb_priority, 11);
        let world = World::default();
        world
            .rules
            .0
            .lock()
            .expect("lock")
            .extend((10..=69).map(|p| rule(p, &format!("t{p}.wpdev.kimmyai.io"))));
        // Claimed by concurrent runs after the claims were read: every write loses.
        world.state.with(|t| {
            for p in 70..=109 {
                t.claims.insert(p, format!("racer{p}"));
                t.claims_unseen.insert(p);
            }
        });
        let err = run(
            &world,
            json!({"tenant": "goldencrust", "environment": "dev", "requested_by": "jane"}),
            "exec-1",
        )
        .await
        .expect_err("exhausted");
        assert_eq!(err.error_name(), "PriorityExhausted");
        assert!(world.state.with(|t| t.locks.is_empty()));
    }

    const SECOND: &str =
        "arn:aws:elasticloadbalancing:eu-west-1:111111111111:listener/app/dev-alb-2/0123456789abcdef/0123456789abcdef";
    const THIRD: &str =
        "arn:aws:elasticloadbalancing:eu-west-1:111111111111:listener/app/dev-alb-3/0123456789abcdee/0123456789abcdee";

    /// The checked-in configs, dev with two more load balancers (110–209, 210–309).
    fn three_load_balancers() -> Result<EnvironmentSet, Arc<ConfigError>> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/environments");
        let mut dev: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("dev.json")).expect("dev.json"))
                .expect("json");
        dev["additional_load_balancers"] = json!([
            {"listener_arn": SECOND, "priority_range": {"min": 110, "max": 209},
             "cloudfront": {"domain_name": "d2dev.cloudfront.net", "hosted_zone_id": "Z2FDTNDATAQYW2"}},
            {"listener_arn": THIRD, "priority_range": {"min": 210, "max": 309},
             "cloudfront": {"domain_name": "d3dev.cloudfront.net", "hosted_zone_id": "Z2FDTNDATAQYW2"}}
        ]);
        let tmp = std::env::temp_dir().join(format!("stepdeploy-lb-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).expect("tmp");
        for name in ["sit.json", "prod.json"] {
            std::fs::copy(dir.join(name), tmp.join(name)).expect("copy");
        }
        std::fs::write(tmp.join("dev.json"), dev.to_string()).expect("write");
        let set = EnvironmentSet::load_dir(&tmp).expect("configs with three load balancers");
        let _ = std::fs::remove_dir_all(&tmp);
        Ok(set)
    }

    #[tokio::test]
    async fn new_tenants_go_to_the_first_load_balancer_with_room_and_stay_there() {
        let world = World::default();
        let envs = three_load_balancers();
        assert_eq!(
            envs.as_ref()
                .expect("set")
                .get("dev")
                .expect("dev")
                .capacity(),
            300
        );
        // The first load balancer is full (100 rules), the second has one tenant.
        world
            .rules
            .0
            .lock()
            .expect("lock")
            .extend((10..=109).map(|p| rule(p, &format!("t{p}.wpdev.kimmyai.io"))));
        world
            .rules
            .1
            .lock()
            .expect("lock")
            .insert(SECOND.into(), vec![rule(110, "t110.wpdev.kimmyai.io")]);
        let run_in = |tenant: &str, execution: &str| {
            let payload = input(
                json!({"tenant": tenant, "environment": "dev", "requested_by": "jane"}),
                execution,
            );
            let (world, envs) = (&world, &envs);
            async move { handle(typed(payload), envs, world, &FixedClock(NOW)).await }
        };
        let plan = run_in("goldencrust", "exec-1")
            .await
            .expect("a place on the second");
        assert_eq!(plan.alb_priority, 111);
        assert_eq!(
            plan.env.alb_listener_arn, SECOND,
            "the phases act on its load balancer"
        );
        assert_eq!(plan.env.cloudfront.domain_name, "d2dev.cloudfront.net");
        assert_eq!(
            plan.env.load_balancers().len(),
            3,
            "the view still knows every load balancer"
        );
        // Released, and deployed again: it keeps its place (its registered priority).
        world.state.with(|t| t.locks.clear());
        let again = run_in("goldencrust", "exec-2").await.expect("again");
        assert_eq!(
            (again.alb_priority, again.env.alb_listener_arn.as_str()),
            (111, SECOND)
        );
        // The guard re-derives the load balancer from the priority alone.
        let mut replayed = again.clone();
        replayed.env = envs.as_ref().expect("set").get("dev").expect("dev").clone();
        stepdeploy_shared::guard::reresolve(&mut replayed, envs.as_ref().expect("set"))
            .expect("reresolved");
        assert_eq!(replayed.env, again.env);
        // Every load balancer full: refused, naming what the environment holds.
        world.rules.1.lock().expect("lock").insert(
            SECOND.into(),
            (110..=209)
                .map(|p| rule(p, &format!("t{p}.wpdev.kimmyai.io")))
                .collect(),
        );
        world.rules.1.lock().expect("lock").insert(
            THIRD.into(),
            (210..=309)
                .map(|p| rule(p, &format!("t{p}.wpdev.kimmyai.io")))
                .collect(),
        );
        let err = run_in("newcomer", "exec-3").await.expect_err("full");
        assert_eq!(err.error_name(), "EnvironmentFull");
        assert!(err.to_string().contains("holds 300 tenants"), "{err}");
    }

    #[tokio::test]
    async fn a_full_load_balancer_is_refused_before_anything_is_made() {
        let world = World::default();
        // 100 rules: 90 tenants in the range, 10 rules an operator added outside it.
        world.rules.0.lock().expect("lock").extend(
            (10..=99)
                .chain(500..=509)
                .map(|p| rule(p, &format!("t{p}.wpdev.kimmyai.io"))),
        );
        let err = run(
            &world,
            json!({"tenant": "goldencrust", "environment": "dev", "requested_by": "jane"}),
            "exec-1",
        )
        .await
        .expect_err("full");
        assert_eq!(err.error_name(), "EnvironmentFull");
        assert!(
            err.to_string().contains("at most 100 rules")
                && err.to_string().contains("100 target groups (hard quota)"),
            "{err}"
        );
        assert!(world
            .state
            .with(|t| t.locks.is_empty() && t.claims.is_empty()));
        // A tenant that already has its rule is re-deployed as before.
        world
            .rules
            .0
            .lock()
            .expect("lock")
            .push(rule(100, "goldencrust.wpdev.kimmyai.io"));
        world
            .rules
            .0
            .lock()
            .expect("lock")
            .retain(|r| r.priority != Some(509));
        let plan = goldencrust_plan(&world).await;
        assert_eq!(plan.alb_priority, 100);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_allocations_never_collide() {
        let world = World::default();
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let world = world.clone();
                tokio::spawn(async move {
                    let detail = json!({"tenant": format!("tenant{i}"), "environment": "dev", "requested_by": "jane"});
                    run(&world, detail, &format!("exec-{i}")).await
                })
            })
            .collect();
        let mut priorities = Vec::new();
        for task in tasks {
            priorities.push(task.await.expect("task").expect("plan").alb_priority);
        }
        priorities.sort_unstable();
        priorities.dedup();
        assert_eq!(priorities, (10..30).collect::<Vec<u32>>());
    }

    #[tokio::test]
    async fn bad_input_changes_nothing() {
        let world = World::default();
        let cases = [
            (
                json!({"tenant": "Golden", "environment": "dev", "requested_by": "jane"}),
                "detail.tenant",
            ),
            (
                json!({"tenant": "goldencrust", "environment": "qa", "requested_by": "jane"}),
                "detail.environment: unknown environment",
            ),
            (
                json!({"tenant": "goldencrust", "environment": "dev", "requested_by": "jane", "alb_priority": 9}),
                "detail.alb_priority: 9 is outside dev's range 10..=109",
            ),
            (
                json!({"tenant": "goldencrust", "environment": "dev", "requested_by": "jane", "extra": 1}),
                "detail.extra: unknown field",
            ),
        ];
        for (detail, message) in cases {
            let err = run(&world, detail, "exec-1").await.expect_err("invalid");
            assert_eq!(err.error_name(), "ValidationFailed");
            assert!(err.to_string().contains(message), "{err}");
        }
        // A payload that is neither a request nor a claim: refused by the
        // entry helper before the handler runs, naming the field.
        let err = stepdeploy_shared::lambda::input::<BootstrapInput>(json!({"event": {}}))
            .expect_err("bad payload");
        assert_eq!(err.error_type, "ValidationFailed");
        assert!(
            err.error_message.contains("execution"),
            "{}",
            err.error_message
        );
        let err = stepdeploy_shared::lambda::input::<BootstrapInput>(
            json!({"action": "claim", "plan": {"tenant": 7}}),
        )
        .expect_err("bad claim");
        assert!(
            err.error_message.contains("plan.tenant"),
            "{}",
            err.error_message
        );
        assert_eq!(world.state.with(|t| t.ensure_calls), 0);
        assert!(world.bucket.0.lock().expect("lock").is_empty());
        assert!(world.state.with(|t| t.locks.is_empty()));
    }

    #[tokio::test]
    async fn invalid_config_is_reported_per_invocation() {
        let world = World::default();
        let broken: Result<EnvironmentSet, Arc<ConfigError>> =
            Err(Arc::new(ConfigError::NotConfigured));
        let err = handle(
            typed(input(json!({}), "exec-1")),
            &broken,
            &world,
            &FixedClock(1),
        )
        .await
        .expect_err("config");
        assert_eq!(err.error_name(), "ConfigInvalid");
        assert!(err.to_string().contains("STEPDEPLOY_CONFIG_DIR is not set"));
    }

    #[tokio::test]
    async fn auto_promote_stops_before_an_approval_environment() {
        let world = World::default();
        let plan = run(&world, json!({"tenant": "goldencrust", "environment": "dev", "requested_by": "jane", "auto_promote": true}), "e1").await.expect("plan");
        assert_eq!(
            plan.phases.promote_to.as_ref().map(|e| e.as_str()),
            Some("sit")
        );
        let world = World::default(); // each environment has its own state table
        let plan = run(&world, json!({"tenant": "goldencrust", "environment": "sit", "requested_by": "jane", "auto_promote": true}), "e2").await.expect("plan");
        assert_eq!(
            plan.phases.promote_to, None,
            "prod needs approval, so no automatic promotion"
        );
        assert!(plan.phases.dns && plan.phases.verify);
    }

    #[tokio::test]
    async fn teardown_events_are_not_deployments() {
        let world = World::default();
        let mut payload = input(
            json!({"tenant": "goldencrust", "environment": "dev", "requested_by": "jane"}),
            "e1",
        );
        payload["event"]["detail-type"] = json!("Tenant Teardown Requested");
        let err = handle(typed(payload), &environments(), &world, &FixedClock(1))
            .await
            .expect_err("teardown");
        assert_eq!(err.error_name(), "ValidationFailed");
    }

    /// Runs that are never running (the guard must refuse before asking).
    struct NoRuns;
    impl Runs for NoRuns {
        async fn status(&self, _execution: &str) -> Result<Option<String>, AwsCallError> {
            Ok(None)
        }
    }

    fn guard() -> Guard<NoRuns> {
        let config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        Guard::new(
            environments(),
            stepdeploy_shared::approvals::ApprovalsTable::new(&config, "stepdeploy-approvals"),
            NoRuns,
        )
    }

    /// The claim is guarded (its plan re-resolved, and in an approval
    /// environment only an approved, running run passes); a request is not.
    #[tokio::test]
    async fn only_the_claim_is_guarded() {
        let world = World::default();
        let request = typed(input(
            json!({"tenant": "goldencrust", "environment": "prod", "requested_by": "jane@kimmyai.io"}),
            "exec-a",
        ));
        let BootstrapInput::Request(_) = admit(request, &guard()).await.expect("not guarded")
        else {
            panic!("a request stays a request");
        };
        let mut plan = goldencrust_plan(&world).await;
        plan.env.account_id = "999999999999".into();
        let claim = typed(json!({"action": "claim", "plan": plan}));
        let BootstrapInput::Claim(admitted) = admit(claim, &guard()).await.expect("dev") else {
            panic!("a claim stays a claim");
        };
        assert_eq!(admitted.plan.env.account_id, "111111111111", "re-resolved");
        let pending = run(
            &world,
            json!({"tenant": "goldencrust", "environment": "prod", "requested_by": "jane@kimmyai.io"}),
            "exec-a",
        )
        .await
        .expect("plan");
        let claim = typed(json!({"action": "claim", "plan": pending}));
        let err = admit(claim, &guard()).await.expect_err("not a running run");
        assert_eq!(err.error_name(), "ApprovalBypassed");
    }
}
