//! What the ecs phase needs from the environment's account, as one small
//! trait over the resources it manages, and its AWS SDK adapter.

use crate::spec::{TaskSpec, CONTAINER, PORT, SPEC_TAG, VOLUME};
use aws_config::SdkConfig;
use aws_sdk_ecs::types as ecs;
use aws_sdk_efs::types as efs;
use aws_sdk_elasticloadbalancingv2::types as elb;
use std::future::Future;
use stepdeploy_shared::aws::EnvCache;
use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::config::EnvironmentConfig;
use stepdeploy_shared::listener::{ElbRules, ListenerRule, ListenerRules};
use stepdeploy_shared::state::DynamoStateStore;

/// The tag set every resource gets.
pub type Tags = Vec<(String, String)>;

/// An EFS access point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessPoint {
    /// `fsap-…`.
    pub id: String,
    /// Its ARN.
    pub arn: String,
}

/// The family's latest task definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskDefinitionState {
    /// `…:task-definition/{family}:{revision}`.
    pub arn: String,
    /// The [`SPEC_TAG`] it was registered with, if any.
    pub fingerprint: Option<String>,
    /// The EFS access point its volume mounts, if any: a re-deploy looks it
    /// up by id instead of listing every access point of the file system.
    pub access_point_id: Option<String>,
}

/// A target group as far as drift matters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetGroupState {
    /// Its ARN.
    pub arn: String,
    /// Health check success codes.
    pub matcher: Option<String>,
    /// Health check path.
    pub health_check_path: Option<String>,
}

/// An ECS service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceState {
    /// Its ARN.
    pub arn: String,
    /// `ACTIVE`, `DRAINING` or `INACTIVE`.
    pub status: String,
    /// Task definition it runs.
    pub task_definition: String,
}

/// Everything a new service needs.
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    /// Cluster.
    pub cluster: String,
    /// `{env}-{tenant}-service`.
    pub name: String,
    /// Task definition ARN.
    pub task_definition: String,
    /// Target group the container registers with.
    pub target_group_arn: String,
    /// Private subnets.
    pub subnets: Vec<String>,
    /// Task security group.
    pub security_group: String,
}

