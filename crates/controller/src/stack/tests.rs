//! The pipeline on the fakes: converge from empty, a no-op, a failure half-way finished by the
//! next pass, replacement switches (an NLB listener, an ALB rule), and removal.

use lb_api::TargetType;
use lb_aws::Operation;
use lb_aws::deployer::apply::LoadBalancers;
use lb_aws::deployer::diff::Owner;
use lb_aws::deployer::switch::SwitchPoint;
use lb_aws::fake::FakeElb;
use lb_model::elb::TargetState;
use lb_model::fixtures;
use lb_model::ingress::member::{Cluster, Services};
use lb_model::ingress::{GroupId, GroupMember, build_group};
use lb_model::stack::Stack;
use serde_json::json;

use super::fake::{FakeEc2, RecordingStackWrites, Write};
use super::*;

type TestPipeline = Pipeline<FakeElb, FakeEc2, RecordingStackWrites>;

fn pipeline() -> TestPipeline {
    Pipeline::new(
        FakeElb::default(),
        FakeEc2::with_subnets(fixtures::vpc()),
        RecordingStackWrites::default(),
    )
}

/// Blog 001's NLB with `target_type`.
fn nlb(target_type: TargetType) -> Stack {
    let service = fixtures::seed_service();
    lb_model::service::desired(
        &service,
        Some(target_type),
        &fixtures::settings(),
        &fixtures::vpc(),
    )
    .expect("builds")
    .stack
}

fn nlb_scope() -> BindingScope {
    BindingScope {
        namespace: Some("default".into()),
        selectors: vec![format!(
            "{}=svc-nlb-ip-type,{}=default",
            lb_api::keys::service::STACK_NAME_LABEL,
            lb_api::keys::service::STACK_NAMESPACE_LABEL
        )],
    }
}

/// An internet-facing ALB for one Ingress: `/api` to Service `api`, `/` to `web`, targets of
/// `target_type`.
fn alb(target_type: &str) -> (Stack, BindingScope) {
    let ingress = fixtures::ingress(
        "shop",
        "front",
        json!({
            "alb.ingress.kubernetes.io/scheme": "internet-facing",
            "alb.ingress.kubernetes.io/target-type": target_type,
        }),
        json!({"rules": [{"http": {"paths": [
            {"path": "/api", "pathType": "Prefix",
             "backend": {"service": {"name": "api", "port": {"number": 80}}}},
            {"path": "/", "pathType": "Prefix",
             "backend": {"service": {"name": "web", "port": {"number": 80}}}},
        ]}}]}),
    );
    let services = Services::new(
        ["api", "web"].map(|name| std::sync::Arc::new(fixtures::backend_service("shop", name))),
    );
    let settings = fixtures::ingress_settings();
    let cluster = Cluster {
        settings: &settings,
        services: &services,
        certificates: &[],
    };
    let group = GroupId::Implicit {
        namespace: "shop".into(),
        name: "front".into(),
    };
    let members = [GroupMember::new(&ingress, None)];
    let built = build_group(&group, &members, &cluster, &fixtures::vpc());
    let scope = BindingScope {
        namespace: None,
        selectors: group.binding_selectors(),
    };
    (built.stack.expect("the ALB builds"), scope)
}

fn owner(stack: &Stack) -> Owner {
    Owner::of(stack)
}

#[tokio::test]
async fn from_empty_the_stack_and_its_binding_are_made() {
    let pipeline = pipeline();
    let converged = pipeline
        .converge(nlb(TargetType::Ip), &nlb_scope())
        .await
        .expect("converges");
    assert!(converged.steps >= 3, "{converged:?}");
    assert!(converged.dns_name.is_some());
    assert!(converged.waiting.is_empty());
    let calls = pipeline.elb.call_names();
    for made in ["CreateTargetGroup", "CreateLoadBalancer", "CreateListener"] {
        assert_eq!(calls.iter().filter(|c| **c == made).count(), 1, "{calls:?}");
    }
    assert_eq!(pipeline.ec2.groups().len(), 1, "the managed group");
    let bindings = pipeline.writes.binding_names();
    assert_eq!(bindings.len(), 1, "{bindings:?}");
    let binding = pipeline.writes.binding(&bindings[0]).expect("binding");
    assert_eq!(
        binding.spec.target_group_arn.as_deref(),
        pipeline.elb.target_group_arns().first().map(String::as_str)
    );
}

