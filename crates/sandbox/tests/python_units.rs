//! Runs the unit tests of the AWS plugin's pure parts (`crates/sandbox/aws/tests`) with the
//! sandbox's own venv: matchers, ALB wildcards and rules, weighted forwarding, the guard, HTTP
//! framing, the fault layer and ELB's idempotent creates.

use std::process::Command;

#[test]
fn python_plugin_unit_tests_pass() {
    let python = lb_sandbox::aws::ensure_venv().expect("the moto venv");
    let aws = concat!(env!("CARGO_MANIFEST_DIR"), "/aws");
    let output = Command::new(python)
        .args(["-m", "unittest", "-v", "test_pure", "test_faults"])
        .env("PYTHONPATH", format!("{aws}:{aws}/tests"))
        .current_dir(aws)
        .output()
        .expect("python runs");
    let report = String::from_utf8_lossy(&output.stderr);
    println!("{report}");
    assert!(
        output.status.success(),
        "python unit tests failed:\n{report}"
    );
    assert!(
        report.contains("Ran ") && !report.contains("Ran 0 tests"),
        "{report}"
    );
}
