//! Listener isolation (the spec's GatewayHTTPListenerIsolation): a request is for the most
//! specific listener of its port that takes its host. A route attached through a less specific
//! listener keeps none of the hostnames a more specific one owns, and each hostname of a port
//! with several gets a last rule answering 404, so its requests never fall through to a less
//! specific listener's routes.

use std::collections::BTreeMap;

use super::hostnames::covers;
use super::rules::{PortRoute, listener_rules};
use crate::stack::{Action, FixedResponse, Rule};

/// A listener's default answer, and an isolation rule's: 404, as upstream.
pub fn not_found() -> Action {
    Action::FixedResponse(FixedResponse {
        status_code: 404,
        content_type: Some("text/plain".into()),
        message_body: None,
    })
}

/// Whether the route serves any hostname on listener `i` (neither side narrowed it).
pub(super) fn on_hosts_any(on: &[(usize, Vec<String>)], i: usize) -> bool {
    on.iter().any(|(j, hosts)| *j == i && hosts.is_empty())
}

/// How specific a listener's hostname is: none, then wildcards by their labels, then exact ones.
fn specificity(hostname: Option<&str>) -> (u8, usize) {
    match hostname {
        None => (0, 0),
        Some(h) if h.starts_with("*.") => (1, h.matches('.').count()),
        Some(h) => (2, h.matches('.').count()),
    }
}

/// Whether a listener with `hostname` takes requests for `host` (itself possibly a wildcard).
fn takes(hostname: Option<&str>, host: &str) -> bool {
    match hostname {
        None => true,
        Some(h) if h.eq_ignore_ascii_case(host) => true,
        Some(h) => covers(h, host),
    }
}

/// Whether listener `i` is the most specific listener of its port that takes `host` (`""`:
/// any host, which stays with its listener).
pub(super) fn owns(listeners: &[lb_api::gateway::Listener], i: usize, host: &str) -> bool {
    if host.is_empty() {
        return true;
    }
    let own = specificity(listeners[i].hostname.as_deref());
    !listeners.iter().enumerate().any(|(j, other)| {
        j != i
            && other.port == listeners[i].port
            && specificity(other.hostname.as_deref()) > own
            && takes(other.hostname.as_deref(), host)
    })
}

/// The port's rules, and listener isolation (the spec's GatewayHTTPListenerIsolation): a request
/// is for the most specific listener its host matches, so where listeners on one port have
/// different hostnames, each hostname gets a last rule answering 404 that keeps its requests
/// from the rules of less specific listeners' routes.
pub(super) fn isolated_rules(
    routes: &[PortRoute<'_>],
    on_port: &[usize],
    listeners: &[lb_api::gateway::Listener],
    base_tags: &BTreeMap<String, String>,
) -> Vec<Rule> {
    let mut hostnames: Vec<String> = on_port
        .iter()
        .filter_map(|&i| listeners[i].hostname.clone())
        .collect();
    hostnames.sort();
    hostnames.dedup();
    let distinct =
        hostnames.len() + usize::from(on_port.iter().any(|&i| listeners[i].hostname.is_none()));
    if distinct < 2 {
        return listener_rules(routes, base_tags);
    }
    let catch_all = [lb_api::gateway::HTTPRouteRule::default()];
    let isolation = PortRoute {
        namespace: "",
        name: "",
        // After every route's rule of the same hostname.
        created: i64::MAX,
        hostnames,
        rules: &catch_all,
        actions: vec![not_found()],
    };
    let mut all = routes.to_vec();
    all.push(isolation);
    listener_rules(&all, base_tags)
}
