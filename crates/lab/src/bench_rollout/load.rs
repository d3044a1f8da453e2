//! The load: an open-loop stream of HTTP GETs at a fixed rate through a load balancer's listener,
//! each request on its own connection (as many independent clients would), every outcome kept with
//! its time. Open loop: a slow or failing answer never slows the stream down, as with real users.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lb_sandbox::guard::DestinationGuard;
use lb_sandbox::http_client;
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::clock::now;

/// A request is given up (and counted as a timeout) after this long: longer than the ALB's own
/// 10 s connect timeout, so that its 504 is what gets counted.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The load balancer answered with this status code.
    Status(u16),
    /// The connection to the load balancer failed or broke.
    ConnectionError,
    /// No complete answer within [`REQUEST_TIMEOUT`].
    Timeout,
}

impl Outcome {
    pub fn is_failure(self) -> bool {
        !matches!(self, Outcome::Status(200..=399))
    }

    /// The column a failure is counted in.
    pub fn kind(self) -> &'static str {
        match self {
            Outcome::Status(502) => "502",
            Outcome::Status(503) => "503",
            Outcome::Status(504) => "504",
            Outcome::Status(_) => "other status",
            Outcome::ConnectionError => "connection error",
            Outcome::Timeout => "timeout",
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Sample {
    /// When the request was sent, seconds since the Unix epoch.
    pub at: f64,
    pub latency_ms: f64,
    pub outcome: Outcome,
}

pub struct Load {
    stop: watch::Sender<bool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Load {
    /// Starts sending `rate` requests per second to `path` on `listener` (a loopback address).
    pub fn start(listener: SocketAddr, path: &'static str, rate: u32) -> Load {
        let (stop, mut stopped) = watch::channel(false);
        let period = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
        let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
        let collected = samples.clone();
        let task = tokio::spawn(async move {
            let samples = collected;
            let mut in_flight = JoinSet::new();
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = stopped.changed() => break,
                }
                let samples = samples.clone();
                in_flight.spawn(async move {
                    let sample = request(listener, path).await;
                    samples
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(sample);
                });
                while in_flight.try_join_next().is_some() {}
            }
            while in_flight.join_next().await.is_some() {}
        });
        Load {
            stop,
            samples,
            task,
        }
    }

    /// Requests answered so far: (succeeded, failed).
    pub fn tally(&self) -> (usize, usize) {
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let failed = samples.iter().filter(|s| s.outcome.is_failure()).count();
        (samples.len() - failed, failed)
    }

    /// Stops sending, waits for the requests in flight, and returns every sample in time order.
    pub async fn stop(self) -> Vec<Sample> {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        let mut samples =
            std::mem::take(&mut *self.samples.lock().unwrap_or_else(|e| e.into_inner()));
        samples.sort_by(|a, b| a.at.total_cmp(&b.at));
        samples
    }
}

async fn request(listener: SocketAddr, path: &str) -> Sample {
    let at = now();
    let guard = DestinationGuard::loopback_only();
    let outcome = match tokio::time::timeout(
        REQUEST_TIMEOUT,
        http_client::get(&guard, listener, path, REQUEST_TIMEOUT * 2),
    )
    .await
    {
        Ok(Ok(response)) => Outcome::Status(response.status),
        Ok(Err(_)) => Outcome::ConnectionError,
        Err(_) => Outcome::Timeout,
    };
    Sample {
        at,
        latency_ms: (now() - at) * 1000.0,
        outcome,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_2xx_and_3xx_succeed() {
        assert!(!Outcome::Status(200).is_failure());
        assert!(!Outcome::Status(301).is_failure());
        for failed in [
            Outcome::Status(404),
            Outcome::Status(502),
            Outcome::ConnectionError,
            Outcome::Timeout,
        ] {
            assert!(failed.is_failure(), "{failed:?}");
        }
        assert_eq!(Outcome::Status(503).kind(), "503");
        assert_eq!(Outcome::Status(500).kind(), "other status");
    }
}
