//! The control plane's binaries: etcd, kube-apiserver and kube-controller-manager, built once from
//! their published Go modules with the machine's Go and cached outside the repository.
//!
//! The Go helper module (go.mod, go.sum, a main for etcd) lives in `crates/sandbox/go/` and is
//! embedded here, so the sandbox builds the same pinned versions from wherever it runs.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::error::{Context, Result, SandboxError};
use crate::one_time;
use crate::process::log_tail;
use crate::tools;

pub const KUBERNETES_VERSION: &str = "v1.35.4";
pub const ETCD_VERSION: &str = "v3.6.5";

const GO_MOD: &str = include_str!("../go/go.mod");
const GO_SUM: &str = include_str!("../go/go.sum");
const ETCD_MAIN: &str = include_str!("../go/cmd/etcd/main.go");

/// Paths of the three binaries, all present and executable.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub etcd: PathBuf,
    pub kube_apiserver: PathBuf,
    pub kube_controller_manager: PathBuf,
}

/// Root of the sandbox's caches: `$LB_SANDBOX_CACHE`, else `$XDG_CACHE_HOME/lb-controller`, else
/// `~/.cache/lb-controller`.
pub fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("LB_SANDBOX_CACHE") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("lb-controller");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    home.join(".cache").join("lb-controller")
}

/// One binary to build: its file name, the Go package, and the linker flags that stamp its version.
struct Target {
    file: &'static str,
    package: &'static str,
    stamp_kubernetes_version: bool,
}

const TARGETS: [Target; 3] = [
    Target {
        file: "etcd",
        package: "./cmd/etcd",
        stamp_kubernetes_version: false,
    },
    Target {
        file: "kube-apiserver",
        package: "k8s.io/kubernetes/cmd/kube-apiserver",
        stamp_kubernetes_version: true,
    },
    Target {
        file: "kube-controller-manager",
        package: "k8s.io/kubernetes/cmd/kube-controller-manager",
        stamp_kubernetes_version: true,
    },
];

/// Returns the cached binaries, building the missing ones first (blocking; minutes on a cold cache).
/// Concurrent callers, in this process or others, wait on a file lock instead of building twice.
pub fn ensure() -> Result<Binaries> {
    let version_dir = cache_root().join("k8s").join(KUBERNETES_VERSION);
    let bin_dir = version_dir.join("bin");
    let binaries = Binaries {
        etcd: bin_dir.join("etcd"),
        kube_apiserver: bin_dir.join("kube-apiserver"),
        kube_controller_manager: bin_dir.join("kube-controller-manager"),
    };
    if all_present(&bin_dir) {
        return Ok(binaries);
    }

    fs::create_dir_all(&bin_dir).context(|| format!("creating {}", bin_dir.display()))?;
    let lock_path = version_dir.join(".build.lock");
    let lock = File::create(&lock_path).context(|| format!("creating {}", lock_path.display()))?;
    lock.lock()
        .context(|| format!("locking {}", lock_path.display()))?;
    // Another process may have finished the build while we waited for the lock.
    if all_present(&bin_dir) {
        return Ok(binaries);
    }

    let go = tools::require_go()?;
    let src_dir = version_dir.join("src");
    write_go_module(&src_dir)?;
    for target in &TARGETS {
        let out = bin_dir.join(target.file);
        if out.exists() {
            continue;
        }
        build(&go, &src_dir, target, &out)?;
    }
    Ok(binaries)
}

fn all_present(bin_dir: &Path) -> bool {
    TARGETS.iter().all(|t| bin_dir.join(t.file).is_file())
}

fn write_go_module(src_dir: &Path) -> Result<()> {
    let etcd_dir = src_dir.join("cmd").join("etcd");
    fs::create_dir_all(&etcd_dir).context(|| format!("creating {}", etcd_dir.display()))?;
    for (path, text) in [
        (src_dir.join("go.mod"), GO_MOD),
        (src_dir.join("go.sum"), GO_SUM),
        (etcd_dir.join("main.go"), ETCD_MAIN),
    ] {
        fs::write(&path, text).context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn build(go: &Path, src_dir: &Path, target: &Target, out: &Path) -> Result<()> {
    let started = Instant::now();
    eprintln!(
        "[sandbox] building {} (Kubernetes {KUBERNETES_VERSION}, etcd {ETCD_VERSION}) with {}; one time, cached in {}",
        target.file,
        go.display(),
        out.parent()
            .map(Path::display)
            .map(|d| d.to_string())
            .unwrap_or_default()
    );
    let log_path = src_dir.join(format!("build-{}.log", target.file));
    let log = File::create(&log_path).context(|| format!("creating {}", log_path.display()))?;
    let log_err = log
        .try_clone()
        .context(|| format!("cloning {}", log_path.display()))?;
    let partial = out.with_extension("partial");

    let mut ldflags = String::from("-s -w");
    if target.stamp_kubernetes_version {
        let minor = KUBERNETES_VERSION.split('.').nth(1).unwrap_or("0");
        ldflags.push_str(&format!(
            " -X k8s.io/component-base/version.gitVersion={KUBERNETES_VERSION} \
              -X k8s.io/component-base/version.gitMajor=1 \
              -X k8s.io/component-base/version.gitMinor={minor} \
              -X k8s.io/component-base/version.gitTreeState=clean"
        ));
    }
    let mut command = Command::new(go);
    command
        .current_dir(src_dir)
        .args(["build", "-o"])
        .arg(&partial)
        .arg(format!("-ldflags={ldflags}"))
        .arg(target.package)
        // Never fetch a toolchain: the machine's Go builds it or the error says why.
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=readonly -buildvcs=false")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    let status = one_time::run(&mut command, &format!("the Go build of {}", target.file))?;
    if !status.success() {
        return Err(SandboxError::GoBuild {
            what: target.file.to_string(),
            status: status.to_string(),
            tail: log_tail(&log_path, 30),
            log: log_path,
        });
    }
    fs::rename(&partial, out).context(|| format!("moving {} into place", out.display()))?;
    eprintln!(
        "[sandbox] built {} in {:.0?}",
        target.file,
        started.elapsed()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_go_module_pins_the_versions_we_announce() {
        assert!(GO_MOD.contains(&format!("k8s.io/kubernetes {KUBERNETES_VERSION}")));
        assert!(GO_MOD.contains(&format!("go.etcd.io/etcd/server/v3 {ETCD_VERSION}")));
        // Every staging module is replaced with the published v0.<minor>.<patch>.
        let staging = KUBERNETES_VERSION.replacen("v1.", "v0.", 1);
        assert!(GO_MOD.contains(&format!("k8s.io/client-go => k8s.io/client-go {staging}")));
        assert!(GO_SUM.contains("k8s.io/kubernetes"));
    }
}
