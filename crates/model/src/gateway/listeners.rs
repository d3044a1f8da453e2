//! A Gateway's listeners checked as the spec asks, before any AWS resource: the protocol (HTTP and
//! HTTPS on an ALB), the route kinds it admits, its certificates (Secrets in reach, by
//! ReferenceGrant across namespaces, holding a certificate and key), and conflicts between
//! listeners on one port. Each gets its conditions; the usable ones become ALB listeners.
//!
//! The listeners of the ListenerSets a Gateway admits are checked with the Gateway's own, after
//! them: each in its own object's namespace, and by precedence (a ListenerSet's listener that
//! conflicts with an earlier one is refused; the earlier one keeps its place).

use std::collections::BTreeMap;

use lb_api::gateway::{GROUP, Listener, ReferenceGrant, RouteGroupKind};

use super::conditions::{Verdict, types};
use super::grants::{self, permitted};

/// What a listener's protocol is on an ALB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ListenerProtocol {
    Http,
    Https,
}

/// A certificate Secret as the snapshot found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretCertificate {
    /// A PEM certificate chain and key, under `tls.crt` and `tls.key`.
    Valid,
    /// Found, but not a certificate and key (the reason, for the condition's message).
    Malformed(String),
}

/// Certificate Secrets by (namespace, name), and the grants in the cluster.
#[derive(Debug, Clone, Default)]
pub struct CertificateSnapshot {
    pub secrets: BTreeMap<(String, String), SecretCertificate>,
    pub grants: Vec<ReferenceGrant>,
}

/// The object a listener is written in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `Gateway` or `ListenerSet`.
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
}

