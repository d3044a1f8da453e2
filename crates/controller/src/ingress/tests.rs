//! The Ingress reconciler on the fakes (watch caches filled by hand, no API server, no AWS): a
//! group from empty, a no-op pass, a broken member, a failure half-way, and the group removed.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use lb_aws::Operation;
use lb_aws::fake::FakeElb;
use lb_model::fixtures;
use serde_json::json;

use super::*;
use crate::stack::fake::{FakeEc2, RecordingStackWrites, Write};
use crate::stores::filled::{Fill, all_listed, put, stores};

/// A certificate store with nothing in it: no member here asks for discovery.
pub(super) struct NoCertificates;

impl Certificates for NoCertificates {
    async fn certificates(&self) -> Result<Vec<lb_model::ingress::Certificate>, lb_aws::AwsError> {
        Ok(Vec::new())
    }
}

pub(super) type Ctx = IngressContext<FakeElb, FakeEc2, NoCertificates, RecordingStackWrites>;

pub(super) const FINALIZER: &str = "group.ingress.k8s.aws/shop";

pub(super) fn context() -> (Arc<Ctx>, Fill) {
    let (stores, mut fill) = stores();
    all_listed(&stores);
    for name in ["web", "api"] {
        put(&mut fill.services, fixtures::backend_service("shop", name));
    }
    let options = IngressOptions {
        elb: FakeElb::default(),
        ec2: FakeEc2::with_subnets(fixtures::vpc()),
        acm: NoCertificates,
        settings: fixtures::ingress_settings(),
        class: ClassSettings::default(),
    };
    let writes = RecordingStackWrites::default();
    let ctx = IngressContext::new(options, writes, stores, Leadership::always());
    (Arc::new(ctx), fill)
}

/// A member of group `shop`: `path` to Service `service`, with `extra` annotations.
fn member(name: &str, path: &str, service: &str, extra: serde_json::Value) -> Ingress {
    let mut annotations = json!({
        "kubernetes.io/ingress.class": "alb",
        "alb.ingress.kubernetes.io/group.name": "shop",
        "alb.ingress.kubernetes.io/target-type": "ip",
    });
    if let (Some(all), Some(more)) = (annotations.as_object_mut(), extra.as_object()) {
        all.extend(more.clone());
    }
    let mut ingress = fixtures::ingress(
        "shop",
        name,
        annotations,
        json!({"rules": [{"http": {"paths": [{"path": path, "pathType": "Prefix",
            "backend": {"service": {"name": service, "port": {"number": 80}}}}]}}]}),
    );
    ingress.metadata.finalizers = Some(vec![FINALIZER.into()]);
    ingress
}

fn two_members(fill: &mut Fill) -> (Ingress, Ingress) {
    let web = member("web", "/", "web", json!({}));
    let api = member("api", "/api", "api", json!({}));
    put(&mut fill.ingresses, web.clone());
    put(&mut fill.ingresses, api.clone());
    (web, api)
}

