use lb_api::TargetType;
use lb_model::stack::{LoadBalancerKind, Rule, SubnetMapping};

use super::*;

fn owner_tags(resource: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (tags::CLUSTER.to_string(), "lab".to_string()),
        (tags::SERVICE_STACK.to_string(), "demo/web".to_string()),
        (tags::SERVICE_RESOURCE.to_string(), resource.to_string()),
    ])
}

pub(crate) fn target_group(port: u16) -> TargetGroup {
    let resource_id = format!("demo/web:{port}");
    TargetGroup {
        name: format!("k8s-demo-web-{port}"),
        protocol: lb_model::stack::Protocol::Tcp,
        port: port + 8000,
        target_type: TargetType::Ip,
        ip_address_type: lb_model::stack::TargetIpAddressType::Ipv4,
        protocol_version: None,
        health_check: lb_model::service::health::tcp_default(),
        attributes: BTreeMap::from([(
            "deregistration_delay.timeout_seconds".to_string(),
            "60".to_string(),
        )]),
        tags: owner_tags(&resource_id),
        resource_id,
    }
}

fn listener(port: u16) -> Listener {
    Listener {
        port,
        protocol: lb_model::stack::Protocol::Tcp,
        certificates: vec![],
        ssl_policy: None,
        alpn_policy: None,
        default_action: Action::forward_to(&format!("demo/web:{port}")),
        rules: vec![],
        attributes: BTreeMap::new(),
        tags: owner_tags(&port.to_string()),
    }
}

fn create_group(group: &TargetGroup) -> Step {
    Step::CreateTargetGroup {
        group: Box::new(group.clone()),
    }
}

fn create_listener(listener: &Listener) -> Step {
    Step::CreateListener {
        listener: Box::new(listener.clone()),
    }
}

fn modify_listener(arn: &str, listener: &Listener) -> Step {
    Step::ModifyListener {
        arn: arn.into(),
        listener: Box::new(listener.clone()),
    }
}

/// An NLB with ports 80 and 443.
pub(crate) fn stack() -> Stack {
    Stack {
        id: "demo/web".into(),
        kind: StackKind::Service,
        load_balancer: LoadBalancer {
            name: "k8s-demo-web-0123456789".into(),
            kind: LoadBalancerKind::Network,
            scheme: lb_model::stack::Scheme::InternetFacing,
            ip_address_type: lb_model::stack::IpAddressType::Ipv4,
            subnets: ["subnet-a", "subnet-b"]
                .iter()
                .map(|id| SubnetMapping {
                    subnet_id: (*id).into(),
                    allocation_id: None,
                    private_ipv4_address: None,
                })
                .collect(),
            subnets_named: true,
            subnets_problem: None,
            security_groups: vec![],
            attributes: BTreeMap::from([(
                "load_balancing.cross_zone.enabled".to_string(),
                "true".to_string(),
            )]),
            tags: owner_tags("LoadBalancer"),
        },
        managed_security_group: None,
        backend_security_group: false,
        listeners: vec![listener(80), listener(443)],
        target_groups: vec![target_group(80), target_group(443)],
        bindings: vec![],
        external_managed_tags: vec![],
        held_members: vec![],
    }
}

/// What exists once `stack` was applied: the same values, with ARNs.
pub(crate) fn converged(stack: &Stack) -> Existing {
    let tg_arn = |id: &str| format!("arn:tg/{id}");
    Existing {
        load_balancer: Some(ExistingLoadBalancer {
            arn: "arn:lb".into(),
            dns_name: "lb.example".into(),
            load_balancer: stack.load_balancer.clone(),
        }),
        listeners: stack
            .listeners
            .iter()
            .map(|l| ExistingListener {
                arn: format!("arn:listener/{}", l.port),
                listener: Listener {
                    default_action: resolve(&l.default_action, |id| Some(tg_arn(id)))
                        .expect("resolved"),
                    rules: vec![],
                    ..l.clone()
                },
                rules: l
                    .rules
                    .iter()
                    .zip(1u32..)
                    .map(|(r, priority)| ExistingRule {
                        arn: format!("arn:rule/{}/{priority}", l.port),
                        priority,
                        rule: Rule {
                            action: resolve(&r.action, |id| Some(tg_arn(id))).expect("resolved"),
                            tags: crate::deployer::rules::rule_tags(
                                r, stack.kind, l.port, priority,
                            ),
                            ..r.clone()
                        },
                    })
                    .collect(),
            })
            .collect(),
        target_groups: stack
            .target_groups
            .iter()
            .map(|t| ExistingTargetGroup {
                arn: tg_arn(&t.resource_id),
                group: t.clone(),
            })
            .collect(),
    }
}

