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

/// A certificate this controller imported into ACM from a Kubernetes Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedCertificate {
    pub arn: String,
    /// Its tags (the cluster, the Secret `<namespace>/<name>`, the hash of what was imported).
    pub tags: std::collections::BTreeMap<String, String>,
}

/// Certificates imported from Secrets (Gateway listeners' `certificateRefs`): found by their
/// tags, imported, deleted.
pub trait ImportedCertificates: Send + Sync + 'static {
    /// The certificates tagged `tag_key=tag_value` (the cluster's).
    fn imported(
        &self,
        tag_key: &str,
        tag_value: &str,
    ) -> impl Future<Output = Result<Vec<ImportedCertificate>, AwsError>> + Send;
    /// Imports a PEM certificate (its chain after the first block) and key, tagged; the new ARN.
    fn import(
        &self,
        certificate_pem: &str,
        key_pem: &str,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> impl Future<Output = Result<String, AwsError>> + Send;
    fn delete(&self, arn: &str) -> impl Future<Output = Result<(), AwsError>> + Send;
}

/// The first PEM block of `pem` and the rest (the chain), each with its armour.
fn split_chain(pem: &str) -> (String, Option<String>) {
    const END: &str = "-----END CERTIFICATE-----";
    match pem.find(END) {
        Some(at) => {
            let (first, rest) = pem.split_at(at + END.len());
            let rest = rest.trim();
            (
                format!("{first}\n"),
                (!rest.is_empty()).then(|| format!("{rest}\n")),
            )
        }
        None => (pem.to_string(), None),
    }
}

impl ImportedCertificates for SdkAcm {
    async fn imported(
        &self,
        tag_key: &str,
        tag_value: &str,
    ) -> Result<Vec<ImportedCertificate>, AwsError> {
        let mut found = Vec::new();
        let mut token = None;
        loop {
            let page = timed(
                &self.calls,
                Operation::ListCertificates,
                self.client.list_certificates().set_next_token(token).send(),
            )
            .await?;
            for arn in page
                .certificate_summary_list()
                .iter()
                .filter_map(|s| s.certificate_arn())
            {
                let tags = timed(
                    &self.calls,
                    Operation::ListTagsForCertificate,
                    self.client
                        .list_tags_for_certificate()
                        .certificate_arn(arn)
                        .send(),
                )
                .await?;
                let tags: std::collections::BTreeMap<String, String> = tags
                    .tags()
                    .iter()
                    .map(|t| {
                        (
                            t.key().to_string(),
                            t.value().unwrap_or_default().to_string(),
                        )
                    })
                    .collect();
                if tags.get(tag_key).map(String::as_str) == Some(tag_value) {
                    found.push(ImportedCertificate {
                        arn: arn.to_string(),
                        tags,
                    });
                }
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                return Ok(found);
            }
        }
    }

    async fn import(
        &self,
        certificate_pem: &str,
        key_pem: &str,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> Result<String, AwsError> {
        let (certificate, chain) = split_chain(certificate_pem);
        let tags: Vec<aws_sdk_acm::types::Tag> = tags
            .iter()
            .filter_map(|(k, v)| {
                aws_sdk_acm::types::Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
                    .ok()
            })
            .collect();
        let imported = timed(
            &self.calls,
            Operation::ImportCertificate,
            self.client
                .import_certificate()
                .certificate(aws_sdk_acm::primitives::Blob::new(certificate.into_bytes()))
                .private_key(aws_sdk_acm::primitives::Blob::new(
                    key_pem.as_bytes().to_vec(),
                ))
                .set_certificate_chain(
                    chain.map(|c| aws_sdk_acm::primitives::Blob::new(c.into_bytes())),
                )
                .set_tags(Some(tags))
                .send(),
        )
        .await?;
        Ok(imported.certificate_arn().unwrap_or_default().to_string())
    }

    async fn delete(&self, arn: &str) -> Result<(), AwsError> {
        timed(
            &self.calls,
            Operation::DeleteCertificate,
            self.client.delete_certificate().certificate_arn(arn).send(),
        )
        .await?;
        Ok(())
    }
}
