//! The rollout benchmark (`lb-controller bench-rollout`) in small: one sandbox, 3 replicas, a fast
//! health check, a short hold. It keeps the benchmark from rotting, and checks the two facts it
//! exists to show: without gates a rolling update under load fails requests (the emulator is
//! realistic enough to show the seeds' problem), and with our controller's defaults it fails none,
//! through an ALB, through the NLB the controller makes from an annotated Service, and through the
//! ALB it makes from an Ingress.

use std::time::Duration;

use lb_lab::bench_rollout::{RolloutOptions, Scenario, report, run_on};
use lb_sandbox::testing::start_sandbox;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_updates_fail_requests_without_gates_and_none_with_the_controller_defaults() {
    let sandbox = start_sandbox().await;
    let out = sandbox.dir().join("bench-rollout");
    let options = RolloutOptions {
        scenarios: vec![
            Scenario::NoGates,
            Scenario::Gates,
            Scenario::Nlb,
            Scenario::Ingress,
        ],
        repetitions: 1,
        replicas: 3,
        max_surge: 1,
        interval: 2,
        healthy_threshold: 2,
        deregistration_delay: 2,
        rate: 40,
        start_delay: Duration::from_millis(500),
        routing_lag: Duration::from_secs(1),
        termination_hold: Duration::from_secs(4),
        out: out.clone(),
        ..RolloutOptions::default()
    };
    let runs = run_on(&sandbox, &options)
        .await
        .expect("the benchmark runs");
    let table = report::write(&options, &runs).expect("the report is written");
    println!("{table}");

    let [without, with, nlb, ingress] = [
        Scenario::NoGates,
        Scenario::Gates,
        Scenario::Nlb,
        Scenario::Ingress,
    ]
    .map(|scenario| {
        let run = runs
            .iter()
            .find(|r| r.scenario == scenario)
            .expect("a run of each scenario");
        report::summarize(run, &options)
    });
    assert!(without.requests > 0 && with.requests > 0);
    assert!(
        without.failed > 0,
        "without gates, old pods die before the new targets are healthy: {without:?}"
    );
    assert!(
        without.healthy_to_ready.iter().any(|s| *s < 0.0),
        "without gates, pods are Ready before their targets are healthy"
    );
    assert_eq!(
        with.failed, 0,
        "with gates and the hold: {:?}",
        with.failures
    );
    assert_eq!(with.new_pods_without_gate, 0);
    // Through the NLB the controller made from an annotated Service: every request a new TCP
    // connection, none failed, every new pod gated.
    assert!(nlb.requests > 0);
    assert_eq!(nlb.failed, 0, "through the NLB: {:?}", nlb.failures);
    assert_eq!(nlb.new_pods_without_gate, 0);
    // Through the ALB the controller made from an Ingress (its rule -> the ip target group).
    assert!(ingress.requests > 0);
    assert_eq!(
        ingress.failed, 0,
        "through the Ingress's ALB: {:?}",
        ingress.failures
    );
    assert_eq!(ingress.new_pods_without_gate, 0);
    assert_eq!(
        with.healthy_to_ready.len(),
        3,
        "every new pod's target turned healthy"
    );
    assert!(
        with.healthy_to_ready.iter().all(|s| *s >= 0.0),
        "with gates, no pod is Ready before its target is healthy: {:?}",
        with.healthy_to_ready
    );
    for file in [
        "results.json",
        "results.md",
        "1-no-gates-1.svg",
        "2-gates-1.svg",
    ] {
        let text = std::fs::read_to_string(out.join(file)).expect(file);
        assert!(!text.is_empty(), "{file}");
    }
    let picture = std::fs::read_to_string(out.join("2-gates-1.svg")).unwrap();
    assert!(picture.starts_with("<svg") && picture.contains("0 failed of"));
    sandbox.shutdown().await;
}
