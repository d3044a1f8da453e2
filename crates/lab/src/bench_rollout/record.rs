//! What happened during a run, as seen from both sides: every pod's life from the pod watch
//! (created, ContainersReady, gate True, Ready, deletion started, gone), and every target's health
//! timeline from the emulator (polled, because ELB forgets a target once it has drained).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use lb_api::keys;
use lb_sandbox::aws::ControlClient;
use serde::Serialize;

use crate::clock::now;

/// One pod's life; times are seconds since the Unix epoch.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PodLife {
    pub name: String,
    pub namespace: String,
    pub ip: Option<String>,
    /// Whether the pod carries a readiness gate of ours (injected by the webhook).
    pub has_gate: bool,
    pub created: Option<f64>,
    pub containers_ready: Option<f64>,
    pub gate_true: Option<f64>,
    pub ready: Option<f64>,
    pub deleting: Option<f64>,
    pub gone: Option<f64>,
}

impl PodLife {
    /// When the pod stopped counting as a ready endpoint (deletion started, or gone).
    pub fn ready_until(&self) -> Option<f64> {
        self.deleting.or(self.gone)
    }
}

/// Watches pods (of one namespace, or labelled across all) and keeps each one's life.
pub struct PodRecorder {
    lives: Arc<Mutex<BTreeMap<String, PodLife>>>,
    task: tokio::task::JoinHandle<()>,
}

impl PodRecorder {
    /// The pods of `namespace`.
    pub fn start(client: &Client, namespace: &str) -> PodRecorder {
        Self::watching(
            Api::namespaced(client.clone(), namespace),
            watcher::Config::default(),
        )
    }

    /// The pods labelled `selector` in every namespace.
    pub fn start_labelled(client: &Client, selector: &str) -> PodRecorder {
        Self::watching(
            Api::all(client.clone()),
            watcher::Config::default().labels(selector),
        )
    }

    fn watching(api: Api<Pod>, config: watcher::Config) -> PodRecorder {
        let lives: Arc<Mutex<BTreeMap<String, PodLife>>> = Arc::default();
        let task = {
            let lives = lives.clone();
            tokio::spawn(async move {
                let mut events = watcher(api, config).default_backoff().boxed();
                while let Some(event) = events.next().await {
                    let at = now();
                    let mut lives = lives.lock().unwrap_or_else(|e| e.into_inner());
                    match event {
                        Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => {
                            observe(lives.entry(life_key(&pod)).or_default(), &pod, at);
                        }
                        Ok(watcher::Event::Delete(pod)) => {
                            let life = lives.entry(life_key(&pod)).or_default();
                            observe(life, &pod, at);
                            life.gone.get_or_insert(at);
                        }
                        _ => {}
                    }
                }
            })
        };
        PodRecorder { lives, task }
    }

    pub fn snapshot(&self) -> Vec<PodLife> {
        self.lives
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }
}

impl Drop for PodRecorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn life_key(pod: &Pod) -> String {
    format!("{}/{}", pod.namespace().unwrap_or_default(), pod.name_any())
}

fn observe(life: &mut PodLife, pod: &Pod, at: f64) {
    life.name = pod.name_any();
    life.namespace = pod.namespace().unwrap_or_default();
    life.created.get_or_insert(at);
    if life.ip.is_none() {
        life.ip = pod.status.as_ref().and_then(|s| s.pod_ip.clone());
    }
    life.has_gate = pod
        .spec
        .as_ref()
        .and_then(|s| s.readiness_gates.as_ref())
        .is_some_and(|g| {
            g.iter()
                .any(|g| keys::binding_of_gate(&g.condition_type).is_some())
        });
    let is_true = |wanted: &dyn Fn(&str) -> bool| {
        pod.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| wanted(&c.type_) && c.status == "True"))
    };
    if is_true(&|t| t == "ContainersReady") {
        life.containers_ready.get_or_insert(at);
    }
    if is_true(&|t| keys::binding_of_gate(t).is_some()) {
        life.gate_true.get_or_insert(at);
    }
    if is_true(&|t| t == "Ready") {
        life.ready.get_or_insert(at);
    }
    if pod.metadata.deletion_timestamp.is_some() {
        life.deleting.get_or_insert(at);
    }
}

