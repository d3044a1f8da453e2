//! An ALB listener's rules through the SDK: described with their tags (rules are ours only when
//! tagged so), created tagged, rewritten, moved and deleted.

use aws_sdk_elasticloadbalancingv2::types as sdk;
use lb_model::stack::{Action, Rule};

use super::super::actions::{action_from_sdk, action_to_sdk, condition_from_sdk, condition_to_sdk};
use super::super::convert;
use super::super::rules::ExistingRule;
use super::SdkLoadBalancers;
use crate::calls::{Operation, timed};
use crate::error::AwsError;

impl SdkLoadBalancers {
    /// The listener's rules but its default one, with their tags.
    pub(super) async fn rules_of(&self, listener_arn: &str) -> Result<Vec<ExistingRule>, AwsError> {
        let mut described: Vec<sdk::Rule> = Vec::new();
        let mut marker = None;
        loop {
            let page = timed(
                &self.calls,
                Operation::DescribeRules,
                self.client
                    .describe_rules()
                    .listener_arn(listener_arn)
                    .page_size(super::PAGE_SIZE)
                    .set_marker(marker)
                    .send(),
            )
            .await?;
            described.extend(page.rules().iter().cloned());
            marker = page.next_marker().map(str::to_string);
            if marker.is_none() {
                break;
            }
        }
        described.retain(|r| r.is_default() != Some(true));
        let arns: Vec<String> = described
            .iter()
            .filter_map(|r| r.rule_arn())
            .map(str::to_string)
            .collect();
        let tags = self.tags_of(&arns).await?;
        Ok(described
            .iter()
            .filter_map(|r| {
                let arn = r.rule_arn()?.to_string();
                let priority = r.priority()?.parse().ok()?;
                let conditions = r
                    .conditions()
                    .iter()
                    .map(condition_from_sdk)
                    .collect::<Option<Vec<_>>>()
                    // A condition the model does not know: no desired rule equals it.
                    .unwrap_or_default();
                Some(ExistingRule {
                    rule: Rule {
                        conditions,
                        action: action_from_sdk(r.actions()),
                        tags: tags.get(&arn).cloned().unwrap_or_default(),
                    },
                    arn,
                    priority,
                })
            })
            .collect())
    }

    pub(super) async fn create_rule_call(
        &self,
        listener_arn: &str,
        rule: &Rule,
        action: &Action,
        priority: u32,
    ) -> Result<String, AwsError> {
        let output = timed(
            &self.calls,
            Operation::CreateRule,
            self.client
                .create_rule()
                .listener_arn(listener_arn)
                .priority(i32::try_from(priority).unwrap_or(i32::MAX))
                .set_conditions(Some(rule.conditions.iter().map(condition_to_sdk).collect()))
                .actions(action_to_sdk(action))
                .set_tags(Some(convert::tags_to(&rule.tags)))
                .send(),
        )
        .await?;
        let arn = output
            .rules()
            .first()
            .and_then(|r| r.rule_arn())
            .unwrap_or_default()
            .to_string();
        self.remember_tags(&arn, &rule.tags);
        Ok(arn)
    }

    pub(super) async fn modify_rule_call(
        &self,
        arn: &str,
        rule: &Rule,
        action: &Action,
    ) -> Result<(), AwsError> {
        timed(
            &self.calls,
            Operation::ModifyRule,
            self.client
                .modify_rule()
                .rule_arn(arn)
                .set_conditions(Some(rule.conditions.iter().map(condition_to_sdk).collect()))
                .actions(action_to_sdk(action))
                .send(),
        )
        .await?;
        Ok(())
    }

    pub(super) async fn set_rule_priorities_call(
        &self,
        priorities: &[(String, u32)],
    ) -> Result<(), AwsError> {
        let pairs = priorities
            .iter()
            .map(|(arn, priority)| {
                sdk::RulePriorityPair::builder()
                    .rule_arn(arn)
                    .priority(i32::try_from(*priority).unwrap_or(i32::MAX))
                    .build()
            })
            .collect();
        timed(
            &self.calls,
            Operation::SetRulePriorities,
            self.client
                .set_rule_priorities()
                .set_rule_priorities(Some(pairs))
                .send(),
        )
        .await?;
        Ok(())
    }

    pub(super) async fn delete_rule_call(&self, arn: &str) -> Result<(), AwsError> {
        timed(
            &self.calls,
            Operation::DeleteRule,
            self.client.delete_rule().rule_arn(arn).send(),
        )
        .await?;
        self.forget(arn);
        Ok(())
    }
}
