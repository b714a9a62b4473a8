//! [`DocumentStore`] on S3.

use super::DocumentStore;
use stepdeploy_shared::aws_error::AwsCallError;

/// S3 adapter (path-style on the local stack: `stepdeploy_shared::aws::s3_client`).
#[derive(Clone)]
pub struct S3Adapter(pub aws_sdk_s3::Client);

impl DocumentStore for S3Adapter {
    async fn restore_version(
        &self,
        bucket: &str,
        key: &str,
        version: &str,
    ) -> Result<(), AwsCallError> {
        self.0
            .copy_object()
            .bucket(bucket)
            .key(key)
            .copy_source(format!("{bucket}/{key}?versionId={version}"))
            .send()
            .await
            .map_err(|e| AwsCallError::new("s3:CopyObject (restore)", e))?;
        Ok(())
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), AwsCallError> {
        self.0
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| AwsCallError::new("s3:DeleteObject (config document)", e))?;
        Ok(())
    }
}
