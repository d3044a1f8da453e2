//! EC2, for what a load balancer stands on: the VPC's subnets (discovery by tags happens in the
//! model), the frontend security group the controller manages for a load balancer, the cluster's
//! shared backend security group, and security groups users name.
//!
//! Subnets change rarely: they are described once and kept for [`SUBNETS_TTL`]. A managed
//! security group is found by its tags (cluster, stack and resource id, as upstream finds it, so
//! either controller adopts the other's whatever its name) and costs one describe when it is as
//! desired; rules are added before any is removed, so traffic on a port that stays is never cut.
//! The backend group is found by its tags too, once; its ID is then kept.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types as sdk;
use lb_model::naming;
use lb_model::service::subnets::Subnet;
use lb_model::stack::{ManagedSecurityGroup, descriptions, tags};

use crate::calls::{AwsCalls, Operation, finish};
use crate::deployer::diff::Owner;
use crate::error::{AwsError, AwsErrorKind};

/// How long described subnets are trusted.
pub const SUBNETS_TTL: Duration = Duration::from_secs(300);
/// Tries to delete the backend group while something still references it, and the pause between.
const RELEASE_ATTEMPTS: u32 = 6;
const RELEASE_PAUSE: Duration = Duration::from_secs(5);
/// How long the backend group's ID is trusted before it is looked up again.
pub const BACKEND_GROUP_TTL: Duration = Duration::from_secs(300);

pub trait Ec2: Send + Sync + 'static {
    /// The subnets of the cluster's VPC, with their tags.
    fn subnets(&self) -> impl Future<Output = Result<Vec<Subnet>, AwsError>> + Send;
    /// Finds `owner`'s managed group by its tags or creates it, and makes its tags (but
    /// `ignored_tags`) and ingress rules exactly the desired ones; returns its ID.
    fn ensure_security_group(
        &self,
        owner: &Owner,
        group: &ManagedSecurityGroup,
        ignored_tags: &BTreeSet<String>,
    ) -> impl Future<Output = Result<String, AwsError>> + Send;
    /// The cluster's shared backend security group: `--backend-security-group` when given, else
    /// found by its tags or created (`k8s-traffic-<cluster>-<hash>`); its ID.
    fn backend_security_group(&self) -> impl Future<Output = Result<String, AwsError>> + Send;
    /// Deletes the backend group this controller finds or creates (never a given one) unless a
    /// load balancer still uses it (`in_use`, its ID); a group still in use by something else
    /// (EC2's DependencyViolation) stays for a later release.
    fn release_backend_security_group(
        &self,
        in_use: &(dyn Fn(&str) -> bool + Sync),
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    /// The IDs of the security groups a user named: `sg-...` IDs as they are (each must exist),
    /// others by their `Name` tag in the VPC. Every name must be found.
    fn resolve_security_groups(
        &self,
        names_or_ids: &[String],
    ) -> impl Future<Output = Result<Vec<String>, AwsError>> + Send;
    /// Deletes every group that carries `owner`'s tags, except `keep` (an ID).
    fn delete_security_groups(
        &self,
        owner: &Owner,
        keep: Option<&str>,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
}

/// One ingress rule as EC2 holds it: protocol, port range, source CIDR.
type Rule = (String, i32, i32, String);

/// Where the backend security group comes from (upstream's flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendSecurityGroup {
    /// `--backend-security-group`: the user's; never created, changed or deleted.
    Given(String),
    /// Found by its tags, or created, for this cluster.
    Managed { cluster: String },
}

/// A value as described, and when.
type Described<T> = (Instant, T);

/// Clones share their caches: the Service and Ingress reconcilers use one backend group, and a
/// release by one is seen by the other.
#[derive(Clone)]
pub struct SdkEc2 {
    client: Client,
    calls: Arc<AwsCalls>,
    vpc_id: String,
    subnets: Arc<tokio::sync::Mutex<Option<Described<Vec<Subnet>>>>>,
    backend: BackendSecurityGroup,
    /// The managed backend group's ID once found or created, and when: trusted for
    /// [`BACKEND_GROUP_TTL`] (a group deleted behind the controller's back is found missing then).
    backend_id: Arc<tokio::sync::Mutex<Option<Described<String>>>>,
}

impl SdkEc2 {
    pub fn new(
        config: &aws_config::SdkConfig,
        calls: Arc<AwsCalls>,
        vpc_id: &str,
        backend: BackendSecurityGroup,
    ) -> Self {
        Self {
            client: Client::new(config),
            calls,
            vpc_id: vpc_id.to_string(),
            subnets: Arc::default(),
            backend,
            backend_id: Arc::default(),
        }
    }

