//! `lb-controller bench-rollout`: the seeds' experiment (`../shared/seeds/003_*`: 708 failed
//! requests per deployment without readiness gates, 0 with them) end to end on the sandbox, with
//! real traffic through the emulated ALB.
//!
//! Each run, in its own namespace: a Deployment whose pods become ready after a few seconds, a
//! Service, an ALB (HTTP listener -> ip target group) and a TargetGroupBinding, or (scenario 6) an
//! annotated Service from which the controller makes an NLB and its binding (see [`front`]); once every target is
//! healthy, a steady stream of requests starts, then the scenario's change (a rolling update or a
//! scale-in), and the stream goes on until every old pod is gone. Every request's outcome, every
//! pod's life and every target's health timeline are kept; see [`report`] for what is made of them.

pub mod front;
pub mod load;
pub mod record;
pub mod report;
pub mod svg;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use lb_api::keys::TERMINATION_HOLD_ANNOTATION as HOLD_ANNOTATION;
use lb_sandbox::kubelet::behaviour::START_DELAY;
use lb_sandbox::testing::rollout_complete;
use lb_sandbox::{Sandbox, SandboxConfig};
use serde::Serialize;
use serde_json::json;

use crate::clock::now;
use crate::harness::{ControllerHandle, HarnessError, HarnessOptions, start_controller_with};
use front::{alb_front, ingress_front, nlb_front};
use load::Load;
use record::{PodRecorder, TargetRecorder};

/// What a run does to the Deployment, and how its pods are set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// 1: rolling update, no readiness gates, no preStop (the seeds' "before").
    NoGates,
    /// 2a: rolling update with readiness gates but no termination hold (the upstream controller).
    GatesNoHold,
    /// 2: rolling update with readiness gates (namespace labelled); our controller's defaults.
    Gates,
    /// 3: rolling update with readiness gates and a preStop sleep of the deregistration delay.
    GatesPrestop,
    /// 4: scale-in under load, gates + preStop.
    ScaleIn,
    /// 4b: scale-in under load, gates, no preStop of the user's: the controller's hold alone.
    ScaleInHold,
    /// 5: as 3, with the controller restarted once mid-rollout (away for `restart_downtime`).
    Restart,
    /// 6: as 2 (gates + the controller's hold), through an NLB the controller made from an
    /// annotated Service, every request on a new TCP connection.
    Nlb,
    /// 7: as 2, through an ALB the controller made from an Ingress (rule -> ip target group).
    Ingress,
}

impl Scenario {
    pub const ALL: [Scenario; 9] = [
        Scenario::NoGates,
        Scenario::GatesNoHold,
        Scenario::Gates,
        Scenario::GatesPrestop,
        Scenario::ScaleIn,
        Scenario::ScaleInHold,
        Scenario::Restart,
        Scenario::Nlb,
        Scenario::Ingress,
    ];

    /// The scenario's number in issue 5 (2a and 4b are ours: gates as the upstream controller does
    /// them, and a scale-in relying on our hold alone).
    pub fn number(self) -> &'static str {
        match self {
            Scenario::NoGates => "1",
            Scenario::GatesNoHold => "2a",
            Scenario::Gates => "2",
            Scenario::GatesPrestop => "3",
            Scenario::ScaleIn => "4",
            Scenario::ScaleInHold => "4b",
            Scenario::Restart => "5",
            Scenario::Nlb => "6",
            Scenario::Ingress => "7",
        }
    }

    pub fn slug(self) -> &'static str {
        match self {
            Scenario::NoGates => "no-gates",
            Scenario::GatesNoHold => "gates-no-hold",
            Scenario::Gates => "gates",
            Scenario::GatesPrestop => "gates-prestop",
            Scenario::ScaleIn => "scale-in",
            Scenario::ScaleInHold => "scale-in-hold",
            Scenario::Restart => "restart",
            Scenario::Nlb => "nlb",
            Scenario::Ingress => "ingress",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Scenario::NoGates => "rolling update, no gates, no preStop",
            Scenario::GatesNoHold => "rolling update, gates, hold off (upstream behaviour)",
            Scenario::Gates => "rolling update, gates (controller defaults: gates + hold)",
            Scenario::GatesPrestop => "rolling update, gates + preStop",
            Scenario::ScaleIn => "scale-in, gates + preStop",
            Scenario::ScaleInHold => "scale-in, gates, no preStop (controller hold)",
            Scenario::Restart => "rolling update, gates + preStop, controller restarted",
            Scenario::Nlb => "rolling update through an NLB from a Service, gates (defaults)",
            Scenario::Ingress => "rolling update through an ALB from an Ingress, gates (defaults)",
        }
    }

    fn gated(self) -> bool {
        self != Scenario::NoGates
    }

    fn user_pre_stop(self) -> bool {
        matches!(
            self,
            Scenario::GatesPrestop | Scenario::ScaleIn | Scenario::Restart
        )
    }

    fn is_rollout(self) -> bool {
        !matches!(self, Scenario::ScaleIn | Scenario::ScaleInHold)
    }
}

