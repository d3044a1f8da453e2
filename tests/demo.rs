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
        if line.contains("in ALB target group: healthy") {
            healthy += 1;
        }
        if line.contains(" Ready ") && line.contains("gate True") {
            gated_ready += 1;
        }
        if line.contains("GET http://echo-alb/ -> 200 pod=demo/echo-") {
            answered += 1;
        }
        if line.contains("rolling update done") {
            rollout = Some(line);
            break;
        }
    }
    assert_eq!(
        applied,
        ["targetgroupbinding/echo", "service/echo", "deployment/echo"]
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
}
