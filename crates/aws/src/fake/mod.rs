//! The one in-memory ELB, for unit tests of the code that drives AWS: [`Elbv2`] and
//! [`TargetGroups`] (target groups in accounts, targets with the state ELB would report, roles
//! that may be assumed) and the deployer's [`LoadBalancers`](crate::deployer::apply::LoadBalancers)
//! ([`load_balancers`]: load balancers, listeners, rules, target groups), on one state, with
//! scripted faults.
//!
//! Faults are scripted per operation and consumed in order: throttling, a 5xx answer, a timeout
//! (none of which change anything), and a lost answer: the call took effect on the server, but
//! its answer never arrived, so the caller sees an error for work that was done.
//!
//! Health does not change by itself: a test moves targets with [`FakeElb::set_state`] and friends.
//! Every call is recorded, and so is every registration of a target that was already registered
//! and not draining (a double registration: a waste the controller must not make).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use lb_model::elb::{TargetGroupInfo, TargetHealth, TargetKey, TargetState};

use crate::calls::Operation;
use crate::elbv2::{Elbv2, TargetGroups};
use crate::error::{AwsError, AwsErrorKind};
use crate::sts::RoleToAssume;

mod load_balancers;

/// The account of the controller's own credentials.
pub const OWN_ACCOUNT: &str = "123456789012";
const REGION: &str = "us-west-2";

/// A failure to script for the next call of an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `Throttling: Rate exceeded`; nothing happens.
    Throttled,
    /// A 5xx answer (`InternalFailure`); nothing happens.
    ServerError,
    /// No answer in time; nothing happens.
    Timeout,
    /// The call takes effect, but its answer is lost: the caller sees a timeout.
    LostAnswer,
}

/// One call as the fake saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub operation: Operation,
    pub account: String,
    /// The target group ARN or name the call named.
    pub subject: String,
    pub targets: Vec<TargetKey>,
    /// The error the caller got, if any.
    pub error: Option<AwsErrorKind>,
}

pub(crate) struct Group {
    account: String,
    info: TargetGroupInfo,
    targets: BTreeMap<TargetKey, TargetHealth>,
}

#[derive(Default)]
struct State {
    groups: BTreeMap<String, Group>,
    /// Role ARN -> (external ID required, account reached).
    roles: BTreeMap<String, (Option<String>, String)>,
    faults: VecDeque<(Operation, Fault)>,
    calls: Vec<Call>,
    double_registrations: Vec<TargetKey>,
    /// The deployer's side: load balancers, listeners, rules, target groups as desired.
    stacks: load_balancers::Stacks,
}

#[derive(Clone, Default)]
pub struct FakeElb {
    state: Arc<Mutex<State>>,
}

/// The fake seen with one account's credentials.
#[derive(Clone)]
pub struct FakeTargetGroups {
    elb: FakeElb,
    account: String,
}

impl FakeElb {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates target group `name` of `target_type` in the controller's own account, with a
    /// health check every `interval` seconds and `threshold` checks to turn healthy; returns it.
    pub fn add_target_group(&self, name: &str, target_type: &str) -> TargetGroupInfo {
        self.add_target_group_in(OWN_ACCOUNT, name, target_type)
    }

    pub fn add_target_group_in(
        &self,
        account: &str,
        name: &str,
        target_type: &str,
    ) -> TargetGroupInfo {
        let info = TargetGroupInfo {
            arn: format!(
                "arn:aws:elasticloadbalancing:{REGION}:{account}:targetgroup/{name}/0123456789abcdef"
            ),
            name: name.to_string(),
            target_type: target_type.to_string(),
            protocol: Some("HTTP".to_string()),
            port: Some(80),
            vpc_id: Some("vpc-0fake".to_string()),
            ip_address_type: Some("ipv4".to_string()),
            load_balancer_arns: vec![format!(
                "arn:aws:elasticloadbalancing:{REGION}:{account}:loadbalancer/app/lb/1"
            )],
            health_check_interval_seconds: Some(5),
            healthy_threshold_count: Some(2),
        };
        self.lock().groups.insert(
            info.arn.clone(),
            Group {
                account: account.to_string(),
                info: info.clone(),
                targets: BTreeMap::new(),
            },
        );
        info
    }

    /// Lets `role_arn` be assumed (with `external_id` when one is required), reaching `account`.
    pub fn allow_role(&self, role_arn: &str, external_id: Option<&str>, account: &str) {
        self.lock().roles.insert(
            role_arn.to_string(),
            (external_id.map(str::to_string), account.to_string()),
        );
    }