#[tokio::test]
async fn the_same_stack_again_costs_no_call_and_no_write() {
    let pipeline = pipeline();
    let first = pipeline
        .converge(nlb(TargetType::Ip), &nlb_scope())
        .await
        .expect("converges");
    pipeline.elb.forget_calls();
    pipeline.ec2.forget_calls();
    pipeline.writes.forget_writes();
    let again = pipeline
        .converge(nlb(TargetType::Ip), &nlb_scope())
        .await
        .expect("converges");
    assert_eq!(again.steps, 0);
    assert_eq!(again.dns_name, first.dns_name);
    assert!(
        pipeline.elb.call_names().is_empty(),
        "{:?}",
        pipeline.elb.call_names()
    );
    assert!(
        pipeline.ec2.calls().is_empty(),
        "{:?}",
        pipeline.ec2.calls()
    );
    assert!(pipeline.writes.writes().is_empty());
    // Once forgotten (a failed pass), it is described again and still needs no step.
    pipeline.forget("default/svc-nlb-ip-type");
    let described = pipeline
        .converge(nlb(TargetType::Ip), &nlb_scope())
        .await
        .expect("converges");
    assert_eq!(described.steps, 0);
    assert!(pipeline.elb.call_names().contains(&"DescribeLoadBalancers"));
}

#[tokio::test]
async fn a_failure_half_way_is_finished_by_the_next_pass() {
    let pipeline = pipeline();
    pipeline.elb.fail(Operation::CreateListener, 1);
    let failed = pipeline.converge(nlb(TargetType::Ip), &nlb_scope()).await;
    assert!(matches!(failed, Err(StackError::Deploy(_))), "{failed:?}");
    assert!(pipeline.writes.binding_names().is_empty(), "no binding yet");
    // A binding write that fails after AWS converged is finished too.
    pipeline.writes.fail_applies(1);
    let failed = pipeline.converge(nlb(TargetType::Ip), &nlb_scope()).await;
    assert!(matches!(failed, Err(StackError::Kube { .. })), "{failed:?}");
    let done = pipeline
        .converge(nlb(TargetType::Ip), &nlb_scope())
        .await
        .expect("converges");
    assert_eq!(done.steps, 0, "AWS was finished by the pass before");
    assert_eq!(pipeline.elb.load_balancer_arns().len(), 1);
    assert_eq!(pipeline.elb.target_group_arns().len(), 1);
    assert_eq!(pipeline.elb.listeners().len(), 1);
    assert_eq!(pipeline.writes.binding_names().len(), 1);
}

#[tokio::test]
async fn a_listener_moves_to_a_replacement_group_only_once_it_has_targets() {
    let pipeline = pipeline();
    pipeline
        .converge(nlb(TargetType::Ip), &nlb_scope())
        .await
        .expect("converges");
    let old = pipeline.elb.target_group_arns()[0].clone();
    let old_binding = pipeline.writes.binding_names()[0].clone();
    pipeline.elb.set_registered(&old, 2);

    let waiting = pipeline
        .converge(nlb(TargetType::Instance), &nlb_scope())
        .await
        .expect("converges");
    assert_eq!(waiting.waiting, [SwitchPoint::Listener { port: 80 }]);
    assert_eq!(pipeline.elb.listeners()[0].2, old, "still on the old group");
    let groups = pipeline.elb.target_group_arns();
    assert_eq!(groups.len(), 2, "the replacement made beside it");
    assert_eq!(
        pipeline.writes.binding_names().len(),
        2,
        "the old binding keeps its targets while the new one registers"
    );
    // Waiting is not converged: the next pass looks again.
    let new = groups.into_iter().find(|g| *g != old).expect("new group");
    pipeline.elb.set_registered(&new, 1);
    let switched = pipeline
        .converge(nlb(TargetType::Instance), &nlb_scope())
        .await
        .expect("converges");
    assert!(switched.waiting.is_empty());
    assert_eq!(pipeline.elb.listeners()[0].2, new);
    assert_eq!(pipeline.elb.target_group_arns(), [new]);
    let bindings = pipeline.writes.binding_names();
    assert_eq!(bindings.len(), 1);
    assert!(
        pipeline
            .writes
            .writes()
            .contains(&Write::DeleteBinding(old_binding))
    );
}

