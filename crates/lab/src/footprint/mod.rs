//! Upstream's AWS footprint, measured (`fixtures/upstream-footprint/`: what the upstream
//! controller's own binary created in the sandbox's emulator for `workload.yaml`, cluster
//! `lb-sandbox`), and what this controller's footprint is compared to it with:
//!
//! - [`model`]: the workload built by this controller's model, with the UIDs the measurement
//!   recorded, and every modelled field compared to the fixture (names, tags, descriptions, rules,
//!   health checks, attributes);
//! - [`compare`]: two dumps of the emulator (`GET /footprint`) compared field by field, the names
//!   that hash a Kubernetes UID (a Service's NLB and security group, every target group) matched
//!   by their tags instead;
//! - [`takeover`]: ours started over the state upstream leaves (replayed from the fixture), and
//!   what it did about it.

pub mod compare;
pub mod model;
pub mod takeover;

/// The measured footprint (JSON, the emulator's `GET /footprint` shape plus `object_uids`).
pub const FOOTPRINT_JSON: &str = include_str!("../../fixtures/upstream-footprint/footprint.json");

/// The workload measured: upstream's 2048, the seed's NLB Service, an explicit IngressGroup.
pub const WORKLOAD_YAML: &str = include_str!("../../fixtures/upstream-footprint/workload.yaml");

/// The cluster name of the measurement.
pub const CLUSTER: &str = "lb-sandbox";

/// The fixture, parsed.
pub fn fixture() -> serde_json::Value {
    serde_json::from_str(FOOTPRINT_JSON).unwrap_or_default()
}
