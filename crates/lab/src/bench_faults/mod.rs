//! `lb-controller bench-faults`: the reliability matrix. One sandbox, the controller installed
//! from its chart and run as its own process (so it can be SIGKILLed), and for each fault a fresh
//! run of the fixed workload ([`workload`]): its objects converge, the fault goes on while the
//! workload changes and the Deployment rolls under 100 requests/s through the ALB, the fault goes
//! off, and the invariants are checked:
//!
//! - converged (statuses, rollout, every target group's targets = the Ready pods, all healthy)
//!   within 300 s of the fault clearing, and how long it took;
//! - no failed request in the rolling update (where the fault allows it: [`Fault::must_lose_no_request`]);
//! - nothing of ours twice (load balancer, target group, security group, listener, rule);
//! - nothing foreign changed or deleted (the hand-made ALBs and target groups of the bindings, a
//!   decoy tagged as another cluster's with the same stack tag, every untagged resource);
//! - nothing leaked: once the run's objects are deleted, nothing of ours names the run;
//! - the controller's memory (RSS) after convergence within 25 % of before the fault.
//!
//! Prints the table and writes it to `docs/reliability.md` (`--write`).

mod faults;
pub mod inventory;
mod report;
pub mod workload;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::{Patch, PatchParams};
use lb_sandbox::aws::{AwsEmulator, elb_setup};
use lb_sandbox::{Sandbox, SandboxConfig};
use serde_json::{Value, json};

pub use faults::Fault;
pub use report::RunResult;

use crate::bench::BenchError;
use crate::bench_rollout::load::Load;
use crate::chart::{self, ControllerProcess, Installed, NAMESPACE};
use crate::status_hostname::StatusHostname;

/// How long a run may take to converge after its fault clears before it counts as stuck.
const CONVERGE_WITHIN: Duration = Duration::from_secs(300);
const REQUESTS_PER_SECOND: u32 = 100;

#[derive(Debug, Clone, clap::Args)]
pub struct FaultOptions {
    /// The faults to run (default: all), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub faults: Vec<Fault>,
    /// Write the matrix to this Markdown file (e.g. docs/reliability.md).
    #[arg(long)]
    pub write: Option<PathBuf>,
}

pub async fn run(options: FaultOptions) -> Result<String, BenchError> {
    let faults = if options.faults.is_empty() {
        Fault::all()
    } else {
        options.faults.clone()
    };
    let mut sandbox = Sandbox::start(SandboxConfig::default()).await?;
    let result = matrix(&mut sandbox, &faults).await;
    sandbox.shutdown().await;
    let results = result?;
    let table = report::table(&results);
    if let Some(path) = &options.write {
        report::write(path, &results).map_err(|e| BenchError::Stuck(format!("{e}")))?;
    }
    Ok(table)
}

/// The running controller and what a restart needs.
struct Controller {
    binary: PathBuf,
    installed: Installed,
    process: Option<ControllerProcess>,
    restarts: u32,
}

impl Controller {
    async fn start(&mut self, sandbox: &Sandbox) -> Result<(), BenchError> {
        self.restarts += 1;
        let name = format!("replica-{}", self.restarts);
        let process =
            ControllerProcess::start(&self.binary, sandbox, &self.installed, &name).await?;
        chart::point_webhook_service(sandbox, &[process.webhook_port]).await?;
        self.process = Some(process);
        // It leads before anything is asked of it.
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if chart::lease_holder(sandbox)
                .await
                .is_some_and(|h| h.starts_with(&name))
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(BenchError::Stuck(format!(
            "{name} did not lead within 60 s"
        )))
    }

    async fn kill(&mut self) {
        if let Some(process) = self.process.take() {
            process.kill().await;
        }
    }

    /// Resident memory of the process, KiB.
    fn rss_kib(&self) -> Option<u64> {
        let pid = self.process.as_ref()?.pid()?;
        crate::bench_footprint::memory_of(pid)
            .ok()
            .map(|m| m.rss_kib)
    }
}

