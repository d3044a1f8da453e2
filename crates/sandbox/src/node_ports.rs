//! NodePorts, as kube-proxy provides them: every node address listens on each Service NodePort and
//! forwards the connection to a ready endpoint of the Service (round robin, any node to any
//! endpoint, as with `externalTrafficPolicy: Cluster`). Instance-mode targets need this: the load
//! balancer health-checks and sends traffic to node:NodePort.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Store, reflector};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use tokio::task::{JoinHandle, JoinSet};

use crate::guard::DestinationGuard;
use crate::netns::PodNetwork;

const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The Service port a NodePort leads to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodePortTarget {
    pub namespace: String,
    pub service: String,
    /// The Service port's name; EndpointSlice ports carry the same name.
    pub port_name: Option<String>,
}

pub struct NodePortProxy {
    task: Option<JoinHandle<()>>,
}

impl NodePortProxy {
    pub fn start(client: Client, network: Arc<PodNetwork>, node_addresses: Vec<Ipv4Addr>) -> Self {
        NodePortProxy {
            task: Some(tokio::spawn(run(client, network, node_addresses))),
        }
    }

    pub async fn stop(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for NodePortProxy {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

async fn run(client: Client, network: Arc<PodNetwork>, node_addresses: Vec<Ipv4Addr>) {
    let (slices, slice_writer) = reflector::store::<EndpointSlice>();
    let (services, service_writer) = reflector::store::<Service>();
    let mut background = JoinSet::new();
    let slice_events = reflector(
        slice_writer,
        watcher(
            Api::<EndpointSlice>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .default_backoff();
    background.spawn(slice_events.for_each(|_| async {}));
    let mut service_events = reflector(
        service_writer,
        watcher(Api::<Service>::all(client), watcher::Config::default()),
    )
    .default_backoff()
    .boxed();

    // Per NodePort: its target and the accept loops on every node address.
    let mut listeners: HashMap<u16, (NodePortTarget, JoinSet<()>)> = HashMap::new();
    let guard = network.guard();
    while let Some(event) = service_events.next().await {
        if let Err(err) = event {
            tracing::warn!("service watch: {err}");
            continue;
        }
        let desired = desired_node_ports(&services.state());
        listeners.retain(|port, (target, _)| desired.get(port) == Some(target));
        for (port, target) in desired {
            if listeners.contains_key(&port) {
                continue;
            }
            let mut accept_loops = JoinSet::new();
            let next = Arc::new(AtomicUsize::new(0));
            for address in &node_addresses {
                let addr = SocketAddr::from((*address, port));
                match network.bind(addr).await {
                    Ok(listener) => {
                        accept_loops.spawn(forward(
                            listener,
                            target.clone(),
                            slices.clone(),
                            guard,
                            next.clone(),
                        ));
                    }
                    Err(err) => tracing::warn!(%addr, "cannot serve NodePort: {err}"),
                }
            }
            listeners.insert(port, (target, accept_loops));
        }
    }
}

/// NodePort -> Service port, for every TCP port of every Service that has a NodePort.
pub fn desired_node_ports(services: &[Arc<Service>]) -> HashMap<u16, NodePortTarget> {
    let mut desired = HashMap::new();
    for service in services {
        let Some(spec) = &service.spec else { continue };
        for port in spec.ports.iter().flatten() {
            let protocol = port.protocol.as_deref().unwrap_or("TCP");
            let node_port = port.node_port.and_then(|p| u16::try_from(p).ok());
            if let (Some(node_port), "TCP") = (node_port, protocol) {
                desired.insert(
                    node_port,
                    NodePortTarget {
                        namespace: service.namespace().unwrap_or_default(),
                        service: service.name_any(),
                        port_name: port.name.clone().filter(|n| !n.is_empty()),
                    },
                );
            }
        }
    }
    desired
}

/// Addresses of the target's ready endpoints (ready unset counts as ready, as in kube-proxy).
pub fn ready_backends(slices: &[Arc<EndpointSlice>], target: &NodePortTarget) -> Vec<SocketAddr> {
    let mut backends = Vec::new();
    for slice in slices {
        if slice.namespace().as_deref() != Some(target.namespace.as_str())
            || slice.labels().get(SERVICE_NAME_LABEL) != Some(&target.service)
        {
            continue;
        }
        let port = slice
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.clone().filter(|n| !n.is_empty()) == target.port_name)
            .and_then(|p| p.port)
            .and_then(|p| u16::try_from(p).ok());
        let Some(port) = port else { continue };
        for endpoint in &slice.endpoints {
            let ready = endpoint
                .conditions
                .as_ref()
                .and_then(|c| c.ready)
                .unwrap_or(true);
            if !ready {
                continue;
            }
            backends.extend(
                endpoint
                    .addresses
                    .iter()
                    .filter_map(|a| a.parse::<IpAddr>().ok())
                    .map(|ip| SocketAddr::new(ip, port)),
            );
        }
    }
    backends.sort();
    backends
}

async fn forward(
    listener: tokio::net::TcpListener,
    target: NodePortTarget,
    slices: Store<EndpointSlice>,
    guard: DestinationGuard,
    next: Arc<AtomicUsize>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((mut inbound, _)) = accepted else { continue };
                let backends = ready_backends(&slices.state(), &target);
                if backends.is_empty() {
                    // No endpoint: kube-proxy rejects the connection.
                    continue;
                }
                let backend = backends[next.fetch_add(1, Ordering::Relaxed) % backends.len()];
                connections.spawn(async move {
                    match guard.connect(backend, Duration::from_secs(5)).await {
                        Ok(mut outbound) => {
                            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                        Err(err) => tracing::debug!(%backend, "NodePort forward failed: {err}"),
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ServicePort, ServiceSpec};
    use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort};
    use kube::api::ObjectMeta;

    fn service(ports: Vec<ServicePort>) -> Arc<Service> {
        Arc::new(Service {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("shop".into()),
                ..ObjectMeta::default()
            },
            spec: Some(ServiceSpec {
                ports: Some(ports),
                ..ServiceSpec::default()
            }),
            status: None,
        })
    }

    fn slice(port_name: Option<&str>, endpoints: &[(&str, Option<bool>)]) -> Arc<EndpointSlice> {
        Arc::new(EndpointSlice {
            metadata: ObjectMeta {
                namespace: Some("shop".into()),
                name: Some("web-abc".into()),
                labels: Some([(SERVICE_NAME_LABEL.to_string(), "web".to_string())].into()),
                ..ObjectMeta::default()
            },
            address_type: "IPv4".into(),
            endpoints: endpoints
                .iter()
                .map(|(ip, ready)| Endpoint {
                    addresses: vec![ip.to_string()],
                    conditions: Some(EndpointConditions {
                        ready: *ready,
                        ..EndpointConditions::default()
                    }),
                    ..Endpoint::default()
                })
                .collect(),
            ports: Some(vec![EndpointPort {
                name: port_name.map(str::to_string),
                port: Some(8080),
                ..EndpointPort::default()
            }]),
        })
    }

    #[test]
    fn only_tcp_ports_with_a_node_port_are_served() {
        let svc = service(vec![
            ServicePort {
                name: Some("http".into()),
                port: 80,
                node_port: Some(30080),
                ..ServicePort::default()
            },
            ServicePort {
                name: Some("dns".into()),
                port: 53,
                node_port: Some(30053),
                protocol: Some("UDP".into()),
                ..ServicePort::default()
            },
            ServicePort {
                name: Some("internal".into()),
                port: 9000,
                ..ServicePort::default()
            },
        ]);
        let desired = desired_node_ports(&[svc]);
        assert_eq!(desired.len(), 1);
        assert_eq!(
            desired[&30080],
            NodePortTarget {
                namespace: "shop".into(),
                service: "web".into(),
                port_name: Some("http".into())
            }
        );
    }

    #[test]
    fn backends_are_the_ready_endpoints_of_the_named_port() {
        let target = NodePortTarget {
            namespace: "shop".into(),
            service: "web".into(),
            port_name: None,
        };
        let slices = [slice(
            Some(""),
            &[
                ("10.244.0.70", Some(true)),
                ("10.244.0.71", Some(false)),
                ("10.244.0.72", None),
            ],
        )];
        let backends = ready_backends(&slices, &target);
        assert_eq!(
            backends,
            vec![
                "10.244.0.70:8080".parse().unwrap(),
                "10.244.0.72:8080".parse().unwrap()
            ]
        );
        let named = NodePortTarget {
            port_name: Some("http".into()),
            ..target
        };
        assert!(ready_backends(&slices, &named).is_empty());
    }
}
