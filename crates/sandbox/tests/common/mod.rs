//! Helpers shared by the sandbox's integration tests (see `lb_sandbox::testing`).
#![allow(unused_imports)]

pub use lb_sandbox::testing::*;
