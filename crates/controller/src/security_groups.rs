//! A stack's load balancer security groups, as IDs, before its diff: the managed frontend group
//! (found by its tags or created, rules made exact) or the groups the user named (resolved by
//! ID or `Name` tag), then the cluster's shared backend group when the stack attaches it. The
//! order is upstream's (frontend first, backend last); ELB compares them as a set.
//!
//! An NLB made without security groups stays without (ELB cannot add them later), as upstream
//! keeps it. After a stack is gone, the backend group is released once no load balancer uses it.

use ipnet::IpNet;
use lb_aws::AwsError;
use lb_aws::Ec2;
use lb_aws::deployer::apply::LoadBalancers;
use lb_aws::deployer::diff::{Existing, Owner, Step};
use lb_model::service::by_address;
use lb_model::stack::{LoadBalancerKind, NetworkSource, RuleSource, SourceAddresses, Stack};

/// The IDs a stack's security groups resolved to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    /// The managed frontend group, when the stack has one.
    pub managed: Option<String>,
    /// The backend group, when attached.
    pub backend: Option<String>,
}

impl Resolved {
    /// The group the bindings' `networking` admits: the backend group, else (backend groups
    /// turned off) the managed one, as upstream.
    pub fn rules_source(&self) -> Option<&str> {
        self.backend.as_deref().or(self.managed.as_deref())
    }
}

