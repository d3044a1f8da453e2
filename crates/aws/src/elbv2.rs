//! Elastic Load Balancing v2: the target-group operations the controller needs, behind small
//! traits, and their implementation with the AWS SDK for Rust.
//!
//! [`Elbv2`] hands out a [`TargetGroups`] client per account: the controller's own, or one reached
//! by assuming a role (a binding's `iamRoleArnToAssume`), whose credentials are cached until
//! shortly before they expire (see [`crate::sts`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sdk_elasticloadbalancingv2::Client;
use aws_sdk_elasticloadbalancingv2::types::{TargetDescription, TargetGroup};
use lb_model::elb::{TargetGroupInfo, TargetHealth, TargetKey, TargetState};

use crate::calls::{AwsCalls, Operation, timed};
use crate::error::{AwsError, AwsErrorKind};
use crate::sts::{self, RoleToAssume};

/// Targets per RegisterTargets / DeregisterTargets call (the API's limit is larger; upstream's).
pub const TARGETS_PER_CALL: usize = 200;
/// Assumed-role credentials are renewed this long before they expire.
const RENEW_BEFORE_EXPIRY: Duration = Duration::from_secs(300);

/// Target-group operations in one account. Register and deregister take any number of targets
/// and make as few calls as the API allows.
pub trait TargetGroups: Clone + Send + Sync + 'static {
    /// The target group with this ARN; None when it does not exist.
    fn describe_target_group(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<Option<TargetGroupInfo>, AwsError>> + Send;
    /// The target group with this name; None when it does not exist.
    fn find_target_group(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<TargetGroupInfo>, AwsError>> + Send;
    fn register_targets(
        &self,
        arn: &str,
        targets: &[TargetKey],
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    fn deregister_targets(
        &self,
        arn: &str,
        targets: &[TargetKey],
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    /// DescribeTargetHealth of the whole group (`targets` None), or of the targets named (those
    /// not registered come back `unused` with `Target.NotRegistered`).
    fn target_health(
        &self,
        arn: &str,
        targets: Option<&[TargetKey]>,
    ) -> impl Future<Output = Result<Vec<TargetHealth>, AwsError>> + Send;
    /// The security groups of these load balancers (what the targets' groups must admit).
    fn load_balancer_security_groups(
        &self,
        arns: &[String],
    ) -> impl Future<Output = Result<Vec<String>, AwsError>> + Send;
}

/// ELBv2 for any account the controller may reach.
pub trait Elbv2: Send + Sync + 'static {
    type Client: TargetGroups;
    /// The client for the account reached through `role`, or the controller's own (None).
    fn target_groups(
        &self,
        role: Option<&RoleToAssume>,
    ) -> impl Future<Output = Result<Self::Client, AwsError>> + Send;
}

/// [`Elbv2`] with the SDK: the controller's own client, and one per assumed role.
pub struct SdkElbv2 {
    config: aws_config::SdkConfig,
    calls: Arc<AwsCalls>,
    own: SdkTargetGroups,
    sts: aws_sdk_sts::Client,
    /// Clients for assumed roles, with the expiry of their credentials.
    roles: tokio::sync::Mutex<HashMap<RoleToAssume, (SdkTargetGroups, SystemTime)>>,
}

impl SdkElbv2 {
    pub fn new(config: &aws_config::SdkConfig, calls: Arc<AwsCalls>) -> Self {
        Self {
            config: config.clone(),
            own: SdkTargetGroups::new(Client::new(config), calls.clone()),
            sts: aws_sdk_sts::Client::new(config),
            calls,
            roles: tokio::sync::Mutex::default(),
        }
    }

    pub fn calls(&self) -> &Arc<AwsCalls> {
        &self.calls
    }
}

impl Elbv2 for SdkElbv2 {
    type Client = SdkTargetGroups;

    async fn target_groups(
        &self,
        role: Option<&RoleToAssume>,
    ) -> Result<SdkTargetGroups, AwsError> {
        let Some(role) = role else {
            return Ok(self.own.clone());
        };
        // One lock for all roles: a role's first use assumes it once, not once per binding.
        let mut roles = self.roles.lock().await;
        if let Some((client, expires)) = roles.get(role)
            && SystemTime::now() + RENEW_BEFORE_EXPIRY < *expires
        {
            return Ok(client.clone());
        }
        let credentials = sts::assume_role(&self.sts, &self.calls, role).await?;
        let expires = credentials.expiry().unwrap_or_else(SystemTime::now);
        let config = aws_sdk_elasticloadbalancingv2::config::Builder::from(&self.config)
            .credentials_provider(credentials)
            .build();
        let client = SdkTargetGroups::new(Client::from_conf(config), self.calls.clone());
        roles.insert(role.clone(), (client.clone(), expires));
        Ok(client)
    }
}

/// [`TargetGroups`] in one account with the SDK, every call counted and timed.
#[derive(Clone)]
pub struct SdkTargetGroups {
    client: Client,
    calls: Arc<AwsCalls>,
}

impl SdkTargetGroups {
    pub fn new(client: Client, calls: Arc<AwsCalls>) -> Self {
        Self { client, calls }
    }

    async fn describe(
        &self,
        arn: Option<&str>,
        name: Option<&str>,
    ) -> Result<Option<TargetGroupInfo>, AwsError> {
        match timed(
            &self.calls,
            Operation::DescribeTargetGroups,
            self.client
                .describe_target_groups()
                .set_target_group_arns(arn.map(|a| vec![a.to_string()]))
                .set_names(name.map(|n| vec![n.to_string()]))
                .send(),
        )
        .await
        {
            Ok(output) => Ok(output.target_groups().first().map(target_group_info)),
            Err(err) if err.kind == AwsErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }
}

fn target_group_info(tg: &TargetGroup) -> TargetGroupInfo {
    let number = |n: Option<i32>| n.and_then(|n| u32::try_from(n).ok());
    TargetGroupInfo {
        arn: tg.target_group_arn().unwrap_or_default().to_string(),
        name: tg.target_group_name().unwrap_or_default().to_string(),
        target_type: tg
            .target_type()
            .map(|t| t.as_str().to_string())
            .unwrap_or_else(|| "instance".to_string()),
        protocol: tg.protocol().map(|p| p.as_str().to_string()),
        port: tg.port().and_then(|p| u16::try_from(p).ok()),
        vpc_id: tg.vpc_id().map(str::to_string),
        ip_address_type: tg.ip_address_type().map(|t| t.as_str().to_string()),
        load_balancer_arns: tg.load_balancer_arns().to_vec(),
        health_check_interval_seconds: number(tg.health_check_interval_seconds()),
        healthy_threshold_count: number(tg.healthy_threshold_count()),
    }
}

fn descriptions(targets: &[TargetKey]) -> Vec<TargetDescription> {
    targets
        .iter()
        .map(|t| {
            TargetDescription::builder()
                .id(&t.id)
                .port(i32::from(t.port))
                .build()
        })
        .collect()
}

impl TargetGroups for SdkTargetGroups {
    async fn load_balancer_security_groups(
        &self,
        arns: &[String],
    ) -> Result<Vec<String>, AwsError> {
        if arns.is_empty() {
            return Ok(Vec::new());
        }
        let output = timed(
            &self.calls,
            Operation::DescribeLoadBalancers,
            self.client
                .describe_load_balancers()
                .set_load_balancer_arns(Some(arns.to_vec()))
                .send(),
        )
        .await?;
        let mut groups: Vec<String> = output
            .load_balancers()
            .iter()
            .flat_map(|lb| lb.security_groups().iter().cloned())
            .collect();
        groups.sort();
        groups.dedup();
        Ok(groups)
    }

    async fn describe_target_group(&self, arn: &str) -> Result<Option<TargetGroupInfo>, AwsError> {
        self.describe(Some(arn), None).await
    }

    async fn find_target_group(&self, name: &str) -> Result<Option<TargetGroupInfo>, AwsError> {
        self.describe(None, Some(name)).await
    }

    async fn register_targets(&self, arn: &str, targets: &[TargetKey]) -> Result<(), AwsError> {
        for chunk in targets.chunks(TARGETS_PER_CALL) {
            timed(
                &self.calls,
                Operation::RegisterTargets,
                self.client
                    .register_targets()
                    .target_group_arn(arn)
                    .set_targets(Some(descriptions(chunk)))
                    .send(),
            )
            .await?;
        }
        Ok(())
    }

    async fn deregister_targets(&self, arn: &str, targets: &[TargetKey]) -> Result<(), AwsError> {
        for chunk in targets.chunks(TARGETS_PER_CALL) {
            timed(
                &self.calls,
                Operation::DeregisterTargets,
                self.client
                    .deregister_targets()
                    .target_group_arn(arn)
                    .set_targets(Some(descriptions(chunk)))
                    .send(),
            )
            .await?;
        }
        Ok(())
    }

    async fn target_health(
        &self,
        arn: &str,
        targets: Option<&[TargetKey]>,
    ) -> Result<Vec<TargetHealth>, AwsError> {
        let output = timed(
            &self.calls,
            Operation::DescribeTargetHealth,
            self.client
                .describe_target_health()
                .target_group_arn(arn)
                .set_targets(targets.map(descriptions))
                .send(),
        )
        .await?;
        Ok(output
            .target_health_descriptions()
            .iter()
            .filter_map(|d| {
                let target = d.target()?;
                let health = d.target_health();
                let port = target.port().and_then(|p| u16::try_from(p).ok());
                Some(TargetHealth {
                    target: TargetKey::new(target.id().unwrap_or_default(), port.unwrap_or(0)),
                    state: TargetState::parse(
                        health
                            .and_then(|h| h.state())
                            .map(|s| s.as_str())
                            .unwrap_or("unavailable"),
                    ),
                    reason: health
                        .and_then(|h| h.reason())
                        .map(|r| r.as_str().to_string()),
                    description: health.and_then(|h| h.description()).map(str::to_string),
                })
            })
            .collect())
    }
}
