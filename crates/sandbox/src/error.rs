//! Errors of the sandbox. Each variant carries what a person needs to act on it: which tool is
//! missing and how to get it, which process died and the tail of its log, which command failed.

use std::path::PathBuf;

pub type Result<T, E = SandboxError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("required tool `{tool}` was not found on PATH: {hint}")]
    MissingTool {
        tool: &'static str,
        hint: &'static str,
    },

    #[error(
        "the sandbox must run as root: it creates a network namespace and a veth pair (CAP_NET_ADMIN)"
    )]
    NotRoot,

    #[error("building {what} with Go failed ({status}); last lines of {log}:\n{tail}")]
    GoBuild {
        what: String,
        status: String,
        log: PathBuf,
        tail: String,
    },

    #[error("{name} exited before it was ready ({status}); last lines of {log}:\n{tail}")]
    ChildExited {
        name: String,
        status: String,
        log: PathBuf,
        tail: String,
    },

    #[error("{name} was not ready after {waited:?}; last lines of {log}:\n{tail}")]
    NotReady {
        name: String,
        waited: std::time::Duration,
        log: PathBuf,
        tail: String,
    },

    #[error("{0} was cancelled: the command is stopping")]
    Cancelled(String),

    #[error("`{command}` failed: {stderr}")]
    Command { command: String, stderr: String },

    #[error("I/O error while {context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error("Kubernetes API error while {context}: {source}")]
    Kube {
        context: String,
        #[source]
        source: kube::Error,
    },

    #[error("reading the kubeconfig {path}: {source}")]
    Kubeconfig {
        path: PathBuf,
        #[source]
        source: kube::config::KubeconfigError,
    },

    #[error("generating certificates: {0}")]
    Pki(#[from] rcgen::Error),

    #[error(
        "destination {destination} refused by the sandbox network guard: only {allowed} may be contacted"
    )]
    DestinationRefused {
        destination: std::net::IpAddr,
        allowed: String,
    },

    #[error("HTTP GET {url}: {message}")]
    Http { url: String, message: String },

    #[error("AWS {operation} failed: {message}")]
    Aws {
        operation: &'static str,
        message: String,
    },

    #[error("pod network: {0}")]
    Network(String),

    #[error("manifest: {0}")]
    Manifest(String),

    #[error("invalid configuration: {0}")]
    Config(String),
}

/// Adds the "while doing what" context to I/O and Kubernetes errors.
pub(crate) trait Context<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, std::io::Error> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| SandboxError::Io {
            context: context(),
            source,
        })
    }
}

impl<T> Context<T> for std::result::Result<T, kube::Error> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| SandboxError::Kube {
            context: context(),
            source,
        })
    }
}
