//! A Service that is deleted or no longer ours: everything made for it goes through the
//! pipeline's removal (bindings first, then the load balancer and all it owned, then its
//! security groups), then the status and the finalizer.

use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use lb_api::keys::service as keys;
use lb_aws::Ec2;
use lb_aws::deployer::apply::LoadBalancers;
use lb_aws::deployer::diff::Owner;
use lb_model::stack::StackKind;

use super::{ServiceContext, binding_scope};
use crate::stack::objects::{remove_finalizer, show_hostname};
use crate::stack::{Removed, StackError, StackWrites};

/// How soon to look again while the bindings' finalizers run.
const BINDINGS_GONE_CHECK: Duration = Duration::from_secs(1);

pub async fn clean_up<L: LoadBalancers, E: Ec2, W: StackWrites>(
    service: &Service,
    ctx: &ServiceContext<L, E, W>,
) -> Result<Action, StackError> {
    let owner = Owner {
        cluster: ctx.cluster.cluster.clone(),
        kind: StackKind::Service,
        stack_id: format!(
            "{}/{}",
            service.namespace().unwrap_or_default(),
            service.name_any()
        ),
    };
    let writes = &ctx.pipeline.writes;
    match ctx.pipeline.remove(&owner, &binding_scope(service)).await? {
        Removed::Draining => Ok(Action::requeue(BINDINGS_GONE_CHECK)),
        Removed::Gone { .. } => {
            if service.metadata.deletion_timestamp.is_none() {
                show_hostname(writes, service, None).await?;
            }
            remove_finalizer(writes, service, keys::FINALIZER).await?;
            Ok(Action::await_change())
        }
    }
}
