//! The reconciler under each AWS fault and each bad input (nothing registered twice, nothing
//! leaked, no gate opened early, the retry the error chooses), and target groups found by name
//! or through a role.

use super::*;

/// Runs a pass with `fault` scripted for `operation`; returns the error.
async fn failing_pass(
    world: &mut World,
    binding: &TargetGroupBinding,
    operation: Operation,
    fault: Fault,
) -> ControllerError {
    world.elb.fail_next(operation, fault);
    let patches_before = world.ctx.writes.pod_patches.lock().unwrap().len();
    let err = world
        .look(binding)
        .await
        .expect_err("the fault fails the pass");
    let patches_after = world.ctx.writes.pod_patches.lock().unwrap().len();
    assert_eq!(
        patches_before, patches_after,
        "{operation:?} {fault:?}: no gate written by a failed pass"
    );
    err
}

#[tokio::test]
async fn registration_faults_register_nothing_twice_and_open_no_gate_early() {
    for fault in [
        Fault::Throttled,
        Fault::ServerError,
        Fault::Timeout,
        Fault::LostAnswer,
    ] {
        let mut world = World::new();
        world.pod("a", "10.0.0.1", true);
        let binding = world.binding(json!({}));
        let err = failing_pass(&mut world, &binding, Operation::RegisterTargets, fault).await;
        let expected = if fault == Fault::Throttled {
            ErrorCategory::Throttled
        } else {
            ErrorCategory::Transient
        };
        assert_eq!(err.category(), expected, "{fault:?}");
        let took_effect = fault == Fault::LostAnswer;
        assert_eq!(world.active().len(), usize::from(took_effect), "{fault:?}");

        world.pass(&binding).await.expect("the retry succeeds");
        assert_eq!(world.active(), ["10.0.0.1"], "{fault:?}");
        assert_eq!(
            world.elb.count(Operation::RegisterTargets),
            if took_effect { 1 } else { 2 },
            "{fault:?}: a registration that took effect is not repeated"
        );
        assert_eq!(
            world.gate("a").as_deref(),
            None,
            "{fault:?}: not healthy yet"
        );
        world.elb.pass_health_checks(&world.tg.arn);
        world.look(&binding).await.expect("pass");
        assert_eq!(world.gate("a").as_deref(), Some("True"), "{fault:?}");
        assert!(world.elb.double_registrations().is_empty(), "{fault:?}");
    }
}

#[tokio::test]
async fn deregistration_faults_leak_nothing_and_deregister_once() {
    for fault in [
        Fault::Throttled,
        Fault::ServerError,
        Fault::Timeout,
        Fault::LostAnswer,
    ] {
        let (mut world, binding) = settled().await;
        world.delete_pod("b");
        failing_pass(&mut world, &binding, Operation::DeregisterTargets, fault).await;
        world.pass(&binding).await.expect("the retry succeeds");
        assert_eq!(world.active(), ["10.0.0.1"], "{fault:?}: nothing leaked");
        let calls = world.elb.count(Operation::DeregisterTargets);
        assert_eq!(
            calls,
            if fault == Fault::LostAnswer { 1 } else { 2 },
            "{fault:?}"
        );
        world.pass(&binding).await.expect("pass");
        assert_eq!(
            world.elb.count(Operation::DeregisterTargets),
            calls,
            "{fault:?}: once"
        );
    }
}

#[tokio::test]
async fn health_faults_change_nothing_and_open_no_gate() {
    for fault in [Fault::Throttled, Fault::ServerError, Fault::Timeout] {
        let mut world = World::new();
        world.pod("a", "10.0.0.1", true);
        let binding = world.binding(json!({}));
        world.pass(&binding).await.expect("pass");
        world.elb.pass_health_checks(&world.tg.arn);
        world.elb.forget_calls();
        failing_pass(&mut world, &binding, Operation::DescribeTargetHealth, fault).await;
        assert_eq!(world.gate("a").as_deref(), None, "{fault:?}");
        assert_eq!(world.elb.count(Operation::RegisterTargets), 0);
        assert_eq!(world.elb.count(Operation::DeregisterTargets), 0);
        world.look(&binding).await.expect("pass");
        assert_eq!(world.gate("a").as_deref(), Some("True"), "{fault:?}");
    }
}