/// A target's health state from `at` (seconds since the Unix epoch) until its next change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetEvent {
    pub at: f64,
    pub state: String,
}

/// Polls the emulator for a target group's timelines and keeps every target it ever saw.
pub struct TargetRecorder {
    timelines: Arc<Mutex<BTreeMap<String, Vec<TargetEvent>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TargetRecorder {
    pub fn start(control: ControlClient, target_group_arn: String) -> TargetRecorder {
        let timelines: Arc<Mutex<BTreeMap<String, Vec<TargetEvent>>>> = Arc::default();
        let task = {
            let timelines = timelines.clone();
            tokio::spawn(async move {
                loop {
                    if let Ok(targets) = control.targets(&target_group_arn).await {
                        let mut timelines = timelines.lock().unwrap_or_else(|e| e.into_inner());
                        for target in targets {
                            let known = timelines.entry(target.id.clone()).or_default();
                            for event in target.timeline {
                                if known.last().is_none_or(|last| last.at < event.at) {
                                    known.push(TargetEvent {
                                        at: event.at,
                                        state: event.state,
                                    });
                                }
                            }
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            })
        };
        TargetRecorder { timelines, task }
    }

    /// Every target (by IP) with its states in time order.
    pub fn snapshot(&self) -> BTreeMap<String, Vec<TargetEvent>> {
        self.timelines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for TargetRecorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The first time `timeline` entered `state`.
pub fn first(timeline: &[TargetEvent], state: &str) -> Option<f64> {
    timeline.iter().find(|e| e.state == state).map(|e| e.at)
}

/// How many of `intervals` ([start, end), end None = still open) contain `t`.
pub fn count_at(intervals: &[(f64, Option<f64>)], t: f64) -> usize {
    intervals
        .iter()
        .filter(|(start, end)| *start <= t && end.is_none_or(|end| t < end))
        .count()
}

/// The intervals in which each target was healthy.
pub fn healthy_intervals(
    timelines: &BTreeMap<String, Vec<TargetEvent>>,
) -> Vec<(f64, Option<f64>)> {
    let mut intervals = Vec::new();
    for timeline in timelines.values() {
        for (index, event) in timeline.iter().enumerate() {
            if event.state == "healthy" {
                intervals.push((event.at, timeline.get(index + 1).map(|next| next.at)));
            }
        }
    }
    intervals
}

/// The intervals in which each pod was Ready and not terminating.
pub fn ready_intervals(pods: &[PodLife]) -> Vec<(f64, Option<f64>)> {
    pods.iter()
        .filter_map(|p| Some((p.ready?, p.ready_until())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_intervals_end_at_the_next_state() {
        let event = |at: f64, state: &str| TargetEvent {
            at,
            state: state.to_string(),
        };
        let timelines: BTreeMap<String, Vec<TargetEvent>> = [
            (
                "10.0.0.1".to_string(),
                vec![
                    event(0.0, "initial"),
                    event(10.0, "healthy"),
                    event(30.0, "draining"),
                ],
            ),
            (
                "10.0.0.2".to_string(),
                vec![event(20.0, "initial"), event(25.0, "healthy")],
            ),
        ]
        .into();
        let intervals = healthy_intervals(&timelines);
        assert_eq!(intervals, vec![(10.0, Some(30.0)), (25.0, None)]);
        assert_eq!(count_at(&intervals, 5.0), 0);
        assert_eq!(count_at(&intervals, 26.0), 2);
        assert_eq!(count_at(&intervals, 30.0), 1);
        assert_eq!(first(&timelines["10.0.0.1"], "healthy"), Some(10.0));
    }
}
