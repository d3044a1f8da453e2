//! ELBv2 set-up through the AWS SDK for Rust against the sandbox's emulator, for tests and
//! benchmarks: what a cloud engineer would create before a controller takes over.

use aws_sdk_elasticloadbalancingv2::Client;
use aws_sdk_elasticloadbalancingv2::error::DisplayErrorContext;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, FixedResponseActionConfig, LoadBalancerTypeEnum, ProtocolEnum,
    RuleCondition, TargetDescription, TargetGroupAttribute, TargetTypeEnum,
};

use super::AwsEmulator;
use crate::error::{Result, SandboxError};

fn failed<E: std::error::Error>(operation: &'static str, err: E) -> SandboxError {
    SandboxError::Aws {
        operation,
        message: DisplayErrorContext(err).to_string(),
    }
}

/// An HTTP target group with a health check every `interval` seconds (timeout 2 s, 1 s below
/// an interval of 2 s or less; healthy and unhealthy thresholds 2).
#[derive(Debug, Clone)]
pub struct TargetGroupSpec<'a> {
    pub name: &'a str,
    pub target_type: TargetTypeEnum,
    pub port: i32,
    pub health_check_path: &'a str,
    pub interval: i32,
}

/// An ELB client for what the sandbox sets up by hand and checks: AWS faults never meet it.
pub async fn client(aws: &AwsEmulator) -> Client {
    Client::new(&aws.observer_sdk_config().await)
}

/// The health check's timeout: AWS's minimum, 2 s, where the interval leaves room for it (ELB
/// wants the timeout below the interval; the tests' 1-2 s intervals, shorter than AWS allows, get
/// 1 s). A 1 s timeout with a 5 s interval timed out checks of targets that were fine when 1,000
/// pods started at once on 2 cores, each failure costing its target two more intervals.
fn check_timeout(interval: i32) -> i32 {
    (interval - 1).clamp(1, 2)
}

pub async fn target_group(
    elb: &Client,
    aws: &AwsEmulator,
    spec: TargetGroupSpec<'_>,
) -> Result<String> {
    let created = elb
        .create_target_group()
        .name(spec.name)
        .protocol(ProtocolEnum::Http)
        .port(spec.port)
        .vpc_id(&aws.seeded().vpc_id)
        .target_type(spec.target_type)
        .health_check_path(spec.health_check_path)
        .health_check_interval_seconds(spec.interval)
        .health_check_timeout_seconds(check_timeout(spec.interval))
        .healthy_threshold_count(2)
        .unhealthy_threshold_count(2)
        .send()
        .await
        .map_err(|e| failed("CreateTargetGroup", e))?;
    created
        .target_groups()
        .first()
        .and_then(|tg| tg.target_group_arn())
        .map(str::to_string)
        .ok_or_else(|| SandboxError::Config("CreateTargetGroup returned no ARN".into()))
}

/// An internet-facing ALB over the sandbox's three subnets, as a cloud engineer makes one for
/// the cluster: the frontend group open to clients and the cluster security group (which admits
/// itself, so the targets admit the load balancer); returns (ARN, DNS name).
pub async fn application_load_balancer(
    elb: &Client,
    aws: &AwsEmulator,
    name: &str,
) -> Result<(String, String)> {
    application_load_balancer_with_groups(elb, aws, name, &made_for_the_cluster(aws)).await
}

/// The groups of a load balancer made by hand for the cluster: the frontend group open to
/// clients, and the cluster security group (which admits itself, so the targets admit it).
pub fn made_for_the_cluster(aws: &AwsEmulator) -> [String; 2] {
    let seeded = aws.seeded();
    [
        seeded.frontend_security_group_id.clone(),
        seeded.cluster_security_group_id.clone(),
    ]
}

/// [`application_load_balancer`] with these security groups.
pub async fn application_load_balancer_with_groups(
    elb: &Client,
    aws: &AwsEmulator,
    name: &str,
    security_groups: &[String],
) -> Result<(String, String)> {
    let seeded = aws.seeded();
    let created = elb
        .create_load_balancer()
        .name(name)
        .r#type(LoadBalancerTypeEnum::Application)
        .set_subnets(Some(seeded.subnets.values().cloned().collect()))
        .set_security_groups(Some(security_groups.to_vec()))
        .send()
        .await
        .map_err(|e| failed("CreateLoadBalancer", e))?;
    let lb = created
        .load_balancers()
        .first()
        .ok_or_else(|| SandboxError::Config("CreateLoadBalancer returned nothing".into()))?;
    Ok((
        lb.load_balancer_arn().unwrap_or_default().to_string(),
        lb.dns_name().unwrap_or_default().to_string(),
    ))
}

pub fn forward(target_group_arn: &str) -> Action {
    Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .target_group_arn(target_group_arn)
        .build()
}

pub fn fixed_response(status: &str, body: &str) -> Action {
    Action::builder()
        .r#type(ActionTypeEnum::FixedResponse)
        .fixed_response_config(
            FixedResponseActionConfig::builder()
                .status_code(status)
                .content_type("text/plain")
                .message_body(body)
                .build(),
        )
        .build()
}

