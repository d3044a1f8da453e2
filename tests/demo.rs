//! The README's main command keeps working: `lb-controller demo` starts the sandbox and the
//! controller, binds the example Service to an ALB target group, and shows targets registering,
//! turning healthy, gates flipping, pods Ready, and requests answered through the ALB; then a
//! rolling update under load that fails no request.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

#[test]
fn demo_shows_targets_healthy_gates_flipping_the_alb_answering_and_a_clean_rollout_then_stops_on_ctrl_c()
 {
    let mut demo = Command::new(env!("CARGO_BIN_EXE_lb-controller"))
        .args(["demo", "--for", "180s"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("demo starts");
    let mut lines = BufReader::new(demo.stdout.take().unwrap()).lines();
    let mut applied = Vec::new();
    let (mut healthy, mut gated_ready, mut answered) = (0, 0, 0);
    let mut rollout = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        println!("{line}");
        if let Some(what) = line.split("applied ").nth(1) {
            applied.push(what.split_whitespace().next().unwrap_or("").to_string());
        }
        if line.contains("in target group echo: healthy") {
            healthy += 1;
        }
        if line.contains(" Ready ") && line.contains("gate True") {
            gated_ready += 1;
        }
        if line.contains("GET http://echo/ -> 200 pod=demo/echo-") {
            answered += 1;
        }
        if line.contains("rolling update done") {
            rollout = Some(line);
            break;
        }
    }
    assert_eq!(
        applied,
        [
            "namespace/nlb-demo",
            "targetgroupbinding/echo",
            "service/echo",
            "deployment/echo",
            "service/svc-nlb-ip-type",
            "deployment/deploy-echo",
            "deployment/ng",
            "service/ng",
            "deployment/ng-canary",
            "service/ng-canary",
            "ingress/traffic-split"
        ]
    );
    assert!(
        healthy >= 3 && gated_ready >= 3 && answered >= 2,
        "healthy {healthy}, ready {gated_ready}, answered {answered}"
    );
    let rollout = rollout.expect("the demo rolled the Deployment under load");
    assert!(rollout.ends_with(", 0 failed"), "{rollout}");
    kill(Pid::from_raw(demo.id() as i32), Signal::SIGINT).unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = demo.wait().unwrap();
    assert!(status.success(), "demo exited with {status}");
    assert!(
        rest.iter().any(|l| l.contains("stopping the sandbox")),
        "{rest:?}"
    );
    // The seed's NLB Service is in the outcome with its NLB.
    assert!(
        rest.iter().any(|l| l.contains("NLB k8s-nlbdemo-svcnlbip-")),
        "{rest:?}"
    );
}

/// The upstream guide's TargetGroupBinding samples, as written, with a Service and Deployment
/// beside them (`examples/upstream-guide/`): every object applies, every binding's targets turn
/// healthy (ip, instance on the selected nodes, and a target group in another account), and the
/// demo's report says so.
#[test]
fn the_upstream_guide_samples_apply_unchanged_and_their_targets_turn_healthy() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut manifests: Vec<String> = std::fs::read_dir(root.join("examples/upstream-guide"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| p.display().to_string())
        .collect();
    manifests.sort();
    let report = std::env::temp_dir().join(format!("upstream-guide-{}.json", std::process::id()));
    let mut args = vec!["demo".to_string(), "--for".into(), "40s".into()];
    args.push("--report".into());
    args.push(report.display().to_string());
    args.push("--manifests".into());
    args.extend(manifests);
    let output = Command::new(env!("CARGO_BIN_EXE_lb-controller"))
        .args(&args)
        .current_dir(root)
        .stderr(Stdio::inherit())
        .output()
        .expect("demo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "demo exited with {}",
        output.status
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("report written")).unwrap();
    let objects = report["objects"].as_array().unwrap();
    for object in objects {
        assert_eq!(object["applied"], true, "{object}");
    }
    let bindings: Vec<&serde_json::Value> = objects
        .iter()
        .filter(|o| o["kind"] == "TargetGroupBinding")
        .collect();
    let names: Vec<String> = bindings
        .iter()
        .map(|b| {
            format!(
                "{}/{}",
                b["namespace"].as_str().unwrap(),
                b["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            "demo/my-tgb",
            "instance-sample/my-tgb",
            "nlb-game-2048-1/peered-tg"
        ]
    );
    for binding in bindings {
        let targets = binding["targets"].as_array().expect("targets");
        assert_eq!(targets.len(), 2, "{binding}");
        assert!(targets.iter().all(|t| t["state"] == "healthy"), "{binding}");
        assert!(
            binding["summary"]
                .as_str()
                .unwrap()
                .starts_with("Ready=True (Synced)"),
            "{binding}"
        );
    }
    assert_eq!(
        report["warnings"],
        serde_json::json!([]),
        "no Warning events"
    );
    assert!(
        stdout.contains("emulating AWS account 155642222660"),
        "{stdout}"
    );
}

/// The seed's NLB Service through the demo (`examples/service-nlb/nlb-ip.yaml`): the report
/// shows its NLB, connections through the listener answered by both pods, its targets healthy
/// and its SuccessfullyReconciled Event.
#[test]
fn the_demo_shows_the_nlb_of_the_seeds_service_and_who_answers_through_it() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let report = std::env::temp_dir().join(format!("service-nlb-{}.json", std::process::id()));
    let args = [
        "demo".to_string(),
        "--for".into(),
        "60s".into(),
        "--report".into(),
        report.display().to_string(),
        "--manifests".into(),
        "examples/service-nlb/nlb-ip.yaml".into(),
    ];
    let output = Command::new(env!("CARGO_BIN_EXE_lb-controller"))
        .args(&args)
        .current_dir(root)
        .stderr(Stdio::inherit())
        .output()
        .expect("demo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "demo exited with {}",
        output.status
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("report written")).unwrap();
    let service = report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "Service")
        .expect("the Service in the report")
        .clone();
    let nlb = &service["load_balancer"];
    assert!(
        nlb["hostname"]
            .as_str()
            .unwrap()
            .starts_with("k8s-nlbdemo-svcnlbip-"),
        "{service}"
    );
    let listener = &nlb["listeners"][0];
    assert_eq!(
        (listener["protocol"].as_str(), listener["port"].as_u64()),
        (Some("TCP"), Some(80))
    );
    let answered: Vec<&String> = listener["answered_by"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(answered.len(), 2, "both pods answer: {service}");
    assert!(
        answered
            .iter()
            .all(|who| who.starts_with("nlb-demo/deploy-echo-")),
        "{service}"
    );
    let targets = service["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 2, "{service}");
    assert!(targets.iter().all(|t| t["state"] == "healthy"), "{service}");
    assert!(
        nlb["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str().unwrap().contains("SuccessfullyReconciled")),
        "{service}"
    );
}

/// A first `demo` on a fresh machine starts with one-time builds (minutes). Ctrl-C then stops the
/// demo and its build child too, instead of leaving `go build` running or waiting for it.
#[test]
fn ctrl_c_during_the_one_time_build_stops_the_build_too() {
    let cache = tempfile::tempdir().expect("an empty cache");
    let mut demo = Command::new(env!("CARGO_BIN_EXE_lb-controller"))
        .args(["demo"])
        .env("LB_SANDBOX_CACHE", cache.path())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("demo starts");
    let mut stderr = BufReader::new(demo.stderr.take().unwrap()).lines();
    let building = stderr
        .by_ref()
        .map_while(Result::ok)
        .find(|line| line.contains("[sandbox] building"));
    assert!(building.is_some(), "the demo started a one-time build");
    kill(Pid::from_raw(demo.id() as i32), Signal::SIGINT).unwrap();
    let status = demo.wait().unwrap();
    let stdout: Vec<String> = BufReader::new(demo.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .collect();
    assert!(status.success(), "demo exited with {status}");
    assert!(
        stdout
            .iter()
            .any(|l| l.contains("stopped before the sandbox was ready")),
        "{stdout:?}"
    );
    // No build of that cache lives on (its command line names the cache directory).
    let cache_path = cache.path().display().to_string();
    let survivors: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&cache_path))
        .collect();
    assert!(survivors.is_empty(), "{survivors:?}");
    let built = cache.path().join("k8s/v1.35.4/bin/kube-controller-manager");
    assert!(!built.exists(), "the build did not run to its end");
}

/// The seeds' Ingresses through the demo (`examples/ingress-alb/`): the canary's ALB shows its
/// weighted rule and both Services answering it; the SSL redirect's ALB shows HTTP answering 301
/// to HTTPS (reported, not followed) and HTTPS answered by the game's Service.
#[test]
fn the_demo_shows_each_alb_its_rules_and_who_answers_them() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let report = std::env::temp_dir().join(format!("ingress-alb-{}.json", std::process::id()));
    let args = [
        "demo".to_string(),
        "--for".into(),
        "60s".into(),
        "--report".into(),
        report.display().to_string(),
        "--manifests".into(),
        "examples/ingress-alb/canary.yaml".into(),
        "examples/ingress-alb/game-2048.yaml".into(),
        "examples/ingress-alb/ssl-redirect.yaml".into(),
    ];
    let output = Command::new(env!("CARGO_BIN_EXE_lb-controller"))
        .args(&args)
        .current_dir(root)
        .stderr(Stdio::inherit())
        .output()
        .expect("demo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "demo exited with {}",
        output.status
    );
    let written = std::fs::read_to_string(&report).expect("report written");
    let _ = std::fs::remove_file(&report);
    let report: serde_json::Value = serde_json::from_str(&written).unwrap();
    let ingress = |name: &str| {
        report["objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["kind"] == "Ingress" && o["name"] == name)
            .unwrap_or_else(|| panic!("Ingress {name} in the report"))
            .clone()
    };
    let canary = ingress("traffic-split");
    let alb = &canary["application_load_balancer"];
    assert!(
        alb["hostname"]
            .as_str()
            .unwrap()
            .starts_with("traffic-split-"),
        "{canary}"
    );
    let rule = &alb["listeners"][0]["rules"][0];
    assert!(
        rule["action"].as_str().unwrap().contains("weight 50"),
        "{rule}"
    );
    let shares = rule["probe"]["by_service"].as_object().unwrap();
    assert_eq!(shares.len(), 2, "both Services answer: {rule}");
    assert!(
        shares
            .values()
            .all(|v| (25.0..=75.0).contains(&v.as_f64().unwrap())),
        "{rule}"
    );
    let game = ingress("ingress-2048");
    let listeners = game["application_load_balancer"]["listeners"]
        .as_array()
        .unwrap()
        .clone();
    let http = listeners.iter().find(|l| l["port"] == 80).expect("HTTP:80");
    let redirected = http["default_probe"]["by_status"].as_object().unwrap();
    assert!(
        redirected.keys().all(|k| k.starts_with("301 -> https://")),
        "{http}"
    );
    let https = listeners
        .iter()
        .find(|l| l["port"] == 443)
        .expect("HTTPS:443");
    let answered = &https["rules"][0]["probe"];
    assert_eq!(
        answered["by_status"]["200"].as_f64(),
        Some(100.0),
        "{https}"
    );
    assert_eq!(
        answered["by_service"]["game-2048/service-2048"].as_f64(),
        Some(100.0),
        "{https}"
    );
}

/// The seeds' canary and SSL redirect as Gateway API (`examples/gateway/`) through the demo, as
/// their Ingress versions: the canary's HTTPRoute splits between both Services; the SSL
/// redirect's HTTP listener answers 301 to HTTPS and its HTTPS listener (the certificate from a
/// Secret, imported into ACM) is answered by the game's Service.
#[test]
fn the_demo_shows_each_gateway_alb_its_rules_and_who_answers_them() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let report = std::env::temp_dir().join(format!("gateway-alb-{}.json", std::process::id()));
    let args = [
        "demo".to_string(),
        "--for".into(),
        "90s".into(),
        "--report".into(),
        report.display().to_string(),
        "--manifests".into(),
        "examples/gateway/echo.yaml".into(),
        "examples/gateway/canary.yaml".into(),
        "examples/gateway/ssl-redirect.yaml".into(),
        "examples/gateway/sandbox-tls-secret.yaml".into(),
    ];
    let output = Command::new(env!("CARGO_BIN_EXE_lb-controller"))
        .args(&args)
        .current_dir(root)
        .stderr(Stdio::inherit())
        .output()
        .expect("demo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "demo exited with {}",
        output.status
    );
    let written = std::fs::read_to_string(&report).expect("report written");
    let _ = std::fs::remove_file(&report);
    let report: serde_json::Value = serde_json::from_str(&written).unwrap();
    let gateway = |name: &str| {
        report["objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["kind"] == "Gateway" && o["name"] == name)
            .unwrap_or_else(|| panic!("Gateway {name} in the report"))
            .clone()
    };
    let canary = gateway("traffic-split");
    let rule = &canary["application_load_balancer"]["listeners"][0]["rules"][0];
    assert!(
        rule["action"].as_str().unwrap().contains("weight 50"),
        "{canary}"
    );
    let shares = rule["probe"]["by_service"].as_object().unwrap();
    assert_eq!(shares.len(), 2, "both Services answer: {rule}");
    assert!(
        shares
            .values()
            .all(|v| (25.0..=75.0).contains(&v.as_f64().unwrap())),
        "{rule}"
    );
    let game = gateway("game-2048");
    let listeners = game["application_load_balancer"]["listeners"]
        .as_array()
        .unwrap_or_else(|| panic!("{game}"))
        .clone();
    let http = listeners.iter().find(|l| l["port"] == 80).expect("HTTP:80");
    let redirected = http["rules"][0]["probe"]["by_status"].as_object().unwrap();
    assert!(
        !redirected.is_empty() && redirected.keys().all(|k| k.starts_with("301 -> https://")),
        "{http}"
    );
    let https = listeners
        .iter()
        .find(|l| l["port"] == 443)
        .expect("HTTPS:443");
    let answered = &https["rules"][0]["probe"];
    assert_eq!(
        answered["by_status"]["200"].as_f64(),
        Some(100.0),
        "{https}"
    );
    assert_eq!(
        answered["by_service"]["game-2048-gateway/service-2048"].as_f64(),
        Some(100.0),
        "{https}"
    );
}
