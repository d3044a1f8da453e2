//! lb-controller's edge to AWS. The controller sees ELBv2 target groups through the small
//! `TargetGroups` trait; `SdkTargetGroups` implements it with the AWS SDK for Rust (retries with
//! exponential backoff and jitter come from the SDK's standard retry mode), counting every call.

mod calls;
mod sdk;
mod types;

pub use calls::{AwsCalls, Operation};
pub use sdk::{SdkTargetGroups, load_sdk_config};
pub use types::{AwsError, AwsErrorKind, TargetGroupInfo, TargetHealth, TargetKey, TargetState};

/// Target-group operations the controller needs. Register and deregister take any number of
/// targets and make as few calls as the API allows.
pub trait TargetGroups: Send + Sync + 'static {
    fn describe_target_group(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<Option<TargetGroupInfo>, AwsError>> + Send;
    fn find_target_group(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<TargetGroupInfo>, AwsError>> + Send;
    fn register_targets(
        &self,
        arn: &str,
        targets: &[TargetKey],
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    fn deregister_targets(
        &self,
        arn: &str,
        targets: &[TargetKey],
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    fn target_health(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<Vec<TargetHealth>, AwsError>> + Send;
}

/// Targets per RegisterTargets / DeregisterTargets call.
pub const TARGETS_PER_CALL: usize = 200;
