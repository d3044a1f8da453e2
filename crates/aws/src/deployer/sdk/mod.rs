//! [`LoadBalancers`] with the AWS SDK: what exists is found by tags, as upstream does (every load
//! balancer and target group of the account listed, then their tags), and every call is counted.
//!
//! Tags are cached by ARN: they are set by us at create time and rarely change, so a converged
//! reconcile lists load balancers and target groups (one call each per 400) and asks for tags only
//! of resources it has not seen before. The cache forgets ARNs that are no longer listed.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use aws_sdk_elasticloadbalancingv2::Client;
use aws_sdk_elasticloadbalancingv2::types as sdk;
use lb_model::stack::{
    Action, Listener, LoadBalancer, Rule, SubnetMapping, TargetGroup, TargetIpAddressType,
};

mod certificates;
mod describe;
mod rules;

use super::apply::{CreatedLoadBalancer, LoadBalancers, TargetCounts};
use super::convert::with_health_check;
use super::diff::{Existing, Owner};
use super::{actions, convert};
use crate::calls::{AwsCalls, Operation, timed};
use crate::error::AwsError;

/// ARNs per DescribeTags call: the API's limit.
const TAGS_PER_CALL: usize = 20;
/// Items per page of DescribeLoadBalancers / DescribeTargetGroups: the API's limit.
const PAGE_SIZE: i32 = 400;
/// How long a target group's described attributes are trusted. Only the controller changes the
/// attributes of its target groups (and it updates what it knows when it does), so a pass need
/// not describe every group of a large ALB again; drift made by hand is found within this time.
pub const ATTRIBUTES_TTL: std::time::Duration = std::time::Duration::from_secs(3600);

/// Target group ARN -> when its attributes were described, and what they were (updated with
/// what the controller sets since).
type AttributeCache = HashMap<String, (Instant, BTreeMap<String, String>)>;

pub struct SdkLoadBalancers {
    client: Client,
    calls: Arc<AwsCalls>,
    /// Where target groups are created.
    vpc_id: String,
    tags: Mutex<HashMap<String, BTreeMap<String, String>>>,
    target_group_attributes: Mutex<AttributeCache>,
}

impl SdkLoadBalancers {
    pub fn new(config: &aws_config::SdkConfig, calls: Arc<AwsCalls>, vpc_id: &str) -> Self {
        Self {
            client: Client::new(config),
            calls,
            vpc_id: vpc_id.to_string(),
            tags: Mutex::default(),
            target_group_attributes: Mutex::default(),
        }
    }

    fn attribute_cache(&self) -> MutexGuard<'_, AttributeCache> {
        self.target_group_attributes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn tag_cache(&self) -> MutexGuard<'_, HashMap<String, BTreeMap<String, String>>> {
        self.tags.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn modify_listener_attributes(
        &self,
        arn: &str,
        attributes: &BTreeMap<String, String>,
    ) -> Result<(), AwsError> {
        if attributes.is_empty() {
            return Ok(());
        }
        timed(
            &self.calls,
            Operation::ModifyListenerAttributes,
            self.client
                .modify_listener_attributes()
                .listener_arn(arn)
                .set_attributes(Some(
                    attributes
                        .iter()
                        .map(|(k, v)| sdk::ListenerAttribute::builder().key(k).value(v).build())
                        .collect(),
                ))
                .send(),
        )
        .await?;
        Ok(())
    }

    fn remember_tags(&self, arn: &str, tags: &BTreeMap<String, String>) {
        self.tag_cache()
            .entry(arn.to_string())
            .or_default()
            .extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
    }

    fn forget(&self, arn: &str) {
        self.tag_cache().remove(arn);
        self.attribute_cache().remove(arn);
    }
}

impl LoadBalancers for SdkLoadBalancers {
    async fn describe_stack(&self, owner: &Owner) -> Result<Existing, AwsError> {
        self.find_stack(owner).await
    }