    /// The next call of `operation` fails with `fault` (after the faults already scripted).
    pub fn fail_next(&self, operation: Operation, fault: Fault) {
        self.lock().faults.push_back((operation, fault));
    }

    /// Sets a registered target's state (and ELB's reason for it).
    pub fn set_state(
        &self,
        arn: &str,
        target: &TargetKey,
        state: TargetState,
        reason: Option<&str>,
    ) {
        if let Some(health) = self
            .lock()
            .groups
            .get_mut(arn)
            .and_then(|g| g.targets.get_mut(target))
        {
            health.state = state;
            health.reason = reason.map(str::to_string);
            health.description = None;
        }
    }

    /// Every `initial` target of the group passes its checks: `healthy`.
    pub fn pass_health_checks(&self, arn: &str) {
        if let Some(group) = self.lock().groups.get_mut(arn) {
            for health in group.targets.values_mut() {
                if health.state == TargetState::Initial {
                    *health = TargetHealth {
                        target: health.target.clone(),
                        state: TargetState::Healthy,
                        reason: None,
                        description: None,
                    };
                }
            }
        }
    }

    /// Draining targets of the group finish draining: gone.
    pub fn finish_draining(&self, arn: &str) {
        if let Some(group) = self.lock().groups.get_mut(arn) {
            group
                .targets
                .retain(|_, h| h.state != TargetState::Draining);
        }
    }

    /// Takes a target out of the group as if someone else deregistered it (and it drained).
    pub fn deregister_outside(&self, arn: &str, target: &TargetKey) {
        if let Some(group) = self.lock().groups.get_mut(arn) {
            group.targets.remove(target);
        }
    }

    /// Puts a target in the group as if someone else registered it (another cluster, a person).
    pub fn register_outside(&self, arn: &str, target: TargetKey, state: TargetState) {
        if let Some(group) = self.lock().groups.get_mut(arn) {
            group.targets.insert(
                target.clone(),
                TargetHealth {
                    target,
                    state,
                    reason: None,
                    description: None,
                },
            );
        }
    }

    /// The group's targets, as DescribeTargetHealth would report them.
    pub fn targets(&self, arn: &str) -> Vec<TargetHealth> {
        self.lock()
            .groups
            .get(arn)
            .map(|g| g.targets.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Registered targets that are not draining.
    pub fn active_targets(&self, arn: &str) -> Vec<TargetKey> {
        self.targets(arn)
            .into_iter()
            .filter(|h| h.state != TargetState::Draining)
            .map(|h| h.target)
            .collect()
    }

    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    pub fn count(&self, operation: Operation) -> usize {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.operation == operation)
            .count()
    }

    /// Targets registered while they were registered already (and not draining).
    pub fn double_registrations(&self) -> Vec<TargetKey> {
        self.lock().double_registrations.clone()
    }

    pub fn forget_calls(&self) {
        self.lock().calls.clear();
    }
}

impl Elbv2 for FakeElb {
    type Client = FakeTargetGroups;

    async fn target_groups(
        &self,
        role: Option<&RoleToAssume>,
    ) -> Result<FakeTargetGroups, AwsError> {
        let Some(role) = role else {
            return Ok(FakeTargetGroups {
                elb: self.clone(),
                account: OWN_ACCOUNT.to_string(),
            });
        };
        let mut state = self.lock();
        let fault = state.take_fault(Operation::AssumeRole);
        let allowed = state.roles.get(&role.role_arn).cloned();
        let result = match (fault, allowed) {
            (Some(fault), _) if fault != Fault::LostAnswer => {
                Err(fault_error(Operation::AssumeRole, fault))
            }
            (_, Some((required, account)))
                if required.is_none() || required == role.external_id =>
            {
                Ok(account)
            }
            (_, Some(_)) => Err(AwsError::new(
                "AssumeRole",
                AwsErrorKind::AccessDenied,
                format!(
                    "not authorized to perform sts:AssumeRole on {} with this external ID",
                    role.role_arn
                ),
            )),
            (_, None) => Err(AwsError::new(
                "AssumeRole",
                AwsErrorKind::AccessDenied,
                format!(
                    "not authorized to perform sts:AssumeRole on {}",
                    role.role_arn
                ),
            )),
        };
        state.calls.push(Call {
            operation: Operation::AssumeRole,
            account: OWN_ACCOUNT.to_string(),
            subject: role.role_arn.clone(),
            targets: Vec::new(),
            error: result.as_ref().err().map(|e| e.kind),
        });
        let account = result?;
        Ok(FakeTargetGroups {
            elb: self.clone(),
            account,
        })
    }
}

impl State {
    fn record(
        &mut self,
        operation: Operation,
        account: &str,
        subject: &str,
        targets: &[TargetKey],
        error: Option<AwsErrorKind>,
    ) {
        self.calls.push(Call {
            operation,
            account: account.to_string(),
            subject: subject.to_string(),
            targets: targets.to_vec(),
            error,
        });
    }

