//! The deployer: converges AWS to a desired [`Stack`](lb_model::stack::Stack).
//!
//! - [`diff`] (pure): the desired stack and what exists (only resources carrying the stack's
//!   ownership tags) -> the steps, in a safe order; `teardown` for a stack that goes.
//! - `steps`: the vocabulary of changes ([`diff::Step`]) and their one-line summary.
//! - [`apply`]: the steps carried out through [`apply::LoadBalancers`], in order, stopping at the
//!   first failure (the next reconcile describes and diffs again).
//! - [`switch`] (pure): a listener moving to a replacement target group waits until the new group
//!   has a registered target, so traffic never meets an empty group.
//! - [`sdk`]: [`apply::LoadBalancers`] with the AWS SDK, finding what exists by tags.
//! - the in-memory ELB of the tests (`crate::fake`, feature `fake`) implements
//!   [`apply::LoadBalancers`] too.

mod actions;
pub mod apply;
mod convert;
pub mod diff;
pub mod rules;
pub mod sdk;
mod steps;
pub mod switch;
