//! `TargetGroups` with the AWS SDK for Rust.

use std::sync::Arc;

use aws_config::retry::RetryConfig;
use aws_sdk_elasticloadbalancingv2::Client;
use aws_sdk_elasticloadbalancingv2::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_elasticloadbalancingv2::types::TargetDescription;

use crate::calls::{AwsCalls, Operation};
use crate::types::{AwsError, AwsErrorKind, TargetGroupInfo, TargetHealth, TargetKey, TargetState};
use crate::{TARGETS_PER_CALL, TargetGroups};

/// The SDK configuration from the environment (region, credentials, `AWS_ENDPOINT_URL`), with
/// the standard retry mode at 10 attempts: throttling and 5xx answers are retried with
/// exponential backoff and jitter.
pub async fn load_sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(10))
        .load()
        .await
}

#[derive(Clone)]
pub struct SdkTargetGroups {
    client: Client,
    calls: Arc<AwsCalls>,
}

impl SdkTargetGroups {
    pub fn new(config: &aws_config::SdkConfig, calls: Arc<AwsCalls>) -> Self {
        Self {
            client: Client::new(config),
            calls,
        }
    }

    pub fn calls(&self) -> &Arc<AwsCalls> {
        &self.calls
    }

    fn done<T, E>(&self, operation: Operation, result: Result<T, E>) -> Result<T, AwsError>
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        self.calls.record(operation, result.is_ok());
        result.map_err(|err| {
            AwsError::from_code(
                operation.as_str(),
                err.code(),
                DisplayErrorContext(&err).to_string(),
            )
        })
    }

    async fn describe(
        &self,
        arn: Option<&str>,
        name: Option<&str>,
    ) -> Result<Option<TargetGroupInfo>, AwsError> {
        let result = self
            .client
            .describe_target_groups()
            .set_target_group_arns(arn.map(|a| vec![a.to_string()]))
            .set_names(name.map(|n| vec![n.to_string()]))
            .send()
            .await;
        let output = match self.done(Operation::DescribeTargetGroups, result) {
            Ok(output) => output,
            Err(err) if err.kind == AwsErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err),
        };
        Ok(output.target_groups().first().map(|tg| TargetGroupInfo {
            arn: tg.target_group_arn().unwrap_or_default().to_string(),
            name: tg.target_group_name().unwrap_or_default().to_string(),
            target_type: tg
                .target_type()
                .map(|t| t.as_str().to_string())
                .unwrap_or_else(|| "instance".to_string()),
            port: tg.port().and_then(|p| u16::try_from(p).ok()),
            vpc_id: tg.vpc_id().map(str::to_string),
            load_balancer_arns: tg.load_balancer_arns().to_vec(),
            health_check_interval_seconds: tg
                .health_check_interval_seconds()
                .and_then(|s| u32::try_from(s).ok()),
            healthy_threshold_count: tg
                .healthy_threshold_count()
                .and_then(|s| u32::try_from(s).ok()),
        }))
    }
}

fn descriptions(targets: &[TargetKey]) -> Vec<TargetDescription> {
    targets
        .iter()
        .map(|t| {
            TargetDescription::builder()
                .id(&t.id)
                .port(i32::from(t.port))
                .build()
        })
        .collect()
}

impl TargetGroups for SdkTargetGroups {
    async fn describe_target_group(&self, arn: &str) -> Result<Option<TargetGroupInfo>, AwsError> {
        self.describe(Some(arn), None).await
    }

    async fn find_target_group(&self, name: &str) -> Result<Option<TargetGroupInfo>, AwsError> {
        self.describe(None, Some(name)).await
    }

    async fn register_targets(&self, arn: &str, targets: &[TargetKey]) -> Result<(), AwsError> {
        for chunk in targets.chunks(TARGETS_PER_CALL) {
            let result = self
                .client
                .register_targets()
                .target_group_arn(arn)
                .set_targets(Some(descriptions(chunk)))
                .send()
                .await;
            self.done(Operation::RegisterTargets, result)?;
        }
        Ok(())
    }

    async fn deregister_targets(&self, arn: &str, targets: &[TargetKey]) -> Result<(), AwsError> {
        for chunk in targets.chunks(TARGETS_PER_CALL) {
            let result = self
                .client
                .deregister_targets()
                .target_group_arn(arn)
                .set_targets(Some(descriptions(chunk)))
                .send()
                .await;
            self.done(Operation::DeregisterTargets, result)?;
        }
        Ok(())
    }

    async fn target_health(&self, arn: &str) -> Result<Vec<TargetHealth>, AwsError> {
        let result = self
            .client
            .describe_target_health()
            .target_group_arn(arn)
            .send()
            .await;
        let output = self.done(Operation::DescribeTargetHealth, result)?;
        Ok(output
            .target_health_descriptions()
            .iter()
            .filter_map(|d| {
                let target = d.target()?;
                let health = d.target_health();
                Some(TargetHealth {
                    target: TargetKey::new(
                        target.id().unwrap_or_default(),
                        target
                            .port()
                            .and_then(|p| u16::try_from(p).ok())
                            .unwrap_or(0),
                    ),
                    state: TargetState::parse(
                        health
                            .and_then(|h| h.state())
                            .map(|s| s.as_str())
                            .unwrap_or("unavailable"),
                    ),
                    reason: health
                        .and_then(|h| h.reason())
                        .map(|r| r.as_str().to_string()),
                    description: health.and_then(|h| h.description()).map(str::to_string),
                })
            })
            .collect())
    }
}
