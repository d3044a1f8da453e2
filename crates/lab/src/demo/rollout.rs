//! The default demo's finale: once Deployment `echo` is fully Ready, a rolling update under 50
//! requests per second through the ALB, with a tally every 5 s and a verdict once the old pods are
//! gone (none fail, thanks to the gates and the termination hold).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::{Patch, PatchParams};
use lb_sandbox::Sandbox;
use lb_sandbox::testing::{pods_of, rollout_complete};

use super::follow::say;
use crate::bench_rollout::load::Load;

/// The Deployment the default examples create.
pub const DEPLOYMENT: &str = "echo";
const REPLICAS: usize = 3;
const RATE: u32 = 50;

pub async fn roll_under_load(sandbox: &Sandbox, namespace: &str, alb: SocketAddr, clock: Instant) {
    let client = sandbox.client();
    while !rollout_complete(&client, namespace, DEPLOYMENT, REPLICAS as i32).await {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let load = Load::start(alb, "/", RATE);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let patch = serde_json::json!({"spec": {"template": {"metadata": {"annotations": {"demo/rollout": "2"}}}}});
    if let Err(err) = deployments
        .patch(DEPLOYMENT, &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        say(clock, &format!("rolling update not started: {err}"));
        return std::future::pending().await;
    }
    say(
        clock,
        &format!(
            "rolling update of deployment/{DEPLOYMENT} started, under {RATE} requests/s through the ALB"
        ),
    );
    let started = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let (ok, failed) = load.tally();
        say(clock, &format!("    load: {ok} answered, {failed} failed"));
        let done = rollout_complete(&client, namespace, DEPLOYMENT, REPLICAS as i32).await
            && pods_of(&client, namespace, DEPLOYMENT).await.len() == REPLICAS;
        if done {
            break;
        }
    }
    let samples = load.stop().await;
    let failed = samples.iter().filter(|s| s.outcome.is_failure()).count();
    say(
        clock,
        &format!(
            "rolling update done in {:.0} s, old pods gone: {} requests, {failed} failed",
            started.elapsed().as_secs_f64(),
            samples.len()
        ),
    );
    std::future::pending().await
}
