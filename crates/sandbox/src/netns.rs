//! The pod network: a network namespace of the sandbox's own, joined to the host by a veth pair,
//! with the pod CIDR routed from the host into it. Pods and nodes get addresses inside it, so they
//! are real, non-loopback addresses that Kubernetes accepts in EndpointSlices, yet no packet ever
//! leaves the machine: the namespace has no route anywhere but back to the host end of the veth.
//!
//! Listening sockets for pods are created inside the namespace by one thread that has entered it
//! (`setns`); the sockets stay in the namespace when tokio serves them from any thread.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsFd;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, mpsc};

use ipnet::Ipv4Net;
use tokio::sync::oneshot;

use crate::addressing::AddressPlan;
use crate::error::{Context, Result, SandboxError};
use crate::guard::DestinationGuard;
use crate::tools;

/// Namespaces are named `lbc-<pid>-<n>`, so a later sandbox can remove those of a dead process.
const NETNS_PREFIX: &str = "lbc-";
static SEQUENCE: AtomicU32 = AtomicU32::new(0);

/// The CIDRs tried, in order, when the caller names none: the first that no host route overlaps.
fn default_cidr_candidates() -> impl Iterator<Item = Ipv4Net> {
    (244..=254u8).filter_map(|second| format!("10.{second}.0.0/16").parse().ok())
}

type BindRequest = (
    SocketAddr,
    oneshot::Sender<std::io::Result<std::net::TcpListener>>,
);

pub struct PodNetwork {
    netns: String,
    host_if: String,
    ns_if: String,
    plan: AddressPlan,
    bind_requests: Mutex<Option<mpsc::Sender<BindRequest>>>,
    socket_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    torn_down: AtomicBool,
}

