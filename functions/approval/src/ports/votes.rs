//! The approvals table (orchestrator account), as the gate writes it: gate
//! attempts, votes and late decisions. Its layout and the quorum rule are in
//! [`stepdeploy_shared::approvals`]; reads go through its `ApprovalsTable`.

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use std::future::Future;
use stepdeploy_shared::approvals::{self, ApprovalRequest, ApprovalsTable, Vote};
use stepdeploy_shared::aws_error::AwsCallError;

/// What a vote came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoteOutcome {
    /// Recorded while the gate was pending for this attempt.
    Recorded,
    /// This approver already decided in this attempt.
    AlreadyDecided,
    /// The gate had settled (or moved to another attempt) first.
    GateSettled,
}

/// The gate's records.
pub trait Votes: Send + Sync {
    /// Stores a new gate attempt: only if the execution has none, or its
    /// request is still the attempt `replacing` (conditional, so two gate
    /// openings cannot both win); `false` if another write came first.
    fn open(
        &self,
        request: &ApprovalRequest,
        replacing: Option<&str>,
    ) -> impl Future<Output = Result<bool, AwsCallError>> + Send;
    /// The current request for `execution`.
    fn request(
        &self,
        execution: &str,
    ) -> impl Future<Output = Result<Option<ApprovalRequest>, AwsCallError>> + Send;
    /// Records a decision in one transaction with a check that the request is
    /// still pending for this attempt.
    fn vote(
        &self,
        request: &ApprovalRequest,
        approver: &str,
        decision: &str,
        reason: &str,
    ) -> impl Future<Output = Result<VoteOutcome, AwsCallError>> + Send;
    /// Records a decision that came after the gate settled (counts for nothing).
    fn late(
        &self,
        request: &ApprovalRequest,
        approver: &str,
        decision: &str,
        reason: &str,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
    /// Every decision of one attempt.
    fn votes(
        &self,
        execution: &str,
        attempt: &str,
    ) -> impl Future<Output = Result<Vec<Vote>, AwsCallError>> + Send;
    /// Moves the request of `attempt` from status `from` to `to`; `false` if it was not in `from`.
    fn settle(
        &self,
        execution: &str,
        attempt: &str,
        from: &str,
        to: &str,
    ) -> impl Future<Output = Result<bool, AwsCallError>> + Send;
}

/// [`Votes`] on DynamoDB.
pub struct DynamoVotes {
    table: ApprovalsTable,
}

impl DynamoVotes {
    /// The table named `table`.
    pub fn new(config: &SdkConfig, table: &str) -> Self {
        Self {
            table: ApprovalsTable::new(config, table),
        }
    }

    fn ddb(&self) -> &aws_sdk_dynamodb::Client {
        self.table.client()
    }
}

fn text(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_string())
}

impl Votes for DynamoVotes {
    async fn open(
        &self,
        request: &ApprovalRequest,
        replacing: Option<&str>,
    ) -> Result<bool, AwsCallError> {
        let body = serde_json::to_string(request).unwrap_or_default();
        let mut put = self
            .ddb()
            .put_item()
            .table_name(self.table.name())
            .set_item(Some(approvals::key(
                &request.execution,
                approvals::REQUEST_SK,
            )))
            .item("request", text(&body))
            .item("status", text(&request.status))
            .item("attempt", text(&request.attempt))
            .item(
                "expires_at",
                AttributeValue::N(
                    (request.expires_at + approvals::KEEP_AFTER_GATE_SECONDS).to_string(),
                ),
            );
        put = match replacing {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(old) => put
                .condition_expression("attempt = :old")
                .expression_attribute_values(":old", text(old)),
        };
        stepdeploy_shared::state::conditional_write(
            put.send().await,
            "dynamodb:PutItem (approval request)",
        )
    }

    async fn request(&self, execution: &str) -> Result<Option<ApprovalRequest>, AwsCallError> {
        self.table.request(execution).await
    }

