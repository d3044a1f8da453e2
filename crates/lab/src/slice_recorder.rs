//! When each pod address first appeared in an EndpointSlice of a Service named `web`: the
//! controller can register a pod only once the EndpointSlice controller has listed it, so the
//! benchmarks subtract this lag (the sandbox's) from the registration latency.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};

use crate::clock::now;

/// When each address first appeared in an EndpointSlice of a Service named `web` (the controller
/// can register a pod only once the EndpointSlice controller has listed it).
pub(crate) struct SliceRecorder {
    first_seen: Arc<Mutex<HashMap<String, f64>>>,
    task: tokio::task::JoinHandle<()>,
}

impl SliceRecorder {
    pub(crate) fn start(client: &kube::Client) -> SliceRecorder {
        let first_seen: Arc<Mutex<HashMap<String, f64>>> = Arc::default();
        let api: Api<EndpointSlice> = Api::all(client.clone());
        let config = watcher::Config::default().labels("kubernetes.io/service-name=web");
        let task = {
            let first_seen = first_seen.clone();
            tokio::spawn(async move {
                let mut events = watcher(api, config).default_backoff().boxed();
                while let Some(event) = events.next().await {
                    let at = now();
                    if let Ok(watcher::Event::Apply(slice) | watcher::Event::InitApply(slice)) =
                        event
                    {
                        let mut seen = first_seen.lock().unwrap_or_else(|e| e.into_inner());
                        for endpoint in &slice.endpoints {
                            for address in &endpoint.addresses {
                                seen.entry(address.clone()).or_insert(at);
                            }
                        }
                    }
                }
            })
        };
        SliceRecorder { first_seen, task }
    }

    pub(crate) fn first_seen(&self, address: &str) -> Option<f64> {
        self.first_seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(address)
            .copied()
    }
}

impl Drop for SliceRecorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}
