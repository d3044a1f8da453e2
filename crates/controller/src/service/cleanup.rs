//! A Service that is deleted or no longer ours: everything made for it goes, in an order that
//! loses nothing. Its TargetGroupBindings first (their finalizers deregister the targets and open
//! the gates while the target groups still exist), then listeners, target groups and the load
//! balancer, then the managed security group (and the shared backend one, once no load balancer
//! uses it), then the status and the finalizer.

use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use lb_aws::Ec2;
use lb_aws::deployer::apply::{LoadBalancers, remove};
use lb_aws::deployer::diff::{Owner, teardown};

use super::ServiceContext;
use super::error::ServiceError;
use super::objects;

/// How soon to look again while the bindings' finalizers run.
const BINDINGS_GONE_CHECK: Duration = Duration::from_secs(1);

pub async fn clean_up<L: LoadBalancers, E: Ec2>(
    service: &Service,
    ctx: &ServiceContext<L, E>,
) -> Result<Action, ServiceError> {
    let namespace = service.namespace().unwrap_or_default();
    let name = service.name_any();
    let bindings = objects::stack_bindings(&ctx.client, &namespace, &name).await?;
    if !bindings.is_empty() {
        for binding in bindings
            .iter()
            .filter(|b| b.metadata.deletion_timestamp.is_none())
        {
            objects::delete_binding(&ctx.client, binding).await?;
        }
        return Ok(Action::requeue(BINDINGS_GONE_CHECK));
    }
    let owner = Owner {
        cluster: ctx.cluster.cluster.clone(),
        kind: lb_model::stack::StackKind::Service,
        stack_id: format!("{namespace}/{name}"),
    };
    let existing = ctx.elb.describe_stack(&owner).await?;
    let steps = teardown(&owner, &existing);
    if !steps.is_empty() {
        tracing::info!(steps = ?steps, "removing the stack");
    }
    remove(&ctx.elb, &steps).await?;
    crate::security_groups::remove(&ctx.elb, &ctx.ec2, &owner).await?;
    if service.metadata.deletion_timestamp.is_none() {
        objects::set_status(&ctx.client, service, None).await?;
    }
    objects::remove_finalizer(&ctx.client, service).await?;
    Ok(Action::await_change())
}
