//! The probes Kubernetes asks (`--health-probe-bind-addr`, plain HTTP, as upstream on :61779):
//!
//! - `/healthz`: the process answers;
//! - `/readyz`: the caches the webhooks and reconcilers read (bindings, pods, Services,
//!   EndpointSlices, namespaces) have their first full list. A standby is ready too: it serves
//!   the webhooks behind the same Service as the leader.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::StatusCode;

use crate::stores::Stores;

/// Serves the probes until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, stores: Stores) {
    let synced = Arc::new(AtomicBool::new(false));
    let mark = synced.clone();
    let waiting = tokio::spawn(async move {
        let _ = futures::join!(
            stores.bindings.wait_until_ready(),
            stores.pods.wait_until_ready(),
            stores.services.wait_until_ready(),
            stores.slices.wait_until_ready(),
            stores.namespaces.wait_until_ready(),
        );
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
