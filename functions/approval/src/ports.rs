//! The approval gate's storage and messaging (orchestrator account), as one
//! trait with its AWS adapter.

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use stepdeploy_shared::approvals::{self, ApprovalsTable};
use stepdeploy_shared::aws_error::AwsCallError;

pub use stepdeploy_shared::approvals::{ApprovalRequest, Vote};

/// The shortest HMAC key accepted (bytes): shorter keys make links forgeable
/// by brute force, an empty one by anyone.
pub const MIN_KEY_BYTES: usize = 32;

/// A link-signing key and its id (the HMAC secret's version id).
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey {
    /// Version id, carried by links as `k`.
    pub id: String,
    /// The key.
    pub bytes: Vec<u8>,
}

/// Why the gate cannot use its key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Secrets Manager failed.
    #[error(transparent)]
    Aws(#[from] AwsCallError),
    /// The key is too short to sign with.
    #[error("the approval links' HMAC key is {0} bytes; it must be at least 32 (set a long random secret)")]
    TooShort(usize),
}

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

/// Settings from the environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Approvals table (`STEPDEPLOY_APPROVALS_TABLE`).
    pub table: String,
    /// HMAC key secret (`STEPDEPLOY_HMAC_SECRET_ID`).
    pub hmac_secret: String,
    /// Approvals topic (`STEPDEPLOY_APPROVAL_TOPIC_ARN`).
    pub topic_arn: String,
    /// Base URL of this function's Function URL (`STEPDEPLOY_APPROVAL_URL`).
    pub url: String,
}

impl Settings {
    /// Reads the environment, with the local stack's names as defaults.
    pub fn from_env() -> Self {
        let var = |name: &str, default: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_string())
        };
        Self {
            table: var("STEPDEPLOY_APPROVALS_TABLE", "stepdeploy-approvals"),
            hmac_secret: var("STEPDEPLOY_HMAC_SECRET_ID", "stepdeploy/approval-hmac-key"),
            topic_arn: var("STEPDEPLOY_APPROVAL_TOPIC_ARN", ""),
            url: var(
                "STEPDEPLOY_APPROVAL_URL",
                "http://127.0.0.1:9000/lambda-url/approval",
            ),
        }
    }
}

