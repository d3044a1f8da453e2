//! Certificates and keys of one sandbox, generated fresh at every start: a self-signed CA, the
//! kube-apiserver's serving certificate, an admin client certificate (group `system:masters`), and
//! the service-account signing key. Everything is ECDSA P-256.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};

use crate::error::{Context, Result};

/// Files of the sandbox PKI, written to its directory.
#[derive(Debug, Clone)]
pub struct PkiFiles {
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub admin_cert: PathBuf,
    pub admin_key: PathBuf,
    pub service_account_key: PathBuf,
    pub service_account_public_key: PathBuf,
}

/// Everything in PEM, kept in memory so later parts (webhook serving certificates) can be signed
/// by the same CA.
pub struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
    pub files: PkiFiles,
}

impl Pki {
    /// Generates the PKI and writes it under `dir`. The serving certificate is valid for loopback
    /// and the in-cluster names of the `kubernetes` Service.
    pub fn generate(dir: &Path, service_ip: Ipv4Addr) -> Result<Pki> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "lb-sandbox-ca");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

        let files = PkiFiles {
            ca_cert: dir.join("ca.crt"),
            server_cert: dir.join("apiserver.crt"),
            server_key: dir.join("apiserver.key"),
            admin_cert: dir.join("admin.crt"),
            admin_key: dir.join("admin.key"),
            service_account_key: dir.join("service-account.key"),
            service_account_public_key: dir.join("service-account.pub"),
        };
        write(&files.ca_cert, &ca.pem())?;

        let pki = Pki { ca, files };
        let (server_cert, server_key) = pki.serving_certificate(
            "kube-apiserver",
            &[
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ],
            &[IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V4(service_ip)],
        )?;
        write(&pki.files.server_cert, &server_cert)?;
        write(&pki.files.server_key, &server_key)?;

        let (admin_cert, admin_key) =
            pki.client_certificate("lb-sandbox-admin", "system:masters")?;
        write(&pki.files.admin_cert, &admin_cert)?;
        write(&pki.files.admin_key, &admin_key)?;

        let service_account = KeyPair::generate()?;
        write(
            &pki.files.service_account_key,
            &service_account.serialize_pem(),
        )?;
        write(
            &pki.files.service_account_public_key,
            &service_account.public_key_pem(),
        )?;
        Ok(pki)
    }

    /// The CA certificate in PEM, e.g. for a webhook configuration's `caBundle`.
    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// A serving certificate and key (PEM) signed by the sandbox CA.
    pub fn serving_certificate(
        &self,
        common_name: &str,
        dns_names: &[&str],
        ips: &[IpAddr],
    ) -> Result<(String, String)> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        for name in dns_names {
            params
                .subject_alt_names
                .push(SanType::DnsName((*name).try_into()?));
        }
        for ip in ips {
            params.subject_alt_names.push(SanType::IpAddress(*ip));
        }
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.ca)?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// A client certificate for user `common_name` in group `organization`.
    pub fn client_certificate(
        &self,
        common_name: &str,
        organization: &str,
    ) -> Result<(String, String)> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, organization);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.ca)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

fn write(path: &Path, pem: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .context(|| format!("creating {}", path.display()))?;
    file.write_all(pem.as_bytes())
        .context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_every_file_as_pem() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::generate(dir.path(), Ipv4Addr::new(10, 96, 0, 1)).unwrap();
        let f = &pki.files;
        for (path, marker) in [
            (&f.ca_cert, "BEGIN CERTIFICATE"),
            (&f.server_cert, "BEGIN CERTIFICATE"),
            (&f.server_key, "PRIVATE KEY"),
            (&f.admin_cert, "BEGIN CERTIFICATE"),
            (&f.admin_key, "PRIVATE KEY"),
            (&f.service_account_key, "PRIVATE KEY"),
            (&f.service_account_public_key, "BEGIN PUBLIC KEY"),
        ] {
            let text = std::fs::read_to_string(path).unwrap();
            assert!(text.contains(marker), "{} lacks {marker}", path.display());
        }
        assert_eq!(std::fs::read_to_string(&f.ca_cert).unwrap(), pki.ca_pem());
    }
}
