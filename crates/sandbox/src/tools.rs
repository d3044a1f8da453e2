//! Checks for what the sandbox needs from the machine, with a message that says how to get it.

use std::path::PathBuf;

use crate::error::{Result, SandboxError};

/// Finds `tool` on PATH or fails with the hint.
pub fn require(tool: &'static str, hint: &'static str) -> Result<PathBuf> {
    find_on_path(tool).ok_or(SandboxError::MissingTool { tool, hint })
}

pub fn find_on_path(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

pub fn require_go() -> Result<PathBuf> {
    require(
        "go",
        "install Go 1.25 or newer (Debian: `apt-get install golang`, or the official tarball) and put `go` on PATH",
    )
}

pub fn require_iproute2() -> Result<PathBuf> {
    require("ip", "install iproute2 (`apt-get install iproute2`)")
}

pub fn require_root() -> Result<()> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(SandboxError::NotRoot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_tool_every_machine_has() {
        assert!(find_on_path("sh").is_some());
    }

    #[test]
    fn missing_tool_names_itself_and_the_fix() {
        let err = require("surely-not-a-real-tool-xyz", "install it").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("surely-not-a-real-tool-xyz"), "{text}");
        assert!(text.contains("install it"), "{text}");
    }
}
