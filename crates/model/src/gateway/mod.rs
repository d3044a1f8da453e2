//! Gateway API on an ALB, the pure half: a GatewayClass's status, a Gateway's listeners checked,
//! ReferenceGrants, and the conditions they are written as. The controller's `gateway` module
//! reads the objects and writes what this decides.

pub mod attach;
mod attached;
pub mod backends;
pub mod build;
pub mod certificates;
pub mod class;
pub mod conditions;
pub mod gates;
pub mod grants;
pub mod hostnames;
pub mod isolation;
pub mod listener_sets;
pub mod listeners;
pub mod load_balancer_config;
pub mod rules;
pub mod target_group_config;
pub mod target_groups;
