use super::*;
use crate::calls::Operation;
use crate::deployer::diff::tests::{stack, target_group};
use crate::deployer::diff::{diff, teardown};
use crate::fake::FakeElb;

/// One reconcile: describe, diff, apply.
async fn converge(api: &FakeElb, stack: &Stack) -> Result<Applied, AwsError> {
    let existing = api.describe_stack(&Owner::of(stack)).await?;
    let steps = diff(stack, &existing);
    apply(api, stack, &existing, &steps).await
}

async fn steps_left(api: &FakeElb, stack: &Stack) -> Vec<Step> {
    let existing = api
        .describe_stack(&Owner::of(stack))
        .await
        .expect("describe");
    diff(stack, &existing)
}

#[tokio::test]
async fn a_new_stack_is_created_and_then_costs_no_mutating_call() {
    let api = FakeElb::default();
    let stack = stack();
    let applied = converge(&api, &stack).await.expect("apply");
    assert_eq!(
        api.call_names(),
        [
            "DescribeLoadBalancers",
            "CreateTargetGroup",
            "CreateTargetGroup",
            "CreateLoadBalancer",
            "CreateListener",
            "CreateListener"
        ]
    );
    assert!(applied.load_balancer_arn.is_some());
    assert_eq!(
        applied.target_group_arns.keys().collect::<Vec<_>>(),
        ["demo/web:443", "demo/web:80"]
    );
    let listeners = api.listeners();
    assert!(
        listeners
            .iter()
            .all(|(port, _, tg)| applied.target_group_arns[&format!("demo/web:{port}")] == *tg),
        "{listeners:?}"
    );
    api.forget_calls();
    let again = converge(&api, &stack).await.expect("apply");
    assert_eq!(api.call_names(), ["DescribeLoadBalancers"]);
    assert_eq!(again, applied);
}

/// A call fails half-way (throttling, 5xx): the next reconcile finishes the job; nothing is made
/// twice and nothing is left over.
#[tokio::test]
async fn a_failure_half_way_is_finished_by_the_next_reconcile_without_duplicates() {
    let api = FakeElb::default();
    let stack = stack();
    api.fail(Operation::CreateListener, 1);
    let error = converge(&api, &stack).await.expect_err("scripted failure");
    assert_eq!(error.kind, AwsErrorKind::Unavailable);
    converge(&api, &stack).await.expect("second reconcile");
    assert_eq!(api.target_group_arns().len(), 2);
    assert_eq!(api.load_balancer_arns().len(), 1);
    assert_eq!(api.listeners().len(), 2);
    assert_eq!(steps_left(&api, &stack).await, []);
}

/// A new protocol: the new group exists and the listener forwards to it before the old group is
/// deleted (the fake, like ELB, refuses to delete a group a listener uses).
#[tokio::test]
async fn an_immutable_change_moves_the_listener_to_the_new_group_then_deletes_the_old() {
    let api = FakeElb::default();
    let before = stack();
    let first = converge(&api, &before).await.expect("apply");
    let mut after = stack();
    after.target_groups[0].protocol = lb_model::stack::Protocol::Tls;
    after.target_groups[0].name = "k8s-demo-web-tls".into();
    let second = converge(&api, &after).await.expect("replace");
    let old = &first.target_group_arns["demo/web:80"];
    let new = &second.target_group_arns["demo/web:80"];
    assert_ne!(old, new);
    assert!(!api.target_group_arns().contains(old));
    assert!(
        api.listeners()
            .iter()
            .any(|(port, _, tg)| *port == 80 && tg == new)
    );
    assert_eq!(steps_left(&api, &after).await, []);
}

#[tokio::test]
async fn teardown_leaves_only_what_was_not_ours() {
    let api = FakeElb::default();
    let stack = stack();
    converge(&api, &stack).await.expect("apply");
    api.insert_target_group(
        "arn:foreign",
        TargetGroup {
            tags: BTreeMap::new(),
            ..target_group(8080)
        },
    );
    let owner = Owner::of(&stack);
    let existing = api.describe_stack(&owner).await.expect("describe");
    let steps = teardown(&owner, &existing);
    apply(&api, &stack, &existing, &steps)
        .await
        .expect("teardown");
    assert_eq!(api.target_group_arns(), ["arn:foreign"]);
    assert!(api.load_balancer_arns().is_empty());
    assert!(api.listeners().is_empty());
}
