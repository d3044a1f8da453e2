//! Child processes of the sandbox (etcd, kube-apiserver, kube-controller-manager).
//!
//! Each child logs to a file in the sandbox directory, runs in its own process group (a Ctrl-C in the
//! terminal reaches only us, and we stop the children in order), and gets SIGKILL from the kernel if
//! the thread that spawned it dies (`PR_SET_PDEATHSIG`), so even a `kill -9` of the sandbox leaves no
//! orphan. Spawn only from long-lived threads: a tokio worker or the main thread, never from
//! `spawn_blocking`, whose threads exit when idle.

use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::error::{Context, Result, SandboxError};

pub struct ChildProcess {
    name: String,
    child: Child,
    log: PathBuf,
    stopped: bool,
}

impl ChildProcess {
    pub fn spawn<I, S>(name: &str, program: &Path, args: I, log: &Path) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Self::spawn_with_env(name, program, args, &[], log)
    }

    /// Like `spawn`, with extra environment variables.
    pub fn spawn_with_env<I, S>(
        name: &str,
        program: &Path,
        args: I,
        envs: &[(&str, &str)],
        log: &Path,
    ) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out = File::create(log).context(|| format!("creating {}", log.display()))?;
        let err = out
            .try_clone()
            .context(|| format!("cloning {}", log.display()))?;
        let parent = nix::unistd::getpid();
        let mut command = Command::new(program);
        command
            .args(args)
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        // SAFETY: only async-signal-safe calls (prctl, getppid, _exit) run between fork and exec.
        unsafe {
            command.pre_exec(move || {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)?;
                // The parent may have died before prctl took effect.
                if nix::unistd::getppid() != parent {
                    nix::libc::_exit(1);
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .context(|| format!("starting {name} ({})", program.display()))?;
        tracing::debug!(name, pid = child.id(), log = %log.display(), "started child process");
        Ok(Self {
            name: name.to_string(),
            child,
            log: log.to_path_buf(),
            stopped: false,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The exit status if the child has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The error to report when the child died: its status and the end of its log.
    pub fn exited_error(&self, status: ExitStatus) -> SandboxError {
        SandboxError::ChildExited {
            name: self.name.clone(),
            status: status.to_string(),
            log: self.log.clone(),
            tail: log_tail(&self.log, 25),
        }
    }

    pub fn not_ready_error(&self, waited: Duration) -> SandboxError {
        SandboxError::NotReady {
            name: self.name.clone(),
            waited,
            log: self.log.clone(),
            tail: log_tail(&self.log, 25),
        }
    }

    /// SIGTERM, then SIGKILL after `grace`; always reaps the child.
    pub fn stop(&mut self, grace: Duration) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        if self.exited().is_some() {
            return;
        }
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(2));
    }
}

/// The last `lines` lines of a log file, or a note saying it could not be read.
pub fn log_tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(err) => format!("(log {} unreadable: {err})", path.display()),
    }
}

/// Whether the log says a listen address was taken: the port we picked was grabbed in between.
pub fn log_says_address_in_use(path: &Path) -> bool {
    std::fs::read_to_string(path)
        .map(|text| text.contains("address already in use"))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, "a\nb\nc\nd\n").unwrap();
        assert_eq!(log_tail(&path, 2), "c\nd");
        assert_eq!(log_tail(&path, 10), "a\nb\nc\nd");
        assert!(log_tail(&dir.path().join("missing"), 2).contains("unreadable"));
    }

    #[test]
    fn stop_reaps_a_running_child() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = ChildProcess::spawn(
            "sleeper",
            Path::new("/bin/sleep"),
            ["30"],
            &dir.path().join("log"),
        )
        .unwrap();
        let pid = child.pid();
        assert!(child.exited().is_none());
        child.stop(Duration::from_secs(2));
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
    }

    #[test]
    fn exited_error_carries_the_log_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = ChildProcess::spawn(
            "failing",
            Path::new("/bin/sh"),
            ["-c", "echo boom; exit 3"],
            &dir.path().join("log"),
        )
        .unwrap();
        let status = loop {
            if let Some(status) = child.exited() {
                break status;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let text = child.exited_error(status).to_string();
        assert!(text.contains("failing") && text.contains("boom"), "{text}");
    }
}
