//! A short run of the Gateway API conformance suite (GATEWAY-HTTP, unmodified) against the
//! controller on the sandbox: the suite's own setup (its base Gateways, Services and echo
//! backends, every Gateway Accepted and Programmed, every pod Ready) and a few of its core tests.
//! The full run is one command: `lb-controller conformance --report docs/conformance/report.yaml`.

use lb_lab::conformance::{ConformanceOptions, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conformance_suite_passes_its_setup_and_a_few_core_tests() {
    let report = std::env::temp_dir().join(format!("conformance-{}.yaml", std::process::id()));
    let options = ConformanceOptions {
        run_test: None,
        only: [
            "GatewayClassObservedGenerationBump",
            "HTTPRouteSimpleSameNamespace",
            "HTTPRouteInvalidNonExistentBackendRef",
        ]
        .map(String::from)
        .to_vec(),
        report: Some(report.clone()),
        timeout: "20m".into(),
    };
    let summary = run(options).await.expect("the conformance tests pass");
    println!("{summary}");
    assert!(
        summary.contains("GATEWAY-HTTP core: 3 passed, 0 failed"),
        "{summary}"
    );
    let _ = std::fs::remove_file(report);
}
