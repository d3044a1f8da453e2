//! The `lb-controller` package's library side: wiring the controller onto the local sandbox, for the
//! demo, the integration tests and the benchmarks.

pub mod bench;
pub mod bench_rollout;
pub mod clock;
pub mod harness;
pub mod webhook_probe;