/// The resources of one tenant in one environment.
pub trait Platform: Send + Sync {
    /// The access point rooted at `path` on `efs_id`; `known` (the one the
    /// current task definition mounts) is checked first, with one call, before
    /// the file system's access points are listed.
    fn find_access_point(
        &self,
        efs_id: &str,
        path: &str,
        known: Option<&str>,
    ) -> impl Future<Output = Result<Option<AccessPoint>, AwsCallError>> + Send;
    /// Creates it (idempotent through `token`).
    fn create_access_point(
        &self,
        efs_id: &str,
        path: &str,
        token: &str,
        tags: &Tags,
    ) -> impl Future<Output = Result<AccessPoint, AwsCallError>> + Send;
    /// The family's latest revision.
    fn current_task_definition(
        &self,
        family: &str,
    ) -> impl Future<Output = Result<Option<TaskDefinitionState>, AwsCallError>> + Send;
    /// Registers a new revision; returns its ARN.
    fn register_task_definition(
        &self,
        spec: &TaskSpec,
        tags: &Tags,
    ) -> impl Future<Output = Result<String, AwsCallError>> + Send;
    /// The target group called `name`.
    fn find_target_group(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<TargetGroupState>, AwsCallError>> + Send;
    /// Creates it; returns its ARN.
    fn create_target_group(
        &self,
        name: &str,
        vpc_id: &str,
        tags: &Tags,
    ) -> impl Future<Output = Result<String, AwsCallError>> + Send;
    /// Puts the health check back to stepdeploy's settings.
    fn fix_health_check(&self, arn: &str) -> impl Future<Output = Result<(), AwsCallError>> + Send;
    /// The listener's rules.
    fn rules(
        &self,
        listener_arn: &str,
    ) -> impl Future<Output = Result<Vec<ListenerRule>, AwsCallError>> + Send;
    /// Creates the host-header rule; `Ok(None)` if the priority is taken.
    fn create_rule(
        &self,
        listener_arn: &str,
        priority: u32,
        host: &str,
        target_group_arn: &str,
        tags: &Tags,
    ) -> impl Future<Output = Result<Option<String>, AwsCallError>> + Send;
    /// Moves a rule to `priority`; `Ok(false)` if the priority is taken.
    fn set_rule_priority(
        &self,
        rule_arn: &str,
        priority: u32,
    ) -> impl Future<Output = Result<bool, AwsCallError>> + Send;
    /// Points a rule at `target_group_arn`.
    fn forward_rule(
        &self,
        rule_arn: &str,
        target_group_arn: &str,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
    /// The service, if it exists in any state.
    fn find_service(
        &self,
        cluster: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<ServiceState>, AwsCallError>> + Send;
    /// Creates the service; returns its ARN.
    fn create_service(
        &self,
        spec: &ServiceSpec,
        tags: &Tags,
    ) -> impl Future<Output = Result<String, AwsCallError>> + Send;
    /// Rolls the service to `task_definition`.
    fn update_service(
        &self,
        cluster: &str,
        name: &str,
        task_definition: &str,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
}

/// Health check settings operators know from the Terraform module.
pub const MATCHER: &str = "200,301,302";
/// Health check path.
pub const HEALTH_CHECK_PATH: &str = "/";

/// The AWS adapter.
#[derive(Clone)]
pub struct AwsPlatform {
    ecs: aws_sdk_ecs::Client,
    efs: aws_sdk_efs::Client,
    elb: aws_sdk_elasticloadbalancingv2::Client,
}

impl AwsPlatform {
    /// Clients from one (assumed-role) config.
    pub fn new(config: &SdkConfig) -> Self {
        Self {
            ecs: aws_sdk_ecs::Client::new(config),
            efs: aws_sdk_efs::Client::new(config),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(config),
        }
    }
}

/// Creates are sent once: the handler retries them with
/// [`create_or_adopt`](stepdeploy_shared::retry::create_or_adopt), which looks
/// for the resource before sending a create again.
fn no_retries() -> aws_config::retry::RetryConfig {
    aws_config::retry::RetryConfig::disabled()
}

fn build_err<E: std::error::Error + Send + Sync + 'static>(
    op: &'static str,
) -> impl FnOnce(E) -> AwsCallError {
    move |e| AwsCallError::other(op, e)
}

fn forward(target_group_arn: &str) -> elb::Action {
    elb::Action::builder()
        .r#type(elb::ActionTypeEnum::Forward)
        .target_group_arn(target_group_arn)
        .build()
}

impl Platform for AwsPlatform {
    async fn find_access_point(
        &self,
        efs_id: &str,
        path: &str,
        known: Option<&str>,
    ) -> Result<Option<AccessPoint>, AwsCallError> {
        let usable = |ap: &efs::AccessPointDescription| {
            ap.root_directory().and_then(|r| r.path()) == Some(path)
                && ap.life_cycle_state() != Some(&efs::LifeCycleState::Deleting)
                && ap.life_cycle_state() != Some(&efs::LifeCycleState::Deleted)
        };
        let found = |ap: &efs::AccessPointDescription| AccessPoint {
            id: ap.access_point_id().unwrap_or_default().to_string(),
            arn: ap.access_point_arn().unwrap_or_default().to_string(),
        };
        if let Some(id) = known {
            match self
                .efs
                .describe_access_points()
                .access_point_id(id)
                .send()
                .await
            {
                Ok(page) => {
                    let on_our_fs = |ap: &&efs::AccessPointDescription| {
                        ap.file_system_id() == Some(efs_id) && usable(ap)
                    };
                    if let Some(ap) = page.access_points().iter().find(on_our_fs) {
                        return Ok(Some(found(ap)));
                    }
                }
                // Gone (or never ours): look for the tenant's by path below.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_access_point_not_found()) => {}
                Err(e) => return Err(AwsCallError::new("efs:DescribeAccessPoints (by id)", e)),
            }
        }
        let mut token = None;
        loop {
            let page = self
                .efs
                .describe_access_points()
                .file_system_id(efs_id)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| AwsCallError::new("efs:DescribeAccessPoints", e))?;
            if let Some(ap) = page.access_points().iter().find(|ap| usable(ap)) {
                return Ok(Some(found(ap)));
            }
            match page.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_string()),
                _ => return Ok(None),
            }
        }
    }

