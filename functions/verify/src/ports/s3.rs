//! S3, where the last round writes its report (verify's only write).

use std::future::Future;
use stepdeploy_shared::aws_error::AwsCallError;

/// Where reports go.
pub trait Reports: Send + Sync {
    /// Writes the report.
    fn put_report(
        &self,
        bucket: &str,
        key: &str,
        body: String,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
}

/// S3 adapter.
#[derive(Clone)]
pub struct S3(pub aws_sdk_s3::Client);

impl Reports for S3 {
    async fn put_report(&self, bucket: &str, key: &str, body: String) -> Result<(), AwsCallError> {
        self.0
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("application/json")
            .body(body.into_bytes().into())
            .send()
            .await
            .map_err(|e| AwsCallError::new("s3:PutObject (report)", e))?;
        Ok(())
    }
}
