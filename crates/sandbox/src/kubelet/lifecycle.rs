//! Pure pieces of a pod's life on a node: which ports its app serves, which probes it runs, how long
//! its preStop hook sleeps, how long it may take to terminate.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod};

/// Every container port of the pod (TCP), deduplicated, in order.
pub fn serving_ports(pod: &Pod) -> Vec<u16> {
    let mut ports: Vec<u16> = containers(pod)
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.protocol.as_deref().unwrap_or("TCP") == "TCP")
        .filter_map(|p| u16::try_from(p.container_port).ok())
        .collect();
    let mut seen = std::collections::HashSet::new();
    ports.retain(|p| seen.insert(*p));
    ports
}

pub fn containers(pod: &Pod) -> &[Container] {
    pod.spec
        .as_ref()
        .map(|spec| spec.containers.as_slice())
        .unwrap_or_default()
}

/// The longest preStop sleep among the containers: a `sleep` action, or an exec of `sleep N`
/// (directly or through `sh -c`). Other hooks cannot run here and take no time.
pub fn pre_stop_sleep(pod: &Pod) -> Option<Duration> {
    containers(pod)
        .iter()
        .filter_map(|c| c.lifecycle.as_ref()?.pre_stop.as_ref())
        .filter_map(|hook| {
            if let Some(sleep) = &hook.sleep {
                return Some(Duration::from_secs(sleep.seconds.max(0) as u64));
            }
            let command = hook.exec.as_ref()?.command.as_ref()?;
            command.iter().rev().find_map(|arg| parse_sleep(arg))
        })
        .max()
}

/// `sleep 5`, `sleep 2.5`, `exec sleep 5`, or `5` as the argument after a `sleep` word.
fn parse_sleep(arg: &str) -> Option<Duration> {
    let words: Vec<&str> = arg.split_whitespace().collect();
    let seconds = match words.as_slice() {
        [number] => number,
        _ => {
            let at = words
                .iter()
                .position(|w| *w == "sleep" || w.ends_with("/sleep"))?;
            words.get(at + 1)?
        }
    };
    seconds
        .trim_end_matches('s')
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

/// How long the pod may take to terminate: the grace period of its deletion, else its spec's.
pub fn grace_period(pod: &Pod) -> Duration {
    let seconds = pod
        .metadata
        .deletion_grace_period_seconds
        .or_else(|| pod.spec.as_ref()?.termination_grace_period_seconds)
        .unwrap_or(30);
    Duration::from_secs(seconds.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ContainerPort, ExecAction, Lifecycle, LifecycleHandler, PodSpec, SleepAction,
    };

    fn pod_with(containers: Vec<Container>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers,
                ..PodSpec::default()
            }),
            ..Pod::default()
        }
    }

    fn with_pre_stop(handler: LifecycleHandler) -> Container {
        Container {
            name: "app".into(),
            lifecycle: Some(Lifecycle {
                pre_stop: Some(handler),
                ..Lifecycle::default()
            }),
            ..Container::default()
        }
    }

    fn exec(command: &[&str]) -> LifecycleHandler {
        LifecycleHandler {
            exec: Some(ExecAction {
                command: Some(command.iter().map(|s| s.to_string()).collect()),
            }),
            ..LifecycleHandler::default()
        }
    }

    #[test]
    fn reads_every_form_of_pre_stop_sleep() {
        let cases: Vec<(LifecycleHandler, Option<Duration>)> = vec![
            (exec(&["sleep", "2"]), Some(Duration::from_secs(2))),
            (
                exec(&["/bin/sh", "-c", "sleep 15"]),
                Some(Duration::from_secs(15)),
            ),
            (
                exec(&["sh", "-c", "echo bye && exec /bin/sleep 2.5"]),
                Some(Duration::from_millis(2500)),
            ),
            (exec(&["/app/shutdown"]), None),
            (
                LifecycleHandler {
                    sleep: Some(SleepAction { seconds: 7 }),
                    ..LifecycleHandler::default()
                },
                Some(Duration::from_secs(7)),
            ),
        ];
        for (handler, expected) in cases {
            let pod = pod_with(vec![with_pre_stop(handler.clone())]);
            assert_eq!(pre_stop_sleep(&pod), expected, "{handler:?}");
        }
        assert_eq!(pre_stop_sleep(&pod_with(vec![Container::default()])), None);
    }

    #[test]
    fn the_longest_container_sleep_wins() {
        let pod = pod_with(vec![
            with_pre_stop(exec(&["sleep", "3"])),
            with_pre_stop(exec(&["sleep", "9"])),
        ]);
        assert_eq!(pre_stop_sleep(&pod), Some(Duration::from_secs(9)));
    }

    #[test]
    fn serving_ports_are_tcp_and_unique() {
        let port = |n: i32, protocol: Option<&str>| ContainerPort {
            container_port: n,
            protocol: protocol.map(str::to_string),
            ..ContainerPort::default()
        };
        let pod = pod_with(vec![
            Container {
                ports: Some(vec![port(8080, None), port(53, Some("UDP"))]),
                ..Container::default()
            },
            Container {
                ports: Some(vec![port(8080, Some("TCP")), port(9090, None)]),
                ..Container::default()
            },
        ]);
        assert_eq!(serving_ports(&pod), vec![8080, 9090]);
    }

    #[test]
    fn grace_period_prefers_the_deletion() {
        let mut pod = pod_with(vec![]);
        assert_eq!(grace_period(&pod), Duration::from_secs(30));
        pod.spec.as_mut().unwrap().termination_grace_period_seconds = Some(10);
        assert_eq!(grace_period(&pod), Duration::from_secs(10));
        pod.metadata.deletion_grace_period_seconds = Some(4);
        assert_eq!(grace_period(&pod), Duration::from_secs(4));
    }
}
