//! Why a binding's targets cannot be reached, by name. ELB only says `Target.Timeout` (or
//! `Target.FailedHealthChecks`) when a security group drops its health checks; when a target
//! stays so and the described groups of its interface admit nothing from the load balancer's
//! groups on its port, the binding says which group, interface, source and port, and what to do.
//! Computed from described state only: the load balancer's groups and the interface's groups
//! are described (at most once per [`DIAGNOSIS_TTL`] per binding), never guessed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lb_aws::TargetGroups;
use lb_model::elb::{TargetGroupInfo, TargetHealth, TargetState};
use lb_model::target_rules::{Protocol, unreachable_message};

use super::target_rules::TargetRules;

/// How long a diagnosis stands before the groups are described again.
pub const DIAGNOSIS_TTL: Duration = Duration::from_secs(30);
/// The reasons ELB gives for checks a security group drops.
const DROPPED: [&str; 2] = ["Target.Timeout", "Target.FailedHealthChecks"];

/// What the binding says about its unreachable targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    /// How many targets look dropped.
    pub unreachable: usize,
    /// The first one's diagnosis, naming groups, interface, source and port.
    pub message: String,
    /// Made by this pass (not the last one's, kept): worth an Event.
    pub fresh: bool,
}

/// The last diagnosis of each binding, and when it was made.
#[derive(Default)]
pub struct Diagnoses(Mutex<HashMap<String, (Instant, Option<String>)>>);

impl Diagnoses {
    fn get(&self, key: &str, now: Instant) -> Option<Option<String>> {
        let seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        seen.get(key)
            .filter(|(at, _)| now < *at + DIAGNOSIS_TTL)
            .map(|(_, message)| message.clone())
    }

    fn set(&self, key: &str, now: Instant, message: Option<String>) {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        seen.insert(key.to_string(), (now, message));
    }

    pub fn forget(&self, key: &str) {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        seen.remove(key);
    }
}

/// The diagnosis of `health`'s unhealthy targets, when security groups explain them.
pub async fn diagnose<C: TargetGroups>(
    rules: &TargetRules,
    diagnoses: &Diagnoses,
    key: &str,
    client: &C,
    group: &TargetGroupInfo,
    health: &[TargetHealth],
) -> Option<Diagnosis> {
    let dropped: Vec<&TargetHealth> = health
        .iter()
        .filter(|h| {
            h.state == TargetState::Unhealthy
                && h.reason.as_deref().is_some_and(|r| DROPPED.contains(&r))
        })
        .collect();
    let first = dropped.first()?;
    let now = Instant::now();
    let (message, fresh) = match diagnoses.get(key, now) {
        Some(message) => (message, false),
        None => {
            let message = describe_and_explain(rules, client, group, first).await;
            diagnoses.set(key, now, message.clone());
            (message, true)
        }
    };
    Some(Diagnosis {
        unreachable: dropped.len(),
        message: message?,
        fresh,
    })
}

async fn describe_and_explain<C: TargetGroups>(
    rules: &TargetRules,
    client: &C,
    group: &TargetGroupInfo,
    target: &TargetHealth,
) -> Option<String> {
    let balancer_groups = client
        .load_balancer_security_groups(&group.load_balancer_arns)
        .await
        .ok()?;
    let (interface, groups) = rules
        .interface_for_diagnosis(group.target_type == "instance", &target.target.id)
        .await
        .ok()??;
    let protocol = match group.protocol.as_deref() {
        Some("UDP") => Protocol::Udp,
        _ => Protocol::Tcp,
    };
    let groups: Vec<_> = groups.iter().collect();
    unreachable_message(
        &interface,
        &groups,
        &balancer_groups,
        protocol,
        target.target.port,
    )
}