    async fn create_access_point(
        &self,
        efs_id: &str,
        path: &str,
        token: &str,
        tags: &Tags,
    ) -> Result<AccessPoint, AwsCallError> {
        let op = "efs:CreateAccessPoint";
        let mut create = self
            .efs
            .create_access_point()
            .client_token(token)
            .file_system_id(efs_id)
            .posix_user(
                efs::PosixUser::builder()
                    .uid(33)
                    .gid(33)
                    .build()
                    .map_err(build_err(op))?,
            )
            .root_directory(
                efs::RootDirectory::builder()
                    .path(path)
                    .creation_info(
                        efs::CreationInfo::builder()
                            .owner_uid(33)
                            .owner_gid(33)
                            .permissions("755")
                            .build()
                            .map_err(build_err(op))?,
                    )
                    .build(),
            );
        for (key, value) in tags {
            create = create.tags(
                efs::Tag::builder()
                    .key(key)
                    .value(value)
                    .build()
                    .map_err(build_err(op))?,
            );
        }
        let out = create
            .customize()
            .config_override(aws_sdk_efs::config::Builder::default().retry_config(no_retries()))
            .send()
            .await
            .map_err(|e| AwsCallError::new(op, e))?;
        Ok(AccessPoint {
            id: out.access_point_id().unwrap_or_default().to_string(),
            arn: out.access_point_arn().unwrap_or_default().to_string(),
        })
    }

    async fn current_task_definition(
        &self,
        family: &str,
    ) -> Result<Option<TaskDefinitionState>, AwsCallError> {
        let result = self
            .ecs
            .describe_task_definition()
            .task_definition(family)
            .include(ecs::TaskDefinitionField::Tags)
            .send()
            .await;
        match result {
            Ok(out) => Ok(out
                .task_definition()
                .and_then(|td| td.task_definition_arn())
                .map(|arn| TaskDefinitionState {
                    arn: arn.to_string(),
                    access_point_id: out.task_definition().and_then(|td| {
                        td.volumes().iter().find_map(|v| {
                            v.efs_volume_configuration()
                                .and_then(|efs| efs.authorization_config())
                                .and_then(|auth| auth.access_point_id())
                                .map(str::to_string)
                        })
                    }),
                    fingerprint: out
                        .tags()
                        .iter()
                        .find(|t| t.key() == Some(SPEC_TAG))
                        .and_then(|t| t.value())
                        .map(str::to_string),
                })),
            // ECS answers ClientException for a family it has never seen.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_client_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(AwsCallError::new("ecs:DescribeTaskDefinition", e)),
        }
    }

