//! lb-controller's pure core. Everything here takes plain values (snapshots of Kubernetes objects
//! from the watch caches, ELB's answers) and returns plain values: no Kubernetes client, no AWS
//! SDK, no async runtime, no clock. The controller crate does the I/O around it; most of the
//! project's tests live here.
//!
//! - [`elb`]: targets, their health, target groups, as ELB reports them.
//! - [`selectors`]: Service selectors and label selectors.
//! - [`targets`]: a binding's desired targets (ip: endpoints; instance: eligible nodes).
//! - [`gates`]: a readiness gate's verdict from target health, and the condition patch.
//! - [`polling`]: when to look at target health again while gates are pending.
//! - [`plan`]: one TargetGroupBinding pass, from snapshot to actions.
//! - [`status`]: the binding's status, written only when it changed.
//! - [`termination`]: the termination hold (a preStop sleep) for pods behind a binding.
//! - [`pod_admission`], [`binding_admission`]: the webhooks' decisions.
//! - [`annotations`]: annotations read into typed values; bad ones named with key and value.
//! - [`service`]: Service -> NLB: selection, the Service annotations, the stack builder.
//! - [`stack`]: the desired stack (load balancer, listeners, target groups, bindings) for the deployer.
//! - [`naming`]: `k8s-<ns>-<name>-<hash>` names of what the controller creates.
//! - `fixtures` (tests, feature `fixtures`): builders the tests of every crate share.

#[cfg(test)]
mod adversarial;
pub mod annotations;
pub mod binding_admission;
pub mod elb;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod gates;
pub mod gateway;
pub mod ingress;
pub mod naming;
pub mod plan;
pub mod pod_admission;
pub mod polling;
pub mod selectors;
pub mod service;
pub mod stack;
pub mod status;
pub mod target_rules;
pub mod targets;
pub mod termination;
