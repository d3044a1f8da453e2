//! Reading what exists: every load balancer and target group of the account listed (400 a
//! page), their tags (cached by ARN), and for the stack's own resources their attributes and
//! listeners.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use aws_sdk_elasticloadbalancingv2::types as sdk;

use super::super::convert;
use super::super::diff::{
    Existing, ExistingListener, ExistingLoadBalancer, ExistingTargetGroup, Owner,
};
use super::{PAGE_SIZE, SdkLoadBalancers, TAGS_PER_CALL};
use crate::calls::{Operation, timed};
use crate::error::AwsError;

/// Key-value attributes as the describe calls return them.
fn attributes<'a>(
    pairs: impl Iterator<Item = (Option<&'a str>, Option<&'a str>)>,
) -> BTreeMap<String, String> {
    pairs
        .filter_map(|(k, v)| Some((k?.to_string(), v?.to_string())))
        .collect()
}

impl SdkLoadBalancers {
    /// What exists of `owner`'s stack: every load balancer and target group of the account
    /// listed, those with the owner's tags described further.
    pub(super) async fn find_stack(&self, owner: &Owner) -> Result<Existing, AwsError> {
        let load_balancers = self.all_load_balancers().await?;
        let target_groups = self.all_target_groups().await?;
        let arns: Vec<String> = load_balancers
            .iter()
            .filter_map(|l| l.load_balancer_arn())
            .chain(target_groups.iter().filter_map(|t| t.target_group_arn()))
            .map(str::to_string)
            .collect();
        let tags = self.tags_of(&arns).await?;
        let owned = |arn: Option<&str>| {
            let found = tags.get(arn?)?;
            owner.owns(found).then(|| found.clone())
        };
        let mut existing = Existing::default();
        if let Some((described, lb_tags)) = load_balancers
            .iter()
            .find_map(|l| owned(l.load_balancer_arn()).map(|t| (l, t)))
        {
            let arn = described.load_balancer_arn().unwrap_or_default();
            let attributes = self.load_balancer_attributes(arn).await?;
            let application = described.r#type() == Some(&sdk::LoadBalancerTypeEnum::Application);
            existing.listeners = self.listeners_of(arn, application).await?;
            existing.load_balancer = Some(ExistingLoadBalancer {
                arn: arn.to_string(),
                dns_name: described.dns_name().unwrap_or_default().to_string(),
                load_balancer: convert::load_balancer_from(described, attributes, lb_tags),
            });
        }
        // The cache keeps what still exists: the load balancers, target groups, listeners and
        // rules listed.
        let mut listed: HashSet<String> = arns.iter().cloned().collect();
        listed.extend(existing.listeners.iter().flat_map(|l| {
            std::iter::once(l.arn.clone()).chain(l.rules.iter().map(|r| r.arn.clone()))
        }));
        self.tag_cache().retain(|arn, _| listed.contains(arn));
        self.attribute_cache().retain(|arn, _| listed.contains(arn));
        for described in &target_groups {
            let Some(group_tags) = owned(described.target_group_arn()) else {
                continue;
            };
            let arn = described.target_group_arn().unwrap_or_default();
            let attributes = self.target_group_attributes(arn).await?;
            existing.target_groups.push(ExistingTargetGroup {
                arn: arn.to_string(),
                group: convert::target_group_from(described, attributes, group_tags),
            });
        }
        Ok(existing)
    }

    pub(super) async fn all_load_balancers(&self) -> Result<Vec<sdk::LoadBalancer>, AwsError> {
        let mut all = Vec::new();
        let mut marker = None;
        loop {
            let page = timed(
                &self.calls,
                Operation::DescribeLoadBalancers,
                self.client
                    .describe_load_balancers()
                    .page_size(PAGE_SIZE)
                    .set_marker(marker)
                    .send(),
            )
            .await?;
            all.extend(page.load_balancers().iter().cloned());
            marker = page.next_marker().map(str::to_string);
            if marker.is_none() {
                return Ok(all);
            }
        }
    }

    async fn all_target_groups(&self) -> Result<Vec<sdk::TargetGroup>, AwsError> {
        let mut all = Vec::new();
        let mut marker = None;
        loop {
            let page = timed(
                &self.calls,
                Operation::DescribeTargetGroups,
                self.client
                    .describe_target_groups()
                    .page_size(PAGE_SIZE)
                    .set_marker(marker)
                    .send(),
            )
            .await?;
            all.extend(page.target_groups().iter().cloned());
            marker = page.next_marker().map(str::to_string);
            if marker.is_none() {
                return Ok(all);
            }
        }
    }