    async fn register_task_definition(
        &self,
        spec: &TaskSpec,
        tags: &Tags,
    ) -> Result<String, AwsCallError> {
        let op = "ecs:RegisterTaskDefinition";
        let mut container = ecs::ContainerDefinition::builder()
            .name(CONTAINER)
            .image(&spec.image)
            .essential(true)
            .port_mappings(
                ecs::PortMapping::builder()
                    .container_port(PORT)
                    .protocol(ecs::TransportProtocol::Tcp)
                    .build(),
            )
            .mount_points(
                ecs::MountPoint::builder()
                    .source_volume(VOLUME)
                    .container_path("/var/www/html/wp-content")
                    .read_only(false)
                    .build(),
            )
            .log_configuration(
                ecs::LogConfiguration::builder()
                    .log_driver(ecs::LogDriver::Awslogs)
                    .options("awslogs-group", &spec.log_group)
                    .options("awslogs-region", &spec.region)
                    .options("awslogs-stream-prefix", &spec.log_stream_prefix)
                    .build()
                    .map_err(build_err(op))?,
            );
        for (name, value) in &spec.environment {
            container =
                container.environment(ecs::KeyValuePair::builder().name(name).value(value).build());
        }
        for (name, value_from) in &spec.secrets {
            container = container.secrets(
                ecs::Secret::builder()
                    .name(name)
                    .value_from(value_from)
                    .build()
                    .map_err(build_err(op))?,
            );
        }
        let volume = ecs::Volume::builder()
            .name(VOLUME)
            .efs_volume_configuration(
                ecs::EfsVolumeConfiguration::builder()
                    .file_system_id(&spec.efs_id)
                    .transit_encryption(ecs::EfsTransitEncryption::Enabled)
                    .authorization_config(
                        ecs::EfsAuthorizationConfig::builder()
                            .access_point_id(&spec.access_point_id)
                            .iam(ecs::EfsAuthorizationConfigIam::Enabled)
                            .build(),
                    )
                    .build()
                    .map_err(build_err(op))?,
            )
            .build();
        let mut register = self
            .ecs
            .register_task_definition()
            .family(&spec.family)
            .network_mode(ecs::NetworkMode::Awsvpc)
            .requires_compatibilities(ecs::Compatibility::Fargate)
            .cpu(&spec.cpu)
            .memory(&spec.memory)
            .execution_role_arn(&spec.execution_role_arn)
            .task_role_arn(&spec.task_role_arn)
            .container_definitions(container.build())
            .volumes(volume)
            .tags(
                ecs::Tag::builder()
                    .key(SPEC_TAG)
                    .value(spec.fingerprint())
                    .build(),
            );
        for (key, value) in tags {
            register = register.tags(ecs::Tag::builder().key(key).value(value).build());
        }
        let out = register
            .customize()
            .config_override(aws_sdk_ecs::config::Builder::default().retry_config(no_retries()))
            .send()
            .await
            .map_err(|e| AwsCallError::new(op, e))?;
        out.task_definition()
            .and_then(|td| td.task_definition_arn())
            .map(str::to_string)
            .ok_or_else(|| {
                AwsCallError::other(
                    op,
                    std::io::Error::other("no task definition ARN in the answer"),
                )
            })
    }

    async fn find_target_group(
        &self,
        name: &str,
    ) -> Result<Option<TargetGroupState>, AwsCallError> {
        match self.elb.describe_target_groups().names(name).send().await {
            Ok(out) => Ok(out.target_groups().first().map(|tg| TargetGroupState {
                arn: tg.target_group_arn().unwrap_or_default().to_string(),
                matcher: tg.matcher().and_then(|m| m.http_code()).map(str::to_string),
                health_check_path: tg.health_check_path().map(str::to_string),
            })),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_target_group_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(AwsCallError::new("elbv2:DescribeTargetGroups", e)),
        }
    }

    async fn create_target_group(
        &self,
        name: &str,
        vpc_id: &str,
        tags: &Tags,
    ) -> Result<String, AwsCallError> {
        let mut create = self
            .elb
            .create_target_group()
            .name(name)
            .protocol(elb::ProtocolEnum::Http)
            .port(PORT)
            .vpc_id(vpc_id)
            .target_type(elb::TargetTypeEnum::Ip)
            .health_check_enabled(true)
            .health_check_protocol(elb::ProtocolEnum::Http)
            .health_check_path(HEALTH_CHECK_PATH)
            .matcher(elb::Matcher::builder().http_code(MATCHER).build())
            .healthy_threshold_count(2)
            .unhealthy_threshold_count(3)
            .health_check_timeout_seconds(5)
            .health_check_interval_seconds(30);
        for (key, value) in tags {
            create = create.tags(elb::Tag::builder().key(key).value(value).build());
        }
        let out = create
            .customize()
            .config_override(
                aws_sdk_elasticloadbalancingv2::config::Builder::default()
                    .retry_config(no_retries()),
            )
            .send()
            .await
            .map_err(|e| AwsCallError::new("elbv2:CreateTargetGroup", e))?;
        Ok(out
            .target_groups()
            .first()
            .and_then(|tg| tg.target_group_arn())
            .unwrap_or_default()
            .to_string())
    }

