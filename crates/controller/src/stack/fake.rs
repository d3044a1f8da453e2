//! Fakes for the pipeline's unit tests: an in-memory EC2 (subnets and security groups) and the
//! stack's Kubernetes writes recorded, with bindings kept in memory.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};

use kube::ResourceExt;
use kube::runtime::events::EventType;
use lb_api::TargetGroupBinding;
use lb_aws::deployer::diff::Owner;
use lb_aws::{AwsError, AwsErrorKind, Ec2};
use lb_model::service::subnets::Subnet;
use lb_model::stack::ManagedSecurityGroup;

use super::error::StackError;
use super::objects::{BindingScope, Served, StackWrites};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// EC2 in memory: the VPC's subnets; managed groups `sg-<stack id>` by owner; the backend group
/// `sg-backend`; every call recorded.
#[derive(Debug, Default)]
pub struct FakeEc2 {
    pub subnets: Vec<Subnet>,
    groups: Mutex<BTreeSet<String>>,
    calls: Mutex<Vec<&'static str>>,
}

impl FakeEc2 {
    pub fn with_subnets(subnets: Vec<Subnet>) -> Self {
        Self {
            subnets,
            ..Self::default()
        }
    }

    pub fn calls(&self) -> Vec<&'static str> {
        lock(&self.calls).clone()
    }

    pub fn forget_calls(&self) {
        lock(&self.calls).clear();
    }

    /// The managed groups that exist.
    pub fn groups(&self) -> BTreeSet<String> {
        lock(&self.groups).clone()
    }

    fn call(&self, operation: &'static str) {
        lock(&self.calls).push(operation);
    }
}

fn group_id(owner: &Owner) -> String {
    format!("sg-{}", owner.stack_id)
}

impl Ec2 for FakeEc2 {
    async fn subnets(&self) -> Result<Vec<Subnet>, AwsError> {
        self.call("DescribeSubnets");
        Ok(self.subnets.clone())
    }

    async fn vpc_cidrs(&self) -> Result<Vec<ipnet::IpNet>, AwsError> {
        self.call("DescribeVpcs");
        Ok(vec!["10.0.0.0/16".parse().expect("cidr")])
    }

    async fn ensure_security_group(
        &self,
        owner: &Owner,
        _group: &ManagedSecurityGroup,
        _ignored_tags: &BTreeSet<String>,
    ) -> Result<String, AwsError> {
        self.call("DescribeSecurityGroups");
        let id = group_id(owner);
        lock(&self.groups).insert(id.clone());
        Ok(id)
    }

    async fn backend_security_group(&self) -> Result<String, AwsError> {
        Ok("sg-backend".into())
    }

    async fn releasable_backend_security_groups(&self) -> Result<Vec<String>, AwsError> {
        Ok(Vec::new())
    }

    async fn release_backend_security_group(&self, _id: &str) -> Result<(), AwsError> {
        Ok(())
    }

    async fn resolve_security_groups(
        &self,
        names_or_ids: &[String],
    ) -> Result<Vec<String>, AwsError> {
        Ok(names_or_ids.to_vec())
    }

    async fn delete_security_groups(&self, owner: &Owner) -> Result<(), AwsError> {
        self.call("DeleteSecurityGroup");
        lock(&self.groups).remove(&group_id(owner));
        Ok(())
    }
}

/// One write, as the fake saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    ApplyBinding(String),
    DeleteBinding(String),
    /// (object key, finalizers)
    Finalizers(String, Vec<String>),
    /// (object key, hostname)
    Hostname(String, Option<String>),
    /// (object key, reason)
    Event(String, String),
}

/// The stack's writes recorded; bindings kept (by `namespace/name`) and listed by their labels.
#[derive(Debug, Default)]
pub struct RecordingStackWrites {
    bindings: Mutex<BTreeMap<String, TargetGroupBinding>>,
    writes: Mutex<Vec<Write>>,
    /// How many of the next binding applies fail.
    failing_applies: Mutex<u32>,
}