    /// The tags of `arns`, from the cache or described (20 per call).
    pub(super) async fn tags_of(
        &self,
        arns: &[String],
    ) -> Result<HashMap<String, BTreeMap<String, String>>, AwsError> {
        let unknown: Vec<String> = {
            let cache = self.tag_cache();
            arns.iter()
                .filter(|a| !cache.contains_key(*a))
                .cloned()
                .collect()
        };
        for chunk in unknown.chunks(TAGS_PER_CALL) {
            let output = timed(
                &self.calls,
                Operation::DescribeTags,
                self.client
                    .describe_tags()
                    .set_resource_arns(Some(chunk.to_vec()))
                    .send(),
            )
            .await?;
            let mut cache = self.tag_cache();
            for description in output.tag_descriptions() {
                if let Some(arn) = description.resource_arn() {
                    cache.insert(arn.to_string(), convert::tags_from(description.tags()));
                }
            }
        }
        let cache = self.tag_cache();
        Ok(arns
            .iter()
            .filter_map(|a| Some((a.clone(), cache.get(a)?.clone())))
            .collect())
    }

    async fn load_balancer_attributes(
        &self,
        arn: &str,
    ) -> Result<BTreeMap<String, String>, AwsError> {
        let output = timed(
            &self.calls,
            Operation::DescribeLoadBalancerAttributes,
            self.client
                .describe_load_balancer_attributes()
                .load_balancer_arn(arn)
                .send(),
        )
        .await?;
        Ok(attributes(
            output.attributes().iter().map(|a| (a.key(), a.value())),
        ))
    }

    /// The group's attributes: as last described (and since set) within [`super::ATTRIBUTES_TTL`],
    /// else described.
    async fn target_group_attributes(
        &self,
        arn: &str,
    ) -> Result<BTreeMap<String, String>, AwsError> {
        if let Some((at, known)) = self.attribute_cache().get(arn)
            && at.elapsed() < super::ATTRIBUTES_TTL
        {
            return Ok(known.clone());
        }
        let output = timed(
            &self.calls,
            Operation::DescribeTargetGroupAttributes,
            self.client
                .describe_target_group_attributes()
                .target_group_arn(arn)
                .send(),
        )
        .await?;
        let described = attributes(output.attributes().iter().map(|a| (a.key(), a.value())));
        self.attribute_cache()
            .insert(arn.to_string(), (Instant::now(), described.clone()));
        Ok(described)
    }

    /// The load balancer's listeners; an ALB's with their rules (an NLB's have none to ask for).
    async fn listeners_of(
        &self,
        load_balancer_arn: &str,
        application: bool,
    ) -> Result<Vec<ExistingListener>, AwsError> {
        let output = timed(
            &self.calls,
            Operation::DescribeListeners,
            self.client
                .describe_listeners()
                .load_balancer_arn(load_balancer_arn)
                .send(),
        )
        .await?;
        let listener_arns: Vec<String> = output
            .listeners()
            .iter()
            .filter_map(|l| l.listener_arn())
            .map(str::to_string)
            .collect();
        let mut listener_tags = self.tags_of(&listener_arns).await?;
        let mut listeners = Vec::new();
        for described in output.listeners() {
            let Some(arn) = described.listener_arn() else {
                continue;
            };
            let attributes = self.listener_attributes(arn).await?;
            let mut listener = convert::listener_from(described, attributes);
            listener.tags = listener_tags.remove(arn).unwrap_or_default();
            if listener.protocol.terminates_tls() {
                listener
                    .certificates
                    .extend(self.extra_certificates(arn).await?);
            }
            let rules = if application {
                self.rules_of(arn).await?
            } else {
                Vec::new()
            };
            listeners.push(ExistingListener {
                arn: arn.to_string(),
                listener,
                rules,
            });
        }
        Ok(listeners)
    }

    async fn listener_attributes(&self, arn: &str) -> Result<BTreeMap<String, String>, AwsError> {
        let output = timed(
            &self.calls,
            Operation::DescribeListenerAttributes,
            self.client
                .describe_listener_attributes()
                .listener_arn(arn)
                .send(),
        )
        .await?;
        Ok(attributes(
            output.attributes().iter().map(|a| (a.key(), a.value())),
        ))
    }
}
