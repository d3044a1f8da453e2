//! The product's stop signals: SIGTERM (Kubernetes stopping the pod) and SIGINT (Ctrl-C).
//! Installed before the controller starts, so that a signal during start-up is not lost.

use tokio::signal::unix::{Signal, SignalKind, signal};

pub struct Stop {
    terminate: Signal,
    interrupt: Signal,
}

impl Stop {
    pub fn install() -> std::io::Result<Stop> {
        Ok(Stop {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    /// Resolves on the first SIGTERM or SIGINT.
    pub async fn wait(mut self) {
        tokio::select! {
            _ = self.terminate.recv() => tracing::info!("SIGTERM: stopping"),
            _ = self.interrupt.recv() => tracing::info!("SIGINT: stopping"),
        }
    }
}
