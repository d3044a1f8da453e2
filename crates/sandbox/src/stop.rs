//! Waiting for the signal to stop a long-running command.

use std::time::Duration;

/// Returns on Ctrl-C, SIGTERM, or after `run_for`, whichever comes first.
pub async fn wait_for_stop(run_for: Option<Duration>) {
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let sigterm = async {
        match terminate.as_mut() {
            Some(signal) => {
                signal.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    let duration = async {
        match run_for {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = sigterm => {}
        () = duration => {}
    }
}