async fn matrix(sandbox: &mut Sandbox, faults: &[Fault]) -> Result<Vec<RunResult>, BenchError> {
    let aws = sandbox
        .aws()
        .ok_or(BenchError::Stuck("no AWS emulator".into()))?;
    let cluster = aws.cluster_name().to_string();
    let rendered = chart::render(&[("clusterName", &cluster)], &[])?;
    let installed = chart::install(sandbox, &rendered).await?;
    let binary = std::env::current_exe()
        .map_err(|e| BenchError::Stuck(format!("finding this binary: {e}")))?;
    let mut controller = Controller {
        binary,
        installed,
        process: None,
        restarts: 0,
    };
    controller.start(sandbox).await?;
    decoys(aws, faults).await?;
    let mut results = Vec::new();
    for (index, fault) in faults.iter().enumerate() {
        let ns = format!("f{index}-{}", fault.slug());
        eprintln!("[bench-faults] {ns}: {}", fault.description());
        let result = one_run(sandbox, &mut controller, *fault, &ns).await?;
        eprintln!("[bench-faults] {}", report::one_line(&result));
        results.push(result);
    }
    controller.kill().await;
    Ok(results)
}

/// Resources the controller must never touch: a load balancer with a target group made by hand,
/// and one tagged as another cluster's with the stack tag of the first run's Ingress group.
async fn decoys(aws: &AwsEmulator, faults: &[Fault]) -> Result<(), BenchError> {
    let elb = elb_setup::client(aws).await;
    elb_setup::web_alb(&elb, aws, "someone-elses", "/", 5, 5).await?;
    let decoy = elb_setup::web_alb(&elb, aws, "other-cluster", "/", 5, 5).await?;
    let first_run = format!(
        "f0-{}",
        faults.first().copied().unwrap_or(Fault::None).slug()
    );
    let tag = |key: &str, value: &str| {
        aws_sdk_elasticloadbalancingv2::types::Tag::builder()
            .key(key)
            .value(value)
            .build()
    };
    elb.add_tags()
        .resource_arns(&decoy.load_balancer_arn)
        .resource_arns(&decoy.target_group_arn)
        .tags(tag("elbv2.k8s.aws/cluster", "another-cluster"))
        .tags(tag("ingress.k8s.aws/stack", &first_run))
        .send()
        .await
        .map_err(|e| BenchError::Stuck(format!("tagging the decoy: {e}")))?;
    Ok(())
}

/// The ARNs of the run's target groups: ours naming `ns`, and the hand-made one of its binding.
async fn run_target_groups(aws: &AwsEmulator, ns: &str, hand_made: &str) -> Vec<String> {
    let elb = elb_setup::client(aws).await;
    let mut arns = vec![hand_made.to_string()];
    let Ok(groups) = elb.describe_target_groups().send().await else {
        return arns;
    };
    let candidates: Vec<String> = groups
        .target_groups()
        .iter()
        .filter_map(|g| g.target_group_arn().map(str::to_string))
        .filter(|arn| arn != hand_made)
        .collect();
    for chunk in candidates.chunks(20) {
        let Ok(tags) = elb
            .describe_tags()
            .set_resource_arns(Some(chunk.to_vec()))
            .send()
            .await
        else {
            continue;
        };
        for description in tags.tag_descriptions() {
            let ours = description.tags().iter().any(|t| {
                t.key() == Some("elbv2.k8s.aws/cluster") && t.value() == Some(aws.cluster_name())
            });
            let of_run = description
                .tags()
                .iter()
                .any(|t| t.value().is_some_and(|v| v.contains(ns)));
            if ours && of_run {
                arns.extend(description.resource_arn().map(str::to_string));
            }
        }
    }
    arns
}

async fn footprint(aws: &AwsEmulator) -> Result<Value, BenchError> {
    Ok(aws.control().footprint().await?)
}

