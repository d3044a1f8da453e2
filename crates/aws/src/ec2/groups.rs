//! The security-group calls the [`SdkEc2`] is made of: groups found by tags, by ID or `Name` tag;
//! created with their tags; their tags made exact; their ingress rules changed; deleted.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types as sdk;

use super::rules::{Rule, permission};
use super::{SdkEc2, filter, tag_filters, tags_of};
use crate::calls::{Operation, timed};
use crate::deployer::diff::tag_changes;
use crate::error::AwsError;

fn tag(key: &str, value: Option<&str>) -> sdk::Tag {
    sdk::Tag::builder()
        .key(key)
        .set_value(value.map(str::to_string))
        .build()
}

impl SdkEc2 {
    /// The VPC's security groups whose tags are all of `tags`.
    pub(super) async fn groups_tagged(
        &self,
        tags: &BTreeMap<String, String>,
    ) -> Result<Vec<sdk::SecurityGroup>, AwsError> {
        let mut filters = vec![filter("vpc-id", &self.vpc_id)];
        filters.extend(tag_filters(tags));
        let found = self.groups_filtered(filters).await?;
        // The filter found them by tags; checked again, as everything we change.
        Ok(found
            .iter()
            .filter(|g| {
                let have = tags_of(g.tags());
                tags.iter().all(|(k, v)| have.get(k) == Some(v))
            })
            .cloned()
            .collect())
    }

    /// The groups these filters find.
    pub(super) async fn groups_filtered(
        &self,
        filters: Vec<sdk::Filter>,
    ) -> Result<Vec<sdk::SecurityGroup>, AwsError> {
        let request = self
            .client
            .describe_security_groups()
            .set_filters(Some(filters));
        let output = timed(
            &self.calls,
            Operation::DescribeSecurityGroups,
            request.send(),
        )
        .await?;
        Ok(output.security_groups().to_vec())
    }

    /// The groups with these IDs.
    pub(super) async fn groups_with_ids(
        &self,
        ids: Vec<String>,
    ) -> Result<Vec<sdk::SecurityGroup>, AwsError> {
        let request = self
            .client
            .describe_security_groups()
            .set_group_ids(Some(ids))
            .send();
        let output = timed(&self.calls, Operation::DescribeSecurityGroups, request).await?;
        Ok(output.security_groups().to_vec())
    }

    /// The VPC's groups with one of these `Name` tags.
    pub(super) async fn groups_named(
        &self,
        names: Vec<String>,
    ) -> Result<Vec<sdk::SecurityGroup>, AwsError> {
        let name_filter = sdk::Filter::builder()
            .name("tag:Name")
            .set_values(Some(names))
            .build();
        let request = self
            .client
            .describe_security_groups()
            .filters(filter("vpc-id", &self.vpc_id))
            .filters(name_filter)
            .send();
        let output = timed(&self.calls, Operation::DescribeSecurityGroups, request).await?;
        Ok(output.security_groups().to_vec())
    }