    async fn vote(
        &self,
        request: &ApprovalRequest,
        approver: &str,
        decision: &str,
        reason: &str,
    ) -> Result<VoteOutcome, AwsCallError> {
        use aws_sdk_dynamodb::types::{ConditionCheck, Put, TransactWriteItem};
        let build = |e| AwsCallError::other("dynamodb:TransactWriteItems (build)", e);
        let mut item = approvals::key(
            &request.execution,
            &approvals::vote_sk(&request.attempt, approver),
        );
        item.insert("approver".into(), text(approver));
        item.insert("decision".into(), text(decision));
        item.insert("reason".into(), text(reason));
        item.insert(
            "expires_at".into(),
            AttributeValue::N(
                (request.expires_at + approvals::KEEP_AFTER_GATE_SECONDS).to_string(),
            ),
        );
        let put = Put::builder()
            .table_name(self.table.name())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build)?;
        let check = ConditionCheck::builder()
            .table_name(self.table.name())
            .set_key(Some(approvals::key(
                &request.execution,
                approvals::REQUEST_SK,
            )))
            .condition_expression("#s = :pending AND attempt = :attempt")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":pending", text(approvals::status::PENDING))
            .expression_attribute_values(":attempt", text(&request.attempt))
            .build()
            .map_err(build)?;
        let result = self
            .ddb()
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build())
            .transact_items(TransactWriteItem::builder().condition_check(check).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(VoteOutcome::Recorded),
            Err(e) => {
                let reasons: Option<Vec<String>> = match e.as_service_error() {
                    Some(aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c)) => Some(
                        c.cancellation_reasons()
                            .iter()
                            .map(|r| r.code().unwrap_or("None").to_string())
                            .collect(),
                    ),
                    _ => None,
                };
                match reasons.as_deref() {
                    // The gate's check failed: it settled (or a new attempt began) first.
                    Some([_, gate]) if gate == "ConditionalCheckFailed" => {
                        Ok(VoteOutcome::GateSettled)
                    }
                    Some([vote, _]) if vote == "ConditionalCheckFailed" => {
                        Ok(VoteOutcome::AlreadyDecided)
                    }
                    _ => Err(AwsCallError::new("dynamodb:TransactWriteItems (vote)", e)),
                }
            }
        }
    }

    async fn late(
        &self,
        request: &ApprovalRequest,
        approver: &str,
        decision: &str,
        reason: &str,
    ) -> Result<(), AwsCallError> {
        self.ddb()
            .put_item()
            .table_name(self.table.name())
            .set_item(Some(approvals::key(
                &request.execution,
                &approvals::late_sk(&request.attempt, approver),
            )))
            .item("approver", text(approver))
            .item("decision", text(decision))
            .item("reason", text(reason))
            .item(
                "expires_at",
                AttributeValue::N(
                    (request.expires_at + approvals::KEEP_AFTER_GATE_SECONDS).to_string(),
                ),
            )
            .send()
            .await
            .map_err(|e| AwsCallError::new("dynamodb:PutItem (late decision)", e))?;
        Ok(())
    }

    async fn votes(&self, execution: &str, attempt: &str) -> Result<Vec<Vote>, AwsCallError> {
        self.table.votes(execution, attempt).await
    }

    async fn settle(
        &self,
        execution: &str,
        attempt: &str,
        from: &str,
        to: &str,
    ) -> Result<bool, AwsCallError> {
        let result = self
            .ddb()
            .update_item()
            .table_name(self.table.name())
            .set_key(Some(approvals::key(execution, approvals::REQUEST_SK)))
            .update_expression("SET #s = :to")
            .condition_expression("#s = :from AND attempt = :attempt")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":to", text(to))
            .expression_attribute_values(":from", text(from))
            .expression_attribute_values(":attempt", text(attempt))
            .send()
            .await;
        stepdeploy_shared::state::conditional_write(result, "dynamodb:UpdateItem (settle approval)")
    }
}
