//! Listener certificates from Secrets, imported into ACM (upstream imports none: its users ask
//! for exactly this). Each import is tagged with the cluster, the Secret and a hash of what it
//! holds, so a changed Secret is imported afresh (and the listener moved to it), and one no
//! Gateway names any more is deleted. This module decides; the controller calls ACM.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

/// Tag of an imported certificate: the Secret it came from, `<namespace>/<name>`.
pub const SECRET_TAG: &str = "gateway.k8s.aws/secret";
/// Tag of an imported certificate: the hash of the certificate and key imported.
pub const HASH_TAG: &str = "gateway.k8s.aws/secret-hash";

/// A Secret by (namespace, name).
pub type SecretKey = (String, String);

/// The hash an import is tagged with: 16 hex digits of SHA-256 over certificate and key.
pub fn fingerprint(certificate_pem: &str, key_pem: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(certificate_pem.as_bytes());
    hasher.update([0]);
    hasher.update(key_pem.as_bytes());
    hasher
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What to do with ACM for a Gateway's certificates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertificatePlan {
    /// Secrets already imported as they are now: their ACM ARNs.
    pub imported: BTreeMap<SecretKey, String>,
    /// Secrets to import (none, or not as they are now).
    pub to_import: Vec<SecretKey>,
    /// Imports of ours no Gateway needs: their Secret is named by none, or holds something else
    /// now (deleted once no listener uses them; ACM refuses before).
    pub to_delete: Vec<String>,
}

/// Plans the certificates: `wanted` are this Gateway's Secrets with their current hashes,
/// `named_anywhere` every Secret any Gateway of ours names, `existing` our imports (ARN, tags).
pub fn plan(
    wanted: &BTreeMap<SecretKey, String>,
    named_anywhere: &BTreeSet<SecretKey>,
    existing: &[(String, BTreeMap<String, String>)],
) -> CertificatePlan {
    let secret_of = |tags: &BTreeMap<String, String>| -> Option<SecretKey> {
        let (namespace, name) = tags.get(SECRET_TAG)?.split_once('/')?;
        Some((namespace.to_string(), name.to_string()))
    };
    let mut plan = CertificatePlan::default();
    for (secret, hash) in wanted {
        let found = existing.iter().find(|(_, tags)| {
            secret_of(tags).as_ref() == Some(secret) && tags.get(HASH_TAG) == Some(hash)
        });
        match found {
            Some((arn, _)) => {
                plan.imported.insert(secret.clone(), arn.clone());
            }
            None => plan.to_import.push(secret.clone()),
        }
    }
    for (arn, tags) in existing {
        let Some(secret) = secret_of(tags) else {
            continue;
        };
        let stale_here = wanted
            .get(&secret)
            .is_some_and(|hash| tags.get(HASH_TAG) != Some(hash));
        if stale_here || !named_anywhere.contains(&secret) {
            plan.to_delete.push(arn.clone());
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> SecretKey {
        ("infra".into(), name.into())
    }

    fn import(arn: &str, secret: &str, hash: &str) -> (String, BTreeMap<String, String>) {
        let tags = BTreeMap::from([
            (SECRET_TAG.to_string(), format!("infra/{secret}")),
            (HASH_TAG.to_string(), hash.to_string()),
        ]);
        (arn.to_string(), tags)
    }

    #[test]
    fn the_hash_changes_with_the_certificate_or_the_key() {
        let a = fingerprint("cert", "key");
        assert_eq!(a.len(), 16);
        assert_ne!(a, fingerprint("cert", "key2"));
        assert_ne!(fingerprint("ce", "rtkey"), fingerprint("cert", "key"));
    }

    #[test]
    fn imports_are_reused_made_afresh_on_change_and_deleted_when_unnamed() {
        let wanted = BTreeMap::from([
            (key("same"), "h1".to_string()),
            (key("changed"), "h3".to_string()),
            (key("new"), "h4".to_string()),
        ]);
        let named = BTreeSet::from([key("same"), key("changed"), key("new"), key("elsewhere")]);
        let existing = [
            import("arn:same", "same", "h1"),
            import("arn:changed-old", "changed", "h2"),
            import("arn:elsewhere", "elsewhere", "h9"),
            import("arn:gone", "gone", "h5"),
        ];
        let planned = plan(&wanted, &named, &existing);
        assert_eq!(
            planned.imported,
            BTreeMap::from([(key("same"), "arn:same".to_string())])
        );
        assert_eq!(planned.to_import, [key("changed"), key("new")]);
        assert_eq!(planned.to_delete, ["arn:changed-old", "arn:gone"]);
    }
}
