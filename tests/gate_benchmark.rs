//! `bench-gates` in short, so it cannot rot: pods spread over several bindings, scaled out at
//! 16 pods/s. Counts are checked (every pod registered and gated, every binding finished, batched
//! registrations, no health polling once settled); times are printed, never asserted.

use std::time::Duration;

use lb_aws::Operation;
use lb_lab::bench::{BenchOptions, figures};

mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_gates_across_bindings_registers_and_gates_every_pod_and_then_goes_quiet() {
    common::init_tracing();
    let options = BenchOptions {
        pods: 24,
        bindings: 3,
        interval: 2,
        steady: Duration::from_secs(6),
        delete: 4,
        // Paced, so the ramp is run too.
        rate: 16.0,
        // The API server's counters are read and parsed too.
        api_writes: true,
        // The load balancers carry only their frontend group: the controller opens the cluster
        // security group to it, from the bindings' networking.
        closed: true,
        no_security_groups: false,
    };
    let figures = figures(options).await.expect("the benchmark runs");
    println!("{}", figures.table());
    assert_eq!(figures.pods, 24);
    assert_eq!(
        figures.gate_ms.0.len(),
        24,
        "every gate opened after healthy"
    );
    assert_eq!(figures.register_ms.0.len(), 24, "every pod registered");
    assert_eq!(figures.binding_done_ms.0.len(), 3, "every binding finished");
    assert_eq!(
        figures.deregister_ms.0.len(),
        4,
        "every deleted pod drained"
    );
    let registers = figures.calls(Operation::RegisterTargets);
    assert!(
        (3..=24).contains(&registers),
        "at least one RegisterTargets per binding, never one per pod and more: {registers}"
    );
    // The fewest calls registering every pod in time: one per binding at least, one per pod at
    // most, fewer for a longer deadline.
    let floors: Vec<(f64, usize)> = figures.register_floor.clone();
    assert_eq!(floors.len(), 2, "{floors:?}");
    assert_eq!((floors[0].0, floors[1].0), (0.5, 1.0), "{floors:?}");
    assert_eq!(
        figures.floor_pods, figures.pods,
        "every pod seen ready and listed"
    );
    let (within_half, within_one) = (floors[0].1, floors[1].1);
    assert!(
        (3..=24).contains(&within_half) && within_one <= within_half,
        "{floors:?}"
    );
    assert_eq!(
        figures.steady_describes, 0,
        "no health polling once settled"
    );
    // The three bindings admit one frontend group on one port: one rule, however many pods, and
    // no EC2 call once settled.
    assert_eq!(
        figures.rules_added, 1,
        "one rule for 24 pods and 3 bindings"
    );
    assert_eq!(figures.steady_ec2, 0, "no EC2 call once settled");
    assert_eq!(
        figures.start_to_gate_ms.0.len(),
        24,
        "every pod's gate timed"
    );
    let phases: Vec<&str> = figures.phases.iter().map(|(p, _)| *p).collect();
    for phase in ["snapshot", "register", "describe", "gates", "status"] {
        assert!(phases.contains(&phase), "{phase} timed: {phases:?}");
    }
    // The API server counted the scale-out's writes: its 24 pods created, and their statuses.
    let writes: std::collections::HashMap<String, u64> = figures
        .api_writes
        .clone()
        .expect("asked for")
        .into_iter()
        .collect();
    assert!(
        writes.get("POST pods").is_some_and(|n| *n >= 24),
        "{writes:?}"
    );
    assert!(
        writes.get("PATCH pods/status").is_some_and(|n| *n >= 24),
        "{writes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttling_elb_is_met_by_slowing_down_not_by_failed_passes() {
    use k8s_openapi::api::apps::v1::Deployment;
    use kube::Api;
    use kube::api::PostParams;
    use lb_sandbox::testing::{is_ready, pods_of, start_sandbox, web_deployment};

    common::init_tracing();
    let sandbox = start_sandbox().await;
    let controller = lb_lab::harness::start_controller(&sandbox)
        .await
        .expect("controller starts");
    let control = sandbox.aws().expect("aws").control();
    // One target call a second: the first pass's describe and the scale-out's registrations and
    // looks cannot all fit.
    control.set_throttle(1.0).await.expect("throttle");
    lb_lab::harness::gated_web_binding(&sandbox, "throttled", "throttled", 2)
        .await
        .expect("binding");
    Api::<Deployment>::namespaced(sandbox.client(), "throttled")
        .create(&PostParams::default(), &web_deployment("web", 8, 25, 0))
        .await
        .expect("deployment");
    let mut ready = 0;
    for _ in 0..600 {
        let pods = pods_of(&sandbox.client(), "throttled", "web").await;
        ready = pods.iter().filter(|p| is_ready(p)).count();
        if ready == 8 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let refused = control.set_throttle(0.0).await.expect("throttle off");
    let calls = &controller.calls;
    let failed: u64 = [
        Operation::RegisterTargets,
        Operation::DeregisterTargets,
        Operation::DescribeTargetHealth,
    ]
    .into_iter()
    .map(|op| calls.failed(op))
    .sum();
    println!(
        "8 gated pods Ready behind an ELB throttled to 1 call/s: {refused} calls refused, {failed} target calls failed after the SDK's retries, {} reconciles failed",
        controller.context.metrics.reconcile_errors()
    );
    assert_eq!(ready, 8, "every gated pod turned Ready");
    assert!(refused > 0, "the ELB did throttle");
    assert_eq!(
        failed, 0,
        "throttling slowed the calls down; none reached the controller as a failure"
    );
    controller.stop().await;
    sandbox.shutdown().await;
}
