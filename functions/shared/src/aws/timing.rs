//! Where an invocation's time goes: our own code, or waiting on AWS, MySQL
//! or the site being checked.
//!
//! Every AWS call goes through [`TimedHttpClient`] (installed by
//! [`crate::aws::sdk_config`]); MySQL and HTTP probes are wrapped in
//! [`external`]. [`measured`] wraps one invocation and logs one `phase
//! timing` line with the totals, so an operator can see in CloudWatch (and
//! `bench/e2e.py` locally) how much of a phase is ours. Overlapping calls
//! count once: the figure is the wall time during which at least one call
//! was in flight. The counters are per process, and a Lambda process handles
//! one invocation at a time.

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use std::future::Future;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// What an invocation waited on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum External {
    /// An AWS API call (each HTTP attempt, retries included).
    Aws,
    /// A MySQL connection or statement.
    Mysql,
    /// An HTTP(S) check of the tenant's site.
    Http,
}

#[derive(Debug, Default, Clone, Copy)]
struct Busy {
    in_flight: u32,
    since: Option<Instant>,
    total: Duration,
    calls: u64,
}

impl Busy {
    fn enter(&mut self, now: Instant) {
        if self.in_flight == 0 {
            self.since = Some(now);
        }
        self.in_flight += 1;
        self.calls += 1;
    }

    fn leave(&mut self, now: Instant) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if self.in_flight == 0 {
            if let Some(since) = self.since.take() {
                self.total += now.saturating_duration_since(since);
            }
        }
    }

    /// Total so far, counting a call still in flight up to `now`.
    fn until(&self, now: Instant) -> Duration {
        self.total
            + self
                .since
                .map_or(Duration::ZERO, |s| now.saturating_duration_since(s))
    }
}

/// Per kind, then any kind.
static BUSY: Mutex<[Busy; 4]> = Mutex::new(
    [Busy {
        in_flight: 0,
        since: None,
        total: Duration::ZERO,
        calls: 0,
    }; 4],
);

fn with_busy<T>(f: impl FnOnce(&mut [Busy; 4]) -> T) -> T {
    f(&mut BUSY.lock().unwrap_or_else(PoisonError::into_inner))
}

fn slot(kind: External) -> usize {
    match kind {
        External::Aws => 0,
        External::Mysql => 1,
        External::Http => 2,
    }
}

/// A call in flight; leaving (also by cancellation or timeout) stops its clock.
#[derive(Debug)]
pub struct InFlight(External);

impl InFlight {
    /// Starts the clock of one `kind` call.
    pub fn start(kind: External) -> Self {
        let now = Instant::now();
        with_busy(|b| {
            b[slot(kind)].enter(now);
            b[3].enter(now);
        });
        Self(kind)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let now = Instant::now();
        with_busy(|b| {
            b[slot(self.0)].leave(now);
            b[3].leave(now);
        });
    }
}

/// Runs `call` as one `kind` call.
pub async fn external<T>(kind: External, call: impl Future<Output = T>) -> T {
    let _clock = InFlight::start(kind);
    call.await
}

/// One invocation's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timing {
    /// The whole handler.
    pub total: Duration,
    /// Waiting on anything external (overlaps counted once).
    pub external: Duration,
    /// Waiting on AWS.
    pub aws: Duration,
    /// AWS HTTP attempts.
    pub aws_calls: u64,
    /// Waiting on MySQL.
    pub mysql: Duration,
    /// MySQL calls.
    pub mysql_calls: u64,
    /// Waiting on HTTP checks.
    pub http: Duration,
    /// HTTP checks.
    pub http_calls: u64,
}

impl Timing {
    /// Our own code: the handler's time not spent waiting.
    pub fn own(&self) -> Duration {
        self.total.saturating_sub(self.external)
    }
}

fn reset() {
    with_busy(|b| {
        for busy in b.iter_mut() {
            *busy = Busy {
                in_flight: busy.in_flight,
                since: busy.since.map(|_| Instant::now()),
                ..Busy::default()
            };
        }
    });
}

fn snapshot(total: Duration) -> Timing {
    let now = Instant::now();
    with_busy(|b| Timing {
        total,
        external: b[3].until(now),
        aws: b[0].until(now),
        aws_calls: b[0].calls,
        mysql: b[1].until(now),
        mysql_calls: b[1].calls,
        http: b[2].until(now),
        http_calls: b[2].calls,
    })
}

/// Runs one invocation of `phase` and logs where its time went.
pub async fn measured<T>(phase: &'static str, invocation: impl Future<Output = T>) -> T {
    // Boxed: the handler's future (rollback's nests every resource kind's
    // undo) stays one pointer here, so wrapping it adds no type depth and
    // no large moves.
    let (out, timing) = timed(Box::pin(invocation)).await;
    let ms = |d: Duration| (d.as_secs_f64() * 1000.0 * 10.0).round() / 10.0;
    tracing::info!(
        phase,
        total_ms = ms(timing.total),
        own_ms = ms(timing.own()),
        aws_ms = ms(timing.aws),
        aws_calls = timing.aws_calls,
        mysql_ms = ms(timing.mysql),
        mysql_calls = timing.mysql_calls,
        http_ms = ms(timing.http),
        http_calls = timing.http_calls,
        "phase timing"
    );
    out
}

/// Runs `invocation` and returns its figures.
pub async fn timed<T>(invocation: impl Future<Output = T>) -> (T, Timing) {
    reset();
    let start = Instant::now();
    let out = invocation.await;
    (out, snapshot(start.elapsed()))
}

/// An SDK HTTP client that clocks every attempt as [`External::Aws`].
#[derive(Debug, Clone)]
pub struct TimedHttpClient(SharedHttpClient);

impl TimedHttpClient {
    /// Wraps `inner`.
    pub fn new(inner: SharedHttpClient) -> Self {
        Self(inner)
    }
}

impl HttpClient for TimedHttpClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(TimedConnector(self.0.http_connector(settings, components)))
    }

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

#[derive(Debug)]
struct TimedConnector(SharedHttpConnector);

impl HttpConnector for TimedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let clock = InFlight::start(External::Aws);
        let call = self.0.call(request);
        HttpConnectorFuture::new(async move {
            let response = call.await;
            drop(clock);
            response
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The only test here that makes Aws or Mysql calls: the counters are per process.
    #[tokio::test]
    async fn overlapping_calls_count_once_and_own_time_is_the_rest() {
        let ms = Duration::from_millis;
        let ((), timing) = timed(async {
            std::thread::sleep(ms(30)); // our own work
            let a = external(External::Aws, tokio::time::sleep(ms(60)));
            let b = external(External::Mysql, tokio::time::sleep(ms(60)));
            tokio::join!(a, b);
        })
        .await;
        assert_eq!((timing.aws_calls, timing.mysql_calls), (1, 1));
        assert!(timing.aws >= ms(60) && timing.mysql >= ms(60), "{timing:?}");
        // Both were in flight together: 60 ms of waiting, not 120.
        assert!(
            timing.external >= ms(60) && timing.external < ms(110),
            "{timing:?}"
        );
        assert!(timing.own() >= ms(30), "{timing:?}");
        assert_eq!(timing.own(), timing.total - timing.external);
    }
}