    fn filter(name: &str, value: &str) -> sdk::Filter {
        sdk::Filter::builder().name(name).values(value).build()
    }

    /// The VPC's security groups whose tags are all of `tags`.
    async fn groups_tagged(
        &self,
        tags: &BTreeMap<String, String>,
    ) -> Result<Vec<sdk::SecurityGroup>, AwsError> {
        let started = Instant::now();
        let mut request = self
            .client
            .describe_security_groups()
            .filters(Self::filter("vpc-id", &self.vpc_id));
        for (key, value) in tags {
            request = request.filters(Self::filter(&format!("tag:{key}"), value));
        }
        let result = request.send().await;
        let output = finish(
            &self.calls,
            Operation::DescribeSecurityGroups,
            started,
            result,
        )?;
        // The filter found them by tags; checked again, as everything we change.
        Ok(output
            .security_groups()
            .iter()
            .filter(|g| {
                let have = tags_of(g);
                tags.iter().all(|(k, v)| have.get(k) == Some(v))
            })
            .cloned()
            .collect())
    }

    async fn create_group(
        &self,
        name: &str,
        description: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<String, AwsError> {
        let tags = tags
            .iter()
            .map(|(k, v)| sdk::Tag::builder().key(k).value(v).build())
            .collect();
        let started = Instant::now();
        let result = self
            .client
            .create_security_group()
            .group_name(name)
            .description(description)
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

    /// Makes the group's tags the desired ones (upstream's legacy keys left alone).
    async fn reconcile_tags(
        &self,
        id: &str,
        desired: &BTreeMap<String, String>,
        have: &BTreeMap<String, String>,
        ignored: &BTreeSet<String>,
    ) -> Result<(), AwsError> {
        let add: Vec<sdk::Tag> = desired
            .iter()
            .filter(|(k, v)| have.get(*k) != Some(*v))
            .map(|(k, v)| sdk::Tag::builder().key(k).value(v).build())
            .collect();
        if !add.is_empty() {
            let started = Instant::now();
            let result = self
                .client
                .create_tags()
                .resources(id)
                .set_tags(Some(add))
                .send()
                .await;
            finish(&self.calls, Operation::CreateTags, started, result)?;
        }
        let remove: Vec<sdk::Tag> = have
            .keys()
            .filter(|k| !desired.contains_key(*k) && !ignored.contains(*k))
            .map(|k| sdk::Tag::builder().key(k).build())
            .collect();
        if !remove.is_empty() {
            let started = Instant::now();
            let result = self
                .client
                .delete_tags()
                .resources(id)
                .set_tags(Some(remove))
                .send()
                .await;
            finish(&self.calls, Operation::DeleteTags, started, result)?;
        }
        Ok(())
    }

    async fn delete_group(&self, id: &str) -> Result<(), AwsError> {
        let started = Instant::now();
        let result = self
            .client
            .delete_security_group()
            .group_id(id)
            .send()
            .await;
        finish(&self.calls, Operation::DeleteSecurityGroup, started, result)?;
        Ok(())
    }

    async fn describe_by(
        &self,
        ids: Vec<String>,
        names: Vec<String>,
    ) -> Result<Vec<sdk::SecurityGroup>, AwsError> {
        let started = Instant::now();
        let mut request = self.client.describe_security_groups();
        if ids.is_empty() {
            request = request
                .filters(Self::filter("vpc-id", &self.vpc_id))
                .filters(
                    sdk::Filter::builder()
                        .name("tag:Name")
                        .set_values(Some(names))
                        .build(),
                );
        } else {
            request = request.set_group_ids(Some(ids));
        }
        let result = request.send().await;
        let output = finish(
            &self.calls,
            Operation::DescribeSecurityGroups,
            started,
            result,
        )?;
        Ok(output.security_groups().to_vec())
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

/// The tags that make a security group the cluster's backend group (upstream's).
fn backend_tags(cluster: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (tags::CLUSTER.to_string(), cluster.to_string()),
        (
            tags::ELBV2_RESOURCE.to_string(),
            tags::BACKEND_SG.to_string(),
        ),
    ])
}

fn tags_of(group: &sdk::SecurityGroup) -> BTreeMap<String, String> {
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
        owner: &Owner,
        group: &ManagedSecurityGroup,
        ignored_tags: &BTreeSet<String>,
    ) -> Result<String, AwsError> {
        let mut by = BTreeMap::from([
            (tags::CLUSTER.to_string(), owner.cluster.clone()),
            (owner.kind.stack_tag().to_string(), owner.stack_id.clone()),
        ]);
        by.insert(
            owner.kind.resource_tag().to_string(),
            tags::MANAGED_SECURITY_GROUP.to_string(),
        );
        let found = self.groups_tagged(&by).await?.into_iter().next();
        let (id, have) = match found {
            Some(found) => {
                let id = found.group_id().unwrap_or_default().to_string();
                self.reconcile_tags(&id, &group.tags, &tags_of(&found), ignored_tags)
                    .await?;
                (id, existing_rules(&found))
            }
            None => (
                self.create_group(
                    &group.name,
                    descriptions::MANAGED_SECURITY_GROUP,
                    &group.tags,
                )
                .await?,
                BTreeSet::new(),
            ),
        };
        let want = desired_rules(group);
        // New rules first: a source range that moves is never closed in between.
        self.change_rules(&id, &want.difference(&have).collect::<Vec<_>>(), true)
            .await?;
        self.change_rules(&id, &have.difference(&want).collect::<Vec<_>>(), false)
            .await?;
        Ok(id)
    }

    async fn backend_security_group(&self) -> Result<String, AwsError> {
        let cluster = match &self.backend {
            BackendSecurityGroup::Given(id) => return Ok(id.clone()),
            BackendSecurityGroup::Managed { cluster } => cluster,
        };
        let mut known = self.backend_id.lock().await;
        if let Some((at, id)) = known.as_ref()
            && at.elapsed() < BACKEND_GROUP_TTL
        {
            return Ok(id.clone());
        }
        let by = backend_tags(cluster);
        let id = match self.groups_tagged(&by).await?.first() {
            Some(found) => found.group_id().unwrap_or_default().to_string(),
            None => {
                self.create_group(
                    &naming::backend_security_group(cluster),
                    descriptions::BACKEND_SECURITY_GROUP,
                    &by,
                )
                .await?
            }
        };
        *known = Some((Instant::now(), id.clone()));
        Ok(id)
    }

    async fn release_backend_security_group(
        &self,
        in_use: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<(), AwsError> {
        let BackendSecurityGroup::Managed { cluster } = &self.backend else {
            return Ok(());
        };
        let mut known = self.backend_id.lock().await;
        for group in self.groups_tagged(&backend_tags(cluster)).await? {
            let id = group.group_id().unwrap_or_default();
            if in_use(id) {
                continue;
            }
            // A load balancer just deleted holds its network interfaces a little longer: a few
            // tries. Still referenced after them (by another group's rule, say), it stays, to be
            // released with a later load balancer's removal.
            for attempt in 1..=RELEASE_ATTEMPTS {
                match self.delete_group(id).await {
                    Ok(()) => {
                        *known = None;
                        break;
                    }
                    Err(e) if e.kind == AwsErrorKind::InUse && attempt < RELEASE_ATTEMPTS => {
                        tokio::time::sleep(RELEASE_PAUSE).await;
                    }
                    Err(e) if e.kind == AwsErrorKind::InUse => {
                        tracing::info!(
                            group = id,
                            "the backend security group is still in use; kept: {e}"
                        );
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    async fn resolve_security_groups(
        &self,
        names_or_ids: &[String],
    ) -> Result<Vec<String>, AwsError> {
        let (ids, names): (Vec<String>, Vec<String>) = names_or_ids
            .iter()
            .cloned()
            .partition(|n| n.starts_with("sg-"));
        let mut resolved = Vec::new();
        if !ids.is_empty() {
            let found = self.describe_by(ids.clone(), Vec::new()).await?;
            let found: Vec<String> = found
                .iter()
                .filter_map(|g| g.group_id())
                .map(str::to_string)
                .collect();
            if let Some(missing) = ids.iter().find(|id| !found.contains(id)) {
                return Err(AwsError::new(
                    "DescribeSecurityGroups",
                    AwsErrorKind::NotFound,
                    format!("security group {missing} not found"),
                ));
            }
            resolved.extend(ids);
        }
        if !names.is_empty() {
            let found = self.describe_by(Vec::new(), names.clone()).await?;
            for name in &names {
                let id = found
                    .iter()
                    .find(|g| tags_of(g).get("Name") == Some(name))
                    .and_then(|g| g.group_id())
                    .ok_or_else(|| {
                        AwsError::new(
                            "DescribeSecurityGroups",
                            AwsErrorKind::NotFound,
                            format!(
                                "no security group of VPC {} has the Name tag {name:?}",
                                self.vpc_id
                            ),
                        )
                    })?;
                resolved.push(id.to_string());
            }
        }
        Ok(resolved)
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
