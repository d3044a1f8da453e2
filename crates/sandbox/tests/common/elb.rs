//! ELBv2 set-up for tests, through the AWS SDK for Rust against the sandbox's emulator.

use aws_sdk_elasticloadbalancingv2::Client;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, FixedResponseActionConfig, LoadBalancerTypeEnum, ProtocolEnum,
    RuleCondition, TargetDescription, TargetGroupAttribute, TargetHealthDescription,
    TargetTypeEnum,
};
use lb_sandbox::Sandbox;

pub async fn client(sandbox: &Sandbox) -> Client {
    let aws = sandbox.aws().expect("the sandbox runs the AWS emulator");
    Client::new(&aws.sdk_config().await)
}

/// A target group with a fast health check: `interval` seconds, healthy/unhealthy threshold 2.
pub async fn target_group(
    elb: &Client,
    sandbox: &Sandbox,
    name: &str,
    target_type: TargetTypeEnum,
    port: i32,
    path: &str,
    interval: i32,
) -> String {
    let vpc = &sandbox.aws().unwrap().seeded().vpc_id;
    let created = elb
        .create_target_group()
        .name(name)
        .protocol(ProtocolEnum::Http)
        .port(port)
        .vpc_id(vpc)
        .target_type(target_type)
        .health_check_path(path)
        .health_check_interval_seconds(interval)
        .health_check_timeout_seconds(1)
        .healthy_threshold_count(2)
        .unhealthy_threshold_count(2)
        .send()
        .await
        .expect("target group created");
    created.target_groups()[0]
        .target_group_arn()
        .unwrap()
        .to_string()
}

/// An internet-facing ALB over the sandbox's three subnets; returns (ARN, DNS name).
pub async fn application_load_balancer(
    elb: &Client,
    sandbox: &Sandbox,
    name: &str,
) -> (String, String) {
    let seeded = sandbox.aws().unwrap().seeded();
    let created = elb
        .create_load_balancer()
        .name(name)
        .r#type(LoadBalancerTypeEnum::Application)
        .set_subnets(Some(seeded.subnets.values().cloned().collect()))
        .security_groups(&seeded.security_group_id)
        .send()
        .await
        .expect("load balancer created");
    let lb = &created.load_balancers()[0];
    (
        lb.load_balancer_arn().unwrap().to_string(),
        lb.dns_name().unwrap().to_string(),
    )
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
) -> String {
    let created = elb
        .create_listener()
        .load_balancer_arn(lb_arn)
        .protocol(ProtocolEnum::Http)
        .port(port)
        .default_actions(default_action)
        .send()
        .await
        .expect("listener created");
    created.listeners()[0].listener_arn().unwrap().to_string()
}

pub async fn path_rule(
    elb: &Client,
    listener_arn: &str,
    priority: i32,
    pattern: &str,
    action: Action,
) {
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
        .expect("rule created");
}

pub fn target(id: &str, port: i32) -> TargetDescription {
    TargetDescription::builder().id(id).port(port).build()
}

pub async fn register(elb: &Client, tg: &str, targets: Vec<TargetDescription>) {
    elb.register_targets()
        .target_group_arn(tg)
        .set_targets(Some(targets))
        .send()
        .await
        .expect("targets registered");
}

pub async fn deregister(elb: &Client, tg: &str, targets: Vec<TargetDescription>) {
    elb.deregister_targets()
        .target_group_arn(tg)
        .set_targets(Some(targets))
        .send()
        .await
        .expect("targets deregistered");
}

pub async fn set_deregistration_delay(elb: &Client, tg: &str, seconds: u32) {
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
        .expect("attributes modified");
}

pub async fn health(elb: &Client, tg: &str) -> Vec<TargetHealthDescription> {
    elb.describe_target_health()
        .target_group_arn(tg)
        .send()
        .await
        .expect("target health described")
        .target_health_descriptions()
        .to_vec()
}

/// (id, port, state, reason code) of every target.
pub async fn states(elb: &Client, tg: &str) -> Vec<(String, i32, String, Option<String>)> {
    health(elb, tg)
        .await
        .iter()
        .map(|d| {
            let target = d.target().unwrap();
            let health = d.target_health().unwrap();
            (
                target.id().unwrap_or_default().to_string(),
                target.port().unwrap_or_default(),
                health.state().unwrap().as_str().to_string(),
                health.reason().map(|r| r.as_str().to_string()),
            )
        })
        .collect()
}