/// The target group ARN each rule of the ALB's listener forwards to, in priority order.
async fn rule_targets(pipeline: &TestPipeline, stack: &Stack) -> Vec<String> {
    let existing = pipeline
        .elb
        .describe_stack(&owner(stack))
        .await
        .expect("describes");
    let mut rules = existing.listeners[0].rules.clone();
    rules.sort_by_key(|r| r.priority);
    rules
        .iter()
        .map(|r| match r.rule.action.single_target() {
            Some(lb_model::stack::TargetGroupRef::Arn(arn)) => arn.clone(),
            other => panic!("{other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn alb_rules_move_to_replacement_groups_only_once_they_have_targets() {
    let pipeline = pipeline();
    let (before, scope) = alb("ip");
    pipeline
        .converge(before.clone(), &scope)
        .await
        .expect("converges");
    let old = rule_targets(&pipeline, &before).await;
    assert_eq!(old.len(), 2, "{old:?}");
    for group in &old {
        pipeline.elb.set_registered(group, 1);
    }

    let (after, scope) = alb("instance");
    let waiting = pipeline
        .converge(after.clone(), &scope)
        .await
        .expect("converges");
    assert_eq!(waiting.waiting.len(), 2, "{waiting:?}");
    assert!(
        waiting
            .waiting
            .iter()
            .all(|w| matches!(w, SwitchPoint::Rule { port: 80, .. })),
        "{waiting:?}"
    );
    assert_eq!(rule_targets(&pipeline, &after).await, old, "the rules stay");
    assert!(!pipeline.elb.call_names().contains(&"ModifyRule"));
    assert_eq!(
        pipeline.elb.target_group_arns().len(),
        4,
        "replacements beside"
    );

    for group in pipeline.elb.target_group_arns() {
        pipeline.elb.set_registered(&group, 1);
    }
    let switched = pipeline
        .converge(after.clone(), &scope)
        .await
        .expect("converges");
    assert!(switched.waiting.is_empty(), "{switched:?}");
    let new = rule_targets(&pipeline, &after).await;
    assert!(new.iter().all(|arn| !old.contains(arn)), "{new:?} {old:?}");
    let mut left = pipeline.elb.target_group_arns();
    left.sort();
    let mut new_sorted = new.clone();
    new_sorted.sort();
    assert_eq!(left, new_sorted, "the old groups went");
}

#[tokio::test]
async fn an_alb_warms_a_replacement_up_at_weight_0_until_a_target_is_healthy() {
    let pipeline = pipeline();
    let (before, scope) = alb("ip");
    pipeline
        .converge(before.clone(), &scope)
        .await
        .expect("converges");
    let old = rule_targets(&pipeline, &before).await;
    for group in &old {
        pipeline.elb.set_registered(group, 1);
    }
    let (after, scope) = alb("instance");
    pipeline
        .converge(after.clone(), &scope)
        .await
        .expect("converges");
    let new: Vec<String> = pipeline
        .elb
        .target_group_arns()
        .into_iter()
        .filter(|g| !old.contains(g))
        .collect();
    assert_eq!(new.len(), 2);
    // Registered, not healthy yet: ELB checks them only once a rule uses them.
    for group in &new {
        pipeline.elb.set_targets(group, 1, TargetState::Initial);
    }
    let warming = pipeline
        .converge(after.clone(), &scope)
        .await
        .expect("converges");
    assert_eq!(warming.waiting.len(), 2, "{warming:?}");
    let existing = pipeline
        .elb
        .describe_stack(&owner(&after))
        .await
        .expect("describes");
    for rule in &existing.listeners[0].rules {
        let lb_model::stack::Action::Forward { target_groups, .. } = &rule.rule.action else {
            panic!("{rule:?}");
        };
        let weights: Vec<(bool, Option<i32>)> = target_groups
            .iter()
            .map(|w| match &w.target_group {
                lb_model::stack::TargetGroupRef::Arn(arn) => (old.contains(arn), w.weight),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            weights,
            [(true, Some(1)), (false, Some(0))],
            "old at 1, new at 0"
        );
    }
    assert_eq!(
        pipeline.elb.target_group_arns().len(),
        4,
        "the old groups stay"
    );
    // Healthy: the rules move, the old groups go.
    for group in &new {
        pipeline.elb.set_registered(group, 1);
    }
    let switched = pipeline
        .converge(after.clone(), &scope)
        .await
        .expect("converges");
    assert!(switched.waiting.is_empty(), "{switched:?}");
    let mut targets = rule_targets(&pipeline, &after).await;
    targets.sort();
    let mut left = pipeline.elb.target_group_arns();
    left.sort();
    assert_eq!(targets, left);
    assert!(left.iter().all(|g| new.contains(g)));
}

#[tokio::test]
async fn an_nlb_listener_moves_once_its_replacement_has_registered_targets() {
    let pipeline = pipeline();
    pipeline
        .converge(nlb(TargetType::Ip), &nlb_scope())
        .await
        .expect("converges");
    let old = pipeline.elb.target_group_arns()[0].clone();
    pipeline.elb.set_registered(&old, 2);
    pipeline
        .converge(nlb(TargetType::Instance), &nlb_scope())
        .await
        .expect("converges");
    let new = pipeline
        .elb
        .target_group_arns()
        .into_iter()
        .find(|g| *g != old)
        .expect("new group");
    // An NLB forwards to one group: no weight-0 warm-up, the move waits for registered targets.
    pipeline.elb.set_targets(&new, 1, TargetState::Initial);
    let moved = pipeline
        .converge(nlb(TargetType::Instance), &nlb_scope())
        .await
        .expect("converges");
    assert!(moved.waiting.is_empty());
    assert_eq!(pipeline.elb.listeners()[0].2, new);
}

#[tokio::test]
async fn removal_deletes_the_bindings_first_then_everything_it_owned() {
    let pipeline = pipeline();
    let stack = nlb(TargetType::Ip);
    let owner = owner(&stack);
    pipeline
        .converge(stack, &nlb_scope())
        .await
        .expect("converges");
    pipeline.elb.forget_calls();
    let first = pipeline
        .remove(&owner, &nlb_scope())
        .await
        .expect("removes");
    assert_eq!(first, Removed::Draining);
    assert!(
        pipeline.elb.call_names().is_empty(),
        "AWS waits for the bindings"
    );
    assert!(pipeline.writes.binding_names().is_empty());
    let second = pipeline
        .remove(&owner, &nlb_scope())
        .await
        .expect("removes");
    assert!(
        matches!(second, Removed::Gone { steps } if steps == 3),
        "{second:?}"
    );
    assert!(pipeline.elb.load_balancer_arns().is_empty());
    assert!(pipeline.elb.target_group_arns().is_empty());
    assert!(pipeline.ec2.groups().is_empty(), "the managed group went");
    // Converging again after removal describes afresh.
    let again = pipeline
        .converge(nlb(TargetType::Ip), &nlb_scope())
        .await
        .expect("converges");
    assert!(again.steps >= 3);
}
