//! Ingress rules as EC2 holds them, one `(protocol, from, to, source)` each (the source a CIDR or
//! a prefix list ID): a managed group's desired ones, a described group's, and back to the SDK's
//! permissions.

use std::collections::BTreeSet;

use aws_sdk_ec2::types as sdk;
use lb_model::stack::ManagedSecurityGroup;

/// One ingress rule as EC2 holds it: protocol, port range, source (a CIDR, or `pl-...`).
pub(super) type Rule = (String, i32, i32, String);

pub(super) fn permission((protocol, from, to, source): &Rule) -> sdk::IpPermission {
    let builder = sdk::IpPermission::builder()
        .ip_protocol(protocol)
        .from_port(*from)
        .to_port(*to);
    if source.starts_with("pl-") {
        builder
            .prefix_list_ids(sdk::PrefixListId::builder().prefix_list_id(source).build())
            .build()
    } else if source.contains(':') {
        builder
            .ipv6_ranges(sdk::Ipv6Range::builder().cidr_ipv6(source).build())
            .build()
    } else {
        builder
            .ip_ranges(sdk::IpRange::builder().cidr_ip(source).build())
            .build()
    }
}

pub(super) fn desired_rules(group: &ManagedSecurityGroup) -> BTreeSet<Rule> {
    group
        .ingress
        .iter()
        .map(|r| {
            let port = i32::from(r.port);
            (r.protocol.clone(), port, port, r.source.to_string())
        })
        .collect()
}

pub(super) fn existing_rules(group: &sdk::SecurityGroup) -> BTreeSet<Rule> {
    let mut rules = BTreeSet::new();
    for p in group.ip_permissions() {
        let protocol = p.ip_protocol().unwrap_or("-1").to_string();
        let (from, to) = (p.from_port().unwrap_or(-1), p.to_port().unwrap_or(-1));
        let v4 = p.ip_ranges().iter().filter_map(|r| r.cidr_ip());
        let v6 = p.ipv6_ranges().iter().filter_map(|r| r.cidr_ipv6());
        let lists = p
            .prefix_list_ids()
            .iter()
            .filter_map(|l| l.prefix_list_id());
        for source in v4.chain(v6).chain(lists) {
            rules.insert((protocol.clone(), from, to, source.to_string()));
        }
    }
    rules
}

#[cfg(test)]
mod tests {
    use lb_model::stack::{IngressRule, RuleSource};

    use super::*;

    #[test]
    fn rules_compare_as_ec2_holds_them() {
        let group = ManagedSecurityGroup {
            name: "k8s-demo-web-0123456789".into(),
            ingress: vec![
                IngressRule {
                    protocol: "tcp".into(),
                    port: 80,
                    source: RuleSource::Cidr("0.0.0.0/0".parse().expect("cidr")),
                },
                IngressRule {
                    protocol: "udp".into(),
                    port: 53,
                    source: RuleSource::Cidr("::/0".parse().expect("cidr")),
                },
                IngressRule {
                    protocol: "tcp".into(),
                    port: 443,
                    source: RuleSource::PrefixList("pl-0123abcd".into()),
                },
            ],
            tags: Default::default(),
        };
        let described = sdk::SecurityGroup::builder()
            .ip_permissions(permission(&("tcp".into(), 80, 80, "0.0.0.0/0".into())))
            .ip_permissions(permission(&("tcp".into(), 443, 443, "10.0.0.0/8".into())))
            .build();
        let want = desired_rules(&group);
        let have = existing_rules(&described);
        let add: Vec<_> = want.difference(&have).collect();
        let remove: Vec<_> = have.difference(&want).collect();
        assert_eq!(
            add,
            vec![
                &("tcp".to_string(), 443, 443, "pl-0123abcd".to_string()),
                &("udp".to_string(), 53, 53, "::/0".to_string()),
            ]
        );
        // A prefix list rule comes back as it went.
        let round_trip = sdk::SecurityGroup::builder()
            .ip_permissions(permission(&("tcp".into(), 443, 443, "pl-0123abcd".into())))
            .build();
        assert!(existing_rules(&round_trip).contains(&(
            "tcp".into(),
            443,
            443,
            "pl-0123abcd".into()
        )));
        assert_eq!(
            remove,
            vec![&("tcp".to_string(), 443, 443, "10.0.0.0/8".to_string())]
        );
    }
}