async fn one_run(
    sandbox: &mut Sandbox,
    controller: &mut Controller,
    fault: Fault,
    ns: &str,
) -> Result<RunResult, BenchError> {
    let client = sandbox.client();
    let aws = sandbox
        .aws()
        .ok_or(BenchError::Stuck("no AWS emulator".into()))?;
    let control = aws.control();
    let cluster = aws.cluster_name().to_string();
    let hand_made = workload::create_before(sandbox, ns).await?;
    let setup = wait_converged(sandbox, ns, workload::MEMBERS_BEFORE.len(), 1, &hand_made).await;
    if let Err(missing) = setup {
        return Err(BenchError::Stuck(format!(
            "{ns}: the workload did not converge before the fault: {missing}"
        )));
    }
    let foreign_before = inventory::foreign(&footprint(aws).await?, &cluster);
    let alb = alb_listener(sandbox, ns).await?;
    let load = Load::start(alb, workload::LOAD_PATH, REQUESTS_PER_SECOND);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let memory_before = controller.rss_kib();
    control.reset_fault_counts().await?;

    // The fault goes on; the workload changes meanwhile.
    let started = Instant::now();
    control.set_faults(&fault.aws_rules(), 31).await?;
    let dead_webhook = if fault == Fault::WebhookDown {
        let port = lb_sandbox::ports::free_loopback_port()?;
        chart::point_webhook_service(sandbox, &[port]).await?;
        true
    } else {
        false
    };
    if fault == Fault::AwsOutage {
        control.pause_aws(true).await?;
    }
    workload::change_during(&client, ns, "v2").await?;
    let mut trigger = None;
    let mut note = None;
    match fault.ending() {
        faults::Ending::After(window) => match fault {
            Fault::ApiserverRestart => {
                tokio::time::sleep(Duration::from_secs(3)).await;
                sandbox.restart_apiserver(window).await?;
            }
            Fault::EtcdPause => {
                tokio::time::sleep(Duration::from_secs(3)).await;
                sandbox.pause_etcd(true)?;
                tokio::time::sleep(window).await;
                sandbox.pause_etcd(false)?;
            }
            _ => tokio::time::sleep(window).await,
        },
        faults::Ending::AtTrigger => {
            trigger = wait_for_trigger(aws).await;
            if fault.kills_the_controller() {
                controller.kill().await;
            } else if fault == Fault::LeaseLost {
                let taken = take_lease(sandbox).await?;
                note = Some(lease_lost(sandbox, controller, taken).await?);
            }
        }
    }
    let aws = sandbox
        .aws()
        .ok_or(BenchError::Stuck("no AWS emulator".into()))?;
    let control = aws.control();
    control.set_faults(&[], 31).await?;
    control.pause_aws(false).await?;
    if dead_webhook && let Some(process) = &controller.process {
        chart::point_webhook_service(sandbox, &[process.webhook_port]).await?;
    }
    if controller.process.is_none() {
        controller.start(sandbox).await?;
    }
    let cleared = Instant::now();
    let fault_seconds = cleared.duration_since(started).as_secs_f64();

    let members = workload::MEMBERS_BEFORE.len() + 1;
    let converged = wait_converged(sandbox, ns, members, 2, &hand_made).await;
    let converge_seconds = cleared.elapsed().as_secs_f64();
    let met = control.faults().await?;
    let samples = load.stop().await;
    let failed = samples.iter().filter(|s| s.outcome.is_failure()).count();
    let memory_after = controller.rss_kib();

    let after = footprint(aws).await?;
    let duplicates = inventory::duplicates(&after, &cluster);
    let mut foreign_changed =
        inventory::foreign_changes(&foreign_before, &inventory::foreign(&after, &cluster));
    workload::delete(&client, ns).await?;
    let leaked = wait_cleaned(aws, &cluster, ns).await?;
    let after_delete = footprint(aws).await?;
    foreign_changed.extend(inventory::foreign_changes(
        &foreign_before,
        &inventory::foreign(&after_delete, &cluster),
    ));
    foreign_changed.sort();
    foreign_changed.dedup();
    Ok(RunResult {
        fault,
        fault_seconds,
        trigger,
        note,
        injected: met.calls.values().map(|c| c.injected).sum(),
        calls: met.calls.values().map(|c| c.calls).sum(),
        converged: converged.err(),
        converge_seconds,
        requests: samples.len(),
        failed,
        duplicates,
        foreign_changed,
        leaked,
        memory_before_kib: memory_before,
        memory_after_kib: memory_after,
        restarted: fault.kills_the_controller(),
    })
}

