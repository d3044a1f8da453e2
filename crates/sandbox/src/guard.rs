//! The sandbox's hard network guard. Every client in the sandbox (readiness probes, NodePort
//! forwarding, the demo, tests) asks the guard before it connects: only loopback and the sandbox's
//! own pod CIDR, which is routed into its own network namespace, may be contacted. Nothing the
//! sandbox does may ever reach another address.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::Ipv4Net;
use tokio::net::TcpStream;

use crate::error::{Context, Result, SandboxError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DestinationGuard {
    pod_cidr: Option<Ipv4Net>,
}

impl DestinationGuard {
    pub fn new(pod_cidr: Ipv4Net) -> Self {
        Self {
            pod_cidr: Some(pod_cidr),
        }
    }

    /// For the control plane, which lives on loopback alone.
    pub fn loopback_only() -> Self {
        Self { pod_cidr: None }
    }

    pub fn pod_cidr(&self) -> Option<Ipv4Net> {
        self.pod_cidr
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => {
                v4.is_loopback() || self.pod_cidr.is_some_and(|cidr| cidr.contains(&v4))
            }
            IpAddr::V6(v6) => v6.is_loopback(),
        }
    }

    pub fn check(&self, ip: IpAddr) -> Result<()> {
        if self.allows(ip) {
            Ok(())
        } else {
            Err(SandboxError::DestinationRefused {
                destination: ip,
                allowed: match self.pod_cidr {
                    Some(cidr) => format!("loopback and the pod CIDR {cidr}"),
                    None => "loopback".to_string(),
                },
            })
        }
    }

    /// Connects to `addr` if the guard allows it, within `timeout`.
    pub async fn connect(&self, addr: SocketAddr, timeout: Duration) -> Result<TcpStream> {
        self.check(addr.ip())?;
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(result) => result.context(|| format!("connecting to {addr}")),
            Err(_) => Err(SandboxError::Io {
                context: format!("connecting to {addr}"),
                source: std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> DestinationGuard {
        DestinationGuard::new("10.244.0.0/16".parse().unwrap())
    }

    #[test]
    fn allows_loopback_and_the_pod_cidr_only() {
        let g = guard();
        for ok in [
            "127.0.0.1",
            "127.3.4.5",
            "::1",
            "10.244.0.1",
            "10.244.255.254",
        ] {
            assert!(g.allows(ok.parse().unwrap()), "{ok} should be allowed");
        }
        for refused in [
            "10.245.0.1",
            "10.0.0.1",
            "192.168.1.1",
            "172.16.0.1",
            "8.8.8.8",
            "169.254.169.254",
            "::ffff:10.244.0.1",
            "2001:db8::1",
        ] {
            assert!(
                !g.allows(refused.parse().unwrap()),
                "{refused} must be refused"
            );
        }
    }

    #[test]
    fn loopback_only_refuses_every_pod_address() {
        let g = DestinationGuard::loopback_only();
        assert!(g.allows("127.0.0.1".parse().unwrap()));
        assert!(!g.allows("10.244.0.1".parse().unwrap()));
    }

    #[tokio::test]
    async fn connect_refuses_before_any_packet_is_sent() {
        let err = guard()
            .connect("192.0.2.1:80".parse().unwrap(), Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(
            matches!(err, SandboxError::DestinationRefused { .. }),
            "{err}"
        );
    }
}
