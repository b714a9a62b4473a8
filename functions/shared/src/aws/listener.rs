//! The shared ALB listener's rules, as bootstrap (priority allocation) and
//! ecs (the tenant's host-header rule) read them: all pages, reduced to
//! priority, host names and forward target groups.

use crate::aws_error::AwsCallError;
use aws_sdk_elasticloadbalancingv2::types::Rule;
use std::future::Future;

/// One rule on the shared listener, reduced to what allocation needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerRule {
    /// Rule ARN.
    pub arn: String,
    /// Priority; `None` for the listener's default rule.
    pub priority: Option<u32>,
    /// Host names of its host-header condition.
    pub hosts: Vec<String>,
    /// Target groups its forward action sends to.
    pub target_groups: Vec<String>,
}

/// Reads the shared listener's rules.
pub trait ListenerRules: Send + Sync {
    /// Every rule on `listener_arn`, all pages.
    fn rules(
        &self,
        listener_arn: &str,
    ) -> impl Future<Output = Result<Vec<ListenerRule>, AwsCallError>> + Send;
}

/// ELBv2 adapter.
#[derive(Clone)]
pub struct ElbRules(pub aws_sdk_elasticloadbalancingv2::Client);

fn to_rule(rule: &Rule) -> ListenerRule {
    let hosts = rule
        .conditions()
        .iter()
        .filter(|c| c.field() == Some("host-header"))
        .flat_map(|c| {
            let configured = c
                .host_header_config()
                .map(|h| h.values().to_vec())
                .unwrap_or_default();
            // Older rules carry the hosts in `values` instead of `host_header_config`.
            configured.into_iter().chain(c.values().iter().cloned())
        })
        .collect();
    let target_groups = rule
        .actions()
        .iter()
        .flat_map(|a| {
            let weighted = a
                .forward_config()
                .map(|f| {
                    f.target_groups()
                        .iter()
                        .filter_map(|t| t.target_group_arn().map(str::to_string))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            a.target_group_arn()
                .map(str::to_string)
                .into_iter()
                .chain(weighted)
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    ListenerRule {
        arn: rule.rule_arn().unwrap_or_default().to_string(),
        priority: rule.priority().and_then(|p| p.parse().ok()),
        hosts,
        target_groups,
    }
}

impl ListenerRules for ElbRules {
    async fn rules(&self, listener_arn: &str) -> Result<Vec<ListenerRule>, AwsCallError> {
        let mut rules = Vec::new();
        let mut marker = None;
        loop {
            let page = self
                .0
                .describe_rules()
                .listener_arn(listener_arn)
                .set_marker(marker)
                .page_size(400)
                .send()
                .await
                .map_err(|e| AwsCallError::new("elbv2:DescribeRules", e))?;
            rules.extend(page.rules().iter().map(to_rule));
            match page.next_marker() {
                Some(next) if !next.is_empty() => marker = Some(next.to_string()),
                _ => return Ok(rules),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_elasticloadbalancingv2::operation::describe_rules::DescribeRulesOutput;
    use aws_sdk_elasticloadbalancingv2::types::{
        Action, ActionTypeEnum, HostHeaderConditionConfig, RuleCondition,
    };
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use aws_smithy_types::retry::RetryConfig;
    use std::time::Duration;

    fn elb_rule(arn: &str, priority: &str, host: Option<&str>) -> Rule {
        let mut rule = Rule::builder().rule_arn(arn).priority(priority);
        if let Some(host) = host {
            rule = rule.conditions(
                RuleCondition::builder()
                    .field("host-header")
                    .host_header_config(HostHeaderConditionConfig::builder().values(host).build())
                    .build(),
            );
        }
        rule.actions(
            Action::builder()
                .r#type(ActionTypeEnum::Forward)
                .target_group_arn(format!("{arn}-tg"))
                .build(),
        )
        .build()
    }

    #[tokio::test]
    async fn listener_rules_reads_every_page() {
        let first = mock!(aws_sdk_elasticloadbalancingv2::Client::describe_rules)
            .match_requests(|r| r.marker().is_none())
            .then_output(|| {
                DescribeRulesOutput::builder()
                    .rules(elb_rule("r-default", "default", None))
                    .rules(elb_rule("r-10", "10", Some("a.wpdev.kimmyai.io")))
                    .next_marker("page-2")
                    .build()
            });
        let second = mock!(aws_sdk_elasticloadbalancingv2::Client::describe_rules)
            .match_requests(|r| r.marker() == Some("page-2"))
            .then_output(|| {
                DescribeRulesOutput::builder()
                    .rules(elb_rule("r-11", "11", Some("b.wpdev.kimmyai.io")))
                    .build()
            });
        let client = mock_client!(
            aws_sdk_elasticloadbalancingv2,
            RuleMode::MatchAny,
            [&first, &second]
        );
        let rules = ElbRules(client).rules("arn:listener").await.expect("rules");
        assert_eq!(first.num_calls() + second.num_calls(), 2);
        assert_eq!(
            rules
                .iter()
                .map(|r| (r.priority, r.hosts.clone()))
                .collect::<Vec<_>>(),
            vec![
                (None, vec![]),
                (Some(10), vec!["a.wpdev.kimmyai.io".to_string()]),
                (Some(11), vec!["b.wpdev.kimmyai.io".to_string()])
            ]
        );
    }

    #[tokio::test]
    async fn listener_rules_retries_throttling_then_succeeds() {
        let rule = mock!(aws_sdk_elasticloadbalancingv2::Client::describe_rules)
            .sequence()
            .http_status(400, Some(r#"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>"#.into()))
            .times(2)
            .output(|| DescribeRulesOutput::builder().rules(elb_rule("r-12", "12", Some("c.wpdev.kimmyai.io"))).build())
            .build();
        let client = mock_client!(
            aws_sdk_elasticloadbalancingv2,
            RuleMode::Sequential,
            [&rule],
            |c| c.retry_config(
                RetryConfig::standard()
                    .with_max_attempts(3)
                    .with_initial_backoff(Duration::from_millis(1))
            )
        );
        let rules = ElbRules(client)
            .rules("arn:listener")
            .await
            .expect("third attempt succeeds");
        assert_eq!(rules.len(), 1);
        assert_eq!(rule.num_calls(), 3);
    }

    #[tokio::test]
    async fn listener_rules_throttled_past_retries_is_aws_throttled() {
        let rule = mock!(aws_sdk_elasticloadbalancingv2::Client::describe_rules)
            .sequence()
            .http_status(400, Some(r#"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>"#.into()))
            .repeatedly()
            .build();
        let client = mock_client!(
            aws_sdk_elasticloadbalancingv2,
            RuleMode::Sequential,
            [&rule],
            |c| c.retry_config(
                RetryConfig::standard()
                    .with_max_attempts(2)
                    .with_initial_backoff(Duration::from_millis(1))
            )
        );
        let err = ElbRules(client)
            .rules("arn:listener")
            .await
            .expect_err("throttled");
        assert_eq!(err.error_name(), "AwsThrottled");
        assert!(
            err.to_string().starts_with("elbv2:DescribeRules failed"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn listener_rules_access_denied() {
        let rule = mock!(aws_sdk_elasticloadbalancingv2::Client::describe_rules).then_http_response(|| {
            aws_smithy_runtime_api::http::Response::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(403).expect("status"),
                aws_smithy_types::body::SdkBody::from(r#"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not authorized</Message></Error></ErrorResponse>"#),
            )
        });
        let client = mock_client!(aws_sdk_elasticloadbalancingv2, [&rule]);
        let err = ElbRules(client)
            .rules("arn:listener")
            .await
            .expect_err("denied");
        assert_eq!(err.error_name(), "AwsAccessDenied");
    }

    #[tokio::test]
    async fn forward_target_groups_are_read() {
        let rule =
            mock!(aws_sdk_elasticloadbalancingv2::Client::describe_rules).then_output(|| {
                DescribeRulesOutput::builder()
                    .rules(elb_rule("r-10", "10", Some("a.wpdev.kimmyai.io")))
                    .build()
            });
        let client = mock_client!(aws_sdk_elasticloadbalancingv2, [&rule]);
        let rules = ElbRules(client).rules("arn:listener").await.expect("rules");
        assert_eq!(rules[0].target_groups, ["r-10-tg"]);
    }
}
