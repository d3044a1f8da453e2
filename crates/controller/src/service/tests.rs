//! The Service reconciler on the fakes (no API server, no AWS): from empty, a no-op pass, bad
//! input, a failure half-way, a replacement switch, and clean-up.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::Action;
use lb_aws::Operation;
use lb_aws::fake::FakeElb;
use lb_model::fixtures;

use super::*;
use crate::stack::fake::{FakeEc2, RecordingStackWrites, Write};

type Ctx = ServiceContext<FakeElb, FakeEc2, RecordingStackWrites>;

fn context() -> Arc<Ctx> {
    let options = ServiceOptions {
        elb: FakeElb::default(),
        ec2: FakeEc2::with_subnets(fixtures::vpc()),
        cluster: fixtures::settings(),
        selection: SelectionSettings::default(),
    };
    Arc::new(ServiceContext::new(
        options,
        RecordingStackWrites::default(),
        Leadership::always(),
    ))
}

/// Blog 001's Service, as the API server has it once the finalizer is on.
fn seed() -> Service {
    let mut service = fixtures::seed_service();
    service.metadata.finalizers = Some(vec![keys::FINALIZER.into()]);
    service
}

fn elb_calls(ctx: &Ctx) -> Vec<&'static str> {
    ctx.pipeline.elb.call_names()
}

#[tokio::test]
async fn a_new_service_gets_its_finalizer_first_then_its_nlb_and_hostname() {
    let ctx = context();
    let service = fixtures::seed_service();
    let next = reconcile(Arc::new(service), ctx.clone())
        .await
        .expect("passes");
    assert_eq!(next, Action::requeue(RESYNC));
    let writes = ctx.pipeline.writes.writes();
    assert_eq!(
        writes[0],
        Write::Finalizers(
            "default/svc-nlb-ip-type".into(),
            vec![keys::FINALIZER.into()]
        ),
        "{writes:?}"
    );
    assert!(
        matches!(writes.last(), Some(Write::Event(_, reason)) if reason == "SuccessfullyReconciled")
    );
    assert!(
        writes
            .iter()
            .any(|w| matches!(w, Write::Hostname(_, Some(h)) if h.contains("elb"))),
        "{writes:?}"
    );
    assert_eq!(ctx.pipeline.elb.load_balancer_arns().len(), 1);
}

#[tokio::test]
async fn a_pass_over_a_converged_service_makes_no_aws_call() {
    let ctx = context();
    let first = seed();
    reconcile(Arc::new(first.clone()), ctx.clone())
        .await
        .expect("passes");
    let hostname = ctx
        .pipeline
        .writes
        .writes()
        .into_iter()
        .find_map(|w| match w {
            Write::Hostname(_, h) => h,
            _ => None,
        });
    // The status write wakes another pass: the Service now shows the hostname.
    let mut shown = first;
    shown.status = Some(k8s_openapi::api::core::v1::ServiceStatus {
        load_balancer: Some(lb_model::service::objects::load_balancer_status(
            &hostname.expect("hostname"),
        )),
        ..Default::default()
    });
    ctx.pipeline.elb.forget_calls();
    ctx.pipeline.writes.forget_writes();
    reconcile(Arc::new(shown), ctx.clone())
        .await
        .expect("passes");
    assert!(elb_calls(&ctx).is_empty(), "{:?}", elb_calls(&ctx));
    assert_eq!(
        ctx.pipeline.writes.event_reasons(),
        ["SuccessfullyReconciled"],
        "no write but the Event"
    );
}

#[tokio::test]
async fn a_bad_annotation_is_named_and_aws_is_untouched() {
    let ctx = context();
    let mut service = seed();
    service.metadata.annotations.get_or_insert_default().insert(
        format!("{}aws-load-balancer-scheme", fixtures::P),
        "outward".into(),
    );
    let err = reconcile(Arc::new(service), ctx.clone())
        .await
        .expect_err("refused");
    assert_eq!(err.reason(), "FailedBuildModel");
    assert!(err.to_string().contains("outward"), "{err}");
    assert!(elb_calls(&ctx).is_empty());
    assert_eq!(ctx.pipeline.writes.event_reasons(), ["FailedBuildModel"]);
}

#[tokio::test]
async fn a_failure_half_way_is_retried_and_finished() {
    let ctx = context();
    ctx.pipeline.elb.fail(Operation::CreateListener, 1);
    let service = Arc::new(seed());
    let err = reconcile(service.clone(), ctx.clone())
        .await
        .expect_err("fails");
    assert_eq!(err.reason(), "FailedDeployModel");
    let retry = ctx.pipeline.retry(service.as_ref(), &err);
    assert_ne!(retry, Action::await_change(), "AWS errors are retried");
    reconcile(service, ctx.clone()).await.expect("finishes");
    assert_eq!(ctx.pipeline.elb.listeners().len(), 1);
    assert_eq!(ctx.pipeline.elb.load_balancer_arns().len(), 1);
}

#[tokio::test]
async fn a_new_target_type_waits_for_the_replacement_groups_targets() {
    let ctx = context();
    reconcile(Arc::new(seed()), ctx.clone())
        .await
        .expect("passes");
    let old = ctx.pipeline.elb.target_group_arns()[0].clone();
    ctx.pipeline.elb.set_registered(&old, 2);
    let mut instance = seed();
    instance
        .metadata
        .annotations
        .get_or_insert_default()
        .insert(
            format!("{}aws-load-balancer-nlb-target-type", fixtures::P),
            "instance".into(),
        );
    let next = reconcile(Arc::new(instance.clone()), ctx.clone())
        .await
        .expect("passes");
    assert_eq!(next, Action::requeue(REPLACEMENT_CHECK));
    assert_eq!(ctx.pipeline.elb.listeners()[0].2, old);
    for group in ctx.pipeline.elb.target_group_arns() {
        ctx.pipeline.elb.set_registered(&group, 1);
    }
    let next = reconcile(Arc::new(instance), ctx.clone())
        .await
        .expect("passes");
    assert_eq!(next, Action::requeue(RESYNC));
    assert_ne!(ctx.pipeline.elb.listeners()[0].2, old);
    assert!(!ctx.pipeline.elb.target_group_arns().contains(&old));
}

#[tokio::test]
async fn a_deleted_service_loses_its_bindings_then_its_nlb_then_its_finalizer() {
    let ctx = context();
    reconcile(Arc::new(seed()), ctx.clone())
        .await
        .expect("passes");
    let mut deleted = seed();
    deleted.metadata.deletion_timestamp = Some(Time(Default::default()));
    deleted.spec.get_or_insert_default().type_ = Some("ClusterIP".into());
    let deleted = Arc::new(deleted);
    let next = reconcile(deleted.clone(), ctx.clone())
        .await
        .expect("passes");
    assert_ne!(
        next,
        Action::await_change(),
        "looks again while bindings go"
    );
    assert_eq!(ctx.pipeline.elb.load_balancer_arns().len(), 1);
    assert!(ctx.pipeline.writes.binding_names().is_empty());
    ctx.pipeline.writes.forget_writes();
    let next = reconcile(deleted, ctx.clone()).await.expect("passes");
    assert_eq!(next, Action::await_change());
    assert!(ctx.pipeline.elb.load_balancer_arns().is_empty());
    assert!(ctx.pipeline.elb.target_group_arns().is_empty());
    assert_eq!(
        ctx.pipeline.writes.writes(),
        [Write::Finalizers("default/svc-nlb-ip-type".into(), vec![])],
        "a Service being deleted keeps its status; its finalizer goes"
    );
}
