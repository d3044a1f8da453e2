//! How a pod's fake application behaves, set by annotations on the pod (read again on every pod
//! update, so a test can make a running pod fail):
//!
//! | annotation | value | effect |
//! |---|---|---|
//! | `sandbox.lb-controller.dev/start-delay` | duration (`3s`) | the app listens only after this long; connections are refused before |
//! | `sandbox.lb-controller.dev/fail-paths` | `/healthz,/ready` | these paths answer 500 |
//! | `sandbox.lb-controller.dev/unhealthy-after` | duration | every path answers 500 once the app has run this long |
//! | `sandbox.lb-controller.dev/response-delay` | duration | every response waits this long (in-flight requests) |

use std::collections::BTreeMap;
use std::time::Duration;

pub const ANNOTATION_PREFIX: &str = "sandbox.lb-controller.dev/";
pub const START_DELAY: &str = "sandbox.lb-controller.dev/start-delay";
pub const FAIL_PATHS: &str = "sandbox.lb-controller.dev/fail-paths";
pub const UNHEALTHY_AFTER: &str = "sandbox.lb-controller.dev/unhealthy-after";
pub const RESPONSE_DELAY: &str = "sandbox.lb-controller.dev/response-delay";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Behaviour {
    pub start_delay: Duration,
    pub fail_paths: Vec<String>,
    pub unhealthy_after: Option<Duration>,
    pub response_delay: Duration,
}

/// An annotation whose value could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("annotation {annotation}={value:?}: {problem}")]
pub struct BadAnnotation {
    pub annotation: &'static str,
    pub value: String,
    pub problem: String,
}

impl Behaviour {
    /// Reads the annotations; a bad value is reported and the default kept for that one.
    pub fn from_annotations(
        annotations: Option<&BTreeMap<String, String>>,
    ) -> (Behaviour, Vec<BadAnnotation>) {
        let mut behaviour = Behaviour::default();
        let mut problems = Vec::new();
        let Some(annotations) = annotations else {
            return (behaviour, problems);
        };
        let mut duration = |key: &'static str| -> Option<Duration> {
            let value = annotations.get(key)?;
            match humantime::parse_duration(value.trim()) {
                Ok(d) => Some(d),
                Err(err) => {
                    problems.push(BadAnnotation {
                        annotation: key,
                        value: value.clone(),
                        problem: err.to_string(),
                    });
                    None
                }
            }
        };
        behaviour.start_delay = duration(START_DELAY).unwrap_or_default();
        behaviour.unhealthy_after = duration(UNHEALTHY_AFTER);
        behaviour.response_delay = duration(RESPONSE_DELAY).unwrap_or_default();
        if let Some(paths) = annotations.get(FAIL_PATHS) {
            behaviour.fail_paths = paths
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect();
        }
        (behaviour, problems)
    }

    /// The status the app answers for `path` after running for `uptime`.
    pub fn status_for(&self, path: &str, uptime: Duration) -> u16 {
        let sick = self.unhealthy_after.is_some_and(|after| uptime >= after);
        if sick || self.fail_paths.iter().any(|p| p == path) {
            500
        } else {
            200
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn no_annotations_is_a_healthy_app() {
        let (b, problems) = Behaviour::from_annotations(None);
        assert_eq!(b, Behaviour::default());
        assert!(problems.is_empty());
        assert_eq!(b.status_for("/anything", Duration::from_secs(99)), 200);
    }

    #[test]
    fn reads_every_annotation() {
        let (b, problems) = Behaviour::from_annotations(Some(&annotations(&[
            (START_DELAY, "3s"),
            (FAIL_PATHS, "/healthz, /ready,"),
            (UNHEALTHY_AFTER, "1m"),
            (RESPONSE_DELAY, "250ms"),
            ("unrelated", "x"),
        ])));
        assert!(problems.is_empty());
        assert_eq!(b.start_delay, Duration::from_secs(3));
        assert_eq!(b.fail_paths, vec!["/healthz", "/ready"]);
        assert_eq!(b.unhealthy_after, Some(Duration::from_secs(60)));
        assert_eq!(b.response_delay, Duration::from_millis(250));
    }

    #[test]
    fn fail_paths_and_unhealthy_after_decide_the_status() {
        let (b, _) = Behaviour::from_annotations(Some(&annotations(&[
            (FAIL_PATHS, "/healthz"),
            (UNHEALTHY_AFTER, "10s"),
        ])));
        assert_eq!(b.status_for("/healthz", Duration::ZERO), 500);
        assert_eq!(b.status_for("/", Duration::from_secs(9)), 200);
        assert_eq!(b.status_for("/", Duration::from_secs(10)), 500);
    }

    #[test]
    fn a_bad_value_is_reported_with_its_name_and_ignored() {
        let (b, problems) = Behaviour::from_annotations(Some(&annotations(&[
            (START_DELAY, "soon"),
            (RESPONSE_DELAY, "5ms"),
        ])));
        assert_eq!(b.start_delay, Duration::ZERO);
        assert_eq!(b.response_delay, Duration::from_millis(5));
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].annotation, START_DELAY);
        assert!(problems[0].to_string().contains("soon"));
    }
}