/// The benchmark's settings; also its command line (`lb-controller bench-rollout --help`), whose
/// defaults are [`Default`]'s too.
#[derive(Debug, Clone, clap::Args)]
pub struct RolloutOptions {
    /// Scenarios to run, in this order (none given: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub scenarios: Vec<Scenario>,
    /// Runs of each scenario.
    #[arg(long, default_value_t = 3)]
    pub repetitions: usize,
    #[arg(long, default_value_t = 6)]
    pub replicas: i32,
    #[arg(long, default_value_t = 2)]
    pub max_surge: i32,
    /// Replicas after the scale-in.
    #[arg(long, default_value_t = 2)]
    pub scale_in_to: i32,
    /// Health-check interval of the target group, seconds.
    #[arg(long, default_value_t = 5)]
    pub interval: i32,
    #[arg(long, default_value_t = 2)]
    pub healthy_threshold: i32,
    /// Deregistration delay, seconds; the preStop scenarios sleep this long.
    #[arg(long, default_value_t = 10)]
    pub deregistration_delay: u32,
    /// Requests per second through the ALB.
    #[arg(long, default_value_t = 100)]
    pub rate: u32,
    /// How long each pod's app takes to start serving.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub start_delay: Duration,
    /// How late the emulated ALB's nodes follow target state changes.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub routing_lag: Duration,
    /// The controller's termination hold (its --pod-termination-hold).
    #[arg(long = "pod-termination-hold", default_value = "15s", value_parser = humantime::parse_duration)]
    pub termination_hold: Duration,
    /// Scenario 5: how long the controller is away when it restarts.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub restart_downtime: Duration,
    /// Where the JSON, the table and the timelines are written.
    #[arg(long, default_value = "target/bench-rollout")]
    pub out: PathBuf,
}

impl Default for RolloutOptions {
    /// The command line's defaults.
    fn default() -> Self {
        use clap::{Args, FromArgMatches};
        let matches = Self::augment_args(clap::Command::new("bench-rollout"))
            .get_matches_from(["bench-rollout"]);
        Self::from_arg_matches(&matches).unwrap_or_else(|err| err.exit())
    }
}

impl RolloutOptions {
    /// The scenarios to run: those given, else all.
    pub fn scenarios(&self) -> Vec<Scenario> {
        if self.scenarios.is_empty() {
            Scenario::ALL.to_vec()
        } else {
            self.scenarios.clone()
        }
    }

