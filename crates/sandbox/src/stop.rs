//! Waiting for the signal to stop a long-running command.
//!
//! The handlers are installed by `StopSignals::install`, before the command says it is ready: a
//! Ctrl-C that arrives right after "ready" must reach the handler, not kill the process.

use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};

pub struct StopSignals {
    interrupt: Option<Signal>,
    terminate: Option<Signal>,
}

impl StopSignals {
    /// Installs the SIGINT and SIGTERM handlers now. Call from within the tokio runtime.
    pub fn install() -> StopSignals {
        StopSignals {
            interrupt: signal(SignalKind::interrupt()).ok(),
            terminate: signal(SignalKind::terminate()).ok(),
        }
    }

    /// Returns on Ctrl-C, SIGTERM, or after `run_for`, whichever comes first.
    pub async fn wait(mut self, run_for: Option<Duration>) {
        let interrupt = wait_on(self.interrupt.as_mut());
        let terminate = wait_on(self.terminate.as_mut());
        let duration = async {
            match run_for {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = interrupt => {}
            () = terminate => {}
            () = duration => {}
        }
    }
}

async fn wait_on(signal: Option<&mut Signal>) {
    match signal {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// Installs the handlers and waits: for commands that have nothing to announce first.
pub async fn wait_for_stop(run_for: Option<Duration>) {
    StopSignals::install().wait(run_for).await;
}
