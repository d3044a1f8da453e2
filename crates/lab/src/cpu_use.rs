//! Who took the machine's CPU during a benchmark's scale-out: this process's threads by name and
//! the processes it started (the sandbox's kube-apiserver, etcd, kube-controller-manager and AWS
//! emulator) by command, read from `/proc` before and after.
//!
//! The harness runs the controller on a runtime of its own whose threads are named `controller`
//! (see `harness::OwnRuntime`), so the controller's CPU is told apart from the sandbox's
//! kubelets, pod servers and the benchmark's watches, which share the other threads. On 2 cores a
//! burst's latencies are bounded by whoever takes the CPU; this says who.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// The thread name of the controller's runtime (see `harness::OwnRuntime`).
pub const CONTROLLER_THREAD: &str = "controller";

/// The thread name of a benchmark's watches' runtime (see `bench::measure`).
pub const WATCH_THREAD: &str = "bench-watch";

/// `/proc`'s CPU times are in USER_HZ: 100 on x86-64 and arm64, the machines this runs on.
const TICKS_PER_SECOND: u64 = 100;

/// How the controller's threads are labelled.
const CONTROLLER_LABEL: &str = "the controller";

/// How the benchmark's watches' threads are labelled.
const WATCH_LABEL: &str = "the benchmark's watches";

/// The label of this process's threads other than the controller's and the watches'.
const REST_OF_THIS_PROCESS: &str = "kubelets, pods and benchmark (this process)";

/// CPU time (user + system) used so far, in ticks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuUse {
    /// This process in all, its ended threads included.
    process: u64,
    /// Child processes of this one that ended and were reaped.
    reaped: u64,
    /// Each live thread of this process and each live descendant process, by identity.
    live: HashMap<Identity, Used>,
    /// The machine's steal time, all CPUs: time its virtual CPUs wanted to run but the host ran
    /// something else. The same work took 30 s of CPU in one run and 48 s in another an hour
    /// apart on this shared machine; this says how much of that the host took. None where
    /// `/proc/stat` could not be read or has no steal column (not the same as none stolen).
    stolen: Option<u64>,
}

/// A thread or process by its id and start time (an id may be reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Identity {
    thread: bool,
    id: u32,
    started: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Used {
    label: String,
    ticks: u64,
}

/// One `/proc/<id>/stat` line, the fields used.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stat {
    pid: u32,
    command: String,
    parent: u32,
    /// utime + stime.
    ticks: u64,
    /// cutime + cstime: its children that ended and were reaped.
    children_ticks: u64,
    started: u64,
}

impl CpuUse {
    /// Reads this process, its threads and its descendant processes now. An entry that vanishes
    /// between the listing and the reading (a thread or process that just ended) is left out.
    pub fn read() -> CpuUse {
        let mut reading = CpuUse::default();
        if let Some(stat) = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|text| parse_stat(&text))
        {
            reading.process = stat.ticks;
            reading.reaped = stat.children_ticks;
        }
        for stat in stats_in("/proc/self/task") {
            reading.add(true, &stat, thread_label(&stat.command), stat.ticks);
        }
        for stat in descendants(std::process::id(), stats_in("/proc")) {
            // Its own and its ended children's: a process's helpers are its share.
            let ticks = stat.ticks + stat.children_ticks;
            reading.add(false, &stat, process_label(&stat.command), ticks);
        }
        reading.stolen = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|text| steal_ticks(&text));
        reading
    }

    /// The machine's steal time since `before`, all CPUs together; None where either reading
    /// has none.
    pub fn stolen_since(&self, before: &CpuUse) -> Option<Duration> {
        Some(ticks(self.stolen?.saturating_sub(before.stolen?)))
    }

    fn add(&mut self, thread: bool, stat: &Stat, label: String, ticks: u64) {
        let identity = Identity {
            thread,
            id: stat.pid,
            started: stat.started,
        };
        self.live.insert(identity, Used { label, ticks });
    }

    /// The CPU used since `before`, by who used it, most first. A thread or process born since
    /// counts in full. One that ended since counts where its parent's figure keeps it: a thread
    /// in the rest of this process (the controller's runtime keeps its threads for that reason),
    /// a process in its parent's reaped children once reaped.
    pub fn since(&self, before: &CpuUse) -> Vec<(String, Duration)> {
        let mut used: BTreeMap<String, u64> = BTreeMap::new();
        // The runtimes of their own (the controller's, the watches'), counted apart.
        let mut own_runtimes = 0;
        for (identity, now) in &self.live {
            let earlier = before.live.get(identity).map_or(0, |u| u.ticks);
            let delta = now.ticks.saturating_sub(earlier);
            match (identity.thread, now.label.as_str()) {
                (true, label @ (CONTROLLER_LABEL | WATCH_LABEL)) => {
                    own_runtimes += delta;
                    *used.entry(label.to_string()).or_default() += delta;
                }
                // The rest of this process is its total less the runtimes counted apart.
                (true, _) => {}
                (false, label) => *used.entry(label.to_string()).or_default() += delta,
            }
        }
        used.entry(CONTROLLER_LABEL.to_string()).or_default();
        let process = self.process.saturating_sub(before.process);
        used.insert(
            REST_OF_THIS_PROCESS.to_string(),
            process.saturating_sub(own_runtimes),
        );
        *used.entry("ended child processes".to_string()).or_default() +=
            self.reaped.saturating_sub(before.reaped);
        let mut used: Vec<(String, Duration)> = used
            .into_iter()
            .filter(|(_, ticks)| *ticks > 0)
            .map(|(who, ticks)| (who, self::ticks(ticks)))
            .collect();
        used.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        used
    }
}

