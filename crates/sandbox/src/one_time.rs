//! One-time builds (the Go builds of etcd and Kubernetes, the moto venv) as children that can be
//! cancelled: a command stopped while they run (Ctrl-C during a first `demo`) stops them too,
//! instead of waiting minutes for a build nobody wants any more.
//!
//! Each build child runs in a process group of its own (so a terminal's Ctrl-C reaches only us,
//! and we stop the whole group: `go build` runs compilers as its children) and dies with the
//! thread that waits for it (`PR_SET_PDEATHSIG`), so even a `kill -9` leaves no build behind.

use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::error::{Context, Result, SandboxError};

static CANCELLED: AtomicBool = AtomicBool::new(false);
/// Process groups of the build children running now.
static RUNNING: Mutex<Vec<i32>> = Mutex::new(Vec::new());

fn running() -> std::sync::MutexGuard<'static, Vec<i32>> {
    RUNNING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Stops every one-time build of this process, running or to come.
pub fn cancel() {
    CANCELLED.store(true, Ordering::SeqCst);
    for group in running().iter() {
        let _ = killpg(Pid::from_raw(*group), Signal::SIGTERM);
    }
}

/// Runs `command` to its end (blocking) as a cancellable build child; `what` names it in errors.
pub fn run(command: &mut Command, what: &str) -> Result<ExitStatus> {
    let cancelled = || SandboxError::Cancelled(what.to_string());
    if CANCELLED.load(Ordering::SeqCst) {
        return Err(cancelled());
    }
    command.process_group(0);
    // SAFETY: only an async-signal-safe call (prctl) runs between fork and exec.
    unsafe {
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
        });
    }
    let mut child = command.spawn().context(|| format!("starting {what}"))?;
    let group = i32::try_from(child.id()).unwrap_or(i32::MAX);
    running().push(group);
    // Cancelled between the check above and the registration: stop it now.
    if CANCELLED.load(Ordering::SeqCst) {
        let _ = killpg(Pid::from_raw(group), Signal::SIGTERM);
    }
    let status = child.wait().context(|| format!("waiting for {what}"));
    running().retain(|g| *g != group);
    if CANCELLED.load(Ordering::SeqCst) {
        return Err(cancelled());
    }
    status
}
