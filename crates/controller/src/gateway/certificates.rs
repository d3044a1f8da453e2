//! The ACM side of listener certificates from Secrets: the imports of this cluster are listed
//! (cached, so a converged Gateway costs no call), the plan of `lb_model::gateway::certificates`
//! carried out: Secrets imported (tagged), stale imports deleted once no listener uses them (ACM
//! refuses before; that is retried on a later pass, not an error of this one).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use lb_aws::{ImportedCertificate, ImportedCertificates};
use lb_model::gateway::certificates::{HASH_TAG, SECRET_TAG, SecretKey, fingerprint, plan};
use lb_model::stack::tags;
use tokio::sync::Mutex;

use crate::stack::StackError;

/// How long the list of imports is trusted (every import and deletion of ours refreshes it).
const IMPORTS_TTL: Duration = Duration::from_secs(300);

/// A Secret's certificate and key, as PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretPem {
    pub certificate: String,
    pub key: String,
}

/// This cluster's imports, as last listed.
#[derive(Default)]
pub struct Imports {
    listed: Mutex<Option<(Instant, Vec<ImportedCertificate>)>>,
}

impl Imports {
    async fn list<C: ImportedCertificates>(
        &self,
        acm: &C,
        cluster: &str,
    ) -> Result<Vec<ImportedCertificate>, StackError> {
        let mut listed = self.listed.lock().await;
        if let Some((at, imports)) = listed.as_ref()
            && at.elapsed() < IMPORTS_TTL
        {
            return Ok(imports.clone());
        }
        let imports = acm.imported(tags::CLUSTER, cluster).await?;
        *listed = Some((Instant::now(), imports.clone()));
        Ok(imports)
    }

    async fn forget(&self) {
        *self.listed.lock().await = None;
    }
}

/// The ACM certificate of each of `secrets` (imported when missing or changed), and the imports
/// to delete once the Gateway's listeners have moved off them (see [`delete_stale`]).
/// `named_anywhere`: every Secret a Gateway of ours names.
pub async fn certificate_arns<C: ImportedCertificates>(
    acm: &C,
    imports: &Imports,
    cluster: &str,
    secrets: &BTreeMap<SecretKey, SecretPem>,
    named_anywhere: &BTreeSet<SecretKey>,
) -> Result<(BTreeMap<SecretKey, String>, Vec<String>), StackError> {
    let wanted: BTreeMap<SecretKey, String> = secrets
        .iter()
        .map(|(key, pem)| (key.clone(), fingerprint(&pem.certificate, &pem.key)))
        .collect();
    let existing: Vec<(String, BTreeMap<String, String>)> = imports
        .list(acm, cluster)
        .await?
        .into_iter()
        .map(|i| (i.arn, i.tags))
        .collect();
    let planned = plan(&wanted, named_anywhere, &existing);
    let mut arns = planned.imported;
    for secret in &planned.to_import {
        let pem = &secrets[secret];
        let tags = BTreeMap::from([
            (tags::CLUSTER.to_string(), cluster.to_string()),
            (SECRET_TAG.to_string(), format!("{}/{}", secret.0, secret.1)),
            (HASH_TAG.to_string(), wanted[secret].clone()),
        ]);
        let arn = acm.import(&pem.certificate, &pem.key, &tags).await?;
        tracing::info!(secret = %format!("{}/{}", secret.0, secret.1), %arn, "certificate imported into ACM");
        arns.insert(secret.clone(), arn);
    }
    if !planned.to_import.is_empty() {
        imports.forget().await;
    }
    Ok((arns, planned.to_delete))
}

/// Deletes imports no Gateway needs (after the pass converged). ACM refuses one a listener still
/// uses (another Gateway's, not moved yet): a later pass tries again.
pub async fn delete_stale<C: ImportedCertificates>(acm: &C, imports: &Imports, stale: &[String]) {
    for arn in stale {
        match acm.delete(arn).await {
            Ok(()) => tracing::info!(%arn, "imported certificate deleted: no Gateway uses it"),
            Err(err) => tracing::debug!(%arn, "imported certificate not deleted yet: {err}"),
        }
    }
    if !stale.is_empty() {
        imports.forget().await;
    }
}
