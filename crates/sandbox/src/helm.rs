//! The `helm` binary the chart's tests render with: built once from its published Go module
//! (`go install helm.sh/helm/v3/cmd/helm@<version>`) with the machine's Go, cached beside the
//! Kubernetes binaries. Rendering is all the tests ask of it (`helm lint`, `helm template`); the
//! objects are then applied to the sandbox's apiserver like any manifest.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::binaries::cache_root;
use crate::error::{Context, Result, SandboxError};
use crate::one_time;
use crate::process::log_tail;
use crate::tools;

pub const HELM_VERSION: &str = "v3.22.0";

/// The cached helm, built first when missing (about a minute on 2 cores). Concurrent callers
/// wait on a file lock instead of building twice.
pub fn ensure() -> Result<PathBuf> {
    let dir = cache_root().join("helm").join(HELM_VERSION);
    let bin_dir = dir.join("bin");
    let helm = bin_dir.join("helm");
    if helm.is_file() {
        return Ok(helm);
    }
    fs::create_dir_all(&bin_dir).context(|| format!("creating {}", bin_dir.display()))?;
    let lock_path = dir.join(".build.lock");
    let lock = File::create(&lock_path).context(|| format!("creating {}", lock_path.display()))?;
    lock.lock()
        .context(|| format!("locking {}", lock_path.display()))?;
    if helm.is_file() {
        return Ok(helm);
    }
    let go = tools::require_go()?;
    eprintln!(
        "[sandbox] building helm {HELM_VERSION}; one time, cached in {}",
        bin_dir.display()
    );
    let log_path = dir.join("build.log");
    let log = File::create(&log_path).context(|| format!("creating {}", log_path.display()))?;
    let log_err = log
        .try_clone()
        .context(|| format!("cloning {}", log_path.display()))?;
    let mut command = Command::new(&go);
    command
        .current_dir(&dir)
        .args(["install", "-ldflags=-s -w"])
        .arg(format!("helm.sh/helm/v3/cmd/helm@{HELM_VERSION}"))
        .env("GOBIN", &bin_dir)
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-buildvcs=false")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    let status = one_time::run(&mut command, "the Go build of helm")?;
    if !status.success() || !helm.is_file() {
        return Err(SandboxError::GoBuild {
            what: "helm".to_string(),
            status: status.to_string(),
            tail: log_tail(&log_path, 30),
            log: log_path,
        });
    }
    Ok(helm)
}

/// `helm <args>` in `dir`; its standard output, or its error output as the error.
pub fn run(helm: &Path, dir: &Path, args: &[&str]) -> Result<String> {
    let output = Command::new(helm)
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context(|| format!("running {}", helm.display()))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(SandboxError::Config(format!(
            "helm {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}
