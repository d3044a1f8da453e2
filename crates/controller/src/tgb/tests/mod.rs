//! The reconciler against the in-memory ELB ([`lb_aws::fake`]) with its Kubernetes writes
//! recorded: registration, deregistration, draining, gates, cleanup, and each AWS fault. The
//! invariants checked after every fault: nothing registered twice, nothing left registered that
//! should go, no gate opened before ELB said healthy, nothing changed by a pass that failed before
//! its AWS call.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::controller::Action;
use lb_api::TargetGroupBinding;
use lb_aws::fake::{FakeElb, Fault};
use lb_aws::{AwsErrorKind, Operation};
use lb_model::elb::{TargetGroupInfo, TargetKey, TargetState};
use serde_json::json;

use super::{Context, cleanup, error_policy, pass};
use crate::error::{ControllerError, ErrorCategory};
use crate::stores::filled::{self, Fill};
use crate::writes::recording::RecordingWrites;

const NS: &str = "shop";
const GATE: &str = "target-health.alb.ingress.k8s.aws/web";

/// A pod as the world knows it: name, address, containers ready, being deleted.
#[derive(Clone)]
struct PodSpec {
    name: String,
    ip: String,
    ready: bool,
    deleting: bool,
}

struct World {
    elb: FakeElb,
    tg: TargetGroupInfo,
    fill: Fill,
    pods: Vec<PodSpec>,
    ctx: Arc<Context<FakeElb, RecordingWrites>>,
}

fn object<K: serde::de::DeserializeOwned>(value: serde_json::Value) -> K {
    serde_json::from_value(value).expect("test object")
}

fn key(ip: &str) -> TargetKey {
    TargetKey::new(ip, 8080)
}

impl World {
    /// An ip target group, namespace `shop` labelled for gates, Service `web` (port 80 ->
    /// container port 8080), no pods yet.
    fn new() -> World {
        let elb = FakeElb::default();
        let tg = elb.add_target_group("web", "ip");
        let (stores, mut fill) = filled::stores();
        filled::put(
            &mut fill.namespaces,
            object::<Namespace>(json!({"metadata": {"name": NS, "labels": {
                "elbv2.k8s.aws/pod-readiness-gate-inject": "enabled"}}})),
        );
        filled::put(
            &mut fill.services,
            object::<Service>(json!({
                "metadata": {"name": "web", "namespace": NS},
                "spec": {"selector": {"app": "web"}, "ports": [
                    {"name": "http", "port": 80, "targetPort": 8080}]},
            })),
        );
        let config = kube::Config::new("http://127.0.0.1:9".parse().expect("url"));
        let client = kube::Client::try_from(config).expect("client (never called)");
        let ctx = Arc::new(Context::new(
            client,
            elb.clone(),
            RecordingWrites::default(),
            stores,
        ));
        World {
            elb,
            tg,
            fill,
            pods: Vec::new(),
            ctx,
        }
    }

    fn binding(&self, extra: serde_json::Value) -> TargetGroupBinding {
        let mut spec = json!({"targetGroupARN": self.tg.arn, "targetType": "ip",
                              "serviceRef": {"name": "web", "port": 80}});
        for (k, v) in extra.as_object().expect("object") {
            spec[k] = v.clone();
        }
        object(json!({
            "apiVersion": "elbv2.k8s.aws/v1beta1", "kind": "TargetGroupBinding",
            "metadata": {"name": "web", "namespace": NS, "uid": "b-1", "generation": 1},
            "spec": spec,
        }))
    }

    /// Adds (or replaces) a gated pod whose containers are `ready`.
    fn pod(&mut self, name: &str, ip: &str, ready: bool) {
        self.pods.retain(|p| p.name != name);
        self.pods.push(PodSpec {
            name: name.into(),
            ip: ip.into(),
            ready,
            deleting: false,
        });
        self.sync();
    }

    fn delete_pod(&mut self, name: &str) {
        for pod in self.pods.iter_mut().filter(|p| p.name == name) {
            pod.deleting = true;
        }
        self.sync();
    }

