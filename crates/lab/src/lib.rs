//! lb-controller on the local sandbox: the controller wired onto a sandbox exactly as in a cluster
//! ([`harness`]; installed from its Helm chart and run as its ServiceAccount: [`chart`]), the demo that tries manifests before a cluster ([`demo`]), and the benchmarks
//! that measure it ([`bench`]: readiness gates; [`bench_rollout`]: failed requests during
//! rollouts; [`bench_footprint`]: the product binary's size and memory; [`bench_services`]: Service -> NLB
//! reconcile time and AWS calls; [`bench_ingress`]: the same for Ingress groups -> ALB; [`bench_faults`]: the reliability matrix, fault x invariant); [`footprint`]: upstream's measured AWS
//! footprint, compared with ours, and ours taking over upstream's state (`takeover`). Linked only into the `lab` build of the binary, never into the product.

pub mod api_writes;
pub mod bench;
pub mod bench_faults;
pub mod bench_footprint;
pub mod bench_ingress;
pub mod bench_rollout;
pub mod bench_services;
pub mod call_counts;
pub mod chart;
pub mod clock;
pub mod conformance;
pub mod cpu_use;
pub mod demo;
pub mod footprint;
pub mod harness;
pub mod https;
mod slice_recorder;
pub mod spread;
pub mod status_hostname;
pub mod webhook_probe;
