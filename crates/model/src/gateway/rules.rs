//! An HTTPRoute's rules on one ALB listener: each rule x match x hostname becomes one listener
//! rule (ALB ANDs a rule's conditions, and the route's matches are ORed), ordered by the Gateway
//! API's precedence and numbered 1..n, as upstream numbers them (so either controller finds the
//! other's rules where it would put them).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use lb_api::gateway::{HTTPRouteFilter, HTTPRouteMatch, HTTPRouteRule};

use crate::stack::{
    Action, Condition, FixedResponse, Protocol, QueryStringPair, Redirect, RedirectCode, Rule,
    TargetGroupRef, WeightedTargetGroup,
};

/// What a rule asks that an ALB cannot do; the route is then not accepted (UnsupportedValue).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule {rule}: {problem}")]
pub struct Unsupported {
    pub rule: usize,
    pub problem: String,
}

/// A rule's backend as the rule's action sees it: a stack target group (by resource id) and its
/// weight, or a backend that did not resolve.
pub type RuleBackend = Option<(String, i32)>;

/// The action of `rule` (its index `index`): a redirect when it has a RequestRedirect filter,
/// else a forward to its backends by weight; a fixed 500 when a backend did not resolve or none
/// carries traffic (the spec's answer for a rule with nowhere to send it).
pub fn rule_action(
    index: usize,
    rule: &HTTPRouteRule,
    backends: &[RuleBackend],
) -> Result<Action, Unsupported> {
    let unsupported = |problem: String| Unsupported {
        rule: index,
        problem,
    };
    let mut redirect = None;
    for filter in &rule.filters {
        match filter.type_.as_str() {
            "RequestRedirect" => redirect = Some(redirect_of(filter).map_err(unsupported)?),
            other => {
                return Err(unsupported(format!(
                    "filter {other} is not supported on an ALB"
                )));
            }
        }
    }
    if let Some(redirect) = redirect {
        return Ok(Action::Redirect(redirect));
    }
    if rule.timeouts.is_some() {
        return Err(unsupported("timeouts are not supported on an ALB".into()));
    }
    let weighted: Vec<(String, i32)> = match backends.iter().cloned().collect::<Option<Vec<_>>>() {
        Some(all) => all.into_iter().filter(|(_, weight)| *weight > 0).collect(),
        None => Vec::new(),
    };
    if weighted.is_empty() {
        return Ok(Action::FixedResponse(FixedResponse {
            status_code: 500,
            content_type: Some("text/plain".into()),
            message_body: None,
        }));
    }
    let single = weighted.len() == 1;
    Ok(Action::Forward {
        target_groups: weighted
            .into_iter()
            .map(|(id, weight)| WeightedTargetGroup {
                target_group: TargetGroupRef::Stack(id),
                weight: (!single).then_some(weight),
            })
            .collect(),
        stickiness_seconds: None,
    })
}

fn redirect_of(filter: &HTTPRouteFilter) -> Result<Redirect, String> {
    let Some(redirect) = &filter.request_redirect else {
        return Err("a RequestRedirect filter without requestRedirect".into());
    };
    let status_code = match redirect.status_code.unwrap_or(302) {
        301 => RedirectCode::Http301,
        302 => RedirectCode::Http302,
        other => {
            return Err(format!(
                "redirect statusCode {other}: an ALB redirects with 301 or 302"
            ));
        }
    };
    let protocol = match redirect.scheme.as_deref() {
        None => None,
        Some("http") => Some(Protocol::Http),
        Some("https") => Some(Protocol::Https),
        Some(other) => return Err(format!("redirect scheme {other}: http or https")),
    };
    // The spec: no port given, a new scheme's well-known port; else the listener's (ALB's
    // `#{port}`, the port the request came in on).
    let port = redirect.port.or(match protocol {
        Some(Protocol::Https) => Some(443),
        Some(_) => Some(80),
        None => None,
    });
    let path = match &redirect.path {
        None => None,
        Some(path) if path.type_ == "ReplaceFullPath" => path.replace_full_path.clone(),
        Some(path) => {
            return Err(format!(
                "redirect path {}: an ALB can only replace the full path",
                path.type_
            ));
        }
    };
    Ok(Redirect {
        protocol,
        port: port.map(|p| p.to_string()),
        host: redirect.hostname.clone(),
        path,
        query: None,
        status_code,
    })
}

/// One route attached to a listener's port, with its rules' actions.
#[derive(Debug, Clone)]
pub struct PortRoute<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    /// `creationTimestamp` in seconds: older routes win ties.
    pub created: i64,
    /// The hostnames it serves on this port (empty: any).
    pub hostnames: Vec<String>,
    pub rules: &'a [HTTPRouteRule],
    /// One per rule.
    pub actions: Vec<Action>,
}