#[test]
fn a_new_stack_creates_target_groups_then_the_load_balancer_then_listeners() {
    assert_eq!(
        diff(&stack(), &Existing::default()),
        [
            create_group(&target_group(80)),
            create_group(&target_group(443)),
            Step::CreateLoadBalancer,
            create_listener(&listener(80)),
            create_listener(&listener(443)),
        ]
    );
}

#[test]
fn a_converged_stack_needs_no_step() {
    let stack = stack();
    assert_eq!(diff(&stack, &converged(&stack)), []);
    // Attributes someone set by hand are no difference: only what the stack names.
    let mut existing = converged(&stack);
    existing.target_groups[0]
        .group
        .attributes
        .insert("stickiness.enabled".into(), "true".into());
    assert_eq!(diff(&stack, &existing), []);
}

/// Tags are made exactly the desired ones, as upstream makes them (so a tag this controller's
/// earlier versions wrote goes), except upstream's legacy keys and `--external-managed-tags`.
#[test]
fn tags_become_exactly_the_desired_ones_but_legacy_and_external_keys() {
    let mut stack = stack();
    let mut existing = converged(&stack);
    let extra = |tags: &mut BTreeMap<String, String>| {
        tags.insert("lb-controller.dev/ingress".into(), "demo/web".into());
        tags.insert("kubernetes.io/cluster/lab".into(), "owned".into());
        tags.insert("team".into(), "web".into());
    };
    extra(&mut existing.target_groups[0].group.tags);
    if let Some(lb) = existing.load_balancer.as_mut() {
        extra(&mut lb.load_balancer.tags);
    }
    extra(&mut existing.listeners[0].listener.tags);
    stack.external_managed_tags = vec!["team".into()];
    let remove = |arn: &str| Step::RemoveTags {
        arn: arn.into(),
        keys: vec!["lb-controller.dev/ingress".into()],
    };
    assert_eq!(
        diff(&stack, &existing),
        [
            remove("arn:tg/demo/web:80"),
            remove("arn:lb"),
            remove("arn:listener/80"),
        ]
    );
    // A listener without its tags (made before listeners were tagged) gets them.
    let mut untagged = converged(&stack);
    untagged.listeners[1].listener.tags.clear();
    assert_eq!(
        diff(&stack, &untagged),
        [Step::AddTags {
            arn: "arn:listener/443".into(),
            tags: owner_tags("443"),
        }]
    );
}

/// Upstream matches a load balancer by its resource-id tag and keeps it whatever its name: so
/// does the diff (its DNS name, and every record pointing at it, stays).
#[test]
fn a_load_balancer_of_another_name_is_adopted_not_replaced() {
    let desired = stack();
    let mut existing = converged(&desired);
    if let Some(lb) = existing.load_balancer.as_mut() {
        lb.load_balancer.name = "k8s-demo-web-upstream00".into();
    }
    for group in &mut existing.target_groups {
        group.group.name = format!("{}-other", group.group.name);
    }
    assert_eq!(diff(&desired, &existing), []);
}

/// Discovered subnets are for a new load balancer; one that exists keeps its own (upstream's
/// rule). Subnets an annotation names are made exact.
#[test]
fn discovered_subnets_are_not_forced_on_an_existing_load_balancer() {
    let mut desired = stack();
    desired.load_balancer.subnets.pop();
    desired.load_balancer.subnets_named = false;
    assert_eq!(diff(&desired, &converged(&stack())), []);
    desired.load_balancer.subnets_named = true;
    assert_eq!(
        diff(&desired, &converged(&stack())),
        [Step::SetSubnets {
            arn: "arn:lb".into()
        }]
    );
}

/// No subnet discovered: no matter for a load balancer that exists; the reason a new one cannot
/// be made.
#[test]
fn no_subnet_is_a_problem_only_for_a_new_load_balancer() {
    let mut desired = stack();
    desired.load_balancer.subnets.clear();
    desired.load_balancer.subnets_named = false;
    desired.load_balancer.subnets_problem = Some("no subnet is tagged".into());
    let kept = diff(&desired, &converged(&stack()));
    assert_eq!(kept, []);
    assert_eq!(missing_subnets(&desired, &kept), None);
    let new = diff(&desired, &Existing::default());
    assert_eq!(missing_subnets(&desired, &new), Some("no subnet is tagged"));
}

