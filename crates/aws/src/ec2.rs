//! EC2, for what a load balancer stands on: the VPC's subnets (discovery by tags happens in the
//! model) and the frontend security group the controller manages for a load balancer.
//!
//! Subnets change rarely: they are described once and kept for [`SUBNETS_TTL`]. A managed
//! security group costs one describe when it is as desired; rules are added and removed one by
//! one, so traffic on a port that stays is never cut.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types as sdk;
use lb_model::service::subnets::Subnet;
use lb_model::stack::{ManagedSecurityGroup, tags};

use crate::calls::{AwsCalls, Operation, finish};
use crate::deployer::diff::Owner;
use crate::error::AwsError;

/// How long described subnets are trusted.
pub const SUBNETS_TTL: Duration = Duration::from_secs(300);

pub trait Ec2: Send + Sync + 'static {
    /// The subnets of the cluster's VPC, with their tags.
    fn subnets(&self) -> impl Future<Output = Result<Vec<Subnet>, AwsError>> + Send;
    /// Creates the group if missing and makes its ingress rules exactly the desired ones;
    /// returns its ID.
    fn ensure_security_group(
        &self,
        group: &ManagedSecurityGroup,
    ) -> impl Future<Output = Result<String, AwsError>> + Send;
    /// Deletes every group that carries `owner`'s tags, except `keep` (an ID).
    fn delete_security_groups(
        &self,
        owner: &Owner,
        keep: Option<&str>,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
}

/// One ingress rule as EC2 holds it: protocol, port range, source CIDR.
type Rule = (String, i32, i32, String);

pub struct SdkEc2 {
    client: Client,
    calls: Arc<AwsCalls>,
    vpc_id: String,
    subnets: tokio::sync::Mutex<Option<(Instant, Vec<Subnet>)>>,
}

impl SdkEc2 {
    pub fn new(config: &aws_config::SdkConfig, calls: Arc<AwsCalls>, vpc_id: &str) -> Self {
        Self {
            client: Client::new(config),
            calls,
            vpc_id: vpc_id.to_string(),
            subnets: tokio::sync::Mutex::default(),
        }
    }

    fn filter(name: &str, value: &str) -> sdk::Filter {
        sdk::Filter::builder().name(name).values(value).build()
    }

    async fn find_group(&self, name: &str) -> Result<Option<sdk::SecurityGroup>, AwsError> {
        let started = Instant::now();
        let result = self
            .client
            .describe_security_groups()
            .filters(Self::filter("vpc-id", &self.vpc_id))
            .filters(Self::filter("group-name", name))
            .send()
            .await;
        let output = finish(
            &self.calls,
            Operation::DescribeSecurityGroups,
            started,
            result,
        )?;
        Ok(output.security_groups().first().cloned())
    }

    async fn create_group(&self, group: &ManagedSecurityGroup) -> Result<String, AwsError> {
        let tags = group
            .tags
            .iter()
            .map(|(k, v)| sdk::Tag::builder().key(k).value(v).build())
            .collect();
        let started = Instant::now();
        let result = self
            .client
            .create_security_group()
            .group_name(&group.name)
            .description("[k8s] Managed SecurityGroup for LoadBalancer")
            .vpc_id(&self.vpc_id)
            .tag_specifications(
                sdk::TagSpecification::builder()
                    .resource_type(sdk::ResourceType::SecurityGroup)
                    .set_tags(Some(tags))
                    .build(),
            )
            .send()
            .await;
        let output = finish(&self.calls, Operation::CreateSecurityGroup, started, result)?;
        Ok(output.group_id().unwrap_or_default().to_string())
    }

    async fn change_rules(&self, id: &str, rules: &[&Rule], add: bool) -> Result<(), AwsError> {
        if rules.is_empty() {
            return Ok(());
        }
        let permissions = rules.iter().map(|rule| permission(rule)).collect();
        let started = Instant::now();
        if add {
            let result = self
                .client
                .authorize_security_group_ingress()
                .group_id(id)
                .set_ip_permissions(Some(permissions))
                .send()
                .await;
            finish(
                &self.calls,
                Operation::AuthorizeSecurityGroupIngress,
                started,
                result,
            )?;
        } else {
            let result = self
                .client
                .revoke_security_group_ingress()
                .group_id(id)
                .set_ip_permissions(Some(permissions))
                .send()
                .await;
            finish(
                &self.calls,
                Operation::RevokeSecurityGroupIngress,
                started,
                result,
            )?;
        }
        Ok(())
    }
}

fn permission((protocol, from, to, cidr): &Rule) -> sdk::IpPermission {
    let builder = sdk::IpPermission::builder()
        .ip_protocol(protocol)
        .from_port(*from)
        .to_port(*to);
    if cidr.contains(':') {
        builder
            .ipv6_ranges(sdk::Ipv6Range::builder().cidr_ipv6(cidr).build())
            .build()
    } else {
        builder
            .ip_ranges(sdk::IpRange::builder().cidr_ip(cidr).build())
            .build()
    }
}

