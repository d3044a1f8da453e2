//! ACM, for HTTPS listeners whose Ingresses name no certificate: the account's issued
//! certificates with their domain names, so the model can pick those that cover the rules' hosts.
//! One paged ListCertificates (its summaries carry the names), kept for [`CERTIFICATES_TTL`].

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_acm::Client;
use aws_sdk_acm::types::CertificateStatus;
use lb_model::ingress::Certificate;

use crate::calls::{AwsCalls, Operation, timed};
use crate::error::AwsError;

/// How long listed certificates are trusted.
pub const CERTIFICATES_TTL: Duration = Duration::from_secs(300);

pub trait Certificates: Send + Sync + 'static {
    /// The account's issued certificates in the region, with their domain names.
    fn certificates(&self) -> impl Future<Output = Result<Vec<Certificate>, AwsError>> + Send;
}

pub struct SdkAcm {
    client: Client,
    calls: Arc<AwsCalls>,
    cached: tokio::sync::Mutex<Option<(Instant, Vec<Certificate>)>>,
}

impl SdkAcm {
    pub fn new(config: &aws_config::SdkConfig, calls: Arc<AwsCalls>) -> Self {
        Self {
            client: Client::new(config),
            calls,
            cached: tokio::sync::Mutex::new(None),
        }
    }
}

impl Certificates for SdkAcm {
    async fn certificates(&self) -> Result<Vec<Certificate>, AwsError> {
        let mut cached = self.cached.lock().await;
        if let Some((at, certificates)) = cached.as_ref()
            && at.elapsed() < CERTIFICATES_TTL
        {
            return Ok(certificates.clone());
        }
        let mut all = Vec::new();
        let mut token = None;
        loop {
            let page = timed(
                &self.calls,
                Operation::ListCertificates,
                self.client
                    .list_certificates()
                    .certificate_statuses(CertificateStatus::Issued)
                    .set_next_token(token)
                    .send(),
            )
            .await?;
            for summary in page.certificate_summary_list() {
                let Some(arn) = summary.certificate_arn() else {
                    continue;
                };
                let mut domains: Vec<String> =
                    summary.subject_alternative_name_summaries().to_vec();
                if let Some(name) = summary.domain_name()
                    && !domains.iter().any(|d| d == name)
                {
                    domains.insert(0, name.to_string());
                }
                all.push(Certificate {
                    arn: arn.to_string(),
                    domains,
                });
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        *cached = Some((Instant::now(), all.clone()));
        Ok(all)
    }
}