    pub(super) async fn create_group(
        &self,
        name: &str,
        description: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<String, AwsError> {
        let sdk_tags = tags.iter().map(|(k, v)| tag(k, Some(v))).collect();
        let request = self
            .client
            .create_security_group()
            .group_name(name)
            .description(description)
            .vpc_id(&self.vpc_id)
            .tag_specifications(
                sdk::TagSpecification::builder()
                    .resource_type(sdk::ResourceType::SecurityGroup)
                    .set_tags(Some(sdk_tags))
                    .build(),
            )
            .send();
        match timed(&self.calls, Operation::CreateSecurityGroup, request).await {
            Ok(output) => Ok(output.group_id().unwrap_or_default().to_string()),
            // EC2 takes no client token here: a create the SDK retried after its answer was lost
            // (a timeout) meets the group the first attempt made. It is ours when it carries the
            // tags the create gave it; anything else of that name stays an error.
            Err(err) if err.has_code(&["InvalidGroup.Duplicate"]) => {
                self.group_made_with(name, tags).await?.ok_or(err)
            }
            Err(err) => Err(err),
        }
    }

    /// The VPC's group named `name` if it carries every one of `tags`.
    async fn group_made_with(
        &self,
        name: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<Option<String>, AwsError> {
        let request = self
            .client
            .describe_security_groups()
            .filters(filter("vpc-id", &self.vpc_id))
            .filters(filter("group-name", name))
            .send();
        let output = timed(&self.calls, Operation::DescribeSecurityGroups, request).await?;
        Ok(output
            .security_groups()
            .iter()
            .find(|group| {
                let have = tags_of(group.tags());
                tags.iter().all(|(k, v)| have.get(k) == Some(v))
            })
            .and_then(|group| group.group_id())
            .map(str::to_string))
    }

    /// Makes the group's tags the desired ones, `ignored` keys left alone.
    pub(super) async fn reconcile_tags(
        &self,
        id: &str,
        desired: &BTreeMap<String, String>,
        have: &BTreeMap<String, String>,
        ignored: &BTreeSet<String>,
    ) -> Result<(), AwsError> {
        let (add, remove) = tag_changes(desired, have, ignored);
        if !add.is_empty() {
            let add = add.iter().map(|(k, v)| tag(k, Some(v))).collect();
            let request = self.client.create_tags().resources(id).set_tags(Some(add));
            timed(&self.calls, Operation::CreateTags, request.send()).await?;
        }
        if !remove.is_empty() {
            let remove = remove.iter().map(|k| tag(k, None)).collect();
            let request = self
                .client
                .delete_tags()
                .resources(id)
                .set_tags(Some(remove));
            timed(&self.calls, Operation::DeleteTags, request.send()).await?;
        }
        Ok(())
    }

    /// Authorizes (`add`) or revokes `rules` on group `id`.
    pub(super) async fn change_rules(
        &self,
        id: &str,
        rules: &[&Rule],
        add: bool,
    ) -> Result<(), AwsError> {
        let permissions = rules.iter().map(|r| permission(r)).collect();
        self.change_permissions(id, permissions, add).await
    }

    /// Authorizes (`add`) or revokes `permissions` on group `id`; nothing to change, no call.
    pub(super) async fn change_permissions(
        &self,
        id: &str,
        permissions: Vec<sdk::IpPermission>,
        add: bool,
    ) -> Result<(), AwsError> {
        if permissions.is_empty() {
            return Ok(());
        }
        let one_by_one = permissions.len() > 1;
        match self.send_permissions(id, permissions.clone(), add).await {
            // A change the SDK retried after its answer was lost (a timeout) meets its own first
            // attempt: the rule is there already (or gone already). EC2 refuses the whole call for
            // one such rule, so with several each goes alone, and each already done is done.
            Err(err) if already_done(&err, add) => {
                if one_by_one {
                    for permission in permissions {
                        match self.send_permissions(id, vec![permission], add).await {
                            Err(err) if already_done(&err, add) => {}
                            other => other?,
                        }
                    }
                }
                Ok(())
            }
            other => other,
        }
    }

    async fn send_permissions(
        &self,
        id: &str,
        permissions: Vec<sdk::IpPermission>,
        add: bool,
    ) -> Result<(), AwsError> {
        if add {
            let request = self
                .client
                .authorize_security_group_ingress()
                .group_id(id)
                .set_ip_permissions(Some(permissions));
            timed(
                &self.calls,
                Operation::AuthorizeSecurityGroupIngress,
                request.send(),
            )
            .await?;
        } else {
            let request = self
                .client
                .revoke_security_group_ingress()
                .group_id(id)
                .set_ip_permissions(Some(permissions));
            timed(
                &self.calls,
                Operation::RevokeSecurityGroupIngress,
                request.send(),
            )
            .await?;
        }
        Ok(())
    }

    pub(super) async fn delete_group(&self, id: &str) -> Result<(), AwsError> {
        let request = self.client.delete_security_group().group_id(id).send();
        timed(&self.calls, Operation::DeleteSecurityGroup, request).await?;
        Ok(())
    }
}

/// EC2's answer to authorizing a rule that is there, or revoking one that is not.
fn already_done(err: &AwsError, add: bool) -> bool {
    if add {
        err.has_code(&["InvalidPermission.Duplicate"])
    } else {
        err.has_code(&["InvalidPermission.NotFound"])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_already_there_or_already_gone_is_done() {
        let answer =
            |code| AwsError::from_code("AuthorizeSecurityGroupIngress", Some(code), String::new());
        assert!(already_done(&answer("InvalidPermission.Duplicate"), true));
        assert!(!already_done(&answer("InvalidPermission.Duplicate"), false));
        assert!(already_done(&answer("InvalidPermission.NotFound"), false));
        assert!(!already_done(&answer("InvalidGroup.NotFound"), true));
        let unanswered = AwsError::from_code("AuthorizeSecurityGroupIngress", None, String::new());
        assert!(!already_done(&unanswered, true));
    }
}
