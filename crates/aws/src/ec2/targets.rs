//! What the TargetGroupBinding reconciler asks EC2 about its targets' network: the interfaces of
//! the nodes' instances (with the VPC CNI's pod addresses), branch interfaces, the security
//! groups on them with their rules, and the labelled rules it writes there
//! ([`lb_model::target_rules`]).

use std::net::IpAddr;

use aws_sdk_ec2::types as sdk;
use futures::future::BoxFuture;
use lb_model::target_rules::{DescribedRule, GroupInfo, Interface, Peer, Permission, RULE_LABEL};

use super::{SdkEc2, filter, tags_of};
use crate::calls::{Operation, timed};
use crate::error::AwsError;

/// EC2 as the binding reconciler sees it; object-safe, so its context holds one whatever the
/// implementation (the SDK, or a fake in tests).
pub trait TargetNetwork: Send + Sync + 'static {
    /// The interfaces attached to these instances.
    fn instance_interfaces(
        &self,
        instances: Vec<String>,
    ) -> BoxFuture<'_, Result<Vec<Interface>, AwsError>>;
    /// The interfaces that hold this private address.
    fn interfaces_with_address(
        &self,
        address: String,
    ) -> BoxFuture<'_, Result<Vec<Interface>, AwsError>>;
    /// The interfaces with these IDs (branch interfaces of security groups for pods).
    fn interfaces(&self, ids: Vec<String>) -> BoxFuture<'_, Result<Vec<Interface>, AwsError>>;
    /// The security groups with these IDs, with their tags and ingress rules.
    fn security_groups(&self, ids: Vec<String>) -> BoxFuture<'_, Result<Vec<GroupInfo>, AwsError>>;
    /// The security groups tagged `kubernetes.io/cluster/<cluster>` (owned or shared): where
    /// rules of a binding deleted while the controller was down may be left.
    fn cluster_security_groups(&self) -> BoxFuture<'_, Result<Vec<GroupInfo>, AwsError>>;
    /// Adds `rules` to `group`, each described with [`RULE_LABEL`].
    fn authorize(
        &self,
        group: String,
        rules: Vec<Permission>,
    ) -> BoxFuture<'_, Result<(), AwsError>>;
    /// Removes `rules` (labelled ones) from `group`.
    fn revoke(&self, group: String, rules: Vec<Permission>) -> BoxFuture<'_, Result<(), AwsError>>;
}

/// EC2 takes at most this many values in one filter, and this many IDs in one describe.
const PER_CALL: usize = 200;

fn interface_of(eni: &sdk::NetworkInterface) -> Option<Interface> {
    let mut addresses: Vec<IpAddr> = eni
        .private_ip_addresses()
        .iter()
        .filter_map(|a| a.private_ip_address()?.parse().ok())
        .collect();
    addresses.extend(
        eni.ipv6_addresses()
            .iter()
            .filter_map(|a| a.ipv6_address()?.parse::<IpAddr>().ok()),
    );
    let mut prefixes: Vec<ipnet::IpNet> = eni
        .ipv4_prefixes()
        .iter()
        .filter_map(|p| p.ipv4_prefix()?.parse().ok())
        .collect();
    prefixes.extend(
        eni.ipv6_prefixes()
            .iter()
            .filter_map(|p| p.ipv6_prefix()?.parse::<ipnet::IpNet>().ok()),
    );
    let attachment = eni.attachment();
    Some(Interface {
        id: eni.network_interface_id()?.to_string(),
        instance_id: attachment.and_then(|a| a.instance_id()).map(str::to_string),
        device_index: attachment.and_then(|a| a.device_index()),
        addresses,
        prefixes,
        security_groups: eni
            .groups()
            .iter()
            .filter_map(|g| g.group_id().map(str::to_string))
            .collect(),
    })
}

fn group_of(group: &sdk::SecurityGroup) -> Option<GroupInfo> {
    let mut ingress = Vec::new();
    for p in group.ip_permissions() {
        let protocol = p.ip_protocol().unwrap_or("-1").to_string();
        let (from, to) = (p.from_port().unwrap_or(-1), p.to_port().unwrap_or(-1));
        let mut add = |peer: Peer, description: Option<&str>| {
            ingress.push(DescribedRule {
                protocol: protocol.clone(),
                from,
                to,
                peer,
                labelled: description == Some(RULE_LABEL),
            });
        };
        for pair in p.user_id_group_pairs() {
            if let Some(id) = pair.group_id() {
                add(Peer::Group(id.to_string()), pair.description());
            }
        }
        for range in p.ip_ranges() {
            if let Some(cidr) = range.cidr_ip().and_then(|c| c.parse().ok()) {
                add(Peer::Cidr(cidr), range.description());
            }
        }
        for range in p.ipv6_ranges() {
            if let Some(cidr) = range.cidr_ipv6().and_then(|c| c.parse().ok()) {
                add(Peer::Cidr(cidr), range.description());
            }
        }
    }
    Some(GroupInfo {
        id: group.group_id()?.to_string(),
        tags: tags_of(group.tags()),
        ingress,
    })
}