    async fn fix_health_check(&self, arn: &str) -> Result<(), AwsCallError> {
        self.elb
            .modify_target_group()
            .target_group_arn(arn)
            .health_check_path(HEALTH_CHECK_PATH)
            .matcher(elb::Matcher::builder().http_code(MATCHER).build())
            .send()
            .await
            .map_err(|e| AwsCallError::new("elbv2:ModifyTargetGroup", e))?;
        Ok(())
    }

    async fn rules(&self, listener_arn: &str) -> Result<Vec<ListenerRule>, AwsCallError> {
        ElbRules(self.elb.clone()).rules(listener_arn).await
    }

    async fn create_rule(
        &self,
        listener_arn: &str,
        priority: u32,
        host: &str,
        target_group_arn: &str,
        tags: &Tags,
    ) -> Result<Option<String>, AwsCallError> {
        let mut create = self
            .elb
            .create_rule()
            .listener_arn(listener_arn)
            .priority(i32::try_from(priority).unwrap_or(i32::MAX))
            .conditions(
                elb::RuleCondition::builder()
                    .field("host-header")
                    .host_header_config(
                        elb::HostHeaderConditionConfig::builder()
                            .values(host)
                            .build(),
                    )
                    .build(),
            )
            .actions(forward(target_group_arn));
        for (key, value) in tags {
            create = create.tags(elb::Tag::builder().key(key).value(value).build());
        }
        let sent = create
            .customize()
            .config_override(
                aws_sdk_elasticloadbalancingv2::config::Builder::default()
                    .retry_config(no_retries()),
            )
            .send()
            .await;
        match sent {
            Ok(out) => Ok(out
                .rules()
                .first()
                .and_then(|r| r.rule_arn())
                .map(str::to_string)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_priority_in_use_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(AwsCallError::new("elbv2:CreateRule", e)),
        }
    }

    async fn set_rule_priority(&self, rule_arn: &str, priority: u32) -> Result<bool, AwsCallError> {
        let pair = elb::RulePriorityPair::builder()
            .rule_arn(rule_arn)
            .priority(i32::try_from(priority).unwrap_or(i32::MAX))
            .build();
        match self
            .elb
            .set_rule_priorities()
            .rule_priorities(pair)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_priority_in_use_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(AwsCallError::new("elbv2:SetRulePriorities", e)),
        }
    }

    async fn forward_rule(
        &self,
        rule_arn: &str,
        target_group_arn: &str,
    ) -> Result<(), AwsCallError> {
        self.elb
            .modify_rule()
            .rule_arn(rule_arn)
            .actions(forward(target_group_arn))
            .send()
            .await
            .map_err(|e| AwsCallError::new("elbv2:ModifyRule", e))?;
        Ok(())
    }

    async fn find_service(
        &self,
        cluster: &str,
        name: &str,
    ) -> Result<Option<ServiceState>, AwsCallError> {
        let out = self
            .ecs
            .describe_services()
            .cluster(cluster)
            .services(name)
            .send()
            .await
            .map_err(|e| AwsCallError::new("ecs:DescribeServices", e))?;
        Ok(out.services().first().map(|s| ServiceState {
            arn: s.service_arn().unwrap_or_default().to_string(),
            status: s.status().unwrap_or_default().to_string(),
            task_definition: s.task_definition().unwrap_or_default().to_string(),
        }))
    }