/// Sets `stack.load_balancer.security_groups` to the IDs of the groups it should have.
pub async fn resolve<E: Ec2>(
    ec2: &E,
    owner: &Owner,
    stack: &mut Stack,
) -> Result<Resolved, AwsError> {
    let (mut groups, managed) = match &stack.managed_security_group {
        Some(group) => {
            let ignored = owner.ignored_tags(stack);
            let id = ec2.ensure_security_group(owner, group, &ignored).await?;
            (vec![id.clone()], Some(id))
        }
        None => {
            let named = ec2
                .resolve_security_groups(&stack.load_balancer.security_groups)
                .await?;
            (named, None)
        }
    };
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

/// An NLB that exists without security groups (made before NLBs could have them) can never get
/// any: it stays so, as upstream keeps it, and the stack asks for none (no managed group, no
/// backend group); its bindings admit it by address instead ([`by_address`]), the clients being
/// the source ranges its managed group would have opened.
pub fn keep_legacy_nlb(stack: &mut Stack, existing: &Existing) {
    let legacy = existing.load_balancer.as_ref().is_some_and(|lb| {
        let have = &lb.load_balancer;
        have.kind == LoadBalancerKind::Network
            && have.security_groups.is_empty()
            // A new scheme replaces it: the new one gets its groups.
            && have.scheme == stack.load_balancer.scheme
    });
    if legacy {
        let named = stack.managed_security_group.as_ref().map(|group| {
            let mut cidrs: Vec<IpNet> = group
                .ingress
                .iter()
                .filter_map(|r| match &r.source {
                    RuleSource::Cidr(cidr) => Some(*cidr),
                    RuleSource::PrefixList(_) => None,
                })
                .collect();
            cidrs.sort();
            cidrs.dedup();
            cidrs
        });
        // The managed group's default (everyone) names nobody.
        let named = named.filter(|cidrs| cidrs.iter().any(|c| c.prefix_len() != 0));
        by_address::admit_by_address(stack, named.as_deref());
    }
}

/// What the stack's bindings' rules by address stand for, described only when some binding has
/// one: the CIDRs of the load balancer's subnets (its own, when it exists), and the VPC's.
pub async fn source_addresses<E: Ec2>(
    ec2: &E,
    stack: &Stack,
    existing: &Existing,
) -> Result<SourceAddresses, AwsError> {
    let sources = || {
        stack
            .bindings
            .iter()
            .flat_map(|b| b.networking.iter().map(|r| &r.from))
    };
    let mut addresses = SourceAddresses::default();
    if sources().any(|s| *s == NetworkSource::LoadBalancerSubnets) {
        let ids: Vec<&str> = match &existing.load_balancer {
            Some(lb) => lb
                .load_balancer
                .subnets
                .iter()
                .map(|s| s.subnet_id.as_str())
                .collect(),
            None => stack
                .load_balancer
                .subnets
                .iter()
                .map(|s| s.subnet_id.as_str())
                .collect(),
        };
        addresses.load_balancer_subnets = ec2
            .subnets()
            .await?
            .into_iter()
            .filter(|s| ids.contains(&s.id.as_str()))
            .filter_map(|s| s.cidr)
            .collect();
    }
    if sources().any(|s| *s == NetworkSource::Vpc) {
        addresses.vpc = ec2.vpc_cidrs().await?;
    }
    Ok(addresses)
}

/// After the stack's steps were applied: a load balancer that moved from its managed group to
/// explicit groups leaves the managed one behind, and it goes now.
pub async fn after_apply<E: Ec2>(
    ec2: &E,
    owner: &Owner,
    groups: &Resolved,
    steps: &[Step],
) -> Result<(), AwsError> {
    let moved = steps
        .iter()
        .any(|s| matches!(s, Step::SetSecurityGroups { .. }));
    if groups.managed.is_none() && moved {
        ec2.delete_security_groups(owner).await?;
    }
    Ok(())
}

/// After a stack's load balancer is gone: its managed group goes, and the backend group too when
/// no load balancer of the account uses it any more (the account's load balancers are listed
/// only when there is a backend group to release).
pub async fn remove<L: LoadBalancers, E: Ec2>(
    elb: &L,
    ec2: &E,
    owner: &Owner,
) -> Result<(), AwsError> {
    ec2.delete_security_groups(owner).await?;
    let releasable = ec2.releasable_backend_security_groups().await?;
    if releasable.is_empty() {
        return Ok(());
    }
    let in_use = elb.security_groups_in_use().await?;
    for id in releasable.iter().filter(|id| !in_use.contains(*id)) {
        ec2.release_backend_security_group(id).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use lb_aws::deployer::diff::ExistingLoadBalancer;
    use lb_model::stack::{LoadBalancer, ManagedSecurityGroup, StackKind};

    use super::*;

    fn stack() -> Stack {
        Stack {
            id: "ns/web".into(),
            kind: StackKind::Service,
            load_balancer: LoadBalancer {
                name: "k8s-ns-web-0123456789".into(),
                kind: LoadBalancerKind::Network,
                scheme: lb_model::stack::Scheme::Internal,
                ip_address_type: lb_model::stack::IpAddressType::Ipv4,
                subnets: Vec::new(),
                subnets_named: false,
                subnets_problem: None,
                security_groups: Vec::new(),
                attributes: Default::default(),
                tags: Default::default(),
            },
            managed_security_group: Some(ManagedSecurityGroup {
                name: "k8s-ns-web-9876543210".into(),
                ingress: Vec::new(),
                tags: Default::default(),
            }),
            backend_security_group: true,
            listeners: Vec::new(),
            target_groups: Vec::new(),
            bindings: Vec::new(),
            external_managed_tags: Vec::new(),
            held_members: Vec::new(),
        }
    }

    fn existing(groups: &[&str], scheme: &str) -> Existing {
        let mut load_balancer = stack().load_balancer;
        load_balancer.security_groups = groups.iter().map(|g| g.to_string()).collect();
        load_balancer.scheme = lb_model::stack::Scheme::parse(scheme).expect("scheme");
        Existing {
            load_balancer: Some(ExistingLoadBalancer {
                arn: "arn:lb".into(),
                dns_name: "lb.example".into(),
                load_balancer,
            }),
            ..Existing::default()
        }
    }

    #[test]
    fn an_nlb_made_without_security_groups_stays_without() {
        let mut legacy = stack();
        keep_legacy_nlb(&mut legacy, &existing(&[], "internal"));
        assert!(legacy.managed_security_group.is_none() && !legacy.backend_security_group);
        assert!(legacy.load_balancer.security_groups.is_empty());
        // One with groups, or one being replaced (another scheme), gets them.
        for (groups, scheme) in [(&["sg-1"][..], "internal"), (&[][..], "internet-facing")] {
            let mut current = stack();
            keep_legacy_nlb(&mut current, &existing(groups, scheme));
            assert!(current.managed_security_group.is_some() && current.backend_security_group);
        }
    }
}
