//! The approvers' mail: one SNS topic, each e-mail subscription filtered on
//! the `approver` attribute, so each approver gets only their own links.

use aws_config::SdkConfig;
use std::future::Future;
use stepdeploy_shared::aws_error::AwsCallError;

/// Mails approvers.
pub trait Mailer: Send + Sync {
    /// Mails one approver (or, with `approver` empty, the requester's notice).
    fn mail(
        &self,
        approver: &str,
        subject: &str,
        body: &str,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
}

/// [`Mailer`] on SNS.
pub struct SnsMailer {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsMailer {
    /// Publishes to `topic_arn`.
    pub fn new(config: &SdkConfig, topic_arn: &str) -> Self {
        Self {
            client: aws_sdk_sns::Client::new(config),
            topic_arn: topic_arn.to_string(),
        }
    }
}

impl Mailer for SnsMailer {
    async fn mail(&self, approver: &str, subject: &str, body: &str) -> Result<(), AwsCallError> {
        let attribute = aws_sdk_sns::types::MessageAttributeValue::builder()
            .data_type("String")
            .string_value(if approver.is_empty() { "-" } else { approver })
            .build()
            .map_err(|e| AwsCallError::other("sns:Publish (build)", e))?;
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(subject)
            .message(body)
            .message_attributes("approver", attribute)
            .send()
            .await
            .map_err(|e| AwsCallError::new("sns:Publish (approval)", e))?;
        Ok(())
    }
}