    async fn create_service(
        &self,
        spec: &ServiceSpec,
        tags: &Tags,
    ) -> Result<String, AwsCallError> {
        let op = "ecs:CreateService";
        let network = ecs::NetworkConfiguration::builder()
            .awsvpc_configuration(
                ecs::AwsVpcConfiguration::builder()
                    .set_subnets(Some(spec.subnets.clone()))
                    .security_groups(&spec.security_group)
                    .assign_public_ip(ecs::AssignPublicIp::Disabled)
                    .build()
                    .map_err(build_err(op))?,
            )
            .build();
        let mut create = self
            .ecs
            .create_service()
            .cluster(&spec.cluster)
            .service_name(&spec.name)
            .task_definition(&spec.task_definition)
            .desired_count(1)
            .launch_type(ecs::LaunchType::Fargate)
            .network_configuration(network)
            .load_balancers(
                ecs::LoadBalancer::builder()
                    .target_group_arn(&spec.target_group_arn)
                    .container_name(CONTAINER)
                    .container_port(PORT)
                    .build(),
            )
            .propagate_tags(ecs::PropagateTags::Service)
            .enable_ecs_managed_tags(true);
        for (key, value) in tags {
            create = create.tags(ecs::Tag::builder().key(key).value(value).build());
        }
        let out = create
            .customize()
            .config_override(aws_sdk_ecs::config::Builder::default().retry_config(no_retries()))
            .send()
            .await
            .map_err(|e| AwsCallError::new(op, e))?;
        Ok(out
            .service()
            .and_then(|s| s.service_arn())
            .unwrap_or_default()
            .to_string())
    }

    async fn update_service(
        &self,
        cluster: &str,
        name: &str,
        task_definition: &str,
    ) -> Result<(), AwsCallError> {
        self.ecs
            .update_service()
            .cluster(cluster)
            .service(name)
            .task_definition(task_definition)
            .send()
            .await
            .map_err(|e| AwsCallError::new("ecs:UpdateService", e))?;
        Ok(())
    }
}

/// Ports for one environment.
#[derive(Clone)]
pub struct EnvPorts<P, S> {
    /// ECS, EFS, ELBv2.
    pub platform: P,
    /// The state table (ledger).
    pub state: S,
}

/// Gives the ports for an environment (through its deploy role).
pub trait Connector: Send + Sync {
    /// Platform port.
    type Platform: Platform;
    /// State table port.
    type State: stepdeploy_shared::state::StateStore;
    /// Ports acting in `env`'s account.
    fn connect(
        &self,
        env: &EnvironmentConfig,
    ) -> impl Future<Output = EnvPorts<Self::Platform, Self::State>> + Send;
}

/// Assumes each environment's deploy role once per cold start and keeps the clients.
pub struct AwsConnector(EnvCache<EnvPorts<AwsPlatform, DynamoStateStore>>);

impl AwsConnector {
    /// A connector on top of the orchestrator's own config.
    pub fn new(base: SdkConfig) -> Self {
        Self(EnvCache::new(base, "stepdeploy-ecs"))
    }
}

impl Connector for AwsConnector {
    type Platform = AwsPlatform;
    type State = DynamoStateStore;

