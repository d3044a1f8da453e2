//! The termination hold: a pod behind a load balancer must keep serving after its deletion starts,
//! until the load balancer has stopped sending it new requests. Kubernetes sends SIGTERM at once;
//! the controller deregisters the target within a second, and the load balancer's nodes take a few
//! more seconds to follow. Without a preStop sleep, the requests of that window fail (the upstream
//! controller leaves this to the user: its issues #1719, #2366).
//!
//! So the pod webhook gives every container that has no preStop hook of its own a native `sleep`
//! preStop action (Kubernetes >= 1.30; no `sleep` binary needed in the image) of the hold, and
//! lengthens `terminationGracePeriodSeconds` by the same amount, so the app keeps its full
//! shutdown time after the hold. A container with its own preStop hook is left alone: the user
//! sized it. The annotation `lb-controller.dev/termination-hold-seconds` on the pod overrides the
//! hold (`0` turns it off for that pod).
//!
//! Sizing: hold >= the controller's deregistration latency (p99 under 0.5 s on the sandbox, plus a
//! restart if one happens then) + the load balancer's propagation delay (seconds for an ALB; NLBs
//! are known to take much longer).

use std::time::Duration;

use json_patch::PatchOperation;
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;

use crate::pod_admission::add;

/// The controller's default hold (`--pod-termination-hold`).
pub const DEFAULT_HOLD: Duration = Duration::from_secs(15);
/// Pod annotation overriding the controller's hold, in whole seconds.
pub use lb_api::keys::TERMINATION_HOLD_ANNOTATION as HOLD_ANNOTATION;
/// Kubernetes' default grace period, when the pod names none.
const DEFAULT_GRACE_SECONDS: i64 = 30;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "annotation {HOLD_ANNOTATION}={} is not a whole number of seconds (0..=3600)",
    lb_api::shown::shown(.value)
)]
pub struct InvalidHold {
    pub value: String,
}

/// The hold for `pod`: its annotation if it has one, else `default`. An invalid annotation gives
/// the default and the error to report.
pub fn hold_for(pod: &Pod, default: Duration) -> (Duration, Option<InvalidHold>) {
    let Some(value) = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(HOLD_ANNOTATION))
    else {
        return (default, None);
    };
    match value.trim().parse::<u64>() {
        Ok(seconds) if seconds <= 3600 => (Duration::from_secs(seconds), None),
        _ => (
            default,
            Some(InvalidHold {
                value: value.clone(),
            }),
        ),
    }
}

/// JSON-patch operations giving `pod` a hold of `hold` (rounded up to whole seconds): a `sleep`
/// preStop on each container without a preStop hook, and a grace period longer by the hold.
/// Nothing when the hold is zero or every container has its own hook.
pub fn hold_patch(pod: &Pod, hold: Duration) -> Vec<PatchOperation> {
    let seconds = hold.as_secs() + u64::from(hold.subsec_nanos() > 0);
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    if seconds == 0 {
        return Vec::new();
    }
    let sleep = json!({"sleep": {"seconds": seconds}});
    let mut operations: Vec<PatchOperation> = spec
        .containers
        .iter()
        .enumerate()
        .filter_map(|(index, container)| match &container.lifecycle {
            None => Some(add(
                &format!("/spec/containers/{index}/lifecycle"),
                json!({"preStop": sleep}),
            )),
            Some(lifecycle) if lifecycle.pre_stop.is_none() => Some(add(
                &format!("/spec/containers/{index}/lifecycle/preStop"),
                sleep.clone(),
            )),
            Some(_) => None,
        })
        .collect();
    if !operations.is_empty() {
        let grace = spec
            .termination_grace_period_seconds
            .unwrap_or(DEFAULT_GRACE_SECONDS)
            .max(0);
        // JSON-patch `add` on an existing member replaces it.
        operations.push(add(
            "/spec/terminationGracePeriodSeconds",
            json!(grace.saturating_add(seconds as i64)),
        ));
    }
    operations
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(value: serde_json::Value) -> Pod {
        serde_json::from_value(value).unwrap()
    }

    fn patched(pod: &Pod, hold: Duration) -> serde_json::Value {
        let mut value = serde_json::to_value(pod).unwrap();
        json_patch::patch(&mut value, &hold_patch(pod, hold)).unwrap();
        value
    }

    #[test]
    fn containers_without_a_hook_sleep_and_the_grace_period_grows() {
        let original = pod(json!({"metadata": {"name": "p"}, "spec": {
            "terminationGracePeriodSeconds": 5,
            "containers": [
                {"name": "app"},
                {"name": "sidecar", "lifecycle": {"postStart": {"exec": {"command": ["true"]}}}},
                {"name": "own", "lifecycle": {"preStop": {"exec": {"command": ["sleep", "3"]}}}},
            ],
        }}));
        let value = patched(&original, Duration::from_millis(14_200));
        let containers = &value["spec"]["containers"];
        assert_eq!(
            containers[0]["lifecycle"]["preStop"],
            json!({"sleep": {"seconds": 15}})
        );
        assert_eq!(
            containers[1]["lifecycle"]["preStop"],
            json!({"sleep": {"seconds": 15}})
        );
        assert_eq!(
            containers[1]["lifecycle"]["postStart"],
            json!({"exec": {"command": ["true"]}})
        );
        assert_eq!(
            containers[2]["lifecycle"]["preStop"],
            json!({"exec": {"command": ["sleep", "3"]}}),
            "the user's own hook stays"
        );
        assert_eq!(value["spec"]["terminationGracePeriodSeconds"], json!(20));
    }

    #[test]
    fn the_default_grace_period_is_kubernetes_thirty_seconds() {
        let original =
            pod(json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "app"}]}}));
        let value = patched(&original, Duration::from_secs(15));
        assert_eq!(value["spec"]["terminationGracePeriodSeconds"], json!(45));
    }

    #[test]
    fn nothing_when_every_container_has_a_hook_or_the_hold_is_zero() {
        let hooked = pod(json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "app", "lifecycle": {"preStop": {"sleep": {"seconds": 20}}}},
        ]}}));
        assert!(hold_patch(&hooked, Duration::from_secs(15)).is_empty());
        let plain =
            pod(json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "app"}]}}));
        assert!(hold_patch(&plain, Duration::ZERO).is_empty());
    }

    #[test]
    fn the_annotation_overrides_the_default() {
        let with = |value: &str| {
            pod(json!({"metadata": {"name": "p", "annotations": {HOLD_ANNOTATION: value}}}))
        };
        let default = Duration::from_secs(15);
        assert_eq!(hold_for(&pod(json!({})), default), (default, None));
        assert_eq!(hold_for(&with("0"), default), (Duration::ZERO, None));
        assert_eq!(
            hold_for(&with(" 40 "), default),
            (Duration::from_secs(40), None)
        );
        for bad in ["ten", "-1", "1.5", "9999"] {
            let (hold, error) = hold_for(&with(bad), default);
            assert_eq!(hold, default, "{bad}");
            let message = error.expect(bad).to_string();
            assert!(
                message.contains(HOLD_ANNOTATION) && message.contains(bad),
                "{message}"
            );
        }
        // Before: a 100 KB value was the whole admission warning.
        let (_, error) = hold_for(&with(&"9".repeat(100 * 1024)), default);
        let message = error.expect("too long a hold").to_string();
        assert!(
            message
                .ends_with("... (102400 characters) is not a whole number of seconds (0..=3600)"),
            "{message:.300}"
        );
        assert!(message.len() < 300, "{message:.300}");
    }
}