fn hostnames(ctx: &Ctx) -> Vec<(String, Option<String>)> {
    ctx.pipeline
        .writes
        .writes()
        .into_iter()
        .filter_map(|w| match w {
            Write::Hostname(key, hostname) => Some((key, hostname)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_group_gets_one_alb_and_every_member_its_hostname() {
    let (ctx, mut fill) = context();
    let (web, _) = two_members(&mut fill);
    let next = reconcile(Arc::new(web), ctx.clone()).await.expect("passes");
    assert_eq!(next, Action::requeue(RESYNC));
    assert_eq!(ctx.pipeline.elb.load_balancer_arns().len(), 1);
    assert_eq!(ctx.pipeline.elb.target_group_arns().len(), 2);
    let shown = hostnames(&ctx);
    assert_eq!(shown.len(), 2, "{shown:?}");
    assert!(shown.iter().all(|(_, h)| h.is_some()));
    assert_eq!(ctx.pipeline.writes.binding_names().len(), 2);
    let calls = ctx.pipeline.elb.call_names();
    assert_eq!(calls.iter().filter(|c| **c == "CreateRule").count(), 2);
}

#[tokio::test]
async fn a_second_members_pass_over_the_same_group_makes_no_aws_call() {
    let (ctx, mut fill) = context();
    let (web, api) = two_members(&mut fill);
    reconcile(Arc::new(web), ctx.clone()).await.expect("passes");
    ctx.pipeline.elb.forget_calls();
    ctx.pipeline.ec2.forget_calls();
    reconcile(Arc::new(api), ctx.clone()).await.expect("passes");
    assert!(
        ctx.pipeline.elb.call_names().is_empty(),
        "{:?}",
        ctx.pipeline.elb.call_names()
    );
    let ec2: Vec<_> = ctx
        .pipeline
        .ec2
        .calls()
        .into_iter()
        .filter(|c| *c != "DescribeSubnets")
        .collect();
    assert!(ec2.is_empty(), "{ec2:?}");
}

#[tokio::test]
async fn a_broken_member_is_told_why_and_the_others_are_served() {
    let (ctx, mut fill) = context();
    let web = member("web", "/", "web", json!({}));
    let broken = member(
        "api",
        "/api",
        "api",
        json!({"alb.ingress.kubernetes.io/healthcheck-interval-seconds": "often"}),
    );
    put(&mut fill.ingresses, web.clone());
    put(&mut fill.ingresses, broken);
    reconcile(Arc::new(web), ctx.clone()).await.expect("passes");
    let events: Vec<(String, String)> = ctx
        .pipeline
        .writes
        .writes()
        .into_iter()
        .filter_map(|w| match w {
            Write::Event(key, reason) => Some((key, reason)),
            _ => None,
        })
        .collect();
    assert!(
        events.contains(&("shop/api".into(), "FailedBuildModel".into())),
        "{events:?}"
    );
    assert!(
        events.contains(&("shop/web".into(), "SuccessfullyReconciled".into())),
        "{events:?}"
    );
    assert_eq!(
        hostnames(&ctx).len(),
        1,
        "only the member served shows the ALB"
    );
}

#[tokio::test]
async fn a_failure_half_way_is_finished_by_the_next_pass() {
    let (ctx, mut fill) = context();
    let (web, _) = two_members(&mut fill);
    ctx.pipeline.elb.fail(Operation::CreateRule, 1);
    let err = reconcile(Arc::new(web.clone()), ctx.clone())
        .await
        .expect_err("fails");
    assert_eq!(err.reason(), "FailedDeployModel");
    assert!(
        ctx.pipeline
            .writes
            .event_reasons()
            .contains(&"FailedDeployModel".to_string())
    );
    reconcile(Arc::new(web), ctx.clone())
        .await
        .expect("finishes");
    let calls = ctx.pipeline.elb.call_names();
    assert_eq!(
        calls.iter().filter(|c| **c == "CreateLoadBalancer").count(),
        1
    );
    assert_eq!(
        calls.iter().filter(|c| **c == "CreateRule").count(),
        3,
        "one failed, two made"
    );
    assert_eq!(ctx.pipeline.writes.binding_names().len(), 2);
}

#[tokio::test]
async fn the_last_member_deleted_takes_the_alb_with_it_after_its_bindings() {
    let (ctx, mut fill) = context();
    let web = member("web", "/", "web", json!({}));
    put(&mut fill.ingresses, web.clone());
    reconcile(Arc::new(web.clone()), ctx.clone())
        .await
        .expect("passes");
    let mut deleted = web;
    deleted.metadata.deletion_timestamp = Some(Time(Default::default()));
    put(&mut fill.ingresses, deleted.clone());
    let next = reconcile(Arc::new(deleted.clone()), ctx.clone())
        .await
        .expect("passes");
    assert_eq!(
        next,
        Action::requeue(REPLACEMENT_CHECK),
        "bindings drain first"
    );
    assert_eq!(ctx.pipeline.elb.load_balancer_arns().len(), 1);
    ctx.pipeline.writes.forget_writes();
    reconcile(Arc::new(deleted), ctx.clone())
        .await
        .expect("passes");
    assert!(ctx.pipeline.elb.load_balancer_arns().is_empty());
    assert!(ctx.pipeline.elb.target_group_arns().is_empty());
    assert_eq!(
        ctx.pipeline.writes.writes(),
        [Write::Finalizers("shop/web".into(), vec![])]
    );
}