fn desired_rules(group: &ManagedSecurityGroup) -> BTreeSet<Rule> {
    group
        .ingress
        .iter()
        .map(|r| {
            let port = i32::from(r.port);
            (r.protocol.clone(), port, port, r.cidr.to_string())
        })
        .collect()
}

fn existing_rules(group: &sdk::SecurityGroup) -> BTreeSet<Rule> {
    let mut rules = BTreeSet::new();
    for p in group.ip_permissions() {
        let protocol = p.ip_protocol().unwrap_or("-1").to_string();
        let (from, to) = (p.from_port().unwrap_or(-1), p.to_port().unwrap_or(-1));
        let v4 = p.ip_ranges().iter().filter_map(|r| r.cidr_ip());
        let v6 = p.ipv6_ranges().iter().filter_map(|r| r.cidr_ipv6());
        for cidr in v4.chain(v6) {
            rules.insert((protocol.clone(), from, to, cidr.to_string()));
        }
    }
    rules
}

fn tags_of(group: &sdk::SecurityGroup) -> std::collections::BTreeMap<String, String> {
    group
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
        .collect()
}

impl Ec2 for SdkEc2 {
    async fn subnets(&self) -> Result<Vec<Subnet>, AwsError> {
        let mut cached = self.subnets.lock().await;
        if let Some((at, subnets)) = cached.as_ref()
            && at.elapsed() < SUBNETS_TTL
        {
            return Ok(subnets.clone());
        }
        let started = Instant::now();
        let result = self
            .client
            .describe_subnets()
            .filters(Self::filter("vpc-id", &self.vpc_id))
            .send()
            .await;
        let output = finish(&self.calls, Operation::DescribeSubnets, started, result)?;
        let subnets: Vec<Subnet> = output
            .subnets()
            .iter()
            .map(|s| Subnet {
                id: s.subnet_id().unwrap_or_default().to_string(),
                zone: s.availability_zone().unwrap_or_default().to_string(),
                tags: s
                    .tags()
                    .iter()
                    .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
                    .collect(),
            })
            .collect();
        *cached = Some((Instant::now(), subnets.clone()));
        Ok(subnets)
    }

    async fn ensure_security_group(
        &self,
        group: &ManagedSecurityGroup,
    ) -> Result<String, AwsError> {
        let (id, have) = match self.find_group(&group.name).await? {
            Some(found) => (
                found.group_id().unwrap_or_default().to_string(),
                existing_rules(&found),
            ),
            None => (self.create_group(group).await?, BTreeSet::new()),
        };
        let want = desired_rules(group);
        // New rules first: a source range that moves is never closed in between.
        self.change_rules(&id, &want.difference(&have).collect::<Vec<_>>(), true)
            .await?;
        self.change_rules(&id, &have.difference(&want).collect::<Vec<_>>(), false)
            .await?;
        Ok(id)
    }

    async fn delete_security_groups(
        &self,
        owner: &Owner,
        keep: Option<&str>,
    ) -> Result<(), AwsError> {
        let started = Instant::now();
        let result = self
            .client
            .describe_security_groups()
            .filters(Self::filter("vpc-id", &self.vpc_id))
            .filters(Self::filter(
                &format!("tag:{}", tags::CLUSTER),
                &owner.cluster,
            ))
            .filters(Self::filter(
                &format!("tag:{}", owner.kind.stack_tag()),
                &owner.stack_id,
            ))
            .send()
            .await;
        let output = finish(
            &self.calls,
            Operation::DescribeSecurityGroups,
            started,
            result,
        )?;
        for group in output.security_groups() {
            // The filter found them by tags; checked again, as everything we delete.
            if !owner.owns(&tags_of(group)) || group.group_id() == keep {
                continue;
            }
            let started = Instant::now();
            let result = self
                .client
                .delete_security_group()
                .set_group_id(group.group_id().map(str::to_string))
                .send()
                .await;
            finish(&self.calls, Operation::DeleteSecurityGroup, started, result)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use lb_model::stack::IngressRule;

    use super::*;

    #[test]
    fn rules_compare_as_ec2_holds_them() {
        let group = ManagedSecurityGroup {
            name: "k8s-demo-web-0123456789".into(),
            ingress: vec![
                IngressRule {
                    protocol: "tcp".into(),
                    port: 80,
                    cidr: "0.0.0.0/0".parse().expect("cidr"),
                },
                IngressRule {
                    protocol: "udp".into(),
                    port: 53,
                    cidr: "::/0".parse().expect("cidr"),
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
        assert_eq!(add, vec![&("udp".to_string(), 53, 53, "::/0".to_string())]);
        assert_eq!(
            remove,
            vec![&("tcp".to_string(), 443, 443, "10.0.0.0/8".to_string())]
        );
    }
}
