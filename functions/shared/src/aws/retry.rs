//! Creating a resource exactly once when a call can fail after AWS applied it.
//!
//! A create that times out, is throttled or answers 5xx may or may not have
//! happened. The SDK's own retry would simply send it again, which for a
//! create that is not idempotent makes a second resource (a second task
//! definition revision, a second access point on an emulator that ignores
//! the client token) or fails with "already exists" / "priority in use". So
//! those creates are sent with the SDK's retries off, and [`create_or_adopt`]
//! retries them itself: before each new attempt it looks the resource up by
//! name and adopts it if the failed attempt went through after all.
//!
//! Ownership is not decided here: the phases write the resource to the run's
//! ledger *before* the create (under the name rollback finds it by), so an
//! adopted resource is rolled back like one whose create answered.

use crate::aws_error::AwsCallError;
use std::future::Future;
use std::time::Duration;

/// Attempts of the create in all.
pub const CREATE_ATTEMPTS: u32 = 4;
/// Wait before the second attempt (doubled each time, with full jitter).
pub const FIRST_DELAY: Duration = Duration::from_millis(300);

/// Runs `create`; after a transient failure waits, asks `find` whether the
/// resource exists after all (then returns it), else creates again, up to
/// [`CREATE_ATTEMPTS`] times. A failure that is not transient, a failure of
/// `find`, or the last attempt's failure is returned as is.
pub async fn create_or_adopt<T, C, CF, F, FF>(mut create: C, mut find: F) -> Result<T, AwsCallError>
where
    C: FnMut() -> CF,
    CF: Future<Output = Result<T, AwsCallError>>,
    F: FnMut() -> FF,
    FF: Future<Output = Result<Option<T>, AwsCallError>>,
{
    let mut delay = FIRST_DELAY;
    let mut attempt = 1;
    loop {
        let err = match create().await {
            Ok(created) => return Ok(created),
            Err(e) if e.is_transient() && attempt < CREATE_ATTEMPTS => e,
            Err(e) => return Err(e),
        };
        tracing::warn!(operation = err.operation, attempt, error = %err, "create failed; checking whether it was applied");
        tokio::time::sleep(jitter(delay)).await;
        delay *= 2;
        attempt += 1;
        if let Some(found) = find().await? {
            tracing::info!(
                operation = err.operation,
                "the failed create was applied: adopting it"
            );
            return Ok(found);
        }
    }
}

/// A random share (half to all) of `delay`, so concurrent runs spread out.
fn jitter(delay: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    delay / 2 + delay.mul_f64(f64::from(nanos % 1000) / 2000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::operation::put_item::PutItemError;
    use aws_smithy_runtime_api::client::result::SdkError;
    use aws_smithy_types::error::ErrorMetadata;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn failure(code: &str) -> AwsCallError {
        let err: SdkError<PutItemError, ()> = SdkError::service_error(
            PutItemError::generic(ErrorMetadata::builder().code(code).build()),
            (),
        );
        AwsCallError::new("test:Create", err)
    }

    #[tokio::test]
    async fn an_applied_create_whose_answer_was_lost_is_adopted_not_repeated() {
        let creates = AtomicU32::new(0);
        let exists = std::sync::atomic::AtomicBool::new(false);
        let out = create_or_adopt(
            || async {
                creates.fetch_add(1, Ordering::SeqCst);
                exists.store(true, Ordering::SeqCst);
                Err::<&str, _>(failure("InternalFailure"))
            },
            || async { Ok(exists.load(Ordering::SeqCst).then_some("found")) },
        )
        .await
        .expect("adopted");
        assert_eq!((out, creates.load(Ordering::SeqCst)), ("found", 1));
    }

    #[tokio::test]
    async fn a_throttled_create_that_did_not_happen_is_sent_again() {
        let creates = AtomicU32::new(0);
        let out = create_or_adopt(
            || async {
                match creates.fetch_add(1, Ordering::SeqCst) {
                    0 => Err(failure("ThrottlingException")),
                    _ => Ok("created"),
                }
            },
            || async { Ok(None) },
        )
        .await
        .expect("created");
        assert_eq!((out, creates.load(Ordering::SeqCst)), ("created", 2));
    }

    #[tokio::test]
    async fn other_failures_and_the_last_attempt_are_returned() {
        let creates = AtomicU32::new(0);
        let err = create_or_adopt(
            || async {
                creates.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(failure("AccessDeniedException"))
            },
            || async { Ok(None) },
        )
        .await
        .expect_err("denied");
        assert_eq!(
            (err.error_name(), creates.load(Ordering::SeqCst)),
            ("AwsAccessDenied", 1)
        );
        let creates = AtomicU32::new(0);
        let err = create_or_adopt(
            || async {
                creates.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(failure("ServiceUnavailable"))
            },
            || async { Ok(None) },
        )
        .await
        .expect_err("gave up");
        assert_eq!(
            (err.error_name(), creates.load(Ordering::SeqCst)),
            ("AwsUnavailable", CREATE_ATTEMPTS)
        );
    }
}
