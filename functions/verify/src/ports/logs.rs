//! CloudWatch Logs, for the `logs` check: no errors since the run started.

use std::future::Future;
use stepdeploy_shared::aws_error::AwsCallError;

/// The tenant's container logs.
pub trait Logs: Send + Sync {
    /// Log lines matching `term` in streams starting with `prefix` since `since_ms`; at most a few, for the report.
    fn log_lines(
        &self,
        group: &str,
        prefix: &str,
        term: &str,
        since_ms: i64,
    ) -> impl Future<Output = Result<Vec<String>, AwsCallError>> + Send;
}

/// CloudWatch Logs adapter.
#[derive(Clone)]
pub struct CloudWatchLogs(pub aws_sdk_cloudwatchlogs::Client);

impl Logs for CloudWatchLogs {
    async fn log_lines(
        &self,
        group: &str,
        prefix: &str,
        term: &str,
        since_ms: i64,
    ) -> Result<Vec<String>, AwsCallError> {
        let result = self
            .0
            .filter_log_events()
            .log_group_name(group)
            .log_stream_name_prefix(prefix)
            .filter_pattern(term)
            .start_time(since_ms)
            .limit(5)
            .send()
            .await;
        match result {
            Ok(out) => Ok(out
                .events()
                .iter()
                .filter_map(|e| e.message().map(str::to_string))
                .collect()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(Vec::new())
            }
            Err(e) => Err(AwsCallError::new("logs:FilterLogEvents", e)),
        }
    }
}
