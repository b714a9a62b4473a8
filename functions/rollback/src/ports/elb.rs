//! [`ElbResources`] on ELBv2.

use super::{ElbResources, Removal};
use aws_sdk_elasticloadbalancingv2::error::ProvideErrorMetadata;
use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum, RulePriorityPair};
use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::listener::{ElbRules, ListenerRules};

/// ELBv2 adapter.
#[derive(Clone)]
pub struct ElbAdapter(pub aws_sdk_elasticloadbalancingv2::Client);

impl ElbResources for ElbAdapter {
    async fn target_groups_named(&self, name: &str) -> Result<Vec<String>, AwsCallError> {
        match self.0.describe_target_groups().names(name).send().await {
            Ok(out) => Ok(out
                .target_groups()
                .iter()
                .filter_map(|tg| tg.target_group_arn())
                .map(str::to_string)
                .collect()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_target_group_not_found_exception()) =>
            {
                Ok(Vec::new())
            }
            Err(e) => Err(AwsCallError::new("elbv2:DescribeTargetGroups", e)),
        }
    }

    async fn rules_for_host(
        &self,
        listener: &str,
        host: &str,
    ) -> Result<Vec<String>, AwsCallError> {
        Ok(ElbRules(self.0.clone())
            .rules(listener)
            .await?
            .into_iter()
            .filter(|rule| rule.hosts.iter().any(|h| h == host))
            .map(|rule| rule.arn)
            .collect())
    }

    // DeleteTargetGroup succeeds for a group that is already gone (AWS)
    // or says it is not found (moto; also a repeat after a lost answer).
    // The model lists no such error for this operation: the code decides.
    async fn delete_target_group(&self, arn: &str) -> Result<Removal, AwsCallError> {
        match self
            .0
            .delete_target_group()
            .target_group_arn(arn)
            .send()
            .await
        {
            Ok(_) => Ok(Removal::Removed),
            Err(e) if e.code() == Some("TargetGroupNotFound") => Ok(Removal::AlreadyGone),
            Err(e) => Err(AwsCallError::new("elbv2:DeleteTargetGroup", e)),
        }
    }

    async fn delete_rule(&self, arn: &str) -> Result<Removal, AwsCallError> {
        match self.0.delete_rule().rule_arn(arn).send().await {
            Ok(_) => Ok(Removal::Removed),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_rule_not_found_exception()) =>
            {
                Ok(Removal::AlreadyGone)
            }
            Err(e) => Err(AwsCallError::new("elbv2:DeleteRule", e)),
        }
    }

    async fn restore_rule_priority(&self, rule: &str, priority: i32) -> Result<(), AwsCallError> {
        let pair = RulePriorityPair::builder()
            .rule_arn(rule)
            .priority(priority)
            .build();
        self.0
            .set_rule_priorities()
            .rule_priorities(pair)
            .send()
            .await
            .map_err(|e| AwsCallError::new("elbv2:SetRulePriorities", e))?;
        Ok(())
    }

    async fn restore_rule_forward(
        &self,
        rule: &str,
        target_group: &str,
    ) -> Result<(), AwsCallError> {
        let action = Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .target_group_arn(target_group)
            .build();
        self.0
            .modify_rule()
            .rule_arn(rule)
            .actions(action)
            .send()
            .await
            .map_err(|e| AwsCallError::new("elbv2:ModifyRule", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_elasticloadbalancingv2::operation::delete_target_group::DeleteTargetGroupError;
    use aws_sdk_elasticloadbalancingv2::operation::describe_target_groups::DescribeTargetGroupsError;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use aws_smithy_types::error::ErrorMetadata;

    #[tokio::test]
    async fn a_missing_target_group_is_found_as_none_and_deleted_as_already_gone() {
        let describe = mock!(aws_sdk_elasticloadbalancingv2::Client::describe_target_groups)
            .then_error(|| {
                DescribeTargetGroupsError::TargetGroupNotFoundException(
                    aws_sdk_elasticloadbalancingv2::types::error::TargetGroupNotFoundException::builder()
                        .build(),
                )
            });
        let delete =
            mock!(aws_sdk_elasticloadbalancingv2::Client::delete_target_group).then_error(|| {
                DeleteTargetGroupError::generic(
                    ErrorMetadata::builder().code("TargetGroupNotFound").build(),
                )
            });
        let client = mock_client!(
            aws_sdk_elasticloadbalancingv2,
            RuleMode::MatchAny,
            [&describe, &delete]
        );
        let elb = ElbAdapter(client);
        assert!(elb
            .target_groups_named("sit-acme-tg")
            .await
            .expect("answered")
            .is_empty());
        assert_eq!(
            elb.delete_target_group("arn:tg").await.expect("answered"),
            Removal::AlreadyGone
        );
    }
}