fn key<K: ResourceExt>(object: &K) -> String {
    format!(
        "{}/{}",
        object.namespace().unwrap_or_default(),
        object.name_any()
    )
}

/// Whether `labels` match `selector` (`k=v` and `!k` terms, comma-separated).
fn matches(selector: &str, labels: &BTreeMap<String, String>) -> bool {
    selector
        .split(',')
        .all(|term| match term.strip_prefix('!') {
            Some(absent) => !labels.contains_key(absent),
            None => match term.split_once('=') {
                Some((k, v)) => labels.get(k).map(String::as_str) == Some(v),
                None => labels.contains_key(term),
            },
        })
}

impl RecordingStackWrites {
    pub fn writes(&self) -> Vec<Write> {
        lock(&self.writes).clone()
    }

    pub fn forget_writes(&self) {
        lock(&self.writes).clear();
    }

    /// The bindings that exist, by `namespace/name`.
    pub fn binding_names(&self) -> Vec<String> {
        lock(&self.bindings).keys().cloned().collect()
    }

    pub fn binding(&self, key: &str) -> Option<TargetGroupBinding> {
        lock(&self.bindings).get(key).cloned()
    }

    /// The next `times` binding applies fail as the API server's 500 would.
    pub fn fail_applies(&self, times: u32) {
        *lock(&self.failing_applies) = times;
    }

    /// The Event reasons published, in order.
    pub fn event_reasons(&self) -> Vec<String> {
        self.writes()
            .into_iter()
            .filter_map(|w| match w {
                Write::Event(_, reason) => Some(reason),
                _ => None,
            })
            .collect()
    }

    fn record(&self, write: Write) {
        lock(&self.writes).push(write);
    }
}

impl StackWrites for RecordingStackWrites {
    async fn bindings(&self, scope: &BindingScope) -> Result<Vec<TargetGroupBinding>, StackError> {
        let bindings = lock(&self.bindings);
        Ok(bindings
            .values()
            .filter(|b| scope.namespace.is_none() || b.namespace() == scope.namespace)
            .filter(|b| {
                let labels = b.labels();
                scope.selectors.iter().any(|s| matches(s, labels))
            })
            .cloned()
            .collect())
    }

    async fn apply_binding(&self, binding: &TargetGroupBinding) -> Result<(), StackError> {
        {
            let mut failing = lock(&self.failing_applies);
            if *failing > 0 {
                *failing -= 1;
                return Err(StackError::Kube {
                    context: format!("applying TargetGroupBinding {}", binding.name_any()),
                    source: kube::Error::Api(
                        kube::core::Status::failure("scripted failure", "InternalError")
                            .with_code(500)
                            .boxed(),
                    ),
                });
            }
        }
        lock(&self.bindings).insert(key(binding), binding.clone());
        self.record(Write::ApplyBinding(key(binding)));
        Ok(())
    }

    async fn delete_binding(&self, binding: &TargetGroupBinding) -> Result<(), StackError> {
        lock(&self.bindings).remove(&key(binding));
        self.record(Write::DeleteBinding(key(binding)));
        Ok(())
    }

    async fn set_finalizers<K: Served>(
        &self,
        object: &K,
        finalizers: Vec<String>,
    ) -> Result<(), StackError> {
        self.record(Write::Finalizers(key(object), finalizers));
        Ok(())
    }

    async fn set_hostname<K: Served>(
        &self,
        object: &K,
        hostname: Option<&str>,
    ) -> Result<(), StackError> {
        self.record(Write::Hostname(key(object), hostname.map(String::from)));
        Ok(())
    }

    async fn publish<K: Served>(&self, object: &K, _type: EventType, reason: &str, _message: &str) {
        self.record(Write::Event(key(object), reason.to_string()));
    }
}

/// A scripted AWS failure's error, as the fake ELB gives it.
pub fn unavailable(operation: &'static str) -> AwsError {
    AwsError::new(operation, AwsErrorKind::Unavailable, "scripted failure")
}