#[tokio::test]
async fn a_target_group_by_name_is_looked_up_once() {
    let mut world = World::new();
    world.pod("a", "10.0.0.1", true);
    let mut binding = world.binding(json!({"targetGroupName": "web"}));
    binding.spec.target_group_arn = None;
    for _ in 0..3 {
        world.pass(&binding).await.expect("pass");
    }
    assert_eq!(world.elb.count(Operation::DescribeTargetGroups), 1);
    assert_eq!(world.active(), ["10.0.0.1"]);
    let mut missing = binding.clone();
    missing.spec.target_group_name = Some("nope".into());
    let err = world
        .pass(&missing)
        .await
        .expect_err("no such target group");
    assert_eq!(
        err.to_string(),
        "spec.targetGroupName \"nope\": no such target group"
    );
    assert_eq!(err.category(), ErrorCategory::MissingInAws);
}

#[tokio::test]
async fn a_role_reaches_a_target_group_in_another_account() {
    let mut world = World::new();
    let theirs = world
        .elb
        .add_target_group_in("999999999999", "shared", "ip");
    let role = "arn:aws:iam::999999999999:role/lb";
    world.elb.allow_role(role, Some("x-1"), "999999999999");
    world.pod("a", "10.0.0.1", true);
    let binding = world.binding(
        json!({"targetGroupARN": theirs.arn, "iamRoleArnToAssume": role,
                                       "assumeRoleExternalId": "x-1"}),
    );
    world.pass(&binding).await.expect("pass");
    assert_eq!(world.elb.active_targets(&theirs.arn), [key("10.0.0.1")]);

    let mut wrong = binding.clone();
    wrong.spec.assume_role_external_id = Some("x-2".into());
    let err = world.pass(&wrong).await.expect_err("the role refuses");
    assert_eq!(err.reason(), "AssumeRoleFailed");
    assert_eq!(err.category(), ErrorCategory::AccessDenied);
    assert!(err.to_string().contains(role), "{err}");
    // Without the role, the target group is not there for the controller's own account.
    let mut unroled = binding.clone();
    unroled.spec.iam_role_arn_to_assume = None;
    let err = world.pass(&unroled).await.expect_err("not in our account");
    assert_eq!(err.reason(), "TargetGroupNotFound");
}

#[tokio::test]
async fn bad_input_touches_no_target_and_chooses_its_retry() {
    let mut world = World::new();
    world.pod("a", "10.0.0.1", true);
    let wrong_vpc = world.binding(json!({"vpcID": "vpc-11111111"}));
    let err = world.pass(&wrong_vpc).await.expect_err("VPC mismatch");
    assert_eq!(err.category(), ErrorCategory::InvalidInput);
    assert!(
        err.to_string().contains("spec.vpcID \"vpc-11111111\""),
        "{err}"
    );
    let action = error_policy(Arc::new(wrong_vpc), &err, world.ctx.clone());
    assert_eq!(
        action,
        Action::await_change(),
        "an invalid spec waits for a change"
    );

    let mut no_service = world.binding(json!({}));
    no_service.metadata.name = Some("no-service".into());
    no_service.spec.service_ref.name = "missing".into();
    let err = world.pass(&no_service).await.expect_err("no Service");
    assert_eq!(err.reason(), "ServiceNotFound");
    assert_eq!(
        err.to_string(),
        "spec.serviceRef.name \"missing\": Service shop/missing was not found"
    );
    let action = error_policy(Arc::new(no_service), &err, world.ctx.clone());
    assert!(
        requeue_within(
            &action,
            Duration::from_millis(100),
            Duration::from_millis(600)
        ),
        "soon: {action:?}"
    );

    world
        .elb
        .fail_next(Operation::DescribeTargetHealth, Fault::Throttled);
    let mut binding = world.binding(json!({}));
    binding.metadata.name = Some("throttled".into());
    let err = world.pass(&binding).await.expect_err("throttled");
    let action = error_policy(Arc::new(binding), &err, world.ctx.clone());
    assert!(
        requeue_within(&action, Duration::from_secs(10), Duration::from_secs(12)),
        "long: {action:?}"
    );

    assert_eq!(world.elb.count(Operation::RegisterTargets), 0);
    assert_eq!(world.elb.count(Operation::DeregisterTargets), 0);
    assert!(world.ctx.writes.pod_patches.lock().unwrap().is_empty());
    assert!(matches!(err, ControllerError::Aws(ref e) if e.kind == AwsErrorKind::Throttled));
}