/// A permission as the SDK sends it, labelled.
fn sdk_permission(rule: &Permission) -> sdk::IpPermission {
    let builder = sdk::IpPermission::builder()
        .ip_protocol(rule.protocol.as_ec2())
        .from_port(i32::from(rule.from))
        .to_port(i32::from(rule.to));
    match &rule.peer {
        Peer::Group(id) => builder.user_id_group_pairs(
            sdk::UserIdGroupPair::builder()
                .group_id(id)
                .description(RULE_LABEL)
                .build(),
        ),
        Peer::Cidr(cidr) if cidr.addr().is_ipv6() => builder.ipv6_ranges(
            sdk::Ipv6Range::builder()
                .cidr_ipv6(cidr.to_string())
                .description(RULE_LABEL)
                .build(),
        ),
        Peer::Cidr(cidr) => builder.ip_ranges(
            sdk::IpRange::builder()
                .cidr_ip(cidr.to_string())
                .description(RULE_LABEL)
                .build(),
        ),
    }
    .build()
}

impl SdkEc2 {
    async fn describe_interfaces(
        &self,
        filters: Vec<sdk::Filter>,
        ids: Vec<String>,
    ) -> Result<Vec<Interface>, AwsError> {
        let mut found = Vec::new();
        let mut token = None;
        loop {
            let request = self
                .client
                .describe_network_interfaces()
                .set_filters((!filters.is_empty()).then(|| filters.clone()))
                .set_network_interface_ids((!ids.is_empty()).then(|| ids.clone()))
                .set_next_token(token.take());
            let output = timed(
                &self.calls,
                Operation::DescribeNetworkInterfaces,
                request.send(),
            )
            .await?;
            found.extend(output.network_interfaces().iter().filter_map(interface_of));
            match output.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_string()),
                _ => return Ok(found),
            }
        }
    }
}

impl TargetNetwork for SdkEc2 {
    fn instance_interfaces(
        &self,
        instances: Vec<String>,
    ) -> BoxFuture<'_, Result<Vec<Interface>, AwsError>> {
        Box::pin(async move {
            let mut found = Vec::new();
            for chunk in instances.chunks(PER_CALL) {
                let by_instance = sdk::Filter::builder()
                    .name("attachment.instance-id")
                    .set_values(Some(chunk.to_vec()))
                    .build();
                found.extend(
                    self.describe_interfaces(vec![by_instance], Vec::new())
                        .await?,
                );
            }
            Ok(found)
        })
    }

    fn interfaces_with_address(
        &self,
        address: String,
    ) -> BoxFuture<'_, Result<Vec<Interface>, AwsError>> {
        Box::pin(async move {
            let by_address = filter("addresses.private-ip-address", &address);
            self.describe_interfaces(vec![by_address], Vec::new()).await
        })
    }

    fn interfaces(&self, ids: Vec<String>) -> BoxFuture<'_, Result<Vec<Interface>, AwsError>> {
        Box::pin(async move {
            let mut found = Vec::new();
            for chunk in ids.chunks(PER_CALL) {
                found.extend(self.describe_interfaces(Vec::new(), chunk.to_vec()).await?);
            }
            Ok(found)
        })
    }

    fn security_groups(&self, ids: Vec<String>) -> BoxFuture<'_, Result<Vec<GroupInfo>, AwsError>> {
        Box::pin(async move {
            let mut found = Vec::new();
            for chunk in ids.chunks(PER_CALL) {
                let groups = self.groups_with_ids(chunk.to_vec()).await?;
                found.extend(groups.iter().filter_map(group_of));
            }
            Ok(found)
        })
    }

    fn cluster_security_groups(&self) -> BoxFuture<'_, Result<Vec<GroupInfo>, AwsError>> {
        Box::pin(async move {
            let cluster = self.cluster.clone().unwrap_or_default();
            let key = format!("{}{cluster}", lb_model::target_rules::CLUSTER_TAG_PREFIX);
            let tagged = filter("tag-key", &key);
            let groups = self.groups_filtered(vec![tagged]).await?;
            // Checked again, as everything we change.
            Ok(groups
                .iter()
                .filter_map(group_of)
                .filter(|g| {
                    matches!(
                        g.tags.get(&key).map(String::as_str),
                        Some("owned" | "shared")
                    )
                })
                .collect())
        })
    }

    fn authorize(
        &self,
        group: String,
        rules: Vec<Permission>,
    ) -> BoxFuture<'_, Result<(), AwsError>> {
        let permissions = rules.iter().map(sdk_permission).collect();
        Box::pin(async move { self.change_permissions(&group, permissions, true).await })
    }

    fn revoke(&self, group: String, rules: Vec<Permission>) -> BoxFuture<'_, Result<(), AwsError>> {
        let permissions = rules.iter().map(sdk_permission).collect();
        Box::pin(async move { self.change_permissions(&group, permissions, false).await })
    }
}