impl PodNetwork {
    /// Creates the namespace, the veth pair and the routes, then checks that the pod CIDR really
    /// routes through our veth before anything is sent.
    pub fn create(requested: Option<Ipv4Net>) -> Result<PodNetwork> {
        tools::require_root()?;
        tools::require_iproute2()?;
        remove_stale_namespaces();

        let pid = std::process::id();
        let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let netns = format!("{NETNS_PREFIX}{pid}-{seq}");
        let host_if = format!("lbc{pid:x}s{seq}h");
        let ns_if = format!("lbc{pid:x}s{seq}n");

        let candidates: Vec<Ipv4Net> = match requested {
            Some(cidr) => vec![cidr],
            None => default_cidr_candidates().collect(),
        };
        let mut last_error = None;
        for cidr in candidates {
            let plan = AddressPlan::new(cidr)?;
            if let Some(route) = overlapping_host_route(plan.cidr())? {
                last_error = Some(SandboxError::Network(format!(
                    "pod CIDR {} overlaps the host route {route}",
                    plan.cidr()
                )));
                continue;
            }
            let network = PodNetwork {
                netns: netns.clone(),
                host_if: host_if.clone(),
                ns_if: ns_if.clone(),
                plan,
                bind_requests: Mutex::new(None),
                socket_thread: Mutex::new(None),
                torn_down: AtomicBool::new(false),
            };
            match network.set_up() {
                Ok(()) => return Ok(network),
                // Another sandbox claimed this CIDR between our check and our route: try the next.
                Err(err) => {
                    network.teardown();
                    last_error = Some(err);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| SandboxError::Network("no pod CIDR available".into())))
    }

    fn set_up(&self) -> Result<()> {
        let cidr = self.plan.cidr().to_string();
        let host = self.plan.host_address().to_string();
        let inner = self.plan.namespace_address().to_string();
        ip(&["netns", "add", &self.netns])?;
        ip(&[
            "link",
            "add",
            &self.host_if,
            "type",
            "veth",
            "peer",
            "name",
            &self.ns_if,
            "netns",
            &self.netns,
        ])?;
        ip(&["addr", "add", &format!("{host}/32"), "dev", &self.host_if])?;
        ip(&["link", "set", &self.host_if, "up"])?;
        // Claims the CIDR on the host; fails if another sandbox routed the same prefix first.
        // Through the namespace end as gateway, so the host keeps one neighbour entry for the
        // whole CIDR, not one per pod (the kernel's table holds 1,024 by default: a sandbox of
        // more pods would stop reaching the newest ones).
        ip(&[
            "route",
            "add",
            &cidr,
            "via",
            &inner,
            "dev",
            &self.host_if,
            "onlink",
            "src",
            &host,
        ])?;
        let ns = ["-n", self.netns.as_str()];
        ip_in(&ns, &["link", "set", "lo", "up"])?;
        ip_in(
            &ns,
            &["addr", "add", &format!("{inner}/32"), "dev", &self.ns_if],
        )?;
        ip_in(&ns, &["link", "set", &self.ns_if, "up"])?;
        // The only route out of the namespace leads back to the host end of the veth.
        ip_in(
            &ns,
            &["route", "add", &format!("{host}/32"), "dev", &self.ns_if],
        )?;
        self.verify_route()?;
        self.start_socket_thread()?;
        Ok(())
    }

    /// The hard guard: the pod CIDR must route through our veth, or nothing is sent.
    fn verify_route(&self) -> Result<()> {
        let probe = self.plan.first_pod_address(0).to_string();
        let route = ip(&["route", "get", &probe])?;
        let expected = format!("dev {} ", self.host_if);
        if route.contains(&expected) {
            Ok(())
        } else {
            Err(SandboxError::Network(format!(
                "pod CIDR {} does not route through {} (ip route get {probe}: {})",
                self.plan.cidr(),
                self.host_if,
                route.trim()
            )))
        }
    }

    fn start_socket_thread(&self) -> Result<()> {
        let path = format!("/run/netns/{}", self.netns);
        let ns_file = std::fs::File::open(&path).context(|| format!("opening {path}"))?;
        let (tx, rx) = mpsc::channel::<BindRequest>();
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(format!("netns-{}", self.netns))
            .spawn(move || {
                let entered =
                    nix::sched::setns(ns_file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET);
                let _ = ready_tx.send(entered.map_err(|e| e.to_string()));
                if entered.is_err() {
                    return;
                }
                drop(ns_file);
                for (addr, reply) in rx {
                    let listener = std::net::TcpListener::bind(addr)
                        .and_then(|l| l.set_nonblocking(true).map(|()| l));
                    let _ = reply.send(listener);
                }
            })
            .context(|| "starting the network namespace thread".into())?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                return Err(SandboxError::Network(format!(
                    "entering {}: {err}",
                    self.netns
                )));
            }
            Err(_) => return Err(SandboxError::Network("namespace thread died".into())),
        }
        *lock(&self.bind_requests) = Some(tx);
        *lock(&self.socket_thread) = Some(thread);
        Ok(())
    }

    pub fn plan(&self) -> &AddressPlan {
        &self.plan
    }

    pub fn cidr(&self) -> Ipv4Net {
        self.plan.cidr()
    }

    pub fn guard(&self) -> DestinationGuard {
        DestinationGuard::new(self.plan.cidr())
    }

    pub fn netns_name(&self) -> &str {
        &self.netns
    }

    pub fn host_interface(&self) -> &str {
        &self.host_if
    }

    /// Gives the namespace one more address (a pod's or a node's).
    pub async fn add_address(&self, address: Ipv4Addr) -> Result<()> {
        self.change_address("add", address).await
    }

    pub async fn remove_address(&self, address: Ipv4Addr) -> Result<()> {
        self.change_address("del", address).await
    }

    async fn change_address(&self, verb: &str, address: Ipv4Addr) -> Result<()> {
        if !self.plan.cidr().contains(&address) {
            return Err(SandboxError::Network(format!(
                "{address} is outside the pod CIDR {}",
                self.plan.cidr()
            )));
        }
        let cidr = format!("{address}/32");
        let args = ["-n", &self.netns, "addr", verb, &cidr, "dev", &self.ns_if];
        let output = tokio::process::Command::new("ip")
            .args(args)
            .output()
            .await
            .context(|| format!("running ip {}", args.join(" ")))?;
        check_output(&args, output)
    }

    /// A listening socket inside the namespace, for a pod's or node's address.
    pub async fn bind(&self, addr: SocketAddr) -> Result<tokio::net::TcpListener> {
        let IpAddr::V4(ip) = addr.ip() else {
            return Err(SandboxError::Network(format!("{addr} is not IPv4")));
        };
        if !self.plan.cidr().contains(&ip) {
            return Err(SandboxError::Network(format!(
                "{addr} is outside the pod CIDR {}",
                self.plan.cidr()
            )));
        }
        let requests = lock(&self.bind_requests)
            .clone()
            .ok_or_else(|| SandboxError::Network("the pod network is torn down".into()))?;
        let (reply_tx, reply_rx) = oneshot::channel();
        requests
            .send((addr, reply_tx))
            .map_err(|_| SandboxError::Network("namespace thread is gone".into()))?;
        let listener = reply_rx
            .await
            .map_err(|_| SandboxError::Network("namespace thread dropped a request".into()))?
            .context(|| format!("listening on {addr} in {}", self.netns))?;
        tokio::net::TcpListener::from_std(listener).context(|| format!("registering {addr}"))
    }

    /// Removes the veth pair (with its host route) and the namespace. Idempotent.
    pub fn teardown(&self) {
        if self.torn_down.swap(true, Ordering::SeqCst) {
            return;
        }
        lock(&self.bind_requests).take();
        if let Some(thread) = lock(&self.socket_thread).take() {
            let _ = thread.join();
        }
        // Deleting one end of a veth deletes both, even while sockets still pin the namespace.
        let _ = ip(&["link", "del", &self.host_if]);
        let _ = ip(&["netns", "del", &self.netns]);
    }
}

