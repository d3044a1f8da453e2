//! A listener's certificates beyond its default: ELB takes the default one with the listener
//! (Create/ModifyListener `Certificates`) and the others (SNI) through Add/Remove/
//! DescribeListenerCertificates. The stack lists them all, default first.

use aws_sdk_elasticloadbalancingv2::types as sdk;

use super::SdkLoadBalancers;
use crate::calls::{Operation, timed};
use crate::error::AwsError;

impl SdkLoadBalancers {
    /// The listener's certificates but its default one.
    pub(super) async fn extra_certificates(
        &self,
        listener_arn: &str,
    ) -> Result<Vec<String>, AwsError> {
        let mut extra = Vec::new();
        let mut marker = None;
        loop {
            let page = timed(
                &self.calls,
                Operation::DescribeListenerCertificates,
                self.client
                    .describe_listener_certificates()
                    .listener_arn(listener_arn)
                    .set_marker(marker)
                    .send(),
            )
            .await?;
            extra.extend(
                page.certificates()
                    .iter()
                    .filter(|c| c.is_default() != Some(true))
                    .filter_map(|c| c.certificate_arn())
                    .map(str::to_string),
            );
            marker = page.next_marker().map(str::to_string);
            if marker.is_none() {
                return Ok(extra);
            }
        }
    }

    /// Makes the listener's non-default certificates `wanted` (the stack's list after its first);
    /// `known` is what it has, when the caller knows (a new listener has none).
    pub(super) async fn set_extra_certificates(
        &self,
        listener_arn: &str,
        wanted: &[String],
        known: Option<Vec<String>>,
    ) -> Result<(), AwsError> {
        let have = match known {
            Some(have) => have,
            None => self.extra_certificates(listener_arn).await?,
        };
        let add: Vec<&String> = wanted.iter().filter(|c| !have.contains(c)).collect();
        let remove: Vec<&String> = have.iter().filter(|c| !wanted.contains(c)).collect();
        let list = |arns: &[&String]| -> Vec<sdk::Certificate> {
            arns.iter()
                .map(|a| sdk::Certificate::builder().certificate_arn(*a).build())
                .collect()
        };
        if !add.is_empty() {
            timed(
                &self.calls,
                Operation::AddListenerCertificates,
                self.client
                    .add_listener_certificates()
                    .listener_arn(listener_arn)
                    .set_certificates(Some(list(&add)))
                    .send(),
            )
            .await?;
        }
        if !remove.is_empty() {
            timed(
                &self.calls,
                Operation::RemoveListenerCertificates,
                self.client
                    .remove_listener_certificates()
                    .listener_arn(listener_arn)
                    .set_certificates(Some(list(&remove)))
                    .send(),
            )
            .await?;
        }
        Ok(())
    }
}