/// While a group member is held (its annotations broken), what it had stays: its target groups
/// (known by their resource ids, `<ns>/<ingress>-...`) are not deleted; the others' are.
#[test]
fn a_held_member_keeps_its_target_groups() {
    let mut existing = converged(&stack());
    existing.target_groups[1].group.resource_id = "demo/broken-web:443".into();
    let mut desired = stack();
    desired.listeners.pop();
    desired.target_groups.pop();
    desired.held_members = vec!["demo/broken".into()];
    assert_eq!(
        diff(&desired, &existing),
        [Step::DeleteListener {
            arn: "arn:listener/443".into(),
            port: 443
        }]
    );
    desired.held_members = vec!["demo/other".into()];
    assert!(
        diff(&desired, &existing).contains(&Step::DeleteTargetGroup {
            arn: "arn:tg/demo/web:443".into()
        })
    );
}

#[test]
fn mutable_changes_modify_in_place() {
    let mut desired = stack();
    desired.target_groups[0].health_check.interval_seconds = 5;
    desired.target_groups[1]
        .attributes
        .insert("deregistration_delay.timeout_seconds".into(), "30".into());
    desired
        .load_balancer
        .attributes
        .insert("load_balancing.cross_zone.enabled".into(), "false".into());
    desired.listeners[1].protocol = lb_model::stack::Protocol::Tls;
    desired.listeners[1].certificates = vec!["arn:cert".into()];
    let existing = converged(&stack());
    assert_eq!(
        diff(&desired, &existing),
        [
            Step::ModifyTargetGroupHealthCheck {
                arn: "arn:tg/demo/web:80".into(),
                group: Box::new(desired.target_groups[0].clone()),
            },
            Step::SetTargetGroupAttributes {
                arn: "arn:tg/demo/web:443".into(),
                attributes: BTreeMap::from([(
                    "deregistration_delay.timeout_seconds".into(),
                    "30".into()
                )]),
            },
            Step::SetLoadBalancerAttributes {
                arn: "arn:lb".into(),
                attributes: BTreeMap::from([(
                    "load_balancing.cross_zone.enabled".into(),
                    "false".into()
                )]),
            },
            modify_listener("arn:listener/443", &desired.listeners[1]),
        ]
    );
}

/// A new protocol cannot be modified in place: a new group, the listener switched to it, and
/// only then the old group deleted, so the listener always has somewhere to send traffic. A new
/// port (not in the data path) keeps the group, as upstream keeps it.
#[test]
fn an_immutable_change_replaces_the_target_group_without_dropping_the_listener() {
    let mut moved = stack();
    moved.target_groups[0].port = 9090;
    assert_eq!(diff(&moved, &converged(&stack())), []);
    let mut desired = stack();
    desired.target_groups[0].protocol = lb_model::stack::Protocol::Tls;
    assert_eq!(
        diff(&desired, &converged(&stack())),
        [
            create_group(&desired.target_groups[0]),
            modify_listener("arn:listener/80", &desired.listeners[0]),
            Step::DeleteTargetGroup {
                arn: "arn:tg/demo/web:80".into()
            },
        ]
    );
}

#[test]
fn a_port_removed_deletes_its_listener_before_its_target_group() {
    let mut desired = stack();
    desired.listeners.pop();
    desired.target_groups.pop();
    assert_eq!(
        diff(&desired, &converged(&stack())),
        [
            Step::DeleteListener {
                arn: "arn:listener/443".into(),
                port: 443
            },
            Step::DeleteTargetGroup {
                arn: "arn:tg/demo/web:443".into()
            },
        ]
    );
}

#[test]
fn a_new_scheme_replaces_the_load_balancer_and_deletes_the_old_one_last() {
    let mut desired = stack();
    desired.load_balancer.scheme = lb_model::stack::Scheme::Internal;
    desired.load_balancer.name = "k8s-demo-web-9876543210".into();
    assert_eq!(
        diff(&desired, &converged(&stack())),
        [
            Step::CreateLoadBalancer,
            create_listener(&listener(80)),
            create_listener(&listener(443)),
            Step::DeleteLoadBalancer {
                arn: "arn:lb".into()
            },
        ]
    );
}

