//! The tenant's target group and its host-header rule on the environment's
//! shared ALB listener, and their ELBv2 adapter.

use super::{no_retries, Tags};
use crate::spec::PORT;
use aws_sdk_elasticloadbalancingv2::types as elb;
use std::future::Future;
use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::listener::{ElbRules, ListenerRule, ListenerRules};

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

/// Health check settings operators know from the Terraform module.
pub const MATCHER: &str = "200,301,302";
/// Health check path.
pub const HEALTH_CHECK_PATH: &str = "/";

/// The tenant's target group.
pub trait TargetGroups: Send + Sync {
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
}

/// Changes to the tenant's host-header rule; the rules themselves are read
/// through the shared [`ListenerRules`] (as bootstrap reads them to allocate
/// a priority).
pub trait HostRules: ListenerRules {
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
}

/// The ELBv2 adapter.
#[derive(Clone)]
pub struct AwsElb(pub aws_sdk_elasticloadbalancingv2::Client);

/// The action that sends a rule's requests to `target_group_arn`.
fn forward(target_group_arn: &str) -> elb::Action {
    elb::Action::builder()
        .r#type(elb::ActionTypeEnum::Forward)
        .target_group_arn(target_group_arn)
        .build()
}

impl TargetGroups for AwsElb {
    async fn find_target_group(
        &self,
        name: &str,
    ) -> Result<Option<TargetGroupState>, AwsCallError> {
        match self.0.describe_target_groups().names(name).send().await {
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
            .0
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
        self.0
            .modify_target_group()
            .target_group_arn(arn)
            .health_check_path(HEALTH_CHECK_PATH)
            .matcher(elb::Matcher::builder().http_code(MATCHER).build())
            .send()
            .await
            .map_err(|e| AwsCallError::new("elbv2:ModifyTargetGroup", e))?;
        Ok(())
    }
}

impl ListenerRules for AwsElb {
    async fn rules(&self, listener_arn: &str) -> Result<Vec<ListenerRule>, AwsCallError> {
        ElbRules(self.0.clone()).rules(listener_arn).await
    }
}

impl HostRules for AwsElb {
    async fn create_rule(
        &self,
        listener_arn: &str,
        priority: u32,
        host: &str,
        target_group_arn: &str,
        tags: &Tags,
    ) -> Result<Option<String>, AwsCallError> {
        let mut create = self
            .0
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
            .0
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
        self.0
            .modify_rule()
            .rule_arn(rule_arn)
            .actions(forward(target_group_arn))
            .send()
            .await
            .map_err(|e| AwsCallError::new("elbv2:ModifyRule", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_elasticloadbalancingv2::operation::create_rule::CreateRuleError;
    use aws_sdk_elasticloadbalancingv2::operation::describe_target_groups::DescribeTargetGroupsError;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

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
        let elb = AwsElb(mock_client!(
            aws_sdk_elasticloadbalancingv2,
            RuleMode::MatchAny,
            [&rule, &tg]
        ));
        assert_eq!(
            elb.create_rule("arn:listener", 140, "h", "arn:tg", &vec![])
                .await
                .expect("answered"),
            None
        );
        assert_eq!(
            elb.find_target_group("sit-goldencrust-tg")
                .await
                .expect("answered"),
            None
        );
    }
}