    async fn create_target_group(&self, group: &TargetGroup) -> Result<String, AwsError> {
        let request =
            self.client
                .create_target_group()
                .name(&group.name)
                .protocol(convert::protocol_to(group.protocol))
                .set_protocol_version(group.protocol_version.map(|v| v.as_str().to_string()))
                .port(i32::from(group.port))
                .vpc_id(&self.vpc_id)
                .target_type(sdk::TargetTypeEnum::from(group.target_type.as_str()))
                // As upstream: the address type only when not ELB's default.
                .set_ip_address_type((group.ip_address_type != TargetIpAddressType::Ipv4).then(
                    || sdk::TargetGroupIpAddressTypeEnum::from(group.ip_address_type.as_str()),
                ))
                .health_check_enabled(true)
                .set_tags(Some(convert::tags_to(&group.tags)));
        let request = with_health_check!(request, group);
        let output = timed(&self.calls, Operation::CreateTargetGroup, request.send()).await?;
        let arn = output
            .target_groups()
            .first()
            .and_then(|t| t.target_group_arn())
            .unwrap_or_default()
            .to_string();
        self.remember_tags(&arn, &group.tags);
        self.set_target_group_attributes(&arn, &group.attributes)
            .await?;
        // What the stack set is all the diff compares (ELB's defaults for the rest do not matter).
        self.attribute_cache()
            .insert(arn.clone(), (Instant::now(), group.attributes.clone()));
        Ok(arn)
    }

    async fn modify_health_check(&self, arn: &str, group: &TargetGroup) -> Result<(), AwsError> {
        let request = self.client.modify_target_group().target_group_arn(arn);
        let request = with_health_check!(request, group);
        timed(&self.calls, Operation::ModifyTargetGroup, request.send()).await?;
        Ok(())
    }

