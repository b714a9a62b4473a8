//! The approval gate's storage and messaging (orchestrator account), as one
//! trait with its AWS adapter.

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::future::Future;
use stepdeploy_shared::aws_error::AwsCallError;
use tokio::sync::OnceCell;

/// A pending approval, as stored (no task token: only its SHA-256).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    /// Execution ARN.
    pub execution: String,
    /// SHA-256 (hex) of the task token.
    pub token_hash: String,
    /// Tenant.
    pub tenant: String,
    /// Environment.
    pub environment: String,
    /// Image.
    pub image: String,
    /// Who asked (may not approve).
    pub requested_by: String,
    /// Allow-list.
    pub approvers: Vec<String>,
    /// Quorum.
    pub required: u32,
    /// `pending`, `approved`, `rejected`.
    pub status: String,
    /// Epoch seconds.
    pub expires_at: u64,
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
    /// The HMAC key (fetched once).
    fn key(&self) -> impl Future<Output = Result<Vec<u8>, AwsCallError>> + Send;
    /// Stores a request (replacing one for the same execution: a retried gate).
    fn store(
        &self,
        request: &ApprovalRequest,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
    /// The request for `execution`.
    fn request(
        &self,
        execution: &str,
    ) -> impl Future<Output = Result<Option<ApprovalRequest>, AwsCallError>> + Send;
    /// Records `approver`'s decision once; `false` if they already decided.
    fn vote(
        &self,
        execution: &str,
        approver: &str,
        decision: &str,
        reason: &str,
    ) -> impl Future<Output = Result<bool, AwsCallError>> + Send;
    /// Approvers who approved so far.
    fn approvals(
        &self,
        execution: &str,
    ) -> impl Future<Output = Result<Vec<String>, AwsCallError>> + Send;
    /// Moves the request from `pending` to `to`; `false` if it was no longer pending.
    fn close(
        &self,
        execution: &str,
        to: &str,
    ) -> impl Future<Output = Result<bool, AwsCallError>> + Send;
    /// Mails one approver.
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
    ddb: aws_sdk_dynamodb::Client,
    secrets: aws_sdk_secretsmanager::Client,
    sfn: aws_sdk_sfn::Client,
    sns: aws_sdk_sns::Client,
    key: OnceCell<Vec<u8>>,
}

impl AwsGate {
    /// Clients built once per cold start.
    pub fn new(config: &SdkConfig, settings: Settings) -> Self {
        Self {
            settings,
            ddb: aws_sdk_dynamodb::Client::new(config),
            secrets: aws_sdk_secretsmanager::Client::new(config),
            sfn: aws_sdk_sfn::Client::new(config),
            sns: aws_sdk_sns::Client::new(config),
            key: OnceCell::new(),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn key_of(execution: &str, sk: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("pk".into(), AttributeValue::S(format!("RUN#{execution}"))),
            ("sk".into(), AttributeValue::S(sk.into())),
        ])
    }
}

impl Gate for AwsGate {
    async fn key(&self) -> Result<Vec<u8>, AwsCallError> {
        self.key
            .get_or_try_init(|| async {
                let out = self
                    .secrets
                    .get_secret_value()
                    .secret_id(&self.settings.hmac_secret)
                    .send()
                    .await
                    .map_err(|e| {
                        AwsCallError::new("secretsmanager:GetSecretValue (hmac key)", e)
                    })?;
                Ok(out.secret_string().unwrap_or_default().as_bytes().to_vec())
            })
            .await
            .cloned()
    }

    async fn store(&self, request: &ApprovalRequest) -> Result<(), AwsCallError> {
        let body = serde_json::to_string(request).unwrap_or_default();
        self.ddb
            .put_item()
            .table_name(&self.settings.table)
            .set_item(Some(Self::key_of(&request.execution, "REQUEST")))
            .item("request", AttributeValue::S(body))
            .item("status", AttributeValue::S(request.status.clone()))
            .item(
                "expires_at",
                AttributeValue::N((request.expires_at + 86_400).to_string()),
            )
            .send()
            .await
            .map_err(|e| AwsCallError::new("dynamodb:PutItem (approval request)", e))?;
        Ok(())
    }

    async fn request(&self, execution: &str) -> Result<Option<ApprovalRequest>, AwsCallError> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.settings.table)
            .set_key(Some(Self::key_of(execution, "REQUEST")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsCallError::new("dynamodb:GetItem (approval request)", e))?;
        Ok(out.item.and_then(|item| {
            let mut request: ApprovalRequest =
                serde_json::from_str(item.get("request")?.as_s().ok()?).ok()?;
            if let Some(status) = item.get("status").and_then(|s| s.as_s().ok()) {
                request.status = status.clone();
            }
            Some(request)
        }))
    }

    async fn vote(
        &self,
        execution: &str,
        approver: &str,
        decision: &str,
        reason: &str,
    ) -> Result<bool, AwsCallError> {
        let result = self
            .ddb
            .put_item()
            .table_name(&self.settings.table)
            .set_item(Some(Self::key_of(execution, &format!("VOTE#{approver}"))))
            .item("decision", AttributeValue::S(decision.into()))
            .item("approver", AttributeValue::S(approver.into()))
            .item(
                "reason",
                AttributeValue::S(reason.chars().take(500).collect()),
            )
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        stepdeploy_shared::state::conditional_write(result, "dynamodb:PutItem (vote)")
    }

    async fn approvals(&self, execution: &str) -> Result<Vec<String>, AwsCallError> {
        let out = self
            .ddb
            .query()
            .table_name(&self.settings.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :v)")
            .expression_attribute_values(":pk", AttributeValue::S(format!("RUN#{execution}")))
            .expression_attribute_values(":v", AttributeValue::S("VOTE#".into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsCallError::new("dynamodb:Query (votes)", e))?;
        Ok(out
            .items()
            .iter()
            .filter(|i| {
                i.get("decision")
                    .and_then(|d| d.as_s().ok())
                    .map(String::as_str)
                    == Some("approve")
            })
            .filter_map(|i| i.get("approver").and_then(|a| a.as_s().ok()).cloned())
            .collect())
    }

    async fn close(&self, execution: &str, to: &str) -> Result<bool, AwsCallError> {
        let result = self
            .ddb
            .update_item()
            .table_name(&self.settings.table)
            .set_key(Some(Self::key_of(execution, "REQUEST")))
            .update_expression("SET #s = :to")
            .condition_expression("#s = :pending")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":to", AttributeValue::S(to.into()))
            .expression_attribute_values(":pending", AttributeValue::S("pending".into()))
            .send()
            .await;
        stepdeploy_shared::state::conditional_write(result, "dynamodb:UpdateItem (close approval)")
    }

    async fn mail(&self, approver: &str, subject: &str, body: &str) -> Result<(), AwsCallError> {
        let attribute = aws_sdk_sns::types::MessageAttributeValue::builder()
            .data_type("String")
            .string_value(approver)
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
