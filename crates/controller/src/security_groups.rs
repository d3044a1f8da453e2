//! A stack's load balancer security groups, as IDs, before its diff: the managed frontend group
//! (found by its tags or created, rules made exact) or the groups the user named (resolved by
//! ID or `Name` tag), then the cluster's shared backend group when the stack attaches it. The
//! order is upstream's (frontend first, backend last); ELB compares them as a set.
//!
//! And after a stack is gone, the backend group is released once no load balancer uses it.

use lb_aws::AwsError;
use lb_aws::Ec2;
use lb_aws::deployer::apply::LoadBalancers;
use lb_aws::deployer::diff::Owner;
use lb_model::stack::Stack;

/// The IDs a stack's security groups resolved to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    /// The managed frontend group, when the stack has one.
    pub managed: Option<String>,
    /// The backend group, when attached: the source the bindings' `networking` admits.
    pub backend: Option<String>,
}

/// Sets `stack.load_balancer.security_groups` to the IDs of the groups it should have.
pub async fn resolve<E: Ec2>(
    ec2: &E,
    owner: &Owner,
    stack: &mut Stack,
) -> Result<Resolved, AwsError> {
    let mut groups = match &stack.managed_security_group {
        Some(group) => vec![ec2.ensure_security_group(owner, group).await?],
        None => {
            ec2.resolve_security_groups(&stack.load_balancer.security_groups)
                .await?
        }
    };
    let managed = stack
        .managed_security_group
        .as_ref()
        .and_then(|_| groups.first().cloned());
    let backend = match stack.backend_security_group {
        true => Some(ec2.backend_security_group().await?),
        false => None,
    };
    if let Some(id) = &backend
        && !groups.contains(id)
    {
        groups.push(id.clone());
    }
    stack.load_balancer.security_groups = groups;
    Ok(Resolved { managed, backend })
}

/// After a stack's load balancer is gone: the backend group goes too when no load balancer of the
/// account uses it any more.
pub async fn release_backend<L: LoadBalancers, E: Ec2>(elb: &L, ec2: &E) -> Result<(), AwsError> {
    let in_use = elb.security_groups_in_use().await?;
    ec2.release_backend_security_group(&|id| in_use.contains(id))
        .await
}
