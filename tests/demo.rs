//! The README's main command keeps working: `lb-controller demo` starts the sandbox, applies the
//! example Deployment + Service, and shows the pods going Ready and answering HTTP.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

#[test]
fn demo_shows_the_example_pods_ready_and_serving_then_stops_on_ctrl_c() {
    let mut demo = Command::new(env!("CARGO_BIN_EXE_lb-controller"))
        .args(["demo", "--for", "180s"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("demo starts");
    let mut lines = BufReader::new(demo.stdout.take().unwrap()).lines();
    let mut applied = Vec::new();
    let mut answered = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        println!("{line}");
        if let Some(what) = line.split("applied ").nth(1) {
            applied.push(what.split_whitespace().next().unwrap_or("").to_string());
        }
        if line.contains("GET http://") && line.contains("-> 200 pod=demo/echo-") {
            answered.push(line);
            if answered.len() == 3 {
                break;
            }
        }
    }
    assert_eq!(applied, ["deployment/echo", "service/echo"]);
    assert_eq!(
        answered.len(),
        3,
        "three echo pods became Ready and answered"
    );
    kill(Pid::from_raw(demo.id() as i32), Signal::SIGINT).unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = demo.wait().unwrap();
    assert!(status.success(), "demo exited with {status}");
    assert!(
        rest.iter().any(|l| l.contains("stopping the sandbox")),
        "{rest:?}"
    );
}
