//! The sandbox leaves nothing behind: no child process, network namespace, veth or directory,
//! whether it is shut down, interrupted with Ctrl-C, or killed outright.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::{ListParams, PostParams};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;

fn process_alive(pid: u32) -> bool {
    // A zombie is dead for our purpose; it only waits for its parent to reap it.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

fn netns_exists(name: &str) -> bool {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.split_whitespace().next() == Some(name))
}

fn link_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", name])
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// PIDs of the direct children of `parent`.
fn children_of(parent: u32) -> Vec<u32> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the command name: state, ppid, ...
        let after = stat.rsplit(')').next().unwrap_or("");
        let ppid = after
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(parent) {
            children.push(pid);
        }
    }
    children
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_leaves_no_process_namespace_veth_or_directory() {
    let sandbox = start_sandbox().await;
    // Give it a serving pod, so there are sockets in the namespace at shutdown.
    sandbox.create_namespace("t", &[]).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(sandbox.client(), "t");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 8080}]}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    eventually("the pod Ready", Duration::from_secs(30), || async {
        pods.get("p").await.ok().filter(is_ready)
    })
    .await;

    let pids = sandbox.process_ids();
    let netns = sandbox.netns_name().to_string();
    let veth = sandbox.host_interface().to_string();
    let dir = sandbox.dir().to_path_buf();
    assert_eq!(
        pids.len(),
        4,
        "etcd, kube-apiserver, kube-controller-manager, moto"
    );
    assert!(pids.iter().all(|p| process_alive(*p)));
    assert!(netns_exists(&netns) && link_exists(&veth) && dir.exists());

    sandbox.shutdown().await;
    for pid in pids {
        assert!(!process_alive(pid), "process {pid} survived shutdown");
    }
    assert!(!netns_exists(&netns), "namespace {netns} survived shutdown");
    assert!(!link_exists(&veth), "veth {veth} survived shutdown");
    assert!(!dir.exists(), "{} survived shutdown", dir.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sandboxes_run_at_once_on_distinct_networks() {
    let (a, b) = tokio::join!(start_sandbox(), start_sandbox());
    assert_ne!(a.pod_cidr(), b.pod_cidr());
    assert_ne!(a.netns_name(), b.netns_name());
    assert_ne!(a.api_url(), b.api_url());
    for sandbox in [&a, &b] {
        let nodes: Api<Node> = Api::all(sandbox.client());
        let list = nodes.list(&ListParams::default()).await.unwrap();
        assert_eq!(list.items.len(), 3);
        for node in list.items {
            let address = &node.status.unwrap().addresses.unwrap()[0].address;
            let ip: std::net::Ipv4Addr = address.parse().unwrap();
            assert!(
                sandbox.pod_cidr().contains(&ip),
                "{ip} outside {}",
                sandbox.pod_cidr()
            );
        }
    }
    a.shutdown().await;
    b.shutdown().await;
}

/// Starts `lb-sandbox up`, waits for READY, and returns the process, its network namespace and
/// its directory.
fn start_cli() -> (std::process::Child, String, std::path::PathBuf) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lb-sandbox"))
        .args(["up", "--for", "120s"])
        .env("RUST_LOG", "warn,kube_client::client::builder=off")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut netns = None;
    let mut dir = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.split("network namespace ").nth(1) {
            netns = rest.split(',').next().map(str::to_string);
        }
        if let Some(kubeconfig) = line.trim().strip_prefix("kubeconfig") {
            dir = Path::new(kubeconfig.trim()).parent().map(Path::to_path_buf);
        }
        if line == "READY" {
            break;
        }
    }
    // Keep reading, so the CLI's last lines never meet a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (
        child,
        netns.expect("the CLI printed its network namespace"),
        dir.expect("the CLI printed its kubeconfig"),
    )
}

#[test]
fn ctrl_c_stops_the_cli_and_leaves_nothing_behind() {
    let (mut cli, netns, dir) = start_cli();
    let children = children_of(cli.id());
    assert_eq!(
        children.len(),
        4,
        "etcd, kube-apiserver, kube-controller-manager, moto"
    );
    kill(Pid::from_raw(cli.id() as i32), Signal::SIGINT).unwrap();
    let status = cli.wait().unwrap();
    assert!(status.success(), "{status}");
    for pid in children {
        assert!(!process_alive(pid), "child {pid} survived Ctrl-C");
    }
    assert!(!netns_exists(&netns));
    assert!(!dir.exists(), "{} survived Ctrl-C", dir.display());
}

#[test]
fn a_killed_cli_takes_its_children_with_it_and_the_next_sandbox_cleans_up_after_it() {
    let (mut cli, netns, dir) = start_cli();
    let children = children_of(cli.id());
    assert_eq!(children.len(), 4);
    cli.kill().unwrap(); // SIGKILL: no chance to clean up.
    cli.wait().unwrap();
    // The kernel sends SIGKILL to each child whose parent died (PR_SET_PDEATHSIG).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while children.iter().any(|p| process_alive(*p)) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for pid in &children {
        assert!(
            !process_alive(*pid),
            "child {pid} outlived its killed parent"
        );
    }
    assert!(
        netns_exists(&netns),
        "a killed sandbox cannot remove its namespace itself"
    );
    // The next pod network created on this machine removes the namespace of the dead sandbox.
    let network = lb_sandbox::netns::PodNetwork::create(None).unwrap();
    assert!(
        !netns_exists(&netns),
        "the stale namespace {netns} was not removed"
    );
    network.teardown();
    assert!(!Path::new(&format!("/run/netns/{}", network.netns_name())).exists());
    // And the next sandbox removes its directory (etcd data, logs); a sandbox started by a test
    // running alongside may have done so already.
    lb_sandbox::remove_stale_directories();
    assert!(
        !dir.exists(),
        "the stale directory {} was not removed",
        dir.display()
    );
}
