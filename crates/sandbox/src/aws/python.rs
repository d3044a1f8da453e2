//! The Python side of the sandbox's AWS: a venv with the pinned moto (created once, cached outside
//! the repository), and the `lb_sandbox_aws` package that extends it (embedded here and written
//! next to each sandbox, so it always matches this build).

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::binaries::cache_root;
use crate::error::{Context, Result, SandboxError};
use crate::process::log_tail;
use crate::tools;

const REQUIREMENTS: &str = include_str!("../../aws/requirements.txt");
const PACKAGE: &str = "lb_sandbox_aws";
const PACKAGE_FILES: [(&str, &str); 14] = [
    (
        "__init__.py",
        include_str!("../../aws/lb_sandbox_aws/__init__.py"),
    ),
    (
        "__main__.py",
        include_str!("../../aws/lb_sandbox_aws/__main__.py"),
    ),
    (
        "control.py",
        include_str!("../../aws/lb_sandbox_aws/control.py"),
    ),
    (
        "dataplane.py",
        include_str!("../../aws/lb_sandbox_aws/dataplane.py"),
    ),
    (
        "elbv2_patch.py",
        include_str!("../../aws/lb_sandbox_aws/elbv2_patch.py"),
    ),
    (
        "faults.py",
        include_str!("../../aws/lb_sandbox_aws/faults.py"),
    ),
    (
        "footprint.py",
        include_str!("../../aws/lb_sandbox_aws/footprint.py"),
    ),
    (
        "guard.py",
        include_str!("../../aws/lb_sandbox_aws/guard.py"),
    ),
    (
        "httpwire.py",
        include_str!("../../aws/lb_sandbox_aws/httpwire.py"),
    ),
    (
        "idempotency.py",
        include_str!("../../aws/lb_sandbox_aws/idempotency.py"),
    ),
    (
        "network.py",
        include_str!("../../aws/lb_sandbox_aws/network.py"),
    ),
    ("peer.py", include_str!("../../aws/lb_sandbox_aws/peer.py")),
    ("seed.py", include_str!("../../aws/lb_sandbox_aws/seed.py")),
    (
        "targets.py",
        include_str!("../../aws/lb_sandbox_aws/targets.py"),
    ),
];

/// The venv's interpreter.
pub fn ensure_venv() -> Result<PathBuf> {
    let root = cache_root().join("python");
    let venv = root.join(format!("moto-venv-{:016x}", fnv1a(REQUIREMENTS.as_bytes())));
    let python = venv.join("bin").join("python");
    let complete = venv.join(".complete");
    if complete.exists() {
        return Ok(python);
    }
    fs::create_dir_all(&root).context(|| format!("creating {}", root.display()))?;
    let lock_path = root.join(".venv.lock");
    let lock = File::create(&lock_path).context(|| format!("creating {}", lock_path.display()))?;
    lock.lock()
        .context(|| format!("locking {}", lock_path.display()))?;
    if complete.exists() {
        return Ok(python);
    }
    let python3 = tools::require(
        "python3",
        "install Python 3.10 or newer with venv support (Debian: `apt-get install python3 python3-venv`)",
    )?;
    let started = Instant::now();
    eprintln!(
        "[sandbox] creating the moto venv in {} (one time)",
        venv.display()
    );
    if venv.exists() {
        fs::remove_dir_all(&venv).context(|| format!("removing the partial {}", venv.display()))?;
    }
    let log = root.join("venv.log");
    run_logged(
        &python3,
        &["-m", "venv", &venv.to_string_lossy()],
        &log,
        "the Python venv",
    )?;
    let requirements = venv.join("requirements.txt");
    fs::write(&requirements, REQUIREMENTS)
        .context(|| format!("writing {}", requirements.display()))?;
    let pip = venv.join("bin").join("pip");
    run_logged(
        &pip,
        &[
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "--quiet",
            "-r",
            &requirements.to_string_lossy(),
        ],
        &log,
        "moto (pip install)",
    )?;
    File::create(&complete).context(|| format!("creating {}", complete.display()))?;
    eprintln!("[sandbox] moto venv ready in {:.0?}", started.elapsed());
    Ok(python)
}

fn run_logged(program: &Path, args: &[&str], log: &Path, what: &str) -> Result<()> {
    let out = File::create(log).context(|| format!("creating {}", log.display()))?;
    let err = out
        .try_clone()
        .context(|| format!("cloning {}", log.display()))?;
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    let status = crate::one_time::run(&mut command, what)?;
    if status.success() {
        Ok(())
    } else {
        Err(SandboxError::Command {
            command: format!("{} {} (building {what})", program.display(), args.join(" ")),
            stderr: log_tail(log, 20),
        })
    }
}

/// Writes the `lb_sandbox_aws` package under `dir` and returns the directory to put on PYTHONPATH.
pub fn write_package(dir: &Path) -> Result<PathBuf> {
    let package = dir.join(PACKAGE);
    fs::create_dir_all(&package).context(|| format!("creating {}", package.display()))?;
    for (name, text) in PACKAGE_FILES {
        let path = package.join(name);
        fs::write(&path, text).context(|| format!("writing {}", path.display()))?;
    }
    Ok(dir.to_path_buf())
}

/// FNV-1a: a stable hash for cache directory names (std's hasher may change between releases).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirements_pin_moto_with_the_server_extra_dependencies() {
        assert!(REQUIREMENTS.lines().any(|l| l == "moto==5.2.5"));
        assert!(REQUIREMENTS.lines().any(|l| l.starts_with("Flask==")));
        assert!(
            REQUIREMENTS
                .lines()
                .filter(|l| !l.is_empty())
                .all(|l| l.contains("=="))
        );
    }

    #[test]
    fn package_is_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_package(dir.path()).unwrap();
        for (name, _) in PACKAGE_FILES {
            assert!(path.join(PACKAGE).join(name).is_file(), "{name}");
        }
    }

    #[test]
    fn fnv1a_is_stable() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
