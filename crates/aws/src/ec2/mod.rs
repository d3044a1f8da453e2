//! EC2, for what a load balancer stands on: the VPC's subnets (discovery by tags happens in the
//! model), the frontend security group the controller manages for a load balancer, the cluster's
//! shared backend security group, and security groups users name.
//!
//! Subnets change rarely: they are described once and kept for [`SUBNETS_TTL`]. A managed
//! security group is found by its tags (cluster, stack and resource id, as upstream finds it, so
//! either controller adopts the other's whatever its name) and costs one describe when it is as
//! desired; rules are added before any is removed, so traffic on a port that stays is never cut.
//! The backend group is found by its tags too, once; its ID is then kept.
//!
//! - [`groups`]: the security-group calls (find by tags, ID or `Name` tag; create; tags; rules;
//!   delete);
//! - [`rules`]: ingress rules as EC2 holds them, desired and described.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_ec2::Client;
use lb_model::naming;
use lb_model::service::subnets::Subnet;
use lb_model::stack::{ManagedSecurityGroup, descriptions, tags};

use crate::calls::{AwsCalls, Operation, timed};
use crate::deployer::diff::Owner;
use crate::error::{AwsError, AwsErrorKind};

mod groups;
mod rules;
pub mod targets;

use rules::{desired_rules, existing_rules};

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
    /// The CIDRs of the cluster's VPC (what an internal NLB without security groups admits).
    fn vpc_cidrs(&self) -> impl Future<Output = Result<Vec<ipnet::IpNet>, AwsError>> + Send;
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
    /// The backend groups this controller finds or creates, found by their tags (none when the
    /// group is given by `--backend-security-group`): what [`Ec2::release_backend_security_group`]
    /// may delete once no load balancer uses them.
    fn releasable_backend_security_groups(
        &self,
    ) -> impl Future<Output = Result<Vec<String>, AwsError>> + Send;
    /// Deletes backend group `id`, trying a few times while a load balancer just deleted still
    /// holds it; a group still in use by something else (EC2's DependencyViolation) stays for a
    /// later release.
    fn release_backend_security_group(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    /// The IDs of the security groups a user named: `sg-...` IDs as they are (each must exist),
    /// others by their `Name` tag in the VPC. Every name must be found.
    fn resolve_security_groups(
        &self,
        names_or_ids: &[String],
    ) -> impl Future<Output = Result<Vec<String>, AwsError>> + Send;
    /// Deletes every group that carries `owner`'s tags.
    fn delete_security_groups(
        &self,
        owner: &Owner,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
}

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
    /// `--cluster-name`: picks the cluster's security group on a target's interface.
    cluster: Option<String>,
    subnets: Arc<tokio::sync::Mutex<Option<Described<Vec<Subnet>>>>>,
    /// The VPC's CIDRs, described with the same TTL as the subnets.
    vpc_cidrs: Arc<tokio::sync::Mutex<Option<Described<Vec<ipnet::IpNet>>>>>,
    backend: BackendSecurityGroup,
    /// The managed backend group's ID once found or created, and when: trusted for
    /// [`BACKEND_GROUP_TTL`] (a group deleted behind the controller's back is found missing then).
    backend_id: Arc<tokio::sync::Mutex<Option<Described<String>>>>,
}

impl SdkEc2 {
    /// The same client, for cluster `name`'s targets (see [`targets::TargetNetwork`]).
    pub fn for_cluster(mut self, name: &str) -> Self {
        self.cluster = Some(name.to_string());
        self
    }

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
            cluster: None,
            subnets: Arc::default(),
            vpc_cidrs: Arc::default(),
            backend,
            backend_id: Arc::default(),
        }
    }
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

impl Ec2 for SdkEc2 {
    async fn vpc_cidrs(&self) -> Result<Vec<ipnet::IpNet>, AwsError> {
        let mut cached = self.vpc_cidrs.lock().await;
        if let Some((at, cidrs)) = cached.as_ref()
            && at.elapsed() < SUBNETS_TTL
        {
            return Ok(cidrs.clone());
        }
        let request = self.client.describe_vpcs().vpc_ids(&self.vpc_id).send();
        let output = timed(&self.calls, Operation::DescribeVpcs, request).await?;
        let mut cidrs: Vec<ipnet::IpNet> = output
            .vpcs()
            .iter()
            .flat_map(|vpc| {
                let associated = vpc
                    .cidr_block_association_set()
                    .iter()
                    .filter(|a| {
                        a.cidr_block_state()
                            .and_then(|s| s.state())
                            .is_none_or(|s| {
                                *s == aws_sdk_ec2::types::VpcCidrBlockStateCode::Associated
                            })
                    })
                    .filter_map(|a| a.cidr_block());
                vpc.cidr_block().into_iter().chain(associated)
            })
            .filter_map(|cidr| cidr.parse().ok())
            .collect();
        cidrs.sort();
        cidrs.dedup();
        *cached = Some((Instant::now(), cidrs.clone()));
        Ok(cidrs)
    }