/// The benchmark table's row: CPU seconds by who used them over `wall`, and in cores.
pub fn row(used: &[(String, Duration)], wall: Duration, stolen: Option<Duration>) -> String {
    let wall_seconds = wall.as_secs_f64().max(0.001);
    let total: f64 = used.iter().map(|(_, d)| d.as_secs_f64()).sum();
    let parts: Vec<String> = used
        .iter()
        .map(|(who, d)| format!("{who} {:.1} s", d.as_secs_f64()))
        .collect();
    let stolen = match stolen {
        Some(stolen) => format!("{:.1} s stolen by the host", stolen.as_secs_f64()),
        None => "steal unknown: /proc/stat unreadable".to_string(),
    };
    format!(
        "| CPU during the scale-out ({:.0} s; {:.1} s in all, {:.2} cores; {stolen}) | {} |",
        wall_seconds,
        total,
        total / wall_seconds,
        parts.join(", ")
    )
}

/// The steal time of `/proc/stat`'s first line (`cpu user nice system idle iowait irq softirq
/// steal ...`), in ticks.
fn steal_ticks(proc_stat: &str) -> Option<u64> {
    let line = proc_stat.lines().next()?;
    let mut fields = line.split_whitespace();
    (fields.next()? == "cpu").then_some(())?;
    fields.nth(7)?.parse().ok()
}

fn ticks(count: u64) -> Duration {
    Duration::from_millis(count * 1000 / TICKS_PER_SECOND)
}

