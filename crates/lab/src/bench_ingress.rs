//! `lb-controller bench-ingress`: the Ingress -> ALB figures on the sandbox.
//!
//! 1. One Ingress alone (the 2048 game's, ip targets, no pods): time from create to the ALB's
//!    hostname in its status, and the AWS calls until settled.
//! 2. A group of `ingresses` Ingresses x `paths` paths created at once: time until every member
//!    has the hostname, AWS calls.
//! 3. One path of one member changed: AWS calls (target: O(1), not O(rules)).
//! 4. A no-op reconcile of the group (an annotation nothing reads changes): AWS calls; the target
//!    is no mutating call.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use lb_sandbox::{Sandbox, SandboxConfig};
use serde_json::{Value, json};

use crate::bench::BenchError;
use crate::call_counts::{describe, mutating, since, snapshot};
use crate::harness::{ControllerHandle, start_controller};
use crate::status_hostname::wait_for_hostnames;

const NS: &str = "bench-alb";
const GROUP: &str = "bench";

#[derive(Debug, Clone, clap::Args)]
pub struct IngressBenchOptions {
    /// Members of the group.
    #[arg(long, default_value_t = 20)]
    pub ingresses: usize,
    /// Paths per member.
    #[arg(long, default_value_t = 5)]
    pub paths: usize,
}

pub async fn run(options: IngressBenchOptions) -> Result<String, BenchError> {
    let sandbox = Sandbox::start(SandboxConfig::default()).await?;
    let controller = start_controller(&sandbox).await?;
    let result = measure(&sandbox, &controller, &options).await;
    controller.stop().await;
    sandbox.shutdown().await;
    result
}

fn service(name: &str) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]},
    }))
    .expect("a valid Service")
}

fn paths(prefix: &str, service: &str, count: usize) -> Vec<Value> {
    (0..count)
        .map(|p| {
            json!({"path": format!("/{prefix}/p{p}"), "pathType": "Prefix",
                "backend": {"service": {"name": service, "port": {"number": 80}}}})
        })
        .collect()
}

/// Member `i` of the group: `paths` paths under `/m<i>/` to its own Service.
fn member(i: usize, count: usize) -> Ingress {
    serde_json::from_value(json!({
        "metadata": {"name": format!("member-{i:02}"), "annotations": {
            "alb.ingress.kubernetes.io/group.name": GROUP,
            "alb.ingress.kubernetes.io/scheme": "internet-facing",
            "alb.ingress.kubernetes.io/target-type": "ip",
        }},
        "spec": {"ingressClassName": "alb", "rules": [{"http": {
            "paths": paths(&format!("m{i:02}"), &format!("svc-{i:02}"), count)}}]},
    }))
    .expect("a valid Ingress")
}

/// Waits until no AWS call was made for `quiet` (the group's passes have settled).
async fn settle(controller: &ControllerHandle, quiet: Duration) {
    let mut last = snapshot(&controller.calls);
    let mut still_since = Instant::now();
    while still_since.elapsed() < quiet {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = snapshot(&controller.calls);
        if now != last {
            last = now;
            still_since = Instant::now();
        }
    }
}

async fn measure(
    sandbox: &Sandbox,
    controller: &ControllerHandle,
    options: &IngressBenchOptions,
) -> Result<String, BenchError> {
    let client = sandbox.client();
    sandbox.create_namespace(NS, &[]).await?;
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), NS);
    let services: Api<Service> = Api::namespaced(client.clone(), NS);
    let calls = &controller.calls;
    let mut out = String::new();
    for i in 0..options.ingresses.max(1) {
        services
            .create(&PostParams::default(), &service(&format!("svc-{i:02}")))
            .await?;
    }

    // 1. One Ingress alone.
    let mut alone = member(0, 1);
    alone.metadata.name = Some("alone".into());
    if let Some(a) = alone.metadata.annotations.as_mut() {
        a.remove("alb.ingress.kubernetes.io/group.name");
    }
    let before = snapshot(calls);
    let started = Instant::now();
    ingresses.create(&PostParams::default(), &alone).await?;
    wait_for_hostnames(&ingresses, 1).await?;
    let took = started.elapsed();
    settle(controller, Duration::from_secs(2)).await;
    let first = since(calls, &before);
    let _ = writeln!(
        out,
        "one Ingress, create -> hostname: {:.0} ms; AWS calls until settled: {} ({} mutating): {}",
        took.as_secs_f64() * 1000.0,
        first.values().sum::<u64>(),
        mutating(&first),
        describe(&first)
    );

    // 2. The group, created at once.
    let before = snapshot(calls);
    let started = Instant::now();
    for i in 0..options.ingresses {
        ingresses
            .create(&PostParams::default(), &member(i, options.paths))
            .await?;
    }
    wait_for_hostnames(&ingresses, options.ingresses + 1).await?;
    let took = started.elapsed();
    settle(controller, Duration::from_secs(3)).await;
    let created = since(calls, &before);
    let _ = writeln!(
        out,
        "group of {} Ingresses x {} paths created at once: every member with the hostname after {:.1} s; AWS calls until settled: {} ({} mutating): {}",
        options.ingresses,
        options.paths,
        took.as_secs_f64(),
        created.values().sum::<u64>(),
        mutating(&created),
        describe(&created)
    );

    // 3. One path of one member changed.
    let before = snapshot(calls);
    let mut new_paths = paths("m00", "svc-00", options.paths);
    new_paths[0]["path"] = json!("/m00/changed");
    let changed = json!({"spec": {"rules": [{"http": {"paths": new_paths}}]}});
    ingresses
        .patch("member-00", &PatchParams::default(), &Patch::Merge(changed))
        .await?;
    settle(controller, Duration::from_secs(3)).await;
    let change = since(calls, &before);
    let _ = writeln!(
        out,
        "one path of one member changed: {} AWS calls ({} mutating): {}",
        change.values().sum::<u64>(),
        mutating(&change),
        describe(&change)
    );

    // 4. No-op.
    let before = snapshot(calls);
    let touch = json!({"metadata": {"annotations": {"bench.lb-controller.dev/touch": "1"}}});
    ingresses
        .patch("member-01", &PatchParams::default(), &Patch::Merge(touch))
        .await?;
    settle(controller, Duration::from_secs(3)).await;
    let noop = since(calls, &before);
    let _ = writeln!(
        out,
        "no-op reconcile of the group: {} AWS calls ({} mutating): {}",
        noop.values().sum::<u64>(),
        mutating(&noop),
        describe(&noop)
    );
    Ok(out)
}
