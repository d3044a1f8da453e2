//! A refused group member changes nothing in AWS. A group of two is converged on the fakes; then
//! one member is made unbuildable the ways users get it wrong (a bad value, JSON with a trailing
//! comma or a duplicate key or the wrong type, 100 KB, a setting that conflicts with the other
//! member, more rules than a listener takes), or a new member arrives so. The next pass makes
//! no mutating AWS call, deletes no binding, and leaves the in-memory ELB exactly as it was; the
//! refused member hears why.

use std::sync::Arc;

use lb_model::fixtures;
use serde_json::{Value, json};

use super::tests::{Ctx, FINALIZER, context};
use super::*;
use crate::stack::fake::Write;
use crate::stores::filled::{Fill, put};

/// Member `name` of group `shop` with `extra` annotations and `paths` paths to `service`.
fn member(name: &str, extra: &Value, paths: usize, service: &str) -> Ingress {
    let mut annotations = json!({
        "kubernetes.io/ingress.class": "alb",
        "alb.ingress.kubernetes.io/group.name": "shop",
        "alb.ingress.kubernetes.io/target-type": "ip",
        "alb.ingress.kubernetes.io/inbound-cidrs": "10.0.0.0/8",
    });
    if let (Some(all), Some(more)) = (annotations.as_object_mut(), extra.as_object()) {
        all.extend(more.clone());
    }
    let paths: Vec<Value> = (0..paths)
        .map(|i| {
            json!({"path": format!("/{name}/{i}"), "pathType": "Exact",
            "backend": {"service": {"name": service, "port": {"number": 80}}}})
        })
        .collect();
    let mut ingress = fixtures::ingress(
        "shop",
        name,
        annotations,
        json!({"rules": [{"http": {"paths": paths}}]}),
    );
    ingress.metadata.finalizers = Some(vec![FINALIZER.into()]);
    ingress
}

