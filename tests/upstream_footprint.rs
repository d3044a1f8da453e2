//! The same AWS footprint as upstream, against what upstream's own binary created for the
//! measured workload (crates/lab/fixtures/upstream-footprint, cluster `lb-sandbox`):
//!
//! - the model built over the workload with the UIDs the measurement recorded gives exactly its
//!   names, tags, descriptions, listeners, rules, health checks, security-group rules and the
//!   attributes it sets;
//! - on the sandbox, ours applied to the workload leaves the emulator in the state upstream left
//!   it, field by field (moto's defaults included), the names that hash a UID matched by tags.

use std::time::Duration;

use lb_lab::footprint::{CLUSTER, WORKLOAD_YAML, compare, fixture, model};
use lb_lab::harness::start_controller;
use lb_sandbox::manifests;
use lb_sandbox::testing::*;

#[test]
fn the_model_builds_upstreams_footprint() {
    let fixture = fixture();
    let uids = serde_json::from_value(fixture["object_uids"].clone()).expect("object_uids");
    let workload = model::workload(WORKLOAD_YAML, &uids).expect("the workload parses");
    let stacks = model::stacks(&workload, CLUSTER).expect("every stack builds");
    assert_eq!(stacks.len(), 3, "two ALBs and an NLB");
    let found = model::differences(&fixture, &stacks, CLUSTER);
    assert!(
        found.is_empty(),
        "{} difference(s) from upstream's footprint:\n{}",
        found.len(),
        found.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_the_sandbox_ours_leaves_upstreams_footprint() {
    let sandbox = start_sandbox().await;
    let controller = start_controller(&sandbox).await.expect("controller starts");
    let client = sandbox.client();
    manifests::apply_yaml(&client, WORKLOAD_YAML, "default")
        .await
        .expect("the workload applies");
    let control = sandbox.aws().expect("aws").control();
    let expected = compare::canonical(&fixture());
    // Converged: as many resources as upstream made, and two looks 5 s apart agree.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    let mut previous = serde_json::Value::Null;
    let found = loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let now = compare::canonical(&control.footprint().await.expect("footprint"));
        let complete = ["load_balancers", "target_groups", "security_groups"]
            .iter()
            .all(|list| {
                now[list].as_array().map(Vec::len) == expected[list].as_array().map(Vec::len)
            });
        if (complete && now == previous) || tokio::time::Instant::now() > deadline {
            break now;
        }
        previous = now;
    };
    let differences = compare::differences(&expected, &found);
    // A values file written for upstream rarely names the VPC: it is found by its tags.
    let aws = sandbox.aws().expect("aws");
    let vpc = lb_aws::vpc::discover_vpc(
        &aws.sdk_config().await,
        &Default::default(),
        &[("Name".to_string(), "lb-sandbox".to_string())].into(),
    )
    .await
    .expect("the VPC tagged Name=lb-sandbox");
    assert_eq!(vpc, aws.seeded().vpc_id);
    controller.stop().await;
    sandbox.shutdown().await;
    assert!(
        differences.is_empty(),
        "{} difference(s) from upstream's footprint:\n{}",
        differences.len(),
        differences.join("\n")
    );
}