pub async fn http_listener(
    elb: &Client,
    lb_arn: &str,
    port: i32,
    default_action: Action,
) -> Result<String> {
    let created = elb
        .create_listener()
        .load_balancer_arn(lb_arn)
        .protocol(ProtocolEnum::Http)
        .port(port)
        .default_actions(default_action)
        .send()
        .await
        .map_err(|e| failed("CreateListener", e))?;
    Ok(created
        .listeners()
        .first()
        .and_then(|l| l.listener_arn())
        .unwrap_or_default()
        .to_string())
}

pub async fn path_rule(
    elb: &Client,
    listener_arn: &str,
    priority: i32,
    pattern: &str,
    action: Action,
) -> Result<()> {
    elb.create_rule()
        .listener_arn(listener_arn)
        .priority(priority)
        .conditions(
            RuleCondition::builder()
                .field("path-pattern")
                .values(pattern)
                .build(),
        )
        .actions(action)
        .send()
        .await
        .map_err(|e| failed("CreateRule", e))?;
    Ok(())
}

pub fn target(id: &str, port: i32) -> TargetDescription {
    TargetDescription::builder().id(id).port(port).build()
}

pub async fn register(elb: &Client, tg: &str, targets: Vec<TargetDescription>) -> Result<()> {
    elb.register_targets()
        .target_group_arn(tg)
        .set_targets(Some(targets))
        .send()
        .await
        .map_err(|e| failed("RegisterTargets", e))?;
    Ok(())
}

pub async fn deregister(elb: &Client, tg: &str, targets: Vec<TargetDescription>) -> Result<()> {
    elb.deregister_targets()
        .target_group_arn(tg)
        .set_targets(Some(targets))
        .send()
        .await
        .map_err(|e| failed("DeregisterTargets", e))?;
    Ok(())
}

pub async fn set_deregistration_delay(elb: &Client, tg: &str, seconds: u32) -> Result<()> {
    elb.modify_target_group_attributes()
        .target_group_arn(tg)
        .attributes(
            TargetGroupAttribute::builder()
                .key("deregistration_delay.timeout_seconds")
                .value(seconds.to_string())
                .build(),
        )
        .send()
        .await
        .map_err(|e| failed("ModifyTargetGroupAttributes", e))?;
    Ok(())
}

/// A target's health as DescribeTargetHealth reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetState {
    pub id: String,
    pub port: i32,
    pub state: String,
    pub reason: Option<String>,
    pub description: Option<String>,
}

pub async fn states(elb: &Client, tg: &str) -> Result<Vec<TargetState>> {
    let described = elb
        .describe_target_health()
        .target_group_arn(tg)
        .send()
        .await
        .map_err(|e| failed("DescribeTargetHealth", e))?;
    Ok(described
        .target_health_descriptions()
        .iter()
        .map(|d| {
            let target = d.target();
            let health = d.target_health();
            TargetState {
                id: target.and_then(|t| t.id()).unwrap_or_default().to_string(),
                port: target.and_then(|t| t.port()).unwrap_or_default(),
                state: health
                    .and_then(|h| h.state())
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                reason: health
                    .and_then(|h| h.reason())
                    .map(|r| r.as_str().to_string()),
                description: health.and_then(|h| h.description()).map(str::to_string),
            }
        })
        .collect())
}

/// An ALB whose HTTP listener on port 80 forwards to an ip target group of pods on 8080.
#[derive(Debug, Clone)]
pub struct WebAlb {
    pub target_group_arn: String,
    pub load_balancer_arn: String,
    pub dns_name: String,
}

/// Creates a [`WebAlb`] named `name`: health check on `path` every `interval` seconds, the given
/// deregistration delay; the load balancer carries the frontend and cluster security groups.
pub async fn web_alb(
    elb: &Client,
    aws: &AwsEmulator,
    name: &str,
    path: &str,
    interval: i32,
    deregistration_delay: u32,
) -> Result<WebAlb> {
    let groups = made_for_the_cluster(aws);
    web_alb_with_groups(
        elb,
        aws,
        name,
        path,
        interval,
        deregistration_delay,
        &groups,
    )
    .await
}

/// [`web_alb`] with these security groups on the load balancer.
pub async fn web_alb_with_groups(
    elb: &Client,
    aws: &AwsEmulator,
    name: &str,
    path: &str,
    interval: i32,
    deregistration_delay: u32,
    security_groups: &[String],
) -> Result<WebAlb> {
    let spec = TargetGroupSpec {
        name,
        target_type: TargetTypeEnum::Ip,
        port: 8080,
        health_check_path: path,
        interval,
    };
    let target_group_arn = target_group(elb, aws, spec).await?;
    let (load_balancer_arn, dns_name) =
        application_load_balancer_with_groups(elb, aws, name, security_groups).await?;
    http_listener(elb, &load_balancer_arn, 80, forward(&target_group_arn)).await?;
    set_deregistration_delay(elb, &target_group_arn, deregistration_delay).await?;
    Ok(WebAlb {
        target_group_arn,
        load_balancer_arn,
        dns_name,
    })
}

#[cfg(test)]
mod tests {
    use super::check_timeout;

    #[test]
    fn the_timeout_is_aws_minimum_unless_the_interval_is_shorter() {
        assert_eq!(check_timeout(5), 2);
        assert_eq!(check_timeout(30), 2);
        assert_eq!(check_timeout(2), 1);
        assert_eq!(check_timeout(1), 1);
    }
}