    /// Surge steps of a rolling update: the new pods come in batches of maxSurge.
    pub fn surge_steps(&self) -> usize {
        (self.replicas.max(1) as usize).div_ceil(self.max_surge.max(1) as usize)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    #[error(transparent)]
    Harness(#[from] HarnessError),
    #[error(transparent)]
    Sandbox(#[from] lb_sandbox::SandboxError),
    #[error("Kubernetes API error while {context}: {source}")]
    Kube {
        context: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error("{scenario}: timed out after {after:?} waiting for {what}")]
    Stuck {
        scenario: &'static str,
        what: String,
        after: Duration,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn kube_context(context: &'static str) -> impl FnOnce(kube::Error) -> RolloutError {
    move |source| RolloutError::Kube { context, source }
}

/// A controller restart during a run: when it began (seconds since the epoch) and how long the
/// controller was away.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Restart {
    pub at: f64,
    pub seconds: f64,
}

/// Everything one run recorded.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub scenario: Scenario,
    pub repetition: usize,
    /// When the change was made (seconds since the epoch); times in the report are relative to it.
    pub triggered: f64,
    /// Trigger -> the Deployment reports every replica updated and available.
    pub rollout_seconds: f64,
    /// Trigger -> the last old pod is gone and every current target is healthy.
    pub settled_seconds: f64,
    pub restart: Option<Restart>,
    pub samples: Vec<load::Sample>,
    pub pods: Vec<record::PodLife>,
    pub targets: std::collections::BTreeMap<String, Vec<record::TargetEvent>>,
}

/// Runs every scenario `repetitions` times on one sandbox and writes the report; returns the
/// table.
pub async fn run(options: RolloutOptions) -> Result<String, RolloutError> {
    let sandbox = Sandbox::start(SandboxConfig::default()).await?;
    let result = run_on(&sandbox, &options).await;
    sandbox.shutdown().await;
    let runs = result?;
    report::write(&options, &runs)
}

/// Runs the scenarios on `sandbox` with a controller of its own, in order, each `repetitions`
/// times.
pub async fn run_on(sandbox: &Sandbox, options: &RolloutOptions) -> Result<Vec<Run>, RolloutError> {
    let aws = sandbox.aws().ok_or(HarnessError::NoAws)?;
    aws.control().set_routing_lag(options.routing_lag).await?;
    let mut controller = Some(
        start_controller_with(
            sandbox,
            HarnessOptions {
                termination_hold: options.termination_hold,
                ..HarnessOptions::default()
            },
        )
        .await?,
    );
    let mut runs = Vec::new();
    let mut outcome = Ok(());
    'all: for repetition in 1..=options.repetitions {
        for scenario in options.scenarios() {
            eprintln!(
                "bench-rollout: scenario {} ({}), run {repetition}/{}",
                scenario.number(),
                scenario.slug(),
                options.repetitions
            );
            match run_once(sandbox, &mut controller, scenario, repetition, options).await {
                Ok(run) => {
                    eprintln!("{}", report::one_line(&run));
                    runs.push(run);
                }
                Err(err) => {
                    outcome = Err(err);
                    break 'all;
                }
            }
        }
    }
    if let Some(controller) = controller.take() {
        controller.stop().await;
    }
    outcome.map(|()| runs)
}

async fn run_once(
    sandbox: &Sandbox,
    controller: &mut Option<ControllerHandle>,
    scenario: Scenario,
    repetition: usize,
    options: &RolloutOptions,
) -> Result<Run, RolloutError> {
    let client = sandbox.client();
    let aws = sandbox.aws().ok_or(HarnessError::NoAws)?;
    let namespace = format!("{}-{repetition}", scenario.slug());
    let stuck = |what: &str, after: Duration| RolloutError::Stuck {
        scenario: scenario.slug(),
        what: what.to_string(),
        after,
    };

    let labels: &[(&str, &str)] = if scenario.gated() {
        &[(lb_api::keys::READINESS_GATE_INJECT_LABEL, "enabled")]
    } else {
        &[]
    };
    sandbox.create_namespace(&namespace, labels).await?;
    let front = match scenario {
        Scenario::Nlb => nlb_front(sandbox, &namespace, options)
            .await
            .map_err(|after| stuck("the Service's NLB and binding", after))??,
        Scenario::Ingress => ingress_front(sandbox, &namespace, options)
            .await
            .map_err(|after| stuck("the Ingress's ALB and binding", after))??,
        _ => alb_front(sandbox, &namespace, options).await?,
    };

    let pods = PodRecorder::start(&client, &namespace);
    let targets = TargetRecorder::start(aws.control(), front.target_group_arn.clone());
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    deployments
        .create(&PostParams::default(), &deployment(scenario, options))
        .await
        .map_err(kube_context("creating the Deployment"))?;

    // Steady state first: every replica Ready and every target healthy.
    let settle = Duration::from_secs(180);
    wait_until(settle, || async {
        rollout_complete(&client, &namespace, "web", options.replicas).await
            && healthy_count(aws, &front.target_group_arn).await == options.replicas as usize
    })
    .await
    .map_err(|after| stuck("the initial replicas and healthy targets", after))?;

    // The ALB's nodes route to the healthy targets once the routing lag has passed; then the
    // load starts, 2 s before the change.
    let listener = aws.listener_address(&front.dns_name, 80).await?;
    tokio::time::sleep(options.routing_lag + Duration::from_millis(500)).await;
    let load = Load::start(listener, "/", options.rate);
    tokio::time::sleep(Duration::from_secs(2)).await;

    let triggered = now();
    let started = Instant::now();
    let replicas_after = if scenario.is_rollout() {
        deployments
            .patch(
                "web",
                &PatchParams::default(),
                &Patch::Merge(
                    json!({"spec": {"template": {"metadata": {"annotations": {"rollout": "2"}}}}}),
                ),
            )
            .await
            .map_err(kube_context("starting the rolling update"))?;
        options.replicas
    } else {
        deployments
            .patch(
                "web",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"replicas": options.scale_in_to}})),
            )
            .await
            .map_err(kube_context("scaling in"))?;
        options.scale_in_to
    };

    // Scenario 5: the controller goes away the moment the first old pod starts terminating (its
    // deregistration is then late by the whole restart), and comes back.
    let mut restart = None;
    if scenario == Scenario::Restart {
        wait_until(settle, || async {
            pods.snapshot().iter().any(|p| p.deleting.is_some())
        })
        .await
        .map_err(|after| stuck("the first old pod to terminate", after))?;
        let at = now();
        if let Some(running) = controller.take() {
            *controller = Some(running.restart(sandbox, options.restart_downtime).await?);
        }
        restart = Some(Restart {
            at,
            seconds: now() - at,
        });
    }

    wait_until(Duration::from_secs(600), || {
        rollout_complete(&client, &namespace, "web", replicas_after)
    })
    .await
    .map_err(|after| stuck("the rollout to complete", after))?;
    let rollout_seconds = started.elapsed().as_secs_f64();

    // The change is over for the load balancer only once the old pods are gone and every
    // current target is healthy (without gates, the new ones turn healthy well after the rollout).
    wait_until(settle, || async {
        let lives = pods.snapshot();
        let current = lives.iter().filter(|p| p.gone.is_none()).count();
        current == replicas_after as usize
            && lives
                .iter()
                .all(|p| p.deleting.is_none() || p.gone.is_some())
            && healthy_count(aws, &front.target_group_arn).await == replicas_after as usize
    })
    .await
    .map_err(|after| stuck("the old pods to be gone and the new targets healthy", after))?;
    let settled_seconds = started.elapsed().as_secs_f64();
    tokio::time::sleep(options.routing_lag + Duration::from_secs(2)).await;
    let samples = load.stop().await;

    let run = Run {
        scenario,
        repetition,
        triggered,
        rollout_seconds,
        settled_seconds,
        restart,
        samples,
        pods: pods.snapshot(),
        targets: targets.snapshot(),
    };
    // Leave nothing running into the next run: the namespace goes (the controller deregisters
    // its targets on the way).
    let _ = Api::<Namespace>::all(client.clone())
        .delete(&namespace, &DeleteParams::default())
        .await;
    Ok(run)
}