    async fn set_target_group_attributes(
        &self,
        arn: &str,
        attributes: &BTreeMap<String, String>,
    ) -> Result<(), AwsError> {
        if attributes.is_empty() {
            return Ok(());
        }
        timed(
            &self.calls,
            Operation::ModifyTargetGroupAttributes,
            self.client
                .modify_target_group_attributes()
                .target_group_arn(arn)
                .set_attributes(Some(
                    attributes
                        .iter()
                        .map(|(k, v)| sdk::TargetGroupAttribute::builder().key(k).value(v).build())
                        .collect(),
                ))
                .send(),
        )
        .await?;
        if let Some((_, known)) = self.attribute_cache().get_mut(arn) {
            known.extend(attributes.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        Ok(())
    }

    async fn add_tags(&self, arn: &str, tags: &BTreeMap<String, String>) -> Result<(), AwsError> {
        timed(
            &self.calls,
            Operation::AddTags,
            self.client
                .add_tags()
                .resource_arns(arn)
                .set_tags(Some(convert::tags_to(tags)))
                .send(),
        )
        .await?;
        self.remember_tags(arn, tags);
        Ok(())
    }

    async fn remove_tags(&self, arn: &str, keys: &[String]) -> Result<(), AwsError> {
        timed(
            &self.calls,
            Operation::RemoveTags,
            self.client
                .remove_tags()
                .resource_arns(arn)
                .set_tag_keys(Some(keys.to_vec()))
                .send(),
        )
        .await?;
        if let Some(known) = self.tag_cache().get_mut(arn) {
            known.retain(|k, _| !keys.contains(k));
        }
        Ok(())
    }

    async fn create_load_balancer(
        &self,
        lb: &LoadBalancer,
    ) -> Result<CreatedLoadBalancer, AwsError> {
        let output = timed(
            &self.calls,
            Operation::CreateLoadBalancer,
            self.client
                .create_load_balancer()
                .name(&lb.name)
                .r#type(convert::load_balancer_type(lb.kind))
                .scheme(sdk::LoadBalancerSchemeEnum::from(lb.scheme.as_str()))
                .ip_address_type(sdk::IpAddressType::from(lb.ip_address_type.as_str()))
                .set_subnet_mappings(Some(convert::subnet_mappings(&lb.subnets)))
                .set_security_groups(
                    (!lb.security_groups.is_empty()).then(|| lb.security_groups.clone()),
                )
                .set_tags(Some(convert::tags_to(&lb.tags)))
                .send(),
        )
        .await?;
        let created = output.load_balancers().first();
        let arn = created
            .and_then(|l| l.load_balancer_arn())
            .unwrap_or_default()
            .to_string();
        let dns_name = created
            .and_then(|l| l.dns_name())
            .unwrap_or_default()
            .to_string();
        self.remember_tags(&arn, &lb.tags);
        self.set_load_balancer_attributes(&arn, &lb.attributes)
            .await?;
        Ok(CreatedLoadBalancer { arn, dns_name })
    }

    async fn set_load_balancer_attributes(
        &self,
        arn: &str,
        attributes: &BTreeMap<String, String>,
    ) -> Result<(), AwsError> {
        if attributes.is_empty() {
            return Ok(());
        }
        timed(
            &self.calls,
            Operation::ModifyLoadBalancerAttributes,
            self.client
                .modify_load_balancer_attributes()
                .load_balancer_arn(arn)
                .set_attributes(Some(
                    attributes
                        .iter()
                        .map(|(k, v)| {
                            sdk::LoadBalancerAttribute::builder()
                                .key(k)
                                .value(v)
                                .build()
                        })
                        .collect(),
                ))
                .send(),
        )
        .await?;
        Ok(())
    }

    async fn set_subnets(&self, arn: &str, subnets: &[SubnetMapping]) -> Result<(), AwsError> {
        timed(
            &self.calls,
            Operation::SetSubnets,
            self.client
                .set_subnets()
                .load_balancer_arn(arn)
                .set_subnet_mappings(Some(convert::subnet_mappings(subnets)))
                .send(),
        )
        .await?;
        Ok(())
    }

    async fn set_security_groups(&self, arn: &str, groups: &[String]) -> Result<(), AwsError> {
        timed(
            &self.calls,
            Operation::SetSecurityGroups,
            self.client
                .set_security_groups()
                .load_balancer_arn(arn)
                .set_security_groups(Some(groups.to_vec()))
                .send(),
        )
        .await?;
        Ok(())
    }

    async fn create_listener(
        &self,
        load_balancer_arn: &str,
        listener: &Listener,
        default_action: &Action,
    ) -> Result<String, AwsError> {
        let output = timed(
            &self.calls,
            Operation::CreateListener,
            self.client
                .create_listener()
                .load_balancer_arn(load_balancer_arn)
                .port(i32::from(listener.port))
                .protocol(convert::protocol_to(listener.protocol))
                .set_certificates(convert::certificates(default_certificate(listener)))
                .set_ssl_policy(listener.ssl_policy.clone())
                .set_alpn_policy(listener.alpn_policy.clone().map(|p| vec![p]))
                .default_actions(actions::action_to_sdk(default_action))
                .set_tags((!listener.tags.is_empty()).then(|| convert::tags_to(&listener.tags)))
                .send(),
        )
        .await?;
        let arn = output
            .listeners()
            .first()
            .and_then(|l| l.listener_arn())
            .unwrap_or_default()
            .to_string();
        self.remember_tags(&arn, &listener.tags);
        self.modify_listener_attributes(&arn, &listener.attributes)
            .await?;
        if listener.certificates.len() > 1 {
            self.set_extra_certificates(&arn, &listener.certificates[1..], Some(Vec::new()))
                .await?;
        }
        Ok(arn)
    }

    async fn modify_listener(
        &self,
        arn: &str,
        listener: &Listener,
        default_action: &Action,
    ) -> Result<(), AwsError> {
        timed(
            &self.calls,
            Operation::ModifyListener,
            self.client
                .modify_listener()
                .listener_arn(arn)
                .port(i32::from(listener.port))
                .protocol(convert::protocol_to(listener.protocol))
                .set_certificates(convert::certificates(default_certificate(listener)))
                .set_ssl_policy(listener.ssl_policy.clone())
                .set_alpn_policy(listener.alpn_policy.clone().map(|p| vec![p]))
                .default_actions(actions::action_to_sdk(default_action))
                .send(),
        )
        .await?;
        self.modify_listener_attributes(arn, &listener.attributes)
            .await?;
        if listener.protocol.terminates_tls() {
            let extra = listener.certificates.get(1..).unwrap_or_default();
            self.set_extra_certificates(arn, extra, None).await?;
        }
        Ok(())
    }

    async fn target_counts(&self, arn: &str) -> Result<TargetCounts, AwsError> {
        let output = timed(
            &self.calls,
            Operation::DescribeTargetHealth,
            self.client
                .describe_target_health()
                .target_group_arn(arn)
                .send(),
        )
        .await?;
        let states: Vec<_> = output
            .target_health_descriptions()
            .iter()
            .filter_map(|d| d.target_health().and_then(|h| h.state()))
            .collect();
        Ok(TargetCounts {
            registered: states
                .iter()
                .filter(|s| **s != &sdk::TargetHealthStateEnum::Draining)
                .count(),
            healthy: states
                .iter()
                .filter(|s| **s == &sdk::TargetHealthStateEnum::Healthy)
                .count(),
        })
    }

    async fn create_rule(
        &self,
        listener_arn: &str,
        rule: &Rule,
        action: &Action,
        priority: u32,
    ) -> Result<String, AwsError> {
        match self
            .create_rule_call(listener_arn, rule, action, priority)
            .await
        {
            Err(err) if err.has_code(&["PriorityInUse"]) => {
                // A retried call whose first attempt was done (its answer lost): the rule at the
                // priority is the one asked for, tags and all. Anything else there is a conflict.
                self.rules_of(listener_arn)
                    .await?
                    .into_iter()
                    .find(|have| is_created(have, rule, action, priority))
                    .map(|have| {
                        tracing::info!(
                            priority,
                            "CreateRule: the rule was there already (a retried call); taken as created"
                        );
                        have.arn
                    })
                    .ok_or(err)
            }
            result => result,
        }
    }

    async fn modify_rule(&self, arn: &str, rule: &Rule, action: &Action) -> Result<(), AwsError> {
        self.modify_rule_call(arn, rule, action).await
    }

    async fn set_rule_priorities(&self, priorities: &[(String, u32)]) -> Result<(), AwsError> {
        self.set_rule_priorities_call(priorities).await
    }

    async fn delete_rule(&self, arn: &str) -> Result<(), AwsError> {
        self.delete_rule_call(arn).await
    }

    async fn delete_listener(&self, arn: &str) -> Result<(), AwsError> {
        timed(
            &self.calls,
            Operation::DeleteListener,
            self.client.delete_listener().listener_arn(arn).send(),
        )
        .await?;
        Ok(())
    }

    async fn delete_target_group(&self, arn: &str) -> Result<(), AwsError> {
        timed(
            &self.calls,
            Operation::DeleteTargetGroup,
            self.client
                .delete_target_group()
                .target_group_arn(arn)
                .send(),
        )
        .await?;
        self.forget(arn);
        Ok(())
    }

    async fn security_groups_in_use(&self) -> Result<std::collections::BTreeSet<String>, AwsError> {
        Ok(self
            .all_load_balancers()
            .await?
            .iter()
            .flat_map(|l| l.security_groups().iter().cloned())
            .collect())
    }

    async fn delete_load_balancer(&self, arn: &str) -> Result<(), AwsError> {
        timed(
            &self.calls,
            Operation::DeleteLoadBalancer,
            self.client
                .delete_load_balancer()
                .load_balancer_arn(arn)
                .send(),
        )
        .await?;
        self.forget(arn);
        Ok(())
    }
}

/// The listener's default certificate, as Create/ModifyListener take it (the others are SNI
/// certificates, added apart).
fn default_certificate(listener: &Listener) -> &[String] {
    &listener.certificates[..listener.certificates.len().min(1)]
}

/// Whether `have` is the rule a CreateRule of `rule` with `action` at `priority` made.
fn is_created(
    have: &super::rules::ExistingRule,
    rule: &Rule,
    action: &Action,
    priority: u32,
) -> bool {
    have.priority == priority
        && have.rule.conditions == rule.conditions
        && have.rule.action == *action
        && rule
            .tags
            .iter()
            .all(|(key, value)| have.rule.tags.get(key) == Some(value))
}

#[cfg(test)]
mod tests {
    use lb_model::stack::Condition;

    use super::super::rules::ExistingRule;
    use super::*;

    #[test]
    fn a_rule_counts_as_created_only_when_it_is_the_one_asked_for() {
        let action = Action::forward_to("arn:aws:elasticloadbalancing:tg/web");
        let asked = Rule {
            conditions: vec![Condition::HostHeader(vec!["shop.example.com".into()])],
            action: action.clone(),
            tags: BTreeMap::from([("ingress.k8s.aws/resource".into(), "80:1".into())]),
        };
        let mut there = ExistingRule {
            arn: "arn:rule/1".into(),
            priority: 1,
            rule: asked.clone(),
        };
        there
            .rule
            .tags
            .insert("elbv2.k8s.aws/cluster".into(), "c".into());
        assert!(
            is_created(&there, &asked, &action, 1),
            "more tags than asked: ours"
        );
        assert!(!is_created(&there, &asked, &action, 2), "another priority");
        let other = Action::forward_to("arn:aws:elasticloadbalancing:tg/api");
        assert!(!is_created(&there, &asked, &other, 1), "another action");
        there.rule.tags.clear();
        assert!(
            !is_created(&there, &asked, &action, 1),
            "someone else's rule"
        );
    }
}
