//! lb-controller's edge to AWS: one module per service, each a small trait the controller
//! depends on, implemented with the AWS SDK for Rust (retries with exponential backoff and jitter
//! come from the SDK's standard retry mode; every call is counted and timed). With the `fake`
//! feature, an in-memory ELB implements the same traits, with scripted faults, for unit tests.
//!
//! - [`elbv2`]: target groups and their targets ([`TargetGroups`]), per account ([`Elbv2`]).
//! - [`ec2`]: the VPC's subnets and managed security groups ([`Ec2`]).
//! - [`vpc`]: the cluster's VPC when no flag names it (by tags, or instance metadata).
//! - [`acm`]: the account's certificates, for discovery by host ([`Certificates`]).
//! - [`sts`]: assuming a binding's role for a target group in another account.
//! - [`deployer`]: desired stack vs what exists -> the steps, in a safe order (pure diff), and
//!   their application through the SDK ([`SdkLoadBalancers`]).
//! - [`calls`]: counts and latency of every call, for `/metrics` and benchmarks.
//! - [`write_fence`]: mutating calls refused while this replica does not lead.

pub mod acm;
pub mod calls;
pub mod deployer;
pub mod ec2;
pub mod elbv2;
pub mod error;
#[cfg(any(test, feature = "fake"))]
pub mod fake;
pub mod iam;
pub mod sdk_config;
pub mod sts;
pub mod vpc;
pub mod write_fence;

pub use acm::{Certificates, ImportedCertificate, ImportedCertificates, SdkAcm};
pub use aws_config::SdkConfig;
pub use calls::{AwsCalls, Operation};
pub use deployer::sdk::SdkLoadBalancers;
pub use ec2::targets::TargetNetwork;
pub use ec2::{BackendSecurityGroup, Ec2, SdkEc2};
pub use elbv2::{Elbv2, SdkElbv2, SdkTargetGroups, TARGETS_PER_CALL, TargetGroups};
pub use error::{AwsError, AwsErrorKind};
pub use sdk_config::{AwsSettings, load_sdk_config, parse_endpoints, with_controller_retries};
pub use sts::RoleToAssume;
pub use write_fence::WriteFence;
