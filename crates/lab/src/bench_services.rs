//! `lb-controller bench-services`: the Service -> NLB figures on the sandbox.
//!
//! 1. One annotated Service (the seed's, ip targets, no pods): time from create to the NLB's
//!    hostname in its status, and the AWS calls it took, by operation.
//! 2. A no-op reconcile of that Service (an annotation nothing reads changes): AWS calls by
//!    operation; the target is no mutating call.
//! 3. `services` Services created at once: time until every one has its hostname, and AWS calls
//!    per Service.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use lb_sandbox::{Sandbox, SandboxConfig};
use serde_json::json;

use crate::bench::BenchError;
use crate::call_counts::{describe, mutating, since, snapshot};
use crate::harness::{ControllerHandle, start_controller};
use crate::status_hostname::wait_for_hostnames;

const NS: &str = "bench-nlb";

#[derive(Debug, Clone, clap::Args)]
pub struct ServiceBenchOptions {
    /// Services created at once in the last part.
    #[arg(long, default_value_t = 50)]
    pub services: usize,
}

pub async fn run(options: ServiceBenchOptions) -> Result<String, BenchError> {
    let sandbox = Sandbox::start(SandboxConfig::default()).await?;
    let controller = start_controller(&sandbox).await?;
    let result = measure(&sandbox, &controller, &options).await;
    controller.stop().await;
    sandbox.shutdown().await;
    result
}

/// The seed's NLB Service (examples/service-nlb/nlb-ip.yaml) named `name`.
fn nlb_service(name: &str) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": name, "annotations": {
            "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
            "service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing",
            "service.beta.kubernetes.io/aws-load-balancer-healthcheck-port": "8080",
            "service.beta.kubernetes.io/aws-load-balancer-cross-zone-load-balancing-enabled": "true",
            "service.beta.kubernetes.io/aws-load-balancer-target-group-attributes": "deregistration_delay.timeout_seconds=60",
        }},
        "spec": {
            "type": "LoadBalancer",
            "loadBalancerClass": "service.k8s.aws/nlb",
            "selector": {"app": name},
            "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}],
        },
    }))
    .expect("a valid Service")
}

async fn measure(
    sandbox: &Sandbox,
    controller: &ControllerHandle,
    options: &ServiceBenchOptions,
) -> Result<String, BenchError> {
    let client = sandbox.client();
    sandbox.create_namespace(NS, &[]).await?;
    let api: Api<Service> = Api::namespaced(client.clone(), NS);
    let calls = &controller.calls;
    let mut out = String::new();

    // 1. One Service, first reconcile.
    let before = snapshot(calls);
    let started = Instant::now();
    api.create(&PostParams::default(), &nlb_service("first"))
        .await?;
    wait_for_hostnames(&api, 1).await?;
    let first = started.elapsed();
    // The status write wakes one more reconcile: let it finish before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let first_calls = since(calls, &before);
    let _ = writeln!(
        out,
        "first reconcile, create -> hostname: {:.0} ms; AWS calls until settled: {} ({} mutating): {}",
        first.as_secs_f64() * 1000.0,
        first_calls.values().sum::<u64>(),
        mutating(&first_calls),
        describe(&first_calls)
    );

    // 2. A no-op reconcile.
    let before = snapshot(calls);
    let patch = json!({"metadata": {"annotations": {"bench.lb-controller.dev/touch": "1"}}});
    api.patch("first", &PatchParams::default(), &Patch::Merge(patch))
        .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let noop = since(calls, &before);
    let _ = writeln!(
        out,
        "no-op reconcile: {} AWS calls ({} mutating): {}",
        noop.values().sum::<u64>(),
        mutating(&noop),
        describe(&noop)
    );

    // 3. Many Services at once.
    let before = snapshot(calls);
    let started = Instant::now();
    for i in 0..options.services {
        api.create(&PostParams::default(), &nlb_service(&format!("svc-{i:03}")))
            .await?;
    }
    wait_for_hostnames(&api, options.services + 1).await?;
    let all = started.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let burst = since(calls, &before);
    let total: u64 = burst.values().sum();
    let _ = writeln!(
        out,
        "{} Services created at once: all with a hostname after {:.1} s; {} AWS calls, {:.1} per Service ({:.1} mutating per Service): {}",
        options.services,
        all.as_secs_f64(),
        total,
        total as f64 / options.services as f64,
        mutating(&burst) as f64 / options.services as f64,
        describe(&burst)
    );
    Ok(out)
}
