//! Who took the machine's CPU during a benchmark's scale-out: this process's threads by name and
//! the processes it started (the sandbox's kube-apiserver, etcd, kube-controller-manager and AWS
//! emulator) by command, read from `/proc` before and after.
//!
//! The harness runs the controller on a runtime of its own whose threads are named `controller`
//! (see `harness::controller_runtime`), so the controller's CPU is told apart from the sandbox's
//! kubelets, pod servers and the benchmark's watches, which share the other threads. On 2 cores a
//! burst's latencies are bounded by whoever takes the CPU; this says who.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// The thread name of the controller's runtime (`harness::controller_runtime`).
pub const CONTROLLER_THREAD: &str = "controller";

/// `/proc`'s CPU times are in USER_HZ, which Linux fixes at 100 for user space on every
/// architecture it keeps a stable ABI for.
const TICKS_PER_SECOND: u64 = 100;

/// CPU time (user + system) used so far, by who used it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuUse(BTreeMap<String, Duration>);

/// One `/proc/<id>/stat` line, the fields used.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stat {
    pid: u32,
    command: String,
    parent: u32,
    ticks: u64,
}

impl CpuUse {
    /// Reads this process's threads and its descendant processes now. An entry that vanishes
    /// between the listing and the reading (a thread or process that just ended) is left out.
    pub fn read() -> CpuUse {
        let mut used = BTreeMap::new();
        for stat in stats_in("/proc/self/task") {
            *used.entry(thread_label(&stat.command)).or_default() += ticks(stat.ticks);
        }
        for stat in descendants(std::process::id(), stats_in("/proc")) {
            *used.entry(process_label(&stat.command)).or_default() += ticks(stat.ticks);
        }
        CpuUse(used)
    }

    /// The CPU used since `before`, most first.
    pub fn since(&self, before: &CpuUse) -> Vec<(String, Duration)> {
        let mut used: Vec<(String, Duration)> = self
            .0
            .iter()
            .map(|(who, now)| {
                let earlier = before.0.get(who).copied().unwrap_or_default();
                (who.clone(), now.saturating_sub(earlier))
            })
            .filter(|(_, used)| !used.is_zero())
            .collect();
        used.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        used
    }
}

/// The benchmark table's row: CPU seconds by who used them over `wall`, and in cores.
pub fn row(used: &[(String, Duration)], wall: Duration) -> String {
    let wall_seconds = wall.as_secs_f64().max(0.001);
    let total: f64 = used.iter().map(|(_, d)| d.as_secs_f64()).sum();
    let parts: Vec<String> = used
        .iter()
        .map(|(who, d)| format!("{who} {:.1} s", d.as_secs_f64()))
        .collect();
    format!(
        "| CPU during the scale-out ({:.0} s; {:.1} s in all, {:.2} cores) | {} |",
        wall_seconds,
        total,
        total / wall_seconds,
        parts.join(", ")
    )
}

fn ticks(count: u64) -> Duration {
    Duration::from_millis(count * 1000 / TICKS_PER_SECOND)
}

fn thread_label(name: &str) -> String {
    if name == CONTROLLER_THREAD {
        "the controller".to_string()
    } else {
        "kubelets, pods and benchmark (this process)".to_string()
    }
}

fn process_label(command: &str) -> String {
    match command {
        "kube-apiserver" => "API server".to_string(),
        // `comm` is cut at 15 bytes.
        "kube-controller" => "controller manager".to_string(),
        "etcd" => "etcd".to_string(),
        c if c.starts_with("python") => "AWS emulator".to_string(),
        other => other.to_string(),
    }
}

/// Every readable `<dir>/<number>/stat`.
fn stats_in(dir: &str) -> Vec<Stat> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("stat")).ok())
        .filter_map(|text| parse_stat(&text))
        .collect()
}