/// The match conditions of `m`, or what an ALB cannot match.
pub fn match_conditions(m: &HTTPRouteMatch) -> Result<Vec<Condition>, String> {
    let mut conditions = Vec::new();
    if let Some(path) = &m.path {
        let value = path.value.clone().unwrap_or_else(|| "/".into());
        conditions.push(match path.type_.as_deref().unwrap_or("PathPrefix") {
            "PathPrefix" if value.trim_end_matches('/').is_empty() => Condition::PathPattern {
                values: vec!["/*".into()],
                regex: false,
            },
            "PathPrefix" => {
                let trimmed = value.trim_end_matches('/');
                Condition::PathPattern {
                    values: vec![trimmed.to_string(), format!("{trimmed}/*")],
                    regex: false,
                }
            }
            "Exact" => Condition::PathPattern {
                values: vec![value],
                regex: false,
            },
            "RegularExpression" => Condition::PathPattern {
                values: vec![value],
                regex: true,
            },
            other => return Err(format!("path match type {other}")),
        });
    }
    for header in &m.headers {
        if header.type_.as_deref().unwrap_or("Exact") != "Exact" {
            return Err(format!(
                "header match {} of type {:?}",
                header.name, header.type_
            ));
        }
        conditions.push(Condition::HttpHeader {
            name: header.name.clone(),
            values: vec![header.value.clone()],
        });
    }
    if !m.query_params.is_empty() {
        if let Some(q) = m
            .query_params
            .iter()
            .find(|q| q.type_.as_deref().unwrap_or("Exact") != "Exact")
        {
            return Err(format!("query match {} of type {:?}", q.name, q.type_));
        }
        conditions.extend(m.query_params.iter().map(|q| {
            Condition::QueryString(vec![QueryStringPair {
                key: Some(q.name.clone()),
                value: q.value.clone(),
            }])
        }));
    }
    if let Some(method) = &m.method {
        conditions.push(Condition::HttpRequestMethod(vec![method.clone()]));
    }
    Ok(conditions)
}

/// One rule x match x hostname of one route: a listener rule before it is numbered.
struct Unit<'a> {
    route: &'a PortRoute<'a>,
    rule: usize,
    /// None: a rule without matches (matches everything).
    matched: Option<usize>,
    hostname: &'a str,
}

impl Unit<'_> {
    fn the_match(&self) -> Option<&HTTPRouteMatch> {
        self.matched
            .map(|i| &self.route.rules[self.rule].matches[i])
    }

    fn path_rank(&self) -> (u8, usize) {
        // The API server defaults a match's path to PathPrefix `/`.
        let Some(path) = self.the_match().and_then(|m| m.path.as_ref()) else {
            return (2, 1);
        };
        let length = path.value.as_deref().map_or(1, str::len);
        match path.type_.as_deref().unwrap_or("PathPrefix") {
            "Exact" => (3, length),
            "PathPrefix" => (2, length),
            _ => (1, length),
        }
    }
}

/// The Gateway API's precedence, most specific first (upstream's order of keys).
fn precedence(a: &Unit<'_>, b: &Unit<'_>) -> Ordering {
    let host = |u: &Unit<'_>| {
        let h = u.hostname;
        (
            !h.is_empty(),
            !h.starts_with('*'),
            h.matches('.').count(),
            h.len(),
        )
    };
    let counts = |u: &Unit<'_>| {
        let m = u.the_match();
        (
            m.is_some_and(|m| m.method.is_some()),
            m.map_or(0, |m| m.headers.len()),
            m.map_or(0, |m| m.query_params.len()),
        )
    };
    host(b)
        .cmp(&host(a))
        .then_with(|| b.path_rank().cmp(&a.path_rank()))
        .then_with(|| counts(b).cmp(&counts(a)))
        .then_with(|| a.route.created.cmp(&b.route.created))
        .then_with(|| (a.route.namespace, a.route.name).cmp(&(b.route.namespace, b.route.name)))
        .then_with(|| a.rule.cmp(&b.rule))
        .then_with(|| {
            a.matched
                .unwrap_or(usize::MAX)
                .cmp(&b.matched.unwrap_or(usize::MAX))
        })
        .then_with(|| a.hostname.cmp(b.hostname))
}

/// The listener rules of `routes` on one port, in priority order (priority = index + 1), each
/// tagged with `tags`. Matches an ALB cannot express are to be refused before (see
/// [`match_conditions`]); any left here are skipped.
pub fn listener_rules(routes: &[PortRoute<'_>], tags: &BTreeMap<String, String>) -> Vec<Rule> {
    let any = [String::new()];
    let mut units = Vec::new();
    for route in routes {
        let hostnames = if route.hostnames.is_empty() {
            &any[..]
        } else {
            &route.hostnames[..]
        };
        for (rule, spec) in route.rules.iter().enumerate() {
            let matches: Vec<Option<usize>> = if spec.matches.is_empty() {
                vec![None]
            } else {
                (0..spec.matches.len()).map(Some).collect()
            };
            for hostname in hostnames {
                for &matched in &matches {
                    units.push(Unit {
                        route,
                        rule,
                        matched,
                        hostname,
                    });
                }
            }
        }
    }
    units.sort_by(precedence);
    units
        .iter()
        .filter_map(|unit| {
            let mut conditions = Vec::new();
            if !unit.hostname.is_empty() {
                conditions.push(Condition::HostHeader(vec![unit.hostname.to_string()]));
            }
            if let Some(m) = unit.the_match() {
                conditions.extend(match_conditions(m).ok()?);
            }
            if conditions.is_empty() {
                conditions.push(Condition::PathPattern {
                    values: vec!["/*".into()],
                    regex: false,
                });
            }
            Some(Rule {
                conditions,
                action: unit.route.actions[unit.rule].clone(),
                tags: tags.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