    async fn subnets(&self) -> Result<Vec<Subnet>, AwsError> {
        let mut cached = self.subnets.lock().await;
        if let Some((at, subnets)) = cached.as_ref()
            && at.elapsed() < SUBNETS_TTL
        {
            return Ok(subnets.clone());
        }
        let request = self
            .client
            .describe_subnets()
            .filters(filter("vpc-id", &self.vpc_id))
            .send();
        let output = timed(&self.calls, Operation::DescribeSubnets, request).await?;
        let subnets: Vec<Subnet> = output
            .subnets()
            .iter()
            .map(|s| Subnet {
                cidr: s.cidr_block().and_then(|c| c.parse().ok()),
                id: s.subnet_id().unwrap_or_default().to_string(),
                zone: s.availability_zone().unwrap_or_default().to_string(),
                tags: tags_of(s.tags()),
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
        let mut by = stack_tags(owner);
        by.insert(
            owner.kind.resource_tag().to_string(),
            tags::MANAGED_SECURITY_GROUP.to_string(),
        );
        let found = self.groups_tagged(&by).await?.into_iter().next();
        let (id, have) = match found {
            Some(found) => {
                let id = found.group_id().unwrap_or_default().to_string();
                self.reconcile_tags(&id, &group.tags, &tags_of(found.tags()), ignored_tags)
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

    async fn releasable_backend_security_groups(&self) -> Result<Vec<String>, AwsError> {
        let BackendSecurityGroup::Managed { cluster } = &self.backend else {
            return Ok(Vec::new());
        };
        Ok(self
            .groups_tagged(&backend_tags(cluster))
            .await?
            .iter()
            .filter_map(|g| g.group_id())
            .map(str::to_string)
            .collect())
    }

    async fn release_backend_security_group(&self, id: &str) -> Result<(), AwsError> {
        // A load balancer just deleted holds its network interfaces a little longer: a few
        // tries. Still referenced after them (by another group's rule, say), it stays, to be
        // released with a later load balancer's removal. The known ID is locked only while a
        // delete is on its way, not while waiting: deploys read it.
        for attempt in 1..=RELEASE_ATTEMPTS {
            let mut known = self.backend_id.lock().await;
            match self.delete_group(id).await {
                Ok(()) => {
                    *known = None;
                    return Ok(());
                }
                Err(e) if e.kind == AwsErrorKind::InUse && attempt < RELEASE_ATTEMPTS => {
                    drop(known);
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
            let found = self.groups_with_ids(ids.clone()).await?;
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
            let found = self.groups_named(names.clone()).await?;
            for name in &names {
                let id = found
                    .iter()
                    .find(|g| tags_of(g.tags()).get("Name") == Some(name))
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

    async fn delete_security_groups(&self, owner: &Owner) -> Result<(), AwsError> {
        for group in self.groups_tagged(&stack_tags(owner)).await? {
            if let Some(id) = group.group_id() {
                self.delete_group(id).await?;
            }
        }
        Ok(())
    }
}

pub(crate) fn filter(name: &str, value: &str) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder()
        .name(name)
        .values(value)
        .build()
}

/// EC2's filters for resources that carry all of `tags`.
pub(crate) fn tag_filters(
    tags: &BTreeMap<String, String>,
) -> impl Iterator<Item = aws_sdk_ec2::types::Filter> + '_ {
    tags.iter()
        .map(|(key, value)| filter(&format!("tag:{key}"), value))
}

/// An EC2 resource's tags as a map (a tag without a value left out).
pub(crate) fn tags_of(tags: &[aws_sdk_ec2::types::Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
        .collect()
}

/// The tags every group of `owner`'s stack carries (cluster and stack).
fn stack_tags(owner: &Owner) -> BTreeMap<String, String> {
    BTreeMap::from([
        (tags::CLUSTER.to_string(), owner.cluster.clone()),
        (owner.kind.stack_tag().to_string(), owner.stack_id.clone()),
    ])
}
