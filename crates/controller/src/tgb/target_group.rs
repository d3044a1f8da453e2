//! The target group a binding names: by ARN or by name (one DescribeTargetGroups, then cached;
//! a target group's ARN, name, type and VPC never change), in the controller's account or in the
//! one reached through the binding's role; checked against the binding's `vpcID`.

use std::collections::HashMap;
use std::sync::Mutex;

use lb_api::TargetGroupBinding;
use lb_aws::{Elbv2, RoleToAssume, TargetGroups};
use lb_model::elb::TargetGroupInfo;

use crate::error::{ControllerError, Result};

/// How a binding names its target group.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TargetGroupRef {
    Arn(String),
    Name(String),
}

impl TargetGroupRef {
    /// The ARN when the binding names one, else the name.
    pub fn of(binding: &TargetGroupBinding) -> Result<TargetGroupRef> {
        let spec = &binding.spec;
        match (&spec.target_group_arn, &spec.target_group_name) {
            (Some(arn), _) if !arn.is_empty() => Ok(Self::Arn(arn.clone())),
            (_, Some(name)) if !name.is_empty() => Ok(Self::Name(name.clone())),
            _ => Err(ControllerError::NoTargetGroup),
        }
    }

    /// The error for a reference to no target group, naming the field and the value.
    fn not_found(&self, role: Option<&RoleToAssume>) -> ControllerError {
        let (field, value) = match self {
            Self::Arn(arn) => ("spec.targetGroupARN", arn.clone()),
            Self::Name(name) => ("spec.targetGroupName", name.clone()),
        };
        ControllerError::TargetGroupNotFound {
            field,
            value,
            account: role
                .and_then(|r| lb_model::elb::account_of_arn(&r.role_arn))
                .map(str::to_string),
        }
    }
}

/// The role a binding's target group is reached through, if any.
pub fn role_of(binding: &TargetGroupBinding) -> Option<RoleToAssume> {
    let role_arn = binding
        .spec
        .iam_role_arn_to_assume
        .clone()
        .filter(|r| !r.is_empty())?;
    Some(RoleToAssume {
        role_arn,
        external_id: binding
            .spec
            .assume_role_external_id
            .clone()
            .filter(|e| !e.is_empty()),
    })
}

/// Target groups found, by role and reference.
#[derive(Default)]
pub struct TargetGroupCache {
    found: Mutex<HashMap<(Option<RoleToAssume>, TargetGroupRef), TargetGroupInfo>>,
}

impl TargetGroupCache {
    /// The binding's AWS client and target group.
    pub async fn resolve<A: Elbv2>(
        &self,
        aws: &A,
        binding: &TargetGroupBinding,
    ) -> Result<(A::Client, TargetGroupInfo)> {
        let reference = TargetGroupRef::of(binding)?;
        let role = role_of(binding);
        let client = aws
            .target_groups(role.as_ref())
            .await
            .map_err(|source| match &role {
                Some(role) => ControllerError::Role {
                    role: role.role_arn.clone(),
                    source,
                },
                None => ControllerError::Aws(source),
            })?;
        let group = self.lookup(&client, role, reference).await?;
        check_vpc(binding, &group)?;
        Ok((client, group))
    }

    /// The target group `reference` names, as seen with `client` (reached through `role`).
    pub async fn lookup<C: TargetGroups>(
        &self,
        client: &C,
        role: Option<RoleToAssume>,
        reference: TargetGroupRef,
    ) -> Result<TargetGroupInfo> {
        let key = (role, reference);
        if let Some(found) = self.lock().get(&key) {
            return Ok(found.clone());
        }
        let found = match &key.1 {
            TargetGroupRef::Arn(arn) => client.describe_target_group(arn).await?,
            TargetGroupRef::Name(name) => client.find_target_group(name).await?,
        };
        let found = found.ok_or_else(|| key.1.not_found(key.0.as_ref()))?;
        self.lock().insert(key, found.clone());
        Ok(found)
    }

    /// Forgets target group `arn` (it was deleted: a new one may take its name).
    pub fn forget(&self, arn: &str) {
        self.lock().retain(|_, group| group.arn != arn);
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<(Option<RoleToAssume>, TargetGroupRef), TargetGroupInfo>>
    {
        self.found.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A binding that names a VPC must name its target group's.
fn check_vpc(binding: &TargetGroupBinding, group: &TargetGroupInfo) -> Result<()> {
    match (&binding.spec.vpc_id, &group.vpc_id) {
        (Some(wanted), Some(actual)) if !wanted.is_empty() && wanted != actual => {
            Err(ControllerError::InvalidSpec(format!(
                "spec.vpcID {wanted:?} is not the VPC of target group {} ({actual})",
                group.arn
            )))
        }
        _ => Ok(()),
    }
}
