//! Readiness probes, run the way the kubelet runs them: the first after `initialDelaySeconds`,
//! then every `periodSeconds`; a container becomes ready after `successThreshold` consecutive
//! successes and unready after `failureThreshold` consecutive failures. HTTP probes succeed on
//! 200-399; TCP probes on a connect. Exec and gRPC probes cannot run here and count as success.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::guard::DestinationGuard;
use crate::http_client;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeAction {
    Http {
        port: u16,
        path: String,
    },
    Tcp {
        port: u16,
    },
    /// exec and gRPC probes: nothing to run against the fake application.
    AlwaysSucceeds,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSpec {
    pub action: ProbeAction,
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

impl ProbeSpec {
    /// The probe with Kubernetes' defaults filled in; `Err` names a port that cannot be resolved.
    pub fn from_probe(probe: &Probe, container: &Container) -> Result<ProbeSpec, String> {
        let action = if let Some(http) = &probe.http_get {
            ProbeAction::Http {
                port: resolve_port(&http.port, container)?,
                path: http.path.clone().unwrap_or_else(|| "/".to_string()),
            }
        } else if let Some(tcp) = &probe.tcp_socket {
            ProbeAction::Tcp {
                port: resolve_port(&tcp.port, container)?,
            }
        } else {
            ProbeAction::AlwaysSucceeds
        };
        let seconds = |value: Option<i32>, default: u64| {
            Duration::from_secs(value.map_or(default, |v| v.max(0) as u64))
        };
        Ok(ProbeSpec {
            action,
            initial_delay: seconds(probe.initial_delay_seconds, 0),
            period: seconds(probe.period_seconds, 10).max(Duration::from_secs(1)),
            timeout: seconds(probe.timeout_seconds, 1).max(Duration::from_secs(1)),
            success_threshold: probe.success_threshold.map_or(1, |v| v.max(1) as u32),
            failure_threshold: probe.failure_threshold.map_or(3, |v| v.max(1) as u32),
        })
    }
}

/// A port given as a number, or as the name of one of the container's ports.
pub fn resolve_port(port: &IntOrString, container: &Container) -> Result<u16, String> {
    match port {
        IntOrString::Int(number) => u16::try_from(*number)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("port {number} is out of range")),
        IntOrString::String(name) => container
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .and_then(|p| u16::try_from(p.container_port).ok())
            .ok_or_else(|| format!("container {} has no port named {name:?}", container.name)),
    }
}

/// Consecutive successes and failures of one container's readiness probe.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbeState {
    pub ready: bool,
    successes: u32,
    failures: u32,
}

impl ProbeState {
    /// Records one result; true when readiness changed.
    pub fn record(&mut self, spec: &ProbeSpec, success: bool) -> bool {
        let before = self.ready;
        if success {
            self.successes += 1;
            self.failures = 0;
            if self.successes >= spec.success_threshold {
                self.ready = true;
            }
        } else {
            self.failures += 1;
            self.successes = 0;
            if self.failures >= spec.failure_threshold {
                self.ready = false;
            }
        }
        before != self.ready
    }
}

/// Runs the probe once against the pod's address.
pub async fn run_once(
    action: &ProbeAction,
    ip: IpAddr,
    timeout: Duration,
    guard: &DestinationGuard,
) -> bool {
    match action {
        ProbeAction::Http { port, path } => {
            matches!(
                http_client::get(guard, SocketAddr::new(ip, *port), path, timeout).await,
                Ok(response) if (200..400).contains(&response.status)
            )
        }
        ProbeAction::Tcp { port } => guard
            .connect(SocketAddr::new(ip, *port), timeout)
            .await
            .is_ok(),
        ProbeAction::AlwaysSucceeds => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerPort, ExecAction, HTTPGetAction, TCPSocketAction};

    fn container() -> Container {
        Container {
            name: "app".into(),
            ports: Some(vec![ContainerPort {
                name: Some("http".into()),
                container_port: 8080,
                ..ContainerPort::default()
            }]),
            ..Container::default()
        }
    }

    #[test]
    fn http_probe_gets_kubernetes_defaults_and_resolves_named_ports() {
        let probe = Probe {
            http_get: Some(HTTPGetAction {
                port: IntOrString::String("http".into()),
                path: Some("/healthz".into()),
                ..HTTPGetAction::default()
            }),
            ..Probe::default()
        };
        let spec = ProbeSpec::from_probe(&probe, &container()).unwrap();
        assert_eq!(
            spec.action,
            ProbeAction::Http {
                port: 8080,
                path: "/healthz".into()
            }
        );
        assert_eq!(spec.period, Duration::from_secs(10));
        assert_eq!(spec.timeout, Duration::from_secs(1));
        assert_eq!(spec.initial_delay, Duration::ZERO);
        assert_eq!((spec.success_threshold, spec.failure_threshold), (1, 3));
    }

    #[test]
    fn tcp_and_exec_probes() {
        let tcp = Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::Int(9000),
                ..TCPSocketAction::default()
            }),
            period_seconds: Some(2),
            ..Probe::default()
        };
        let spec = ProbeSpec::from_probe(&tcp, &container()).unwrap();
        assert_eq!(spec.action, ProbeAction::Tcp { port: 9000 });
        assert_eq!(spec.period, Duration::from_secs(2));
        let exec = Probe {
            exec: Some(ExecAction::default()),
            ..Probe::default()
        };
        assert_eq!(
            ProbeSpec::from_probe(&exec, &container()).unwrap().action,
            ProbeAction::AlwaysSucceeds
        );
    }

    #[test]
    fn unknown_named_port_is_an_error_that_names_it() {
        let err = resolve_port(&IntOrString::String("metrics".into()), &container()).unwrap_err();
        assert!(err.contains("metrics") && err.contains("app"), "{err}");
        assert!(resolve_port(&IntOrString::Int(0), &container()).is_err());
        assert!(resolve_port(&IntOrString::Int(70000), &container()).is_err());
    }

    #[test]
    fn thresholds_decide_readiness() {
        let spec = ProbeSpec {
            action: ProbeAction::AlwaysSucceeds,
            initial_delay: Duration::ZERO,
            period: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            success_threshold: 2,
            failure_threshold: 3,
        };
        let mut state = ProbeState::default();
        assert!(!state.record(&spec, true));
        assert!(!state.ready);
        assert!(state.record(&spec, true));
        assert!(state.ready);
        assert!(!state.record(&spec, false));
        assert!(!state.record(&spec, false));
        assert!(state.ready, "two failures are under the threshold of three");
        assert!(state.record(&spec, false));
        assert!(!state.ready);
        // A success in between resets the failure count.
        state.record(&spec, true);
        state.record(&spec, true);
        state.record(&spec, false);
        state.record(&spec, true);
        state.record(&spec, false);
        state.record(&spec, false);
        assert!(state.ready);
    }
}