    async fn connect(&self, env: &EnvironmentConfig) -> EnvPorts<AwsPlatform, DynamoStateStore> {
        self.0
            .get(env, |config| EnvPorts {
                platform: AwsPlatform::new(config),
                state: DynamoStateStore::new(
                    aws_sdk_dynamodb::Client::new(config),
                    env.state_table.clone(),
                ),
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
    use aws_sdk_ecs::operation::describe_task_definition::{
        DescribeTaskDefinitionError, DescribeTaskDefinitionOutput,
    };
    use aws_sdk_efs::operation::describe_access_points::DescribeAccessPointsOutput;
    use aws_sdk_elasticloadbalancingv2::operation::create_rule::CreateRuleError;
    use aws_sdk_elasticloadbalancingv2::operation::describe_target_groups::DescribeTargetGroupsError;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    fn platform(
        ecs: aws_sdk_ecs::Client,
        efs: aws_sdk_efs::Client,
        elb: aws_sdk_elasticloadbalancingv2::Client,
    ) -> AwsPlatform {
        AwsPlatform { ecs, efs, elb }
    }

    fn no_ecs() -> aws_sdk_ecs::Client {
        mock_client!(
            aws_sdk_ecs,
            RuleMode::MatchAny,
            &[] as &[&aws_smithy_mocks::Rule]
        )
    }
    fn no_efs() -> aws_sdk_efs::Client {
        mock_client!(
            aws_sdk_efs,
            RuleMode::MatchAny,
            &[] as &[&aws_smithy_mocks::Rule]
        )
    }
    fn no_elb() -> aws_sdk_elasticloadbalancingv2::Client {
        mock_client!(
            aws_sdk_elasticloadbalancingv2,
            RuleMode::MatchAny,
            &[] as &[&aws_smithy_mocks::Rule]
        )
    }

    #[tokio::test]
    async fn unknown_family_is_none_and_known_one_carries_its_fingerprint() {
        let missing = mock!(aws_sdk_ecs::Client::describe_task_definition)
            .match_requests(|r| r.task_definition() == Some("sit-new"))
            .then_error(|| {
                DescribeTaskDefinitionError::ClientException(
                    aws_sdk_ecs::types::error::ClientException::builder()
                        .message("Unable to describe task definition.")
                        .build(),
                )
            });
        let known = mock!(aws_sdk_ecs::Client::describe_task_definition)
            .match_requests(|r| r.task_definition() == Some("sit-goldencrust"))
            .then_output(|| {
                DescribeTaskDefinitionOutput::builder()
                    .task_definition(
                        ecs::TaskDefinition::builder()
                            .task_definition_arn("arn:td/sit-goldencrust:3")
                            .volumes(
                                ecs::Volume::builder()
                                    .name("wp-content")
                                    .efs_volume_configuration(
                                        ecs::EfsVolumeConfiguration::builder()
                                            .file_system_id("fs-1")
                                            .authorization_config(
                                                ecs::EfsAuthorizationConfig::builder()
                                                    .access_point_id("fsap-1")
                                                    .build(),
                                            )
                                            .build()
                                            .expect("file system id set"),
                                    )
                                    .build(),
                            )
                            .build(),
                    )
                    .tags(ecs::Tag::builder().key(SPEC_TAG).value("abc").build())
                    .build()
            });
        let p = platform(
            mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&missing, &known]),
            no_efs(),
            no_elb(),
        );
        assert_eq!(
            p.current_task_definition("sit-new")
                .await
                .expect("answered"),
            None
        );
        assert_eq!(
            p.current_task_definition("sit-goldencrust")
                .await
                .expect("answered"),
            Some(TaskDefinitionState {
                arn: "arn:td/sit-goldencrust:3".into(),
                fingerprint: Some("abc".into()),
                access_point_id: Some("fsap-1".into()),
            })
        );
    }

    #[tokio::test]
    async fn taken_priority_and_missing_target_group_are_answers_not_errors() {
        let rule = mock!(aws_sdk_elasticloadbalancingv2::Client::create_rule).then_error(|| {
            CreateRuleError::PriorityInUseException(
                aws_sdk_elasticloadbalancingv2::types::error::PriorityInUseException::builder()
                    .message("in use")
                    .build(),
            )
        });
        let tg = mock!(aws_sdk_elasticloadbalancingv2::Client::describe_target_groups).then_error(|| {
            DescribeTargetGroupsError::TargetGroupNotFoundException(aws_sdk_elasticloadbalancingv2::types::error::TargetGroupNotFoundException::builder().build())
        });
        let p = platform(
            no_ecs(),
            no_efs(),
            mock_client!(
                aws_sdk_elasticloadbalancingv2,
                RuleMode::MatchAny,
                [&rule, &tg]
            ),
        );
        assert_eq!(
            p.create_rule("arn:listener", 140, "h", "arn:tg", &vec![])
                .await
                .expect("answered"),
            None
        );
        assert_eq!(
            p.find_target_group("sit-goldencrust-tg")
                .await
                .expect("answered"),
            None
        );
    }

    /// goldencrust's access point on fs-1, as EFS describes it.
    fn goldencrust_ap() -> efs::AccessPointDescription {
        efs::AccessPointDescription::builder()
            .access_point_id("fsap-1")
            .access_point_arn("arn:fsap-1")
            .file_system_id("fs-1")
            .root_directory(efs::RootDirectory::builder().path("/goldencrust").build())
            .build()
    }

    #[tokio::test]
    async fn services_and_access_points_are_found_across_pages() {
        let services = mock!(aws_sdk_ecs::Client::describe_services).then_output(|| {
            DescribeServicesOutput::builder()
                .services(
                    ecs::Service::builder()
                        .service_arn("arn:svc")
                        .status("ACTIVE")
                        .task_definition("arn:td:1")
                        .build(),
                )
                .build()
        });
        let page1 = mock!(aws_sdk_efs::Client::describe_access_points)
            .match_requests(|r| r.next_token().is_none())
            .then_output(|| {
                DescribeAccessPointsOutput::builder()
                    .access_points(
                        efs::AccessPointDescription::builder()
                            .access_point_id("fsap-other")
                            .root_directory(efs::RootDirectory::builder().path("/other").build())
                            .build(),
                    )
                    .next_token("2")
                    .build()
            });
        let page2 = mock!(aws_sdk_efs::Client::describe_access_points)
            .match_requests(|r| r.next_token() == Some("2"))
            .then_output(|| {
                DescribeAccessPointsOutput::builder()
                    .access_points(goldencrust_ap())
                    .build()
            });
        // The known id answers in one call; a stale one falls back to the listing.
        let by_id = mock!(aws_sdk_efs::Client::describe_access_points)
            .match_requests(|r| r.access_point_id() == Some("fsap-1"))
            .then_output(|| {
                DescribeAccessPointsOutput::builder()
                    .access_points(goldencrust_ap())
                    .build()
            });
        let stale = mock!(aws_sdk_efs::Client::describe_access_points)
            .match_requests(|r| r.access_point_id() == Some("fsap-gone"))
            .then_error(|| {
                aws_sdk_efs::operation::describe_access_points::DescribeAccessPointsError::AccessPointNotFound(
                    aws_sdk_efs::types::error::AccessPointNotFound::builder()
                        .error_code("AccessPointNotFound")
                        .build()
                        .expect("error code set"),
                )
            });
        let p = platform(
            mock_client!(aws_sdk_ecs, [&services]),
            mock_client!(
                aws_sdk_efs,
                RuleMode::MatchAny,
                [&by_id, &stale, &page1, &page2]
            ),
            no_elb(),
        );
        for known in [Some("fsap-1"), Some("fsap-gone"), None] {
            let ap = p
                .find_access_point("fs-1", "/goldencrust", known)
                .await
                .expect("answered");
            assert_eq!(
                ap,
                Some(AccessPoint {
                    id: "fsap-1".into(),
                    arn: "arn:fsap-1".into()
                }),
                "{known:?}"
            );
        }
        assert_eq!(by_id.num_calls(), 1);
        assert_eq!(stale.num_calls(), 1);
        assert_eq!(page2.num_calls(), 2, "listed for the stale id and for none");
        let service = p
            .find_service("sit-cluster", "sit-goldencrust-service")
            .await
            .expect("answered")
            .expect("found");
        assert_eq!(
            (service.status.as_str(), service.task_definition.as_str()),
            ("ACTIVE", "arn:td:1")
        );
    }
}