impl Drop for PodNetwork {
    fn drop(&mut self) {
        self.teardown();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Deletes namespaces left by sandboxes whose process is gone (killed with SIGKILL, say).
fn remove_stale_namespaces() {
    let Ok(list) = ip(&["netns", "list"]) else {
        return;
    };
    for name in list
        .lines()
        .filter_map(|line| line.split_whitespace().next())
    {
        if let Some(pid) = owner_pid(name)
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            tracing::info!(
                netns = name,
                "removing the network namespace of a dead sandbox"
            );
            let _ = ip(&["netns", "del", name]);
        }
    }
}

fn owner_pid(netns: &str) -> Option<u32> {
    netns
        .strip_prefix(NETNS_PREFIX)?
        .split('-')
        .next()?
        .parse()
        .ok()
}

/// The first host route or address whose prefix overlaps `cidr`, if any.
fn overlapping_host_route(cidr: Ipv4Net) -> Result<Option<String>> {
    let routes = ip(&["-4", "route", "show", "table", "all"])?;
    let addresses = ip(&["-4", "-o", "addr", "show"])?;
    let from_addresses = addresses.lines().filter_map(|line| {
        let mut words = line.split_whitespace();
        words.find(|w| *w == "inet")?;
        words.next()
    });
    let from_routes = routes.lines().filter_map(|line| {
        let first = line.split_whitespace().next()?;
        // Entries like "local 10.0.0.1 ..." or "broadcast ..." carry the prefix second.
        match first {
            "local" | "broadcast" | "unicast" | "unreachable" | "blackhole" | "prohibit" => {
                line.split_whitespace().nth(1)
            }
            _ => Some(first),
        }
    });
    Ok(from_addresses
        .chain(from_routes)
        .find(|prefix| prefix_overlaps(prefix, cidr))
        .map(str::to_string))
}

fn prefix_overlaps(prefix: &str, cidr: Ipv4Net) -> bool {
    let net = if prefix.contains('/') {
        prefix.parse::<Ipv4Net>().ok()
    } else {
        prefix
            .parse::<Ipv4Addr>()
            .ok()
            .and_then(|a| Ipv4Net::new(a, 32).ok())
    };
    match net {
        // A default route overlaps everything, but it is not a claim on the prefix.
        Some(net) if net.prefix_len() == 0 => false,
        Some(net) => net.contains(&cidr.network()) || cidr.contains(&net.network()),
        None => false,
    }
}

fn ip(args: &[&str]) -> Result<String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .context(|| format!("running ip {}", args.join(" ")))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    check_output(args, output).map(|()| stdout)
}

fn ip_in(ns: &[&str], args: &[&str]) -> Result<String> {
    let all: Vec<&str> = ns.iter().chain(args).copied().collect();
    ip(&all)
}

fn check_output(args: &[&str], output: std::process::Output) -> Result<()> {
    if output.status.success() {
        Ok(())
    } else {
        Err(SandboxError::Command {
            command: format!("ip {}", args.join(" ")),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_reads_our_names_only() {
        assert_eq!(owner_pid("lbc-1234-0"), Some(1234));
        assert_eq!(owner_pid("lbc-99-12"), Some(99));
        assert_eq!(owner_pid("cni-1234"), None);
        assert_eq!(owner_pid("lbc-x-1"), None);
    }

    #[test]
    fn overlap_is_symmetric_and_ignores_default_routes() {
        let cidr: Ipv4Net = "10.244.0.0/16".parse().unwrap();
        assert!(prefix_overlaps("10.0.0.0/8", cidr));
        assert!(prefix_overlaps("10.244.3.0/24", cidr));
        assert!(prefix_overlaps("10.244.0.1", cidr));
        assert!(!prefix_overlaps("10.245.0.0/16", cidr));
        assert!(!prefix_overlaps("0.0.0.0/0", cidr));
        assert!(!prefix_overlaps("default", cidr));
    }

    #[test]
    fn interface_names_fit_the_kernel_limit() {
        let name = format!("lbc{:x}s{}h", 4_194_304u32, 999);
        assert!(name.len() <= 15, "{name}");
    }
}
