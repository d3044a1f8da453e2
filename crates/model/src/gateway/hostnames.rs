//! Hostname intersection as the Gateway API defines it: a listener's hostname and a route's
//! hostnames (each possibly a `*.` wildcard, which stands for one or more labels) meet in the
//! more specific of the two.

/// Where `listener` (None: any) and `route`'s hostnames (empty: any) meet: the hostnames the
/// route serves on that listener; None when they do not meet at all. An empty list means any
/// hostname (neither side narrows it).
pub fn intersect(listener: Option<&str>, route: &[String]) -> Option<Vec<String>> {
    let Some(listener) = listener else {
        return Some(route.to_vec());
    };
    if route.is_empty() {
        return Some(vec![listener.to_string()]);
    }
    let met: Vec<String> = route
        .iter()
        .filter_map(|host| meet(listener, host))
        .collect();
    (!met.is_empty()).then_some(met)
}

/// The more specific of `a` and `b` when one covers the other.
fn meet(a: &str, b: &str) -> Option<String> {
    if a.eq_ignore_ascii_case(b) || covers(a, b) {
        Some(b.to_ascii_lowercase())
    } else if covers(b, a) {
        Some(a.to_ascii_lowercase())
    } else {
        None
    }
}

/// Whether wildcard `pattern` (`*.example.com`) covers `host` (which may be a narrower wildcard).
pub(super) fn covers(pattern: &str, host: &str) -> bool {
    let Some(suffix) = pattern.strip_prefix('*') else {
        return false;
    };
    let host = host.strip_prefix('*').unwrap_or(host);
    let (suffix, host) = (suffix.to_ascii_lowercase(), host.to_ascii_lowercase());
    host.len() > suffix.len() && host.ends_with(&suffix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| (*v).to_string()).collect()
    }

    #[test]
    fn a_listener_and_a_route_meet_in_the_more_specific_hostname() {
        assert_eq!(intersect(None, &[]), Some(vec![]));
        assert_eq!(intersect(None, &hosts(&["a.com"])), Some(hosts(&["a.com"])));
        assert_eq!(intersect(Some("a.com"), &[]), Some(hosts(&["a.com"])));
        assert_eq!(intersect(Some("a.com"), &hosts(&["b.com"])), None);
        assert_eq!(
            intersect(
                Some("*.wildcard.io"),
                &hosts(&["foo.wildcard.io", "bar.com", "a.b.wildcard.io"])
            ),
            Some(hosts(&["foo.wildcard.io", "a.b.wildcard.io"]))
        );
        assert_eq!(
            intersect(Some("foo.wildcard.io"), &hosts(&["*.wildcard.io"])),
            Some(hosts(&["foo.wildcard.io"]))
        );
        assert_eq!(
            intersect(Some("*.foo.com"), &hosts(&["*.bar.foo.com"])),
            Some(hosts(&["*.bar.foo.com"]))
        );
        assert_eq!(
            intersect(Some("*.wildcard.io"), &hosts(&["wildcard.io"])),
            None
        );
    }
}
