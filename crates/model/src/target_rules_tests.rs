use k8s_openapi::api::core::v1::{Container, ContainerPort, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use lb_api::target_group_binding::{
    IpBlock, NetworkingIngressRule, NetworkingPeer, NetworkingPort, SecurityGroup,
};

use super::*;

fn group_peer(id: &str) -> NetworkingPeer {
    NetworkingPeer {
        security_group: Some(SecurityGroup {
            group_id: id.into(),
        }),
        ip_block: None,
    }
}

fn port(protocol: Option<&str>, port: Option<IntOrString>) -> NetworkingPort {
    NetworkingPort {
        protocol: protocol.map(str::to_string),
        port,
    }
}

fn networking(rules: Vec<NetworkingIngressRule>) -> TargetGroupBindingNetworking {
    TargetGroupBindingNetworking { ingress: rules }
}

fn pod_with_port(name: &str, number: i32) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some("web-1".into()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "app".into(),
                ports: Some(vec![ContainerPort {
                    name: Some(name.into()),
                    container_port: number,
                    ..Default::default()
                }]),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn tcp(from: u16, to: u16, peer: &str) -> Permission {
    Permission {
        protocol: Protocol::Tcp,
        from,
        to,
        peer: match peer.parse::<IpNet>() {
            Ok(cidr) => Peer::Cidr(cidr),
            Err(_) => Peer::Group(peer.into()),
        },
    }
}

fn described(p: &Permission, labelled: bool) -> DescribedRule {
    DescribedRule {
        protocol: p.protocol.as_ec2().into(),
        from: p.from.into(),
        to: p.to.into(),
        peer: p.peer.clone(),
        labelled,
    }
}

fn interface(groups: &[&str]) -> Interface {
    Interface {
        id: "eni-1".into(),
        instance_id: Some("i-1".into()),
        device_index: Some(0),
        addresses: vec!["10.0.0.16".parse().unwrap(), "10.0.0.64".parse().unwrap()],
        prefixes: vec!["10.0.1.0/28".parse().unwrap()],
        security_groups: groups.iter().map(|g| g.to_string()).collect(),
    }
}

fn info(id: &str, tags: &[(&str, &str)], ingress: Vec<DescribedRule>) -> GroupInfo {
    GroupInfo {
        id: id.into(),
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ingress,
    }
}

#[test]
fn networking_becomes_one_permission_per_peer_and_port() {
    let spec = networking(vec![NetworkingIngressRule {
        from: vec![
            group_peer("sg-lb"),
            NetworkingPeer {
                ip_block: Some(IpBlock {
                    cidr: "10.1.2.3/16".into(),
                }),
                security_group: None,
            },
        ],
        ports: vec![
            port(None, Some(IntOrString::Int(8080))),
            port(Some("UDP"), Some(IntOrString::String("dns".into()))),
            port(Some("TCP"), None),
        ],
    }]);
    let mut pod = pod_with_port("dns", 53);
    if let Some(spec) = pod.spec.as_mut() {
        spec.containers[0].ports.as_mut().unwrap()[0].protocol = Some("UDP".into());
    }
    let got = target_permissions(&spec, Some(&pod)).unwrap();
    let udp = |peer: Peer| Permission {
        protocol: Protocol::Udp,
        from: 53,
        to: 53,
        peer,
    };
    assert_eq!(
        got,
        vec![
            tcp(8080, 8080, "sg-lb"),
            tcp(8080, 8080, "10.1.0.0/16"),
            udp(Peer::Group("sg-lb".into())),
            udp(Peer::Cidr("10.1.0.0/16".parse().unwrap())),
            tcp(0, 65535, "sg-lb"),
            tcp(0, 65535, "10.1.0.0/16"),
        ]
    );
}

#[test]
fn named_ports_resolve_per_pod_and_are_refused_without_one() {
    let spec = networking(vec![NetworkingIngressRule {
        from: vec![group_peer("sg-lb")],
        ports: vec![port(None, Some(IntOrString::String("http".into())))],
    }]);
    let on_pod = target_permissions(&spec, Some(&pod_with_port("http", 9090))).unwrap();
    assert_eq!(on_pod, vec![tcp(9090, 9090, "sg-lb")]);
    let missing = target_permissions(&spec, Some(&pod_with_port("metrics", 9100)));
    assert!(
        matches!(missing, Err(RulesError::UnknownNamedPort { ref pod, ref port }) if pod == "web-1" && port == "http")
    );
    assert!(matches!(
        target_permissions(&spec, None),
        Err(RulesError::NamedPortOnInstance { .. })
    ));
}

#[test]
fn rules_from_a_group_merge_into_one_range_and_cidr_rules_stay() {
    let merged = restricted([
        tcp(8080, 8080, "sg-lb"),
        tcp(80, 80, "sg-lb"),
        tcp(9000, 9000, "sg-lb"),
        tcp(8080, 8080, "10.0.0.0/16"),
        tcp(9000, 9000, "10.0.0.0/16"),
    ]);
    let want: BTreeSet<Permission> = [
        tcp(80, 9000, "sg-lb"),
        tcp(8080, 8080, "10.0.0.0/16"),
        tcp(9000, 9000, "10.0.0.0/16"),
    ]
    .into();
    assert_eq!(merged, want);
}

#[test]
fn the_endpoint_group_is_the_only_one_or_the_one_tagged_for_the_cluster() {
    let none: BTreeMap<String, String> = BTreeMap::new();
    assert_eq!(
        endpoint_group(&interface(&["sg-node"]), &BTreeMap::new(), "prod", &none).unwrap(),
        "sg-node"
    );
    let groups: BTreeMap<String, GroupInfo> = [
        info("sg-a", &[("kubernetes.io/cluster/prod", "owned")], vec![]),
        info(
            "sg-b",
            &[("kubernetes.io/cluster/prod", "shared"), ("team", "web")],
            vec![],
        ),
        info("sg-c", &[], vec![]),
    ]
    .into_iter()
    .map(|g| (g.id.clone(), g))
    .collect();
    let two_tagged = endpoint_group(
        &interface(&["sg-a", "sg-b", "sg-c"]),
        &groups,
        "prod",
        &none,
    );
    assert!(
        matches!(two_tagged, Err(RulesError::NoEndpointGroup { ref found, .. }) if found.len() == 3)
    );
    assert_eq!(
        endpoint_group(&interface(&["sg-a", "sg-c"]), &groups, "prod", &none).unwrap(),
        "sg-a"
    );
    // --service-target-eni-security-group-tags narrows the choice, even with one group.
    let team = BTreeMap::from([("team".to_string(), "web".to_string())]);
    assert_eq!(
        endpoint_group(&interface(&["sg-a", "sg-b"]), &groups, "prod", &team).unwrap(),
        "sg-b"
    );
    assert!(endpoint_group(&interface(&["sg-a"]), &groups, "prod", &team).is_err());
}

#[test]
fn changes_authorize_what_is_missing_and_revoke_only_labelled_rules() {
    let desired: BTreeSet<Permission> = [tcp(80, 9000, "sg-lb"), tcp(53, 53, "sg-lb")].into();
    let existing = vec![
        described(&tcp(80, 8080, "sg-lb"), true), // ours, stale: revoked
        described(&tcp(53, 53, "sg-lb"), false),  // a user's identical rule: kept, not doubled
        described(&tcp(22, 22, "10.0.0.0/8"), false), // a user's: never touched
        DescribedRule {
            protocol: "-1".into(),
            from: -1,
            to: -1,
            peer: Peer::Group("sg-node".into()),
            labelled: false,
        },
    ];
    let got = changes(&desired, &existing, false);
    assert_eq!(got.authorize, vec![tcp(80, 9000, "sg-lb")]);
    assert_eq!(got.revoke, vec![tcp(80, 8080, "sg-lb")]);
    // Until every binding is known after a start, nothing is revoked, and a rule inside one
    // present is not added beside it.
    let careful = changes(&desired, &existing, true);
    assert_eq!(careful.authorize, got.authorize);
    assert!(careful.revoke.is_empty());
    let one_binding_known: BTreeSet<Permission> = [tcp(80, 80, "sg-lb")].into();
    assert!(changes(&one_binding_known, &existing, true).is_empty());
    assert_eq!(
        changes(&one_binding_known, &existing, false).authorize,
        vec![tcp(80, 80, "sg-lb")]
    );
    assert!(changes(&BTreeSet::new(), &[], false).is_empty());
}

#[test]
fn the_pool_sums_bindings_per_group_and_forgets_a_binding_whole() {
    let mut pool = Pool::default();
    let one = |p: Permission| BTreeMap::from([("sg-node".to_string(), BTreeSet::from([p]))]);
    assert_eq!(
        pool.set("ns/a", one(tcp(8080, 8080, "sg-lb"))),
        BTreeSet::from(["sg-node".to_string()])
    );
    pool.set("ns/b", one(tcp(9090, 9090, "sg-lb")));
    assert_eq!(
        pool.desired("sg-node", true),
        BTreeSet::from([tcp(8080, 9090, "sg-lb")])
    );
    assert_eq!(pool.desired("sg-node", false).len(), 2);
    assert_eq!(pool.remove("ns/a"), BTreeSet::from(["sg-node".to_string()]));
    assert_eq!(
        pool.desired("sg-node", true),
        BTreeSet::from([tcp(9090, 9090, "sg-lb")])
    );
    pool.remove("ns/b");
    assert!(pool.groups().is_empty() && pool.desired("sg-node", true).is_empty());
}

#[test]
fn the_diagnosis_names_groups_interface_and_port_only_when_nothing_admits() {
    let closed = info(
        "sg-node",
        &[],
        vec![DescribedRule {
            protocol: "-1".into(),
            from: -1,
            to: -1,
            peer: Peer::Group("sg-node".into()),
            labelled: false,
        }],
    );
    let lb = vec!["sg-lb".to_string()];
    let message = unreachable_message(
        &interface(&["sg-node"]),
        &[&closed],
        &lb,
        Protocol::Tcp,
        8080,
    )
    .expect("closed");
    assert_eq!(
        message,
        "sg-node on eni-1 admits nothing from sg-lb (the load balancer) on tcp/8080: add spec.networking, or let the controller manage backend rules"
    );
    let open = info(
        "sg-node",
        &[],
        vec![described(&tcp(80, 9000, "sg-lb"), true)],
    );
    assert_eq!(
        unreachable_message(&interface(&["sg-node"]), &[&open], &lb, Protocol::Tcp, 8080),
        None
    );
    // A range that ends below the port admits nothing; an address rule is no group rule.
    let narrow = info(
        "sg-node",
        &[],
        vec![described(&tcp(80, 8079, "sg-lb"), true)],
    );
    assert!(admits(
        &[&narrow],
        Protocol::Tcp,
        8079,
        &Source::Groups(lb.clone())
    ));
    assert!(!admits(
        &[&narrow],
        Protocol::Tcp,
        8080,
        &Source::Groups(lb.clone())
    ));
    let by_cidr = info(
        "sg-node",
        &[],
        vec![described(&tcp(0, 65535, "10.0.0.0/8"), false)],
    );
    assert!(admits(
        &[&by_cidr],
        Protocol::Tcp,
        8080,
        &Source::Address("10.1.2.3".parse().unwrap())
    ));
    assert!(
        unreachable_message(&interface(&["sg-node"]), &[&by_cidr], &[], Protocol::Tcp, 1).is_none()
    );
}

#[test]
fn a_branch_interface_comes_from_the_pod_eni_annotation() {
    let mut pod = pod_with_port("http", 80);
    assert_eq!(pod_branch_interface(&pod), None);
    pod.metadata.annotations = Some(BTreeMap::from([(
        POD_ENI_ANNOTATION.to_string(),
        r#"[{"eniId":"eni-0abc","ifAddress":"02:00","privateIp":"10.0.0.9","vlanId":1,"subnetCidr":"10.0.0.0/19"}]"#.to_string(),
    )]));
    assert_eq!(pod_branch_interface(&pod).as_deref(), Some("eni-0abc"));
    let interfaces = [interface(&["sg-node"])];
    let found = interface_with_address(&interfaces, "10.0.0.64".parse().unwrap());
    assert_eq!(found.map(|i| i.id.as_str()), Some("eni-1"));
    // Prefix delegation: an address inside a delegated prefix is on the interface.
    let delegated = interface_with_address(&interfaces, "10.0.1.9".parse().unwrap());
    assert_eq!(delegated.map(|i| i.id.as_str()), Some("eni-1"));
    assert!(interface_with_address(&interfaces, "10.0.1.16".parse().unwrap()).is_none());
}
