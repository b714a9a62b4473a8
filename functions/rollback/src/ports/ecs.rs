//! [`EcsResources`] on ECS.

use super::{EcsResources, Page, Removal};
use aws_sdk_ecs::types::TaskDefinitionStatus;
use stepdeploy_shared::aws_error::AwsCallError;

/// ECS adapter.
#[derive(Clone)]
pub struct EcsAdapter(pub aws_sdk_ecs::Client);

impl EcsResources for EcsAdapter {
    async fn task_definitions_page(
        &self,
        family: &str,
        token: Option<String>,
    ) -> Result<Page<String>, AwsCallError> {
        let page = self
            .0
            .list_task_definitions()
            .family_prefix(family)
            .status(TaskDefinitionStatus::Active)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| AwsCallError::new("ecs:ListTaskDefinitions", e))?;
        Ok(Page::new(
            page.task_definition_arns().to_vec(),
            page.next_token(),
        ))
    }

    async fn deregister_task_definition(&self, arn: &str) -> Result<Removal, AwsCallError> {
        match self
            .0
            .deregister_task_definition()
            .task_definition(arn)
            .send()
            .await
        {
            Ok(_) => Ok(Removal::Removed),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_client_exception()) =>
            {
                Ok(Removal::AlreadyGone)
            }
            Err(e) => Err(AwsCallError::new("ecs:DeregisterTaskDefinition", e)),
        }
    }

    async fn service_active(&self, cluster: &str, service: &str) -> Result<bool, AwsCallError> {
        let out = self
            .0
            .describe_services()
            .cluster(cluster)
            .services(service)
            .send()
            .await
            .map_err(|e| AwsCallError::new("ecs:DescribeServices", e))?;
        Ok(out.services().iter().any(|s| s.status() == Some("ACTIVE")))
    }

    async fn delete_service(&self, cluster: &str, service: &str) -> Result<Removal, AwsCallError> {
        match self
            .0
            .delete_service()
            .cluster(cluster)
            .service(service)
            .force(true)
            .send()
            .await
        {
            Ok(_) => Ok(Removal::Removed),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_service_not_found_exception()) =>
            {
                Ok(Removal::AlreadyGone)
            }
            Err(e) => Err(AwsCallError::new("ecs:DeleteService", e)),
        }
    }

    async fn restore_service(
        &self,
        cluster: &str,
        service: &str,
        task_definition: &str,
    ) -> Result<(), AwsCallError> {
        self.0
            .update_service()
            .cluster(cluster)
            .service(service)
            .task_definition(task_definition)
            .send()
            .await
            .map_err(|e| AwsCallError::new("ecs:UpdateService (restore)", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::operation::list_task_definitions::ListTaskDefinitionsOutput;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    #[tokio::test]
    async fn task_definitions_are_read_to_the_last_page() {
        let first = mock!(aws_sdk_ecs::Client::list_task_definitions)
            .match_requests(|r| {
                r.next_token().is_none()
                    && r.family_prefix() == Some("sit-acme")
                    && r.status() == Some(&TaskDefinitionStatus::Active)
            })
            .then_output(|| {
                ListTaskDefinitionsOutput::builder()
                    .task_definition_arns("arn:aws:ecs:eu-west-1:1:task-definition/sit-acme:1")
                    .next_token("2")
                    .build()
            });
        let second = mock!(aws_sdk_ecs::Client::list_task_definitions)
            .match_requests(|r| r.next_token() == Some("2"))
            .then_output(|| {
                ListTaskDefinitionsOutput::builder()
                    .task_definition_arns("arn:aws:ecs:eu-west-1:1:task-definition/sit-acme:2")
                    .next_token("")
                    .build()
            });
        let client = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&first, &second]);
        let ecs = EcsAdapter(client);
        let page = ecs
            .task_definitions_page("sit-acme", None)
            .await
            .expect("listed");
        assert_eq!(page.next.as_deref(), Some("2"));
        let last = ecs
            .task_definitions_page("sit-acme", page.next)
            .await
            .expect("listed");
        assert_eq!(last.next, None, "an empty token ends the listing");
        // What rollback and teardown call: every page, this family's revisions.
        let arns = crate::find::task_definitions(&ecs, "sit-acme", None)
            .await
            .expect("listed");
        assert_eq!(
            arns,
            [
                "arn:aws:ecs:eu-west-1:1:task-definition/sit-acme:1",
                "arn:aws:ecs:eu-west-1:1:task-definition/sit-acme:2"
            ]
        );
        assert_eq!((first.num_calls(), second.num_calls()), (2, 2));
    }
}
