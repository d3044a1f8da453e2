//! lb-controller's reconcilers, webhooks and runtime: the I/O around the pure model.
//!
//! - [`reconciler`]: what every reconciler loop shares (watch scope, debounce, outcome log), a
//!   leaf the reconcilers and the runtime both import.
//! - [`runtime`]: the shared watches, the caches ([`stores`]), and `run`, which wires the
//!   TargetGroupBinding reconciler, the webhooks and the metrics server together;
//!   [`binding_triggers`]: which bindings a Service, EndpointSlice, pod or node event concerns.
//! - [`tgb`]: the TargetGroupBinding reconciler (snapshot -> model plan -> AWS and Kubernetes).
//! - [`webhook`]: the pod and TargetGroupBinding admission webhooks.
//! - [`pod_conditions`]: the one writer of pod conditions; [`status_writer`]: of binding
//!   statuses; both through the one coalescing [`write_queue`]; [`report`]: the one reporter of
//!   Events and status; all through [`writes`], the Kubernetes write edge, which publishes Events
//!   off the reconcilers' path ([`event_queue`]).
//! - [`leader`]: leader election on a Lease, with a warm standby; [`health`]: the probes.
//! - [`slim`]: what the caches keep of pods, nodes and EndpointSlices.
//! - [`budget`]: the ELB call budget all bindings share.
//! - [`stack`]: the one pipeline of the load balancer reconcilers ([`ingress`], [`service`]): a
//!   desired stack converged to AWS, its bindings, finalizers, statuses and Events.
//! - [`security_groups`]: a stack's security groups as IDs (managed, named, the shared backend
//!   one), and the backend one's release.
//! - [`error`]: errors, their categories and the requeue they choose; [`metrics`]: Prometheus.

pub mod binding_triggers;
pub mod budget;
pub mod error;
pub mod event_queue;
pub mod gateway;
pub mod health;
pub mod ingress;
pub mod leader;
pub mod metrics;
pub mod pod_conditions;
pub mod reconciler;
pub mod report;
pub mod runtime;
pub mod security_groups;
pub mod service;
pub mod slim;
pub mod stack;
pub mod status_writer;
pub mod stores;
pub mod tgb;
pub mod webhook;
pub mod write_queue;
pub mod writes;

pub use leader::{LeaderOptions, Leadership};
pub use reconciler::{DEBOUNCE, WatchScope};
pub use runtime::{
    ClusterContext, LoadBalancerOptions, MetricsOptions, RunError, RuntimeOptions, WebhookOptions,
    run,
};
pub use stores::Stores;
pub use tgb::Context;
