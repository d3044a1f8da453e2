//! Service -> NLB: which Services are ours, and what their annotations ask for.
//!
//! - [`selection`]: whether a Service is ours, and its target type.
//! - [`build`]: Service + annotations -> the desired NLB stack ([`health`]: its health checks,
//!   [`subnets`]: where it goes).
//! - [`objects`]: what the reconciler does with a Service, its bindings, its status.
//! - [`annotations`]: every `service.beta.kubernetes.io/` annotation upstream reads, as typed values.

pub mod annotations;
pub mod build;
pub mod health;
pub mod objects;
pub mod selection;
pub mod subnets;