/// What the gate needs.
pub trait Gate: Send + Sync {
    /// The key new links are signed with (the secret's current version).
    fn signing_key(&self) -> impl Future<Output = Result<SigningKey, KeyError>> + Send;
    /// The key with id `id` (a link's `k`), `None` if there is no such version.
    fn key(&self, id: &str) -> impl Future<Output = Result<Option<Vec<u8>>, KeyError>> + Send;
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
    /// Mails one approver (or, with `approver` empty, the requester's notice).
    fn mail(
        &self,
        approver: &str,
        subject: &str,
        body: &str,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
    /// The waiting task's token, read back from the execution's history and checked against `hash`.
    fn token(
        &self,
        execution: &str,
        hash: &str,
    ) -> impl Future<Output = Result<Option<String>, AwsCallError>> + Send;
    /// The run's status (`RUNNING`, `ABORTED`, …), `None` if it does not exist.
    fn run_status(
        &self,
        execution: &str,
    ) -> impl Future<Output = Result<Option<String>, AwsCallError>> + Send;
    /// Resumes the run.
    fn succeed(
        &self,
        token: &str,
        output: &serde_json::Value,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
    /// Fails the run.
    fn fail(
        &self,
        token: &str,
        error: &str,
        cause: &str,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
}

/// SHA-256 (hex).
pub fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// The AWS adapter.
pub struct AwsGate {
    settings: Settings,
    table: ApprovalsTable,
    secrets: aws_sdk_secretsmanager::Client,
    sfn: aws_sdk_sfn::Client,
    sns: aws_sdk_sns::Client,
    /// Keys by version id: a version's value never changes.
    keys: Mutex<HashMap<String, Vec<u8>>>,
}

impl AwsGate {
    /// Clients built once per cold start.
    pub fn new(config: &SdkConfig, settings: Settings) -> Self {
        Self {
            table: ApprovalsTable::new(config, settings.table.clone()),
            settings,
            secrets: aws_sdk_secretsmanager::Client::new(config),
            sfn: aws_sdk_sfn::Client::new(config),
            sns: aws_sdk_sns::Client::new(config),
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn ddb(&self) -> &aws_sdk_dynamodb::Client {
        self.table.client()
    }

    /// Reads a version of the key (the current one without `version`).
    async fn fetch_key(&self, version: Option<&str>) -> Result<Option<SigningKey>, KeyError> {
        let out = self
            .secrets
            .get_secret_value()
            .secret_id(&self.settings.hmac_secret)
            .set_version_id(version.map(str::to_string))
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            Err(e)
                if version.is_some()
                    && e.as_service_error().is_some_and(|e| {
                        e.is_resource_not_found_exception() || e.is_invalid_request_exception()
                    }) =>
            {
                return Ok(None)
            }
            Err(e) => {
                return Err(AwsCallError::new("secretsmanager:GetSecretValue (hmac key)", e).into())
            }
        };
        let bytes = out.secret_string().unwrap_or_default().as_bytes().to_vec();
        if bytes.len() < MIN_KEY_BYTES {
            return Err(KeyError::TooShort(bytes.len()));
        }
        let id = out.version_id().unwrap_or("current").to_string();
        if let Ok(mut keys) = self.keys.lock() {
            keys.insert(id.clone(), bytes.clone());
        }
        Ok(Some(SigningKey { id, bytes }))
    }
}

fn text(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_string())
}

impl Gate for AwsGate {
    async fn signing_key(&self) -> Result<SigningKey, KeyError> {
        // Read each cold start (and so after a rotation): new links use the current version.
        self.fetch_key(None)
            .await?
            .ok_or_else(|| KeyError::TooShort(0))
    }

    async fn key(&self, id: &str) -> Result<Option<Vec<u8>>, KeyError> {
        if let Some(bytes) = self.keys.lock().ok().and_then(|k| k.get(id).cloned()) {
            return Ok(Some(bytes));
        }
        Ok(self.fetch_key(Some(id)).await?.map(|k| k.bytes))
    }

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

    async fn mail(&self, approver: &str, subject: &str, body: &str) -> Result<(), AwsCallError> {
        let attribute = aws_sdk_sns::types::MessageAttributeValue::builder()
            .data_type("String")
            .string_value(if approver.is_empty() { "-" } else { approver })
            .build()
            .map_err(|e| AwsCallError::other("sns:Publish (build)", e))?;
        self.sns
            .publish()
            .topic_arn(&self.settings.topic_arn)
            .subject(subject)
            .message(body)
            .message_attributes("approver", attribute)
            .send()
            .await
            .map_err(|e| AwsCallError::new("sns:Publish (approval)", e))?;
        Ok(())
    }

    async fn token(&self, execution: &str, hash: &str) -> Result<Option<String>, AwsCallError> {
        let out = self
            .sfn
            .get_execution_history()
            .execution_arn(execution)
            .reverse_order(true)
            .max_results(100)
            .send()
            .await
            .map_err(|e| AwsCallError::new("states:GetExecutionHistory", e))?;
        Ok(out
            .events()
            .iter()
            .filter_map(|e| e.task_scheduled_event_details())
            .find_map(|d| {
                let parameters: serde_json::Value = serde_json::from_str(d.parameters()).ok()?;
                let token = parameters["Payload"]["task_token"].as_str()?;
                (sha256_hex(token) == hash).then(|| token.to_string())
            }))
    }

    async fn run_status(&self, execution: &str) -> Result<Option<String>, AwsCallError> {
        use stepdeploy_shared::guard::Runs;
        stepdeploy_shared::guard::StepFunctionsRuns(self.sfn.clone())
            .status(execution)
            .await
    }

    async fn succeed(&self, token: &str, output: &serde_json::Value) -> Result<(), AwsCallError> {
        self.sfn
            .send_task_success()
            .task_token(token)
            .output(output.to_string())
            .send()
            .await
            .map_err(|e| AwsCallError::new("states:SendTaskSuccess", e))?;
        Ok(())
    }

    async fn fail(&self, token: &str, error: &str, cause: &str) -> Result<(), AwsCallError> {
        self.sfn
            .send_task_failure()
            .task_token(token)
            .error(error)
            .cause(cause)
            .send()
            .await
            .map_err(|e| AwsCallError::new("states:SendTaskFailure", e))?;
        Ok(())
    }
}
