//! Service -> NLB: which Services are ours, and what their annotations ask for.
//!
//! - [`selection`]: whether a Service is ours, and its target type.
//! - [`annotations`]: every `service.beta.kubernetes.io/` annotation upstream reads, as typed values.

pub mod annotations;
pub mod selection;