/// Waits until the run has converged; the last thing missing if it did not within 300 s.
async fn wait_converged(
    sandbox: &Sandbox,
    ns: &str,
    members: usize,
    nlbs: usize,
    hand_made: &str,
) -> Result<(), String> {
    let Some(aws) = sandbox.aws() else {
        return Err("no AWS emulator".into());
    };
    let deadline = Instant::now() + CONVERGE_WITHIN;
    loop {
        let groups = run_target_groups(aws, ns, hand_made).await;
        // 1 hand-made + the group's one + one per NLB.
        let expected_groups = 1 + 1 + nlbs;
        let mut missing = workload::not_converged(sandbox, ns, members, nlbs, &groups).await;
        if groups.len() < expected_groups {
            missing.push(format!("{}/{expected_groups} target groups", groups.len()));
        }
        if missing.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(missing.join("; "));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The local address of the run's ALB listener (port 80).
async fn alb_listener(sandbox: &Sandbox, ns: &str) -> Result<std::net::SocketAddr, BenchError> {
    let ingresses: Api<k8s_openapi::api::networking::v1::Ingress> =
        Api::namespaced(sandbox.client(), ns);
    let first = ingresses.get(workload::MEMBERS_BEFORE[0]).await?;
    let hostname = first
        .status_hostname()
        .ok_or_else(|| BenchError::Stuck(format!("{ns}: the Ingress has no address")))?;
    let aws = sandbox
        .aws()
        .ok_or(BenchError::Stuck("no AWS emulator".into()))?;
    Ok(aws.listener_address(&hostname, 80).await?)
}

/// Waits (at most 90 s) for the endpoint to pause itself after the triggering call; names the
/// call that did it.
async fn wait_for_trigger(aws: &AwsEmulator) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline {
        if let Ok(state) = aws.control().faults().await
            && state.paused
        {
            return state
                .mutating
                .iter()
                .rev()
                .find(|c| c.met == "pause")
                .map(|c| c.call.clone());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// Another holder takes the Lease, as after a partition: the leader's next renewal finds it
/// held by someone else. Returns when (Unix seconds).
async fn take_lease(sandbox: &Sandbox) -> Result<f64, BenchError> {
    let leases: Api<Lease> = Api::namespaced(sandbox.client(), NAMESPACE);
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
        k8s_openapi::jiff::Timestamp::now(),
    );
    leases
        .patch(
            "lb-controller-leader",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {
                "holderIdentity": "intruder", "leaseDurationSeconds": 15,
                "acquireTime": now, "renewTime": now,
            }})),
        )
        .await?;
    Ok(crate::clock::now())
}

/// After the Lease was taken mid-pass (the pass waiting on AWS, `taken` the time): lets the
/// controller see it lost the Lease (at its next renewal), lets AWS answer again, and waits until
/// it leads again (the intruder never renews). Says how many mutating calls reached AWS between
/// the theft and leading again, by when they were sent: before the controller saw the loss (its
/// renewal period, which no Lease-based election closes), or after (the write fence's job: none).
async fn lease_lost(
    sandbox: &Sandbox,
    controller: &Controller,
    taken: f64,
) -> Result<String, BenchError> {
    let aws = sandbox
        .aws()
        .ok_or(BenchError::Stuck("no AWS emulator".into()))?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let resumed = crate::clock::now();
    aws.control().set_faults(&[], 31).await?;
    aws.control().pause_aws(false).await?;
    let process = controller
        .process
        .as_ref()
        .ok_or(BenchError::Stuck("no controller process".into()))?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(90);
    while Instant::now() < deadline {
        if chart::lease_holder(sandbox)
            .await
            .is_some_and(|h| h.starts_with(&process.name))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let leading_again = crate::clock::now();
    let seen = loss_seen_at(&process.log).ok_or_else(|| {
        BenchError::Stuck("the controller's log never says it lost the Lease".into())
    })?;
    let state = aws.control().faults().await?;
    let sent = |from: f64, to: f64| {
        state
            .mutating
            .iter()
            .filter(|c| c.arrived >= from && c.arrived < to)
            .count()
    };
    // Sent while it led, held by the paused endpoint, done when AWS answered again: the
    // controller gave them up (it cannot unsend them).
    let in_flight = state
        .mutating
        .iter()
        .filter(|c| c.arrived < taken && c.at >= taken)
        .count();
    Ok(format!(
        "the controller saw the loss {:.1} s after the theft and led again {:.1} s after AWS answered again; mutating AWS calls sent meanwhile: {} before it saw the loss, {} after; {in_flight} sent before the theft, done by AWS when it answered again",
        seen - taken,
        leading_again - resumed,
        sent(taken, seen),
        sent(seen, leading_again),
    ))
}

/// When the controller's log (JSON lines) last says it stopped leading (Unix seconds).
fn loss_seen_at(log: &std::path::Path) -> Option<f64> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| {
            line["fields"]["message"] == "leadership changed"
                && line["fields"]["leading"] == Value::Bool(false)
        })
        .filter_map(|line| {
            let at: k8s_openapi::jiff::Timestamp = line["timestamp"].as_str()?.parse().ok()?;
            Some(at.as_millisecond() as f64 / 1000.0)
        })
        .next_back()
}

/// Waits (at most 180 s) until nothing of ours names the run; what is left then is leaked.
async fn wait_cleaned(
    aws: &AwsEmulator,
    cluster: &str,
    ns: &str,
) -> Result<Vec<String>, BenchError> {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let left = inventory::of_run(&footprint(aws).await?, cluster, ns);
        if left.is_empty() || Instant::now() > deadline {
            return Ok(left);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