fn thread_label(name: &str) -> String {
    if name == CONTROLLER_THREAD {
        CONTROLLER_LABEL.to_string()
    } else if name == WATCH_THREAD {
        WATCH_LABEL.to_string()
    } else {
        REST_OF_THIS_PROCESS.to_string()
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
        children_ticks: field(16)? + field(17)?,
        started: field(22)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const APISERVER: &str = "4242 (kube-apiserver) S 4000 4242 4000 0 -1 4194560 9137 0 0 0 3900 812 7 3 20 0 12 0 5000 1 2 3";

    #[test]
    fn a_stat_line_gives_its_command_parent_start_and_cpu() {
        assert_eq!(
            parse_stat(APISERVER),
            Some(Stat {
                pid: 4242,
                command: "kube-apiserver".to_string(),
                parent: 4000,
                ticks: 4712,
                children_ticks: 10,
                started: 5000,
            })
        );
    }

    #[test]
    fn a_command_with_parentheses_and_spaces_is_read_whole() {
        let line = "7 (a (b) c) R 1 7 1 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0 9 1 2";
        let stat = parse_stat(line).expect("parsed");
        assert_eq!(stat.command, "a (b) c");
        assert_eq!((stat.parent, stat.ticks, stat.started), (1, 11, 9));
    }

    #[test]
    fn a_cut_line_is_no_stat() {
        assert_eq!(parse_stat("12 (etcd) S 1 2"), None);
        assert_eq!(parse_stat("no parentheses here"), None);
    }

    fn stat(pid: u32, parent: u32) -> Stat {
        Stat {
            pid,
            command: format!("p{pid}"),
            parent,
            ticks: 0,
            children_ticks: 0,
            started: 1,
        }
    }

    #[test]
    fn descendants_are_children_and_their_children_only() {
        let all = vec![stat(2, 1), stat(3, 2), stat(4, 99), stat(5, 3), stat(1, 0)];
        let mut found: Vec<u32> = descendants(1, all).iter().map(|s| s.pid).collect();
        found.sort();
        assert_eq!(found, vec![2, 3, 5]);
    }

    /// A reading: this process's total, then (thread?, id, start, label, ticks) entries.
    fn reading(process: u64, entries: &[(bool, u32, u64, &str, u64)]) -> CpuUse {
        let mut reading = CpuUse {
            process,
            ..CpuUse::default()
        };
        for (thread, id, started, label, ticks) in entries {
            let stat = Stat {
                started: *started,
                ..stat(*id, 1)
            };
            reading.add(*thread, &stat, label.to_string(), *ticks);
        }
        reading
    }

    #[test]
    fn use_since_an_earlier_reading_is_the_difference_most_first() {
        let before = reading(
            500,
            &[
                (false, 10, 1, "API server", 100),
                (false, 11, 1, "etcd", 50),
                (true, 20, 1, CONTROLLER_LABEL, 100),
            ],
        );
        let after = reading(
            1_500,
            &[
                (false, 10, 1, "API server", 4_000),
                (false, 11, 1, "etcd", 50),
                (true, 20, 1, CONTROLLER_LABEL, 400),
            ],
        );
        assert_eq!(
            after.since(&before),
            vec![
                ("API server".to_string(), Duration::from_secs(39)),
                (REST_OF_THIS_PROCESS.to_string(), Duration::from_secs(7)),
                (CONTROLLER_LABEL.to_string(), Duration::from_secs(3)),
            ]
        );
    }

    #[test]
    fn the_watches_runtime_is_counted_apart_like_the_controllers() {
        let before = reading(
            500,
            &[
                (true, 20, 1, CONTROLLER_LABEL, 100),
                (true, 30, 1, WATCH_LABEL, 10),
            ],
        );
        let after = reading(
            1_000,
            &[
                (true, 20, 1, CONTROLLER_LABEL, 300),
                (true, 30, 1, WATCH_LABEL, 110),
            ],
        );
        assert_eq!(
            after.since(&before),
            vec![
                // A tie goes by name.
                (REST_OF_THIS_PROCESS.to_string(), Duration::from_secs(2)),
                (CONTROLLER_LABEL.to_string(), Duration::from_secs(2)),
                (WATCH_LABEL.to_string(), Duration::from_secs(1)),
            ]
        );
    }

    #[test]
    fn threads_born_since_count_in_full_and_ended_ones_stay_in_the_process_total() {
        // Thread 21 ended after using 50 ticks in the window (the process total keeps them);
        // thread 22 was born with 30 ticks; process 12 reused id 11 after a restart.
        let before = reading(
            100,
            &[
                (true, 21, 1, CONTROLLER_LABEL, 10),
                (false, 11, 1, "etcd", 900),
            ],
        );
        let after = reading(
            300,
            &[
                (true, 22, 2, CONTROLLER_LABEL, 30),
                (false, 11, 7, "etcd", 40),
            ],
        );
        assert_eq!(
            after.since(&before),
            vec![
                (
                    REST_OF_THIS_PROCESS.to_string(),
                    Duration::from_millis(1_700)
                ),
                ("etcd".to_string(), Duration::from_millis(400)),
                (CONTROLLER_LABEL.to_string(), Duration::from_millis(300)),
            ]
        );
    }

    #[test]
    fn steal_is_the_eighth_figure_of_the_cpu_line() {
        let text =
            "cpu  5932490 0 546136 9048717 22708 0 34775 139729 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
        assert_eq!(steal_ticks(text), Some(139_729));
        assert_eq!(steal_ticks("intr 1 2 3\n"), None);
        assert_eq!(steal_ticks("cpu 1 2 3\n"), None);
    }

    #[test]
    fn this_process_and_its_threads_are_read() {
        let reading = CpuUse::read();
        assert!(
            reading
                .live
                .values()
                .any(|used| used.label == REST_OF_THIS_PROCESS),
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
            Some(Duration::from_millis(2_500)),
        );
        assert_eq!(
            row,
            "| CPU during the scale-out (44 s; 44.0 s in all, 1.00 cores; 2.5 s stolen by the host) | API server 40.0 s, the controller 4.0 s |"
        );
    }

    #[test]
    fn steal_not_read_is_said_unknown_not_zero() {
        let row = row(&[], Duration::from_secs(10), None);
        assert!(row.contains("steal unknown"), "{row}");
        let before = CpuUse::default();
        let after = CpuUse {
            stolen: Some(300),
            ..CpuUse::default()
        };
        assert_eq!(after.stolen_since(&before), None);
        let before = CpuUse {
            stolen: Some(100),
            ..CpuUse::default()
        };
        assert_eq!(after.stolen_since(&before), Some(Duration::from_secs(2)));
    }
}