impl Origin {
    pub fn gateway(namespace: &str, name: &str) -> Self {
        Self {
            kind: "Gateway",
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    pub fn listener_set(namespace: &str, name: &str) -> Self {
        Self {
            kind: "ListenerSet",
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    pub fn is_gateway(&self) -> bool {
        self.kind == "Gateway"
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// A listener after the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedListener {
    pub name: String,
    /// The Gateway or ListenerSet it is written in.
    pub origin: Origin,
    pub port: i32,
    /// None: a protocol an ALB cannot serve.
    pub protocol: Option<ListenerProtocol>,
    pub hostname: Option<String>,
    pub supported_kinds: Vec<RouteGroupKind>,
    /// The Secrets (namespace, name) of its certificates, all resolved.
    pub certificates: Vec<(String, String)>,
    /// Accepted, ResolvedRefs and Conflicted (Programmed is the load balancer's to say).
    pub verdicts: Vec<Verdict>,
}

impl CheckedListener {
    /// Routes may attach: its protocol is served (refs may still be unresolved).
    pub fn accepted(&self) -> bool {
        self.verdict(types::ACCEPTED)
    }

    /// It gets an ALB listener: accepted, resolved and not conflicted.
    pub fn usable(&self) -> bool {
        self.accepted() && self.verdict(types::RESOLVED_REFS) && !self.verdict(types::CONFLICTED)
    }

    fn verdict(&self, type_: &str) -> bool {
        self.verdicts.iter().any(|v| v.type_ == type_ && v.status)
    }
}

/// The route kinds an HTTP or HTTPS listener serves.
const ROUTE_KINDS: [&str; 2] = ["HTTPRoute", "GRPCRoute"];

/// Checks `listeners`, each written in its `origins` entry (same order): a Gateway's own first,
/// then its ListenerSets' by precedence.
/// `certified`: the listeners (by index) with certificates from elsewhere (a
/// LoadBalancerConfiguration, ACM by hostname): they need no `certificateRefs`.
pub fn check_all(
    listeners: &[Listener],
    origins: &[Origin],
    snapshot: &CertificateSnapshot,
    certified: &[usize],
) -> Vec<CheckedListener> {
    let mut checked: Vec<CheckedListener> = listeners
        .iter()
        .zip(origins)
        .enumerate()
        .map(|(i, (listener, origin))| check(origin, listener, snapshot, certified.contains(&i)))
        .collect();
    let own = origins.iter().take_while(|o| o.is_gateway()).count();
    mark_conflicts(&mut checked[..own]);
    refuse_later_conflicts(&mut checked, listeners, own);
    checked
}

fn check(
    origin: &Origin,
    listener: &Listener,
    snapshot: &CertificateSnapshot,
    configured: bool,
) -> CheckedListener {
    let protocol = match listener.protocol.as_str() {
        "HTTP" => Some(ListenerProtocol::Http),
        "HTTPS" => Some(ListenerProtocol::Https),
        _ => None,
    };
    let mut verdicts = Vec::new();
    let (supported_kinds, kinds_problem) = match protocol {
        Some(_) => route_kinds(listener),
        None => (Vec::new(), None),
    };
    verdicts.push(match protocol {
        Some(_) => Verdict::new(types::ACCEPTED, true, "Accepted", "listener accepted"),
        None => Verdict::new(
            types::ACCEPTED,
            false,
            "UnsupportedProtocol",
            format!(
                "protocol {} is not served by an ALB (HTTP or HTTPS)",
                listener.protocol
            ),
        ),
    });
    let (certificates, certificate_problem) = match protocol {
        Some(ListenerProtocol::Https) => certificates(origin, listener, snapshot, configured),
        _ => (Vec::new(), None),
    };
    verdicts.push(match kinds_problem.or(certificate_problem) {
        None => Verdict::new(
            types::RESOLVED_REFS,
            true,
            "ResolvedRefs",
            "references resolved",
        ),
        Some((reason, message)) => Verdict::new(types::RESOLVED_REFS, false, reason, message),
    });
    verdicts.push(Verdict::new(
        types::CONFLICTED,
        false,
        "NoConflicts",
        "no conflicts",
    ));
    CheckedListener {
        name: listener.name.clone(),
        origin: origin.clone(),
        port: listener.port,
        protocol,
        hostname: listener.hostname.clone(),
        supported_kinds,
        certificates,
        verdicts,
    }
}

type Problem = (&'static str, String);

/// The kinds the listener admits that it can serve, and the problem with the others.
fn route_kinds(listener: &Listener) -> (Vec<RouteGroupKind>, Option<Problem>) {
    let asked = listener
        .allowed_routes
        .as_ref()
        .map(|a| a.kinds.clone())
        .unwrap_or_default();
    if asked.is_empty() {
        let kinds = ROUTE_KINDS
            .iter()
            .map(|kind| RouteGroupKind {
                group: Some(GROUP.into()),
                kind: (*kind).into(),
            })
            .collect();
        return (kinds, None);
    }
    let servable = |k: &RouteGroupKind| {
        k.group.as_deref().unwrap_or(GROUP) == GROUP && ROUTE_KINDS.contains(&k.kind.as_str())
    };
    let (kinds, refused): (Vec<_>, Vec<_>) = asked.into_iter().partition(servable);
    let problem = (!refused.is_empty()).then(|| {
        let names: Vec<String> = refused.iter().map(|k| k.kind.clone()).collect();
        (
            "InvalidRouteKinds",
            format!(
                "route kinds {} are not served (HTTPRoute, GRPCRoute)",
                names.join(", ")
            ),
        )
    });
    (kinds, problem)
}

/// The listener's certificate Secrets, all of them resolved, or the first problem.
fn certificates(
    origin: &Origin,
    listener: &Listener,
    snapshot: &CertificateSnapshot,
    configured: bool,
) -> (Vec<(String, String)>, Option<Problem>) {
    let namespace = origin.namespace.as_str();
    let refs = listener
        .tls
        .as_ref()
        .map(|tls| tls.certificate_refs.as_slice())
        .unwrap_or_default();
    if refs.is_empty() && configured {
        return (Vec::new(), None);
    }
    if refs.is_empty() {
        let problem = (
            "InvalidCertificateRef",
            "an HTTPS listener needs tls.certificateRefs, a certificate for its port in its LoadBalancerConfiguration's listenerConfigurations, or a hostname an issued ACM certificate covers".into(),
        );
        return (Vec::new(), Some(problem));
    }
    let mut found = Vec::new();
    for reference in refs {
        let secret_namespace = reference.namespace.as_deref().unwrap_or(namespace);
        let name = format!("{secret_namespace}/{}", reference.name);
        let group = reference.group.as_deref().unwrap_or("");
        let kind = reference.kind.as_deref().unwrap_or("Secret");
        if !group.is_empty() || kind != "Secret" {
            let message = format!(
                "certificateRef {name} is a {group}/{kind}: only core Secrets are supported"
            );
            return (Vec::new(), Some(("InvalidCertificateRef", message)));
        }
        // A grant names the kind of the object the listener is written in: one for Gateways
        // does not open the Secret to ListenerSets, nor the other way round.
        let from = grants::From {
            group: GROUP,
            kind: origin.kind,
            namespace,
        };
        let to = grants::To {
            group: "",
            kind: "Secret",
            namespace: secret_namespace,
            name: &reference.name,
        };
        if !permitted(&snapshot.grants, from, to) {
            let message = format!(
                "no ReferenceGrant in {secret_namespace} lets {}s of {namespace} use Secret {name}",
                origin.kind
            );
            return (Vec::new(), Some(("RefNotPermitted", message)));
        }
        let key = (secret_namespace.to_string(), reference.name.clone());
        match snapshot.secrets.get(&key) {
            Some(SecretCertificate::Valid) => found.push(key),
            Some(SecretCertificate::Malformed(why)) => {
                return (
                    Vec::new(),
                    Some(("InvalidCertificateRef", format!("Secret {name}: {why}"))),
                );
            }
            None => {
                return (
                    Vec::new(),
                    Some((
                        "InvalidCertificateRef",
                        format!("Secret {name} does not exist"),
                    )),
                );
            }
        }
    }
    (found, None)
}

/// Listeners on one port with different protocols all conflict (ProtocolConflict); among those
/// with one protocol, a hostname already taken by an earlier listener conflicts
/// (HostnameConflict). Only accepted listeners take part.
fn mark_conflicts(listeners: &mut [CheckedListener]) {
    let mut protocols: BTreeMap<i32, Vec<ListenerProtocol>> = BTreeMap::new();
    for listener in listeners.iter() {
        if let Some(protocol) = listener.protocol {
            protocols.entry(listener.port).or_default().push(protocol);
        }
    }
    let mut seen: Vec<(i32, Option<String>)> = Vec::new();
    for listener in listeners.iter_mut().filter(|l| l.protocol.is_some()) {
        let mixed = protocols[&listener.port].windows(2).any(|w| w[0] != w[1]);
        let key = (listener.port, listener.hostname.clone());
        let conflict = if mixed {
            Some((
                "ProtocolConflict",
                format!(
                    "listeners on port {} ask for different protocols",
                    listener.port
                ),
            ))
        } else if seen.contains(&key) {
            let host = listener.hostname.as_deref().unwrap_or("(any hostname)");
            Some((
                "HostnameConflict",
                format!(
                    "another listener on port {} has hostname {host}",
                    listener.port
                ),
            ))
        } else {
            None
        };
        seen.push(key);
        if let Some((reason, message)) = conflict {
            for verdict in listener
                .verdicts
                .iter_mut()
                .filter(|v| v.type_ == types::CONFLICTED)
            {
                *verdict = Verdict::new(types::CONFLICTED, true, reason, message.clone());
            }
        }
    }
}

/// Precedence for the listeners from `from` on (a ListenerSet's): one on a port where an earlier
/// standing listener has another protocol, or the same protocol and hostname, is refused
/// (Accepted and Conflicted say why) and leaves the port to the earlier one. A protocol an ALB
/// cannot serve still conflicts first: the conflict is what the user has to resolve.
fn refuse_later_conflicts(checked: &mut [CheckedListener], listeners: &[Listener], from: usize) {
    for i in from..checked.len() {
        let earlier = (0..i).filter(|&j| {
            checked[j].protocol.is_some()
                && !checked[j].verdict(types::CONFLICTED)
                && checked[j].port == checked[i].port
        });
        let mut conflict = None;
        for j in earlier {
            if listeners[j].protocol != listeners[i].protocol {
                conflict = Some((
                    "ProtocolConflict",
                    format!(
                        "port {} is taken by listener {} ({}) of {}",
                        checked[i].port, checked[j].name, listeners[j].protocol, checked[j].origin
                    ),
                ));
                break;
            }
            if checked[j].hostname == checked[i].hostname && conflict.is_none() {
                let host = checked[i].hostname.as_deref().unwrap_or("(any hostname)");
                conflict = Some((
                    "HostnameConflict",
                    format!(
                        "hostname {host} on port {} is taken by listener {} of {}",
                        checked[i].port, checked[j].name, checked[j].origin
                    ),
                ));
            }
        }
        if let Some((reason, message)) = conflict {
            let listener = &mut checked[i];
            listener
                .verdicts
                .retain(|v| v.type_ != types::ACCEPTED && v.type_ != types::CONFLICTED);
            listener.verdicts.insert(
                0,
                Verdict::new(types::ACCEPTED, false, reason, message.clone()),
            );
            listener
                .verdicts
                .push(Verdict::new(types::CONFLICTED, true, reason, message));
        }
    }
}

/// Checks the listeners of the Gateway `namespace/gw` (no ListenerSets): the tests' shorthand.
#[cfg(test)]
pub(crate) fn check_gateway_listeners(
    namespace: &str,
    listeners: &[Listener],
    snapshot: &CertificateSnapshot,
) -> Vec<CheckedListener> {
    let origins = vec![Origin::gateway(namespace, "gw"); listeners.len()];
    check_all(listeners, &origins, snapshot, &[])
}

#[cfg(test)]
#[path = "listeners_tests.rs"]
mod tests;
