//! The one writer of pod conditions: the readiness-gate conditions a pass decided (see
//! [`lb_model::plan::GateWrite`]), written side by side (a rollout flips many at once), each only
//! our condition type, each guarded by the pod's uid.

use std::time::Instant;

use futures::StreamExt;
use lb_model::plan::GateWrite;

use crate::error::{KubeContext, Result};
use crate::metrics::Metrics;
use crate::writes::ClusterWrites;

/// Pod status writes in flight at once per binding.
const WRITES_AT_ONCE: usize = 16;

/// Writes `gate_writes` in `namespace`. `health_seen` is when the health these verdicts come
/// from was read: a gate opened is counted and timed from then to its write (the controller's
/// share of the gate latency); None for gates released without health (a binding deleted).
pub async fn write<W: ClusterWrites>(
    writes: &W,
    metrics: &Metrics,
    namespace: &str,
    gate_writes: Vec<GateWrite>,
    health_seen: Option<Instant>,
) -> Result<()> {
    let results: Vec<Result<()>> = futures::stream::iter(gate_writes)
        .map(|write| async move {
            let written = writes
                .patch_pod_status(namespace, &write.pod, &write.patch)
                .await
                .context(|| format!("writing the readiness gate of pod {namespace}/{}", write.pod))?;
            if let (true, true, Some(seen)) = (written, write.verdict.status, health_seen) {
                metrics.gate_opened(seen.elapsed());
            }
            tracing::debug!(pod = %write.pod, status = write.verdict.status, reason = %write.verdict.reason, written, "readiness gate");
            Ok(())
        })
        .buffer_unordered(WRITES_AT_ONCE)
        .collect()
        .await;
    results.into_iter().collect()
}