    fn take_fault(&mut self, operation: Operation) -> Option<Fault> {
        let at = self.faults.iter().position(|(op, _)| *op == operation)?;
        self.faults.remove(at).map(|(_, fault)| fault)
    }

    /// Runs one call: a scripted fault first, then `effect` unless the fault prevents it.
    fn call<T>(
        &mut self,
        operation: Operation,
        account: &str,
        subject: &str,
        targets: &[TargetKey],
        effect: impl FnOnce(&mut State) -> Result<T, AwsError>,
    ) -> Result<T, AwsError> {
        let fault = self.take_fault(operation);
        let result = match fault {
            Some(Fault::LostAnswer) => {
                effect(self).and_then(|_| Err(fault_error(operation, Fault::LostAnswer)))
            }
            Some(fault) => Err(fault_error(operation, fault)),
            None => effect(self),
        };
        self.calls.push(Call {
            operation,
            account: account.to_string(),
            subject: subject.to_string(),
            targets: targets.to_vec(),
            error: result.as_ref().err().map(|e| e.kind),
        });
        result
    }

    /// The group `arn` as seen from `account`.
    fn group(
        &mut self,
        account: &str,
        arn: &str,
        operation: Operation,
    ) -> Result<&mut Group, AwsError> {
        self.groups
            .get_mut(arn)
            .filter(|g| g.account == account)
            .ok_or_else(|| {
                AwsError::new(
                    operation.as_str(),
                    AwsErrorKind::NotFound,
                    format!("TargetGroupNotFound: target group {arn} not found"),
                )
            })
    }
}

fn fault_error(operation: Operation, fault: Fault) -> AwsError {
    let (kind, message) = match fault {
        Fault::Throttled => (AwsErrorKind::Throttled, "Throttling: Rate exceeded"),
        Fault::ServerError => (AwsErrorKind::Unavailable, "InternalFailure: service error"),
        Fault::Timeout => (AwsErrorKind::Unavailable, "the call timed out"),
        Fault::LostAnswer => (
            AwsErrorKind::Unavailable,
            "the call timed out (it took effect; the answer was lost)",
        ),
    };
    AwsError::new(operation.as_str(), kind, message)
}

impl TargetGroups for FakeTargetGroups {
    /// The fake holds target groups only: their load balancers have no security groups.
    async fn load_balancer_security_groups(
        &self,
        _arns: &[String],
    ) -> Result<Vec<String>, AwsError> {
        Ok(Vec::new())
    }

    async fn describe_target_group(&self, arn: &str) -> Result<Option<TargetGroupInfo>, AwsError> {
        let account = self.account.clone();
        self.elb.lock().call(
            Operation::DescribeTargetGroups,
            &account,
            arn,
            &[],
            |state| {
                Ok(state
                    .groups
                    .get(arn)
                    .filter(|g| g.account == account)
                    .map(|g| g.info.clone()))
            },
        )
    }

    async fn find_target_group(&self, name: &str) -> Result<Option<TargetGroupInfo>, AwsError> {
        let account = self.account.clone();
        self.elb.lock().call(
            Operation::DescribeTargetGroups,
            &account,
            name,
            &[],
            |state| {
                Ok(state
                    .groups
                    .values()
                    .find(|g| g.account == account && g.info.name == name)
                    .map(|g| g.info.clone()))
            },
        )
    }

    async fn register_targets(&self, arn: &str, targets: &[TargetKey]) -> Result<(), AwsError> {
        let account = self.account.clone();
        self.elb.lock().call(
            Operation::RegisterTargets,
            &account,
            arn,
            targets,
            |state| {
                let group = state.group(&account, arn, Operation::RegisterTargets)?;
                let mut doubles = Vec::new();
                for target in targets {
                    let fresh = TargetHealth::registering(target.clone());
                    match group.targets.get(target) {
                        Some(h) if h.state != TargetState::Draining => doubles.push(target.clone()),
                        _ => {
                            group.targets.insert(target.clone(), fresh);
                        }
                    }
                }
                state.double_registrations.extend(doubles);
                Ok(())
            },
        )
    }