/// The processes below `root` (its children, theirs, and so on), not `root` itself.
fn descendants(root: u32, all: Vec<Stat>) -> Vec<Stat> {
    let mut children: HashMap<u32, Vec<Stat>> = HashMap::new();
    for stat in all {
        children.entry(stat.parent).or_default().push(stat);
    }
    let mut found = Vec::new();
    let mut next = vec![root];
    while let Some(parent) = next.pop() {
        for child in children.remove(&parent).unwrap_or_default() {
            next.push(child.pid);
            found.push(child);
        }
    }
    found
}

/// `pid (comm) state ppid ... utime stime ...` (proc(5)); `comm` may hold spaces and
/// parentheses, so the fields after it are counted from its last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let (head, tail) = text.rsplit_once(')')?;
    let (pid, command) = head.split_once(" (")?;
    let fields: Vec<&str> = tail.split_whitespace().collect();
    // After `comm`: state is field 3 of proc(5), so field N is at index N - 3.
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        pid: pid.trim().parse().ok()?,
        command: command.to_string(),
        parent: u32::try_from(field(4)?).ok()?,
        ticks: field(14)? + field(15)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const APISERVER: &str = "4242 (kube-apiserver) S 4000 4242 4000 0 -1 4194560 9137 0 0 0 3900 812 0 0 20 0 12 0 5000 1 2 3";

    #[test]
    fn a_stat_line_gives_its_command_parent_and_cpu() {
        assert_eq!(
            parse_stat(APISERVER),
            Some(Stat {
                pid: 4242,
                command: "kube-apiserver".to_string(),
                parent: 4000,
                ticks: 4712,
            })
        );
    }

    #[test]
    fn a_command_with_parentheses_and_spaces_is_read_whole() {
        let line = "7 (a (b) c) R 1 7 1 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0 9 1 2";
        let stat = parse_stat(line).expect("parsed");
        assert_eq!(stat.command, "a (b) c");
        assert_eq!((stat.parent, stat.ticks), (1, 11));
    }

    #[test]
    fn a_cut_line_is_no_stat() {
        assert_eq!(parse_stat("12 (etcd) S 1 2"), None);
        assert_eq!(parse_stat("no parentheses here"), None);
    }

    #[test]
    fn descendants_are_children_and_their_children_only() {
        let stat = |pid, parent| Stat {
            pid,
            command: format!("p{pid}"),
            parent,
            ticks: 0,
        };
        let all = vec![stat(2, 1), stat(3, 2), stat(4, 99), stat(5, 3), stat(1, 0)];
        let mut found: Vec<u32> = descendants(1, all).iter().map(|s| s.pid).collect();
        found.sort();
        assert_eq!(found, vec![2, 3, 5]);
    }

    #[test]
    fn use_since_an_earlier_reading_is_the_difference_most_first() {
        let reading = |pairs: &[(&str, u64)]| {
            CpuUse(
                pairs
                    .iter()
                    .map(|(who, ms)| (who.to_string(), Duration::from_millis(*ms)))
                    .collect(),
            )
        };
        let before = reading(&[("API server", 1_000), ("etcd", 500)]);
        let after = reading(&[
            ("API server", 40_000),
            ("etcd", 500),
            ("the controller", 4_000),
        ]);
        assert_eq!(
            after.since(&before),
            vec![
                ("API server".to_string(), Duration::from_secs(39)),
                ("the controller".to_string(), Duration::from_secs(4)),
            ]
        );
    }

    #[test]
    fn this_process_is_read_and_its_threads_are_labelled() {
        let reading = CpuUse::read();
        assert!(
            reading
                .0
                .contains_key("kubelets, pods and benchmark (this process)"),
            "{reading:?}"
        );
    }

    #[test]
    fn the_row_names_who_and_the_cores_used() {
        let row = row(
            &[
                ("API server".to_string(), Duration::from_secs(40)),
                ("the controller".to_string(), Duration::from_secs(4)),
            ],
            Duration::from_secs(44),
        );
        assert_eq!(
            row,
            "| CPU during the scale-out (44 s; 44.0 s in all, 1.00 cores) | API server 40.0 s, the controller 4.0 s |"
        );
    }
}