/// What users write wrong, each with how many paths the member has.
fn refusals() -> Vec<(&'static str, Value, usize)> {
    let key = |name: &str| format!("alb.ingress.kubernetes.io/{name}");
    let one = |name: &str, value: &str| json!({(key(name)): value});
    vec![
        (
            "a bad value",
            one("healthcheck-interval-seconds", "often"),
            1,
        ),
        (
            "a trailing comma",
            one("listen-ports", r#"[{"HTTP": 80},]"#),
            1,
        ),
        (
            "a duplicate key",
            one("listen-ports", r#"[{"HTTP": 80, "HTTP": 443}]"#),
            1,
        ),
        (
            "the wrong type",
            one("listen-ports", r#"[{"HTTP": "80"}]"#),
            1,
        ),
        ("100 KB", one("success-codes", &"2".repeat(100 * 1024)), 1),
        ("unicode", one("scheme", "іnternal"), 1),
        (
            "a conflicting setting",
            one("inbound-cidrs", "192.168.0.0/16"),
            1,
        ),
        (
            "HTTP and HTTPS on one port",
            one("listen-ports", r#"[{"HTTPS": 80}]"#),
            1,
        ),
        ("101 rules", json!({}), 101),
        ("a Service that is not there", json!({}), 1),
    ]
}

/// The group converged with `web` and `api`; the fakes' calls forgotten.
async fn converged() -> (Arc<Ctx>, Fill, String) {
    let (ctx, mut fill) = context();
    // web first in the group: its settings are the group's, a member conflicting is refused.
    let web = member(
        "web",
        &json!({"alb.ingress.kubernetes.io/group.order": "-1"}),
        1,
        "web",
    );
    put(&mut fill.ingresses, web.clone());
    put(&mut fill.ingresses, member("api", &json!({}), 1, "api"));
    reconcile(Arc::new(web), ctx.clone())
        .await
        .expect("converges");
    assert_eq!(ctx.pipeline.elb.load_balancer_arns().len(), 1);
    assert_eq!(ctx.pipeline.elb.target_group_arns().len(), 2);
    ctx.pipeline.elb.forget_calls();
    ctx.pipeline.ec2.forget_calls();
    ctx.pipeline.writes.forget_writes();
    // Converge afresh: describe and diff, not the memory of the last converge.
    ctx.pipeline.forget("shop");
    let deployed = ctx.pipeline.elb.deployed();
    (ctx, fill, deployed)
}

/// The pass over `refused` changed nothing, and told it why.
fn nothing_changed(ctx: &Ctx, deployed: &str, refused: &str, case: &str) {
    let elb = ctx.pipeline.elb.mutating_call_names();
    assert!(elb.is_empty(), "{case}: {elb:?}");
    let ec2: Vec<&str> = ctx
        .pipeline
        .ec2
        .calls()
        .into_iter()
        .filter(|c| !c.starts_with("Describe"))
        .collect();
    assert!(ec2.is_empty(), "{case}: {ec2:?}");
    assert!(
        ctx.pipeline.elb.deployed() == deployed,
        "{case}: the ELB changed"
    );
    let writes = ctx.pipeline.writes.writes();
    assert!(
        !writes.iter().any(|w| matches!(w, Write::DeleteBinding(_))),
        "{case}: {writes:?}"
    );
    assert!(
        writes.contains(&Write::Event(refused.into(), "FailedBuildModel".into())),
        "{case}: {writes:?}"
    );
}

#[tokio::test]
async fn a_member_made_unbuildable_changes_nothing_in_aws() {
    for (case, extra, paths) in refusals() {
        let (ctx, mut fill, deployed) = converged().await;
        let service = if case.contains("not there") {
            "gone"
        } else {
            "api"
        };
        let broken = member("api", &extra, paths, service);
        put(&mut fill.ingresses, broken.clone());
        reconcile(Arc::new(broken), ctx.clone())
            .await
            .expect("passes");
        nothing_changed(&ctx, &deployed, "shop/api", case);
    }
}

#[tokio::test]
async fn a_new_member_refused_changes_nothing_in_aws() {
    for (case, extra, paths) in refusals() {
        let (ctx, mut fill, deployed) = converged().await;
        let service = if case.contains("not there") {
            "gone"
        } else {
            "web"
        };
        let mut new = member("new", &extra, paths, service);
        new.metadata.finalizers = None;
        put(&mut fill.ingresses, new.clone());
        reconcile(Arc::new(new), ctx.clone()).await.expect("passes");
        nothing_changed(&ctx, &deployed, "shop/new", case);
    }
}

/// The checks above see a change when there is one: an edit the model accepts changes AWS.
#[tokio::test]
async fn an_accepted_edit_is_seen_by_the_same_checks() {
    let (ctx, mut fill, deployed) = converged().await;
    let edited = member(
        "api",
        &json!({"alb.ingress.kubernetes.io/healthcheck-path": "/ready"}),
        1,
        "api",
    );
    put(&mut fill.ingresses, edited.clone());
    reconcile(Arc::new(edited), ctx.clone())
        .await
        .expect("passes");
    assert_eq!(
        ctx.pipeline.elb.mutating_call_names(),
        ["ModifyTargetGroup"]
    );
    assert!(ctx.pipeline.elb.deployed() != deployed);
}

/// A member that moves ahead in group order with another scheme makes the members it now
/// conflicts with refused (held); replacing the ALB would take their rules with it, so nothing
/// changes in AWS until they are fixed. Before, the ALB was replaced and `web` went offline.
#[tokio::test]
async fn a_member_taking_the_lead_never_replaces_the_alb_under_a_held_member() {
    let (ctx, mut fill, deployed) = converged().await;
    // web says the scheme it has (internal, the default) out loud: nothing changes.
    let web = member(
        "web",
        &json!({
            "alb.ingress.kubernetes.io/group.order": "-1",
            "alb.ingress.kubernetes.io/scheme": "internal",
        }),
        1,
        "web",
    );
    put(&mut fill.ingresses, web.clone());
    reconcile(Arc::new(web), ctx.clone()).await.expect("passes");
    assert!(ctx.pipeline.elb.mutating_call_names().is_empty());
    ctx.pipeline.forget("shop");
    let leading = member(
        "api",
        &json!({
            "alb.ingress.kubernetes.io/group.order": "-5",
            "alb.ingress.kubernetes.io/scheme": "internet-facing",
        }),
        1,
        "api",
    );
    put(&mut fill.ingresses, leading.clone());
    let refused = reconcile(Arc::new(leading), ctx.clone())
        .await
        .expect_err("the replacement is refused");
    assert_eq!(
        refused.to_string(),
        "shop: the load balancer would be replaced (scheme internal -> internet-facing) while member shop/web is held by an error; fix or remove it first"
    );
    nothing_changed(&ctx, &deployed, "shop/web", "a member taking the lead");
}