    /// Writes pods and the EndpointSlice into the stores; gate conditions as last written.
    fn sync(&mut self) {
        let gates = self.ctx.writes.gate_states();
        let mut endpoints = Vec::new();
        for pod in &self.pods {
            let gate_true = gates.get(&pod.name).map(String::as_str) == Some("True");
            let mut conditions = vec![json!({"type": "ContainersReady",
                "status": if pod.ready {"True"} else {"False"}})];
            // The gate condition exactly as last written, as the API server would keep it.
            conditions.extend(self.ctx.writes.last_conditions(&pod.name));
            let mut value = json!({
                "metadata": {"name": pod.name, "namespace": NS, "uid": format!("uid-{}", pod.name),
                             "labels": {"app": "web"}},
                "spec": {"containers": [], "readinessGates": [{"conditionType": GATE}]},
                "status": {"podIP": pod.ip, "conditions": conditions},
            });
            if pod.deleting {
                value["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
            }
            filled::put(&mut self.fill.pods, object::<Pod>(value));
            let ready = pod.ready && gate_true && !pod.deleting;
            endpoints.push(json!({
                "addresses": [pod.ip],
                "conditions": {"ready": ready, "serving": pod.ready, "terminating": pod.deleting},
                "targetRef": {"kind": "Pod", "name": pod.name, "namespace": NS},
            }));
        }
        filled::put(
            &mut self.fill.slices,
            object::<EndpointSlice>(json!({
                "metadata": {"name": "web-1", "namespace": NS,
                             "labels": {"kubernetes.io/service-name": "web"}},
                "addressType": "IPv4",
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                "endpoints": endpoints,
            })),
        );
    }

    /// One pass of `binding`, then the pods as its gate writes left them.
    /// Passes here follow each other at once: the pacing (see `paced_passes_...`) is waived by
    /// dating the previous pass one spacing back.
    async fn pass(&mut self, binding: &TargetGroupBinding) -> Result<Action, ControllerError> {
        let key = super::binding_key(binding);
        if self.ctx.memory.last_start(&key).is_some() {
            self.ctx
                .memory
                .pass_started(&key, std::time::Instant::now() - pass::PASS_SPACING);
        }
        self.paced_pass(binding).await
    }

    /// One pass as the runtime brings it, paced.
    async fn paced_pass(
        &mut self,
        binding: &TargetGroupBinding,
    ) -> Result<Action, ControllerError> {
        let result = pass::apply(binding, &self.ctx).await;
        self.ctx.gate_writer.flush().await;
        self.ctx.status_writer.flush().await;
        self.sync();
        result
    }

    /// The pass the requeue of a planned health look brings: the look is due now, and the
    /// targets registered so far have had interval x threshold (5 s x 2) to turn healthy.
    async fn look(&mut self, binding: &TargetGroupBinding) -> Result<Action, ControllerError> {
        self.ctx.memory.age_registrations(Duration::from_secs(10));
        self.ctx.memory.set_due(
            &super::binding_key(binding),
            Some(std::time::Instant::now()),
        );
        self.pass(binding).await
    }

    fn gate(&self, pod: &str) -> Option<String> {
        self.ctx.writes.gate_states().get(pod).cloned()
    }

    fn active(&self) -> Vec<String> {
        let mut active: Vec<String> = self
            .elb
            .active_targets(&self.tg.arn)
            .iter()
            .map(|t| t.id.clone())
            .collect();
        active.sort();
        active
    }

    /// The DescribeTargetHealth calls made so far.
    fn describes(&self) -> Vec<lb_aws::fake::Call> {
        self.elb
            .calls()
            .into_iter()
            .filter(|c| c.operation == Operation::DescribeTargetHealth)
            .collect()
    }

    fn status_health(&self) -> Option<String> {
        self.ctx.writes.last_health()
    }
}

/// The requeue delay of an action (kube's Action has no accessor: its Debug says
/// `requeue_after: Some(1.5s)`).
fn requeue_of(action: &Action) -> Option<Duration> {
    let text = format!("{action:?}");
    let inner = text.split("Some(").nth(1)?.split(')').next()?;
    let split = inner.find(|c: char| c.is_ascii_alphabetic() || c == 'µ')?;
    let (number, unit) = inner.split_at(split);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit {
        "s" => number,
        "ms" => number / 1e3,
        "µs" => number / 1e6,
        "ns" => number / 1e9,
        _ => return None,
    };
    Some(Duration::from_secs_f64(seconds))
}

/// The delay counts from the moment health was read, so the pass's own time comes off it: the
/// windows are the planned delay minus a generous allowance for that time.
fn requeue_within(action: &Action, low: Duration, high: Duration) -> bool {
    requeue_of(action).is_some_and(|d| d >= low && d <= high)
}

#[tokio::test]
async fn paced_passes_come_back_later_instead_of_holding_a_worker() {
    let mut world = World::new();
    world.pod("a", "10.0.0.1", true);
    let binding = world.binding(json!({}));
    world.pass(&binding).await.expect("pass");
    let calls = world.elb.calls().len();

    // New endpoints right after a pass: the next pass is put off to one spacing after the last,
    // and returns at once, having called nothing.
    world.pod("b", "10.0.0.2", true);
    let started = std::time::Instant::now();
    let action = world.paced_pass(&binding).await.expect("pass");
    assert!(started.elapsed() < pass::PASS_SPACING, "did not sleep");
    assert!(
        requeue_within(&action, Duration::from_millis(1), pass::PASS_SPACING),
        "{action:?}"
    );
    assert_eq!(world.elb.calls().len(), calls, "no AWS call");
    assert_eq!(world.active(), ["10.0.0.1"]);

    // The pass it comes back as registers b.
    tokio::time::sleep(requeue_of(&action).expect("requeue")).await;
    world.paced_pass(&binding).await.expect("pass");
    assert_eq!(world.active(), ["10.0.0.1", "10.0.0.2"]);

    // A binding whose last pass failed is not paced (the early return would reset its backoff).
    world.pod("c", "10.0.0.3", true);
    world.ctx.memory.failed(&super::binding_key(&binding));
    let action = world.paced_pass(&binding).await.expect("pass");
    assert_eq!(world.active(), ["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
    assert!(requeue_of(&action) > Some(pass::PASS_SPACING), "{action:?}");
    world.ctx.memory.succeeded(&super::binding_key(&binding));

    // A planned health look is never put off.
    world.look(&binding).await.expect("look");
    world.ctx.memory.set_due(
        &super::binding_key(&binding),
        Some(std::time::Instant::now()),
    );
    let before = world.describes().len();
    world.paced_pass(&binding).await.expect("pass");
    assert_eq!(world.describes().len(), before + 1, "looked at once");
}

#[tokio::test]
async fn targets_are_registered_at_containers_ready_and_gates_open_once_healthy() {
    let mut world = World::new();
    world.pod("a", "10.0.0.1", true);
    world.pod("b", "10.0.0.2", true);
    world.pod("c", "10.0.0.3", false);
    let binding = world.binding(json!({}));

    let action = world.pass(&binding).await.expect("pass");
    assert_eq!(world.active(), ["10.0.0.1", "10.0.0.2"]);
    assert_eq!(world.gate("a").as_deref(), None);
    assert_eq!(world.gate("c").as_deref(), None);
    // Nothing to learn before interval x threshold (5 s x 2).
    assert!(
        requeue_within(
            &action,
            Duration::from_secs(9),
            Duration::from_millis(10_200)
        ),
        "{action:?}"
    );
    assert_eq!(world.status_health().as_deref(), Some("0/2 healthy"));
    assert!(
        world
            .ctx
            .writes
            .event_reasons()
            .contains(&"TargetsRegistered".to_string())
    );

    world.elb.pass_health_checks(&world.tg.arn);
    let action = world.look(&binding).await.expect("pass");
    assert_eq!(world.gate("a").as_deref(), Some("True"));
    assert_eq!(world.gate("b").as_deref(), Some("True"));
    assert_eq!(
        world.gate("c").as_deref(),
        None,
        "not a target: stays closed"
    );
    assert_eq!(world.elb.count(Operation::RegisterTargets), 1);
    assert_eq!(world.status_health().as_deref(), Some("2/2 healthy"));
    // c's gate is pending, but c is no target: ELB has nothing to say until c changes.
    assert_eq!(action, Action::await_change());

    world.pod("c", "10.0.0.3", true);
    world.pass(&binding).await.expect("pass");
    world.elb.pass_health_checks(&world.tg.arn);
    let action = world.look(&binding).await.expect("pass");
    assert_eq!(world.gate("c").as_deref(), Some("True"));
    assert_eq!(action, Action::await_change(), "settled: no polling");
    assert!(world.elb.double_registrations().is_empty());
    assert_eq!(world.ctx.metrics.gates_opened(), 3);
}

/// Two healthy, Ready pods behind the binding.
async fn settled() -> (World, TargetGroupBinding) {
    let mut world = World::new();
    world.pod("a", "10.0.0.1", true);
    world.pod("b", "10.0.0.2", true);
    let binding = world.binding(json!({}));
    world.pass(&binding).await.expect("pass");
    world.elb.pass_health_checks(&world.tg.arn);
    world.look(&binding).await.expect("pass");
    world.elb.forget_calls();
    (world, binding)
}

#[tokio::test]
async fn new_endpoints_are_registered_without_a_describe_and_looks_ask_only_for_what_can_have_changed()
 {
    let (mut world, binding) = settled().await;
    for (name, ip) in [("c", "10.0.0.3"), ("d", "10.0.0.4"), ("e", "10.0.0.5")] {
        world.pod(name, ip, true);
    }
    world.pass(&binding).await.expect("pass");
    assert_eq!(world.active().len(), 5);
    assert_eq!(world.elb.count(Operation::RegisterTargets), 1);
    assert_eq!(
        world.elb.count(Operation::DescribeTargetHealth),
        0,
        "registered from what is known"
    );
    // A pass before the look is due (another endpoint change) describes nothing either.
    world.pass(&binding).await.expect("pass");
    assert_eq!(world.elb.count(Operation::DescribeTargetHealth), 0);
    world.elb.pass_health_checks(&world.tg.arn);
    world.look(&binding).await.expect("look");
    // 3 of 5 targets can still change: a look at the whole group is as cheap.
    let looks = world.describes();
    assert_eq!(looks.len(), 1);
    assert!(looks[0].targets.is_empty(), "{:?}", looks[0].targets);
    assert_eq!(world.gate("e").as_deref(), Some("True"));

    // One new pod among six healthy: the look asks for it alone.
    world.pod("f", "10.0.0.6", true);
    world.pass(&binding).await.expect("pass");
    world.elb.forget_calls();
    world.elb.pass_health_checks(&world.tg.arn);
    let action = world.look(&binding).await.expect("look");
    let looks = world.describes();
    assert_eq!(looks.len(), 1);
    assert_eq!(looks[0].targets, [key("10.0.0.6")]);
    assert_eq!(world.gate("f").as_deref(), Some("True"));
    assert_eq!(action, Action::await_change(), "settled: no more looks");
    assert_eq!(world.status_health().as_deref(), Some("6/6 healthy"));

    // Two batches on their way, the first past interval x threshold: the look asks for the
    // first alone (the second cannot be healthy yet).
    world.pod("g", "10.0.0.7", true);
    world.pass(&binding).await.expect("pass");
    world.ctx.memory.age_registrations(Duration::from_secs(10));
    world.pod("h", "10.0.0.8", true);
    world.pass(&binding).await.expect("pass");
    world.elb.forget_calls();
    world.ctx.memory.set_due(
        &super::binding_key(&binding),
        Some(std::time::Instant::now()),
    );
    world.pass(&binding).await.expect("look");
    let looks = world.describes();
    assert_eq!(looks.len(), 1);
    assert_eq!(looks[0].targets, [key("10.0.0.7")]);
}

#[tokio::test]
async fn after_a_failed_call_the_group_is_described_whole_and_what_went_missing_comes_back() {
    let (mut world, binding) = settled().await;
    world
        .elb
        .deregister_outside(&world.tg.arn, &key("10.0.0.2"));
    world.pod("c", "10.0.0.3", true);
    world
        .elb
        .fail_next(Operation::RegisterTargets, Fault::ServerError);
    world
        .pass(&binding)
        .await
        .expect_err("the registration fails");
    // Whether it took effect is unknown: the next pass describes the whole group first.
    world.pass(&binding).await.expect("pass");
    assert_eq!(world.active(), ["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
    let looks = world.describes();
    assert_eq!(looks.len(), 1);
    assert!(looks[0].targets.is_empty());
}

#[tokio::test]
async fn a_deleted_pod_is_deregistered_at_once_and_drained_without_a_second_call() {
    let (mut world, binding) = settled().await;
    world.delete_pod("b");
    let action = world.pass(&binding).await.expect("pass");
    assert_eq!(world.active(), ["10.0.0.1"]);
    assert_eq!(world.elb.count(Operation::DeregisterTargets), 1);
    assert!(
        requeue_within(&action, Duration::from_secs(4), Duration::from_secs(5)),
        "draining: {action:?}"
    );
    assert_eq!(
        world.status_health().as_deref(),
        Some("1/1 healthy, 1 draining")
    );
    world.pass(&binding).await.expect("pass");
    assert_eq!(world.elb.count(Operation::DeregisterTargets), 1);
    world.elb.finish_draining(&world.tg.arn);
    let action = world.look(&binding).await.expect("pass");
    assert_eq!(action, Action::await_change());
    assert!(
        world
            .ctx
            .writes
            .event_reasons()
            .contains(&"TargetsDeregistered".to_string())
    );
}

#[tokio::test]
async fn deleting_the_binding_deregisters_its_targets_and_opens_every_gate() {
    let mut world = World::new();
    world.pod("a", "10.0.0.1", true);
    let binding = world.binding(json!({}));
    world.pass(&binding).await.expect("pass");
    assert_eq!(world.gate("a").as_deref(), None);
    cleanup::cleanup(&binding, &world.ctx)
        .await
        .expect("cleanup");
    world.sync();
    assert!(world.active().is_empty());
    assert_eq!(world.gate("a").as_deref(), Some("True"));
    // A target group already gone: the gates are still released.
    let mut gone = world.binding(json!({"targetGroupARN": "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/gone/1"}));
    gone.metadata.name = Some("web".into());
    cleanup::cleanup(&gone, &world.ctx)
        .await
        .expect("cleanup of a binding to no target group");
}

#[tokio::test]
async fn multi_cluster_bindings_leave_other_clusters_targets_alone() {
    let mut world = World::new();
    world
        .elb
        .register_outside(&world.tg.arn, key("192.168.0.9"), TargetState::Healthy);
    world.pod("a", "10.0.0.1", true);
    let binding = world.binding(json!({"multiClusterTargetGroup": true}));
    world.pass(&binding).await.expect("pass");
    assert_eq!(world.active(), ["10.0.0.1", "192.168.0.9"]);
    cleanup::cleanup(&binding, &world.ctx)
        .await
        .expect("cleanup");
    assert_eq!(world.active(), ["192.168.0.9"]);
    // Without the flag, the binding owns the target group.
    let mut owner = World::new();
    owner
        .elb
        .register_outside(&owner.tg.arn, key("192.168.0.9"), TargetState::Healthy);
    let binding = owner.binding(json!({}));
    owner.pass(&binding).await.expect("pass");
    assert!(owner.active().is_empty());
}

mod faults;
