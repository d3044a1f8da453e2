//! `bench-gates` in short, so it cannot rot: pods spread over several bindings, scaled out at
//! once. Counts are checked (every pod registered and gated, every binding finished, batched
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
    };
    let figures = figures(options).await.expect("the benchmark runs");
    println!("{}", figures.table());
    assert_eq!(figures.pods, 24);
    assert_eq!(figures.gate_ms.0.len(), 24, "every gate opened after healthy");
    assert_eq!(figures.register_ms.0.len(), 24, "every pod registered");
    assert_eq!(figures.binding_done_ms.0.len(), 3, "every binding finished");
    assert_eq!(figures.deregister_ms.0.len(), 4, "every deleted pod drained");
    let registers = figures.calls(Operation::RegisterTargets);
    assert!(
        (3..=24).contains(&registers),
        "at least one RegisterTargets per binding, never one per pod and more: {registers}"
    );
    assert_eq!(figures.steady_describes, 0, "no health polling once settled");
    let phases: Vec<&str> = figures.phases.iter().map(|(p, _)| *p).collect();
    for phase in ["snapshot", "register", "describe", "gates", "status"] {
        assert!(phases.contains(&phase), "{phase} timed: {phases:?}");
    }
}