    async fn deregister_targets(&self, arn: &str, targets: &[TargetKey]) -> Result<(), AwsError> {
        let account = self.account.clone();
        self.elb.lock().call(
            Operation::DeregisterTargets,
            &account,
            arn,
            targets,
            |state| {
                let group = state.group(&account, arn, Operation::DeregisterTargets)?;
                for target in targets {
                    if let Some(health) = group.targets.get_mut(target) {
                        health.state = TargetState::Draining;
                        health.reason = Some("Target.DeregistrationInProgress".to_string());
                        health.description = None;
                    }
                }
                Ok(())
            },
        )
    }

    async fn target_health(
        &self,
        arn: &str,
        targets: Option<&[TargetKey]>,
    ) -> Result<Vec<TargetHealth>, AwsError> {
        let account = self.account.clone();
        self.elb.lock().call(
            Operation::DescribeTargetHealth,
            &account,
            arn,
            targets.unwrap_or_default(),
            |state| {
                let group = state.group(&account, arn, Operation::DescribeTargetHealth)?;
                Ok(match targets {
                    None => group.targets.values().cloned().collect(),
                    Some(named) => named
                        .iter()
                        .map(|t| {
                            group
                                .targets
                                .get(t)
                                .cloned()
                                .unwrap_or_else(|| TargetHealth {
                                    target: t.clone(),
                                    state: TargetState::Unused,
                                    reason: Some(lb_model::elb::NOT_REGISTERED_REASON.to_string()),
                                    description: Some(
                                        "Target is not registered to the target group".to_string(),
                                    ),
                                })
                        })
                        .collect(),
                })
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ip: &str) -> TargetKey {
        TargetKey::new(ip, 8080)
    }

    #[tokio::test]
    async fn targets_register_drain_and_faults_behave_like_elb() {
        let elb = FakeElb::default();
        let tg = elb.add_target_group("web", "ip");
        let client = elb.target_groups(None).await.unwrap();
        client
            .register_targets(&tg.arn, &[key("10.0.0.1")])
            .await
            .unwrap();
        assert_eq!(elb.targets(&tg.arn)[0].state, TargetState::Initial);
        client
            .register_targets(&tg.arn, &[key("10.0.0.1")])
            .await
            .unwrap();
        assert_eq!(elb.double_registrations(), [key("10.0.0.1")]);
        elb.pass_health_checks(&tg.arn);
        assert_eq!(elb.targets(&tg.arn)[0].state, TargetState::Healthy);

        elb.fail_next(Operation::DeregisterTargets, Fault::Throttled);
        let err = client
            .deregister_targets(&tg.arn, &[key("10.0.0.1")])
            .await
            .unwrap_err();
        assert_eq!(err.kind, AwsErrorKind::Throttled);
        assert_eq!(elb.targets(&tg.arn)[0].state, TargetState::Healthy);

        elb.fail_next(Operation::DeregisterTargets, Fault::LostAnswer);
        let err = client
            .deregister_targets(&tg.arn, &[key("10.0.0.1")])
            .await
            .unwrap_err();
        assert_eq!(err.kind, AwsErrorKind::Unavailable);
        assert_eq!(elb.targets(&tg.arn)[0].state, TargetState::Draining);
        elb.finish_draining(&tg.arn);
        assert!(elb.targets(&tg.arn).is_empty());
    }

    #[tokio::test]
    async fn roles_reach_other_accounts_only_with_the_right_external_id() {
        let elb = FakeElb::default();
        let theirs = elb.add_target_group_in("999999999999", "shared", "ip");
        elb.allow_role(
            "arn:aws:iam::999999999999:role/lb",
            Some("x-1"),
            "999999999999",
        );
        let own = elb.target_groups(None).await.unwrap();
        assert_eq!(own.describe_target_group(&theirs.arn).await.unwrap(), None);
        let role = |external_id: Option<&str>| RoleToAssume {
            role_arn: "arn:aws:iam::999999999999:role/lb".into(),
            external_id: external_id.map(str::to_string),
        };
        let denied = elb
            .target_groups(Some(&role(Some("wrong"))))
            .await
            .err()
            .unwrap();
        assert_eq!(denied.kind, AwsErrorKind::AccessDenied);
        let client = elb.target_groups(Some(&role(Some("x-1")))).await.unwrap();
        assert_eq!(
            client.find_target_group("shared").await.unwrap(),
            Some(theirs)
        );
    }
}