/// Resources without this stack's tags are never modified or deleted, even when handed over.
#[test]
fn what_the_stack_does_not_own_is_left_alone() {
    let desired = stack();
    let mut existing = converged(&desired);
    let foreign = |t: &mut BTreeMap<String, String>| {
        t.insert(tags::SERVICE_STACK.into(), "other/app".into());
    };
    foreign(&mut existing.target_groups[1].group.tags);
    existing.target_groups.push(ExistingTargetGroup {
        arn: "arn:tg/untagged".into(),
        group: TargetGroup {
            tags: BTreeMap::new(),
            ..target_group(8080)
        },
    });
    let steps = diff(&desired, &existing);
    assert_eq!(
        steps,
        [
            // Ours is made anew; the other stack's group of the same id is not touched.
            create_group(&desired.target_groups[1]),
            modify_listener("arn:listener/443", &desired.listeners[1]),
        ]
    );
    let mut foreign_lb = converged(&desired);
    if let Some(lb) = foreign_lb.load_balancer.as_mut() {
        lb.load_balancer.tags.remove(tags::CLUSTER);
    }
    let steps = diff(&desired, &foreign_lb);
    assert!(steps.contains(&Step::CreateLoadBalancer), "{steps:?}");
    assert!(
        !steps
            .iter()
            .any(|s| matches!(s, Step::DeleteLoadBalancer { .. })),
        "{steps:?}"
    );
    // The foreign load balancer's listeners are neither modified nor deleted; ours get new ones.
    assert!(
        !steps
            .iter()
            .any(|s| matches!(s, Step::ModifyListener { .. } | Step::DeleteListener { .. })),
        "{steps:?}"
    );
    assert!(steps.contains(&create_listener(&listener(80))), "{steps:?}");
}

#[test]
fn subnets_and_security_groups_are_compared_as_sets() {
    let mut desired = stack();
    desired.load_balancer.subnets.reverse();
    assert_eq!(diff(&desired, &converged(&stack())), []);
    desired.load_balancer.subnets.pop();
    desired.load_balancer.security_groups = vec!["sg-1".into()];
    assert_eq!(
        diff(&desired, &converged(&stack())),
        [
            Step::SetSubnets {
                arn: "arn:lb".into()
            },
            Step::SetSecurityGroups {
                arn: "arn:lb".into()
            },
        ]
    );
}

#[test]
fn teardown_removes_listeners_then_target_groups_then_the_load_balancer_and_nothing_foreign() {
    let stack = stack();
    let mut existing = converged(&stack);
    existing.target_groups.push(ExistingTargetGroup {
        arn: "arn:tg/untagged".into(),
        group: TargetGroup {
            tags: BTreeMap::new(),
            ..target_group(8080)
        },
    });
    let owner = Owner::of(&stack);
    assert_eq!(
        teardown(&owner, &existing),
        [
            Step::DeleteListener {
                arn: "arn:listener/80".into(),
                port: 80
            },
            Step::DeleteListener {
                arn: "arn:listener/443".into(),
                port: 443
            },
            Step::DeleteTargetGroup {
                arn: "arn:tg/demo/web:80".into()
            },
            Step::DeleteTargetGroup {
                arn: "arn:tg/demo/web:443".into()
            },
            Step::DeleteLoadBalancer {
                arn: "arn:lb".into()
            },
        ]
    );
    let stranger = Owner {
        cluster: "lab".into(),
        kind: StackKind::Service,
        stack_id: "other/app".into(),
    };
    assert_eq!(teardown(&stranger, &existing), []);
    assert_eq!(teardown(&owner, &Existing::default()), []);
}

/// On a listener of ours, a rule without any ownership tag (upstream's from before it tagged
/// rules) is ours too; one tagged for another stack or cluster is not.
#[test]
fn untagged_rules_on_our_listener_are_ours_and_other_stacks_are_not() {
    let owner = Owner::of(&stack());
    assert!(rule_is_ours(&owner, &owner_tags("80:1")));
    assert!(rule_is_ours(&owner, &BTreeMap::new()));
    assert!(rule_is_ours(
        &owner,
        &BTreeMap::from([("team".to_string(), "web".to_string())])
    ));
    let mut other = owner_tags("80:1");
    other.insert(tags::SERVICE_STACK.into(), "other/app".into());
    assert!(!rule_is_ours(&owner, &other));
    let mut other_cluster = owner_tags("80:1");
    other_cluster.insert(tags::CLUSTER.into(), "prod".into());
    assert!(!rule_is_ours(&owner, &other_cluster));
}
