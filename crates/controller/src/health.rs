//! The probes Kubernetes asks (`--health-probe-bind-addr`, plain HTTP, as upstream on :61779):
//!
//! - `/healthz`: the process answers;
//! - `/readyz`: the caches the webhooks and reconcilers read (bindings, pods, Services,
//!   EndpointSlices, nodes, namespaces; Ingresses, IngressClasses and their parameters with the
//!   Ingress reconciler) have their first full list. A standby is ready too: it serves the
//!   webhooks behind the same Service as the leader.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::http::StatusCode;

use crate::stores::Stores;

/// Serves the probes until the task is dropped. `ingresses`: the Ingress reconciler runs, so the
/// Ingresses, their classes and the classes' parameters are read too (their watches run only
/// then).
pub async fn serve(listener: tokio::net::TcpListener, stores: Stores, ingresses: bool) {
    let synced = Arc::new(AtomicBool::new(false));
    let mark = synced.clone();
    let waiting = tokio::spawn(async move {
        // The caches' flags are read, not their stores' readiness futures awaited: such a future
        // (kube-runtime's DelayedInit) wakes only its last poller, and the reconcilers' runtimes
        // await the same futures (see `stores::Listed`).
        let started = std::time::Instant::now();
        let mut said = started;
        loop {
            let pending = stores.unsynced(ingresses);
            if pending.is_empty() {
                break;
            }
            if said.elapsed() >= Duration::from_secs(10) {
                tracing::info!(?pending, "waiting for the first list of these caches");
                said = std::time::Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tracing::info!(took = ?started.elapsed(), "caches synced: ready");
        mark.store(true, Ordering::Release);
    });
    let app = axum::Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .route(
            "/readyz",
            axum::routing::get(move || {
                let ready = synced.load(Ordering::Acquire);
                async move {
                    if ready {
                        (StatusCode::OK, "ok")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "caches not synced yet")
                    }
                }
            }),
        );
    if let Err(err) = axum::serve(listener, app).await {
        tracing::warn!("health probe server: {err}");
    }
    waiting.abort();
}
