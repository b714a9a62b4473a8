//! The tenant's ECS task definition and Fargate service, and their ECS adapter.

use super::{build_err, no_retries, Tags};
use crate::spec::{TaskSpec, CONTAINER, PORT, SPEC_TAG, VOLUME};
use aws_sdk_ecs::types as ecs;
use std::future::Future;
use stepdeploy_shared::aws_error::AwsCallError;

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

/// The task definition family's revisions.
pub trait TaskDefinitions: Send + Sync {
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
}

/// The tenant's service on the environment's cluster.
pub trait Services: Send + Sync {
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

/// The ECS adapter.
#[derive(Clone)]
pub struct AwsEcs(pub aws_sdk_ecs::Client);

impl TaskDefinitions for AwsEcs {
    async fn current_task_definition(
        &self,
        family: &str,
    ) -> Result<Option<TaskDefinitionState>, AwsCallError> {
        let result = self
            .0
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
            .0
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
}

impl Services for AwsEcs {
    async fn find_service(
        &self,
        cluster: &str,
        name: &str,
    ) -> Result<Option<ServiceState>, AwsCallError> {
        let out = self
            .0
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
            .0
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
        self.0
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

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
    use aws_sdk_ecs::operation::describe_task_definition::{
        DescribeTaskDefinitionError, DescribeTaskDefinitionOutput,
    };
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

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
        let ecs = AwsEcs(mock_client!(
            aws_sdk_ecs,
            RuleMode::MatchAny,
            [&missing, &known]
        ));
        assert_eq!(
            ecs.current_task_definition("sit-new")
                .await
                .expect("answered"),
            None
        );
        assert_eq!(
            ecs.current_task_definition("sit-goldencrust")
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
    async fn a_service_is_found_with_its_status_and_task_definition() {
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
        let ecs = AwsEcs(mock_client!(aws_sdk_ecs, [&services]));
        let service = ecs
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