/// The Deployment of a run: `replicas` web pods, ready `start_delay` after they start, rolling
/// `max_surge` at a time and never below `replicas` available.
fn deployment(scenario: Scenario, options: &RolloutOptions) -> Deployment {
    let pre_stop = scenario
        .user_pre_stop()
        .then_some(options.deregistration_delay);
    let mut annotations = serde_json::Map::new();
    annotations.insert(
        START_DELAY.to_string(),
        json!(format!("{}ms", options.start_delay.as_millis())),
    );
    if scenario == Scenario::GatesNoHold {
        annotations.insert(HOLD_ANNOTATION.to_string(), json!("0"));
    }
    let mut container = json!({
        "name": "web", "image": "sandbox/web:1",
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 1},
    });
    if let Some(seconds) = pre_stop {
        container["lifecycle"] = json!({"preStop": {"exec": {"command": ["/bin/sh", "-c", format!("sleep {seconds}")]}}});
    }
    serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": options.replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": options.max_surge, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {"app": "web"}, "annotations": annotations},
                "spec": {
                    "terminationGracePeriodSeconds": pre_stop.unwrap_or(0) + 5,
                    "containers": [container],
                },
            },
        },
    }))
    .unwrap_or_default()
}

async fn healthy_count(aws: &lb_sandbox::aws::AwsEmulator, target_group_arn: &str) -> usize {
    aws.control()
        .targets(target_group_arn)
        .await
        .map(|targets| targets.iter().filter(|t| t.state == "healthy").count())
        .unwrap_or(0)
}

/// Polls `check` every 100 ms until it holds; Err(timeout) if it never does.
async fn wait_until<F, Fut>(timeout: Duration, mut check: F) -> Result<(), Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        if Instant::now() > deadline {
            return Err(timeout);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_set_up_their_pods() {
        let options = RolloutOptions::default();
        let spec = |scenario| serde_json::to_value(deployment(scenario, &options)).unwrap();
        let plain = spec(Scenario::NoGates);
        let pod = &plain["spec"]["template"];
        assert_eq!(pod["metadata"]["annotations"][START_DELAY], "3000ms");
        assert!(pod["spec"]["containers"][0].get("lifecycle").is_none());
        assert_eq!(
            plain["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
            0
        );

        let with_pre_stop = spec(Scenario::GatesPrestop);
        let pod = &with_pre_stop["spec"]["template"]["spec"];
        assert_eq!(
            pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][2], "sleep 10",
            "sized from the deregistration delay"
        );
        assert_eq!(pod["terminationGracePeriodSeconds"], 15);

        let no_hold = spec(Scenario::GatesNoHold);
        assert_eq!(
            no_hold["spec"]["template"]["metadata"]["annotations"][HOLD_ANNOTATION],
            "0"
        );
    }

    #[test]
    fn surge_steps_round_up() {
        let mut options = RolloutOptions::default();
        assert_eq!(options.surge_steps(), 3);
        options.max_surge = 4;
        assert_eq!(options.surge_steps(), 2);
        options.max_surge = 1;
        assert_eq!(options.surge_steps(), 6);
    }
}
