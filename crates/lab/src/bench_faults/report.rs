//! One run's result, the matrix (fault x invariant) as Markdown, and `docs/reliability.md`.

use std::fmt::Write as _;
use std::path::Path;

use super::faults::Fault;

/// Memory after convergence may exceed memory before the fault by this share.
const MEMORY_SLACK: f64 = 0.25;

#[derive(Debug, Clone)]
pub struct RunResult {
    pub fault: Fault,
    /// From the fault going on to it clearing.
    pub fault_seconds: f64,
    /// The call after which the endpoint paused (faults at a point of a pass).
    pub trigger: Option<String>,
    /// What else the fault showed (the Lease's: when the controller led again).
    pub note: Option<String>,
    /// AWS calls from the fault going on to convergence, and how many of them met the fault.
    pub calls: u64,
    pub injected: u64,
    /// What was still not converged when the wait gave up (None: converged).
    pub converged: Option<String>,
    pub converge_seconds: f64,
    pub requests: usize,
    pub failed: usize,
    pub duplicates: Vec<String>,
    pub foreign_changed: Vec<String>,
    pub leaked: Vec<String>,
    pub memory_before_kib: Option<u64>,
    pub memory_after_kib: Option<u64>,
    /// The controller was killed and started again (its memory is a new process's).
    pub restarted: bool,
}

impl RunResult {
    fn memory_holds(&self) -> bool {
        match (self.memory_before_kib, self.memory_after_kib) {
            (Some(before), Some(after)) => after as f64 <= before as f64 * (1.0 + MEMORY_SLACK),
            _ => false,
        }
    }

    fn requests_hold(&self) -> bool {
        self.failed == 0 || !self.fault.must_lose_no_request()
    }

    /// Every invariant of the row holds.
    pub fn holds(&self) -> bool {
        self.converged.is_none()
            && self.requests_hold()
            && self.duplicates.is_empty()
            && self.foreign_changed.is_empty()
            && self.leaked.is_empty()
            && self.memory_holds()
    }
}

fn mark(ok: bool) -> &'static str {
    if ok { "✓" } else { "✗" }
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("?".into(), |k| format!("{:.0}", k as f64 / 1024.0))
}

/// One line for the log while the matrix runs.
pub fn one_line(run: &RunResult) -> String {
    format!(
        "{}: {} converged {:.1} s after clearing; requests {} failed {}; duplicates {}; foreign changed {}; leaked {}; memory {} -> {} MiB; {} of {} AWS calls met the fault{}",
        run.fault.slug(),
        if run.converged.is_none() { "" } else { "NOT" },
        run.converge_seconds,
        run.requests,
        run.failed,
        run.duplicates.len(),
        run.foreign_changed.len(),
        run.leaked.len(),
        mib(run.memory_before_kib),
        mib(run.memory_after_kib),
        run.injected,
        run.calls,
        run.trigger
            .as_ref()
            .map(|t| format!("; point: after {t}"))
            .unwrap_or_default()
            + &run
                .note
                .as_ref()
                .map(|n| format!("; {n}"))
                .unwrap_or_default(),
    )
}

/// The matrix: one row per fault, one column per invariant.
pub fn table(runs: &[RunResult]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| fault | fault on (s) | AWS calls met / made | converged after clearing (s) | failed requests | duplicates | foreign changed | leaked | memory before -> after (MiB) | holds |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|");
    for run in runs {
        let converged = match &run.converged {
            None => format!("✓ {:.1}", run.converge_seconds),
            Some(missing) => format!("✗ not in 300 s: {missing}"),
        };
        let requests = if run.fault.must_lose_no_request() {
            format!(
                "{} {} / {}",
                mark(run.failed == 0),
                run.failed,
                run.requests
            )
        } else {
            format!("({} / {}, see below)", run.failed, run.requests)
        };
        let list = |items: &[String]| {
            if items.is_empty() {
                "✓ 0".to_string()
            } else {
                format!("✗ {}: {}", items.len(), items.join("; "))
            }
        };
        let point = run
            .trigger
            .as_ref()
            .map(|t| format!(" (point: after {t})"))
            .unwrap_or_default()
            + &run
                .note
                .as_ref()
                .map(|n| format!("; {n}"))
                .unwrap_or_default();
        let _ = writeln!(
            out,
            "| {}{point} | {:.0} | {} / {} | {converged} | {requests} | {} | {} | {} | {} {} -> {}{} | {} |",
            run.fault.description(),
            run.fault_seconds,
            run.injected,
            run.calls,
            list(&run.duplicates),
            list(&run.foreign_changed),
            list(&run.leaked),
            mark(run.memory_holds()),
            mib(run.memory_before_kib),
            mib(run.memory_after_kib),
            if run.restarted { " (new process)" } else { "" },
            mark(run.holds()),
        );
    }
    out
}

/// Writes the matrix with how it was made into `path`.
pub fn write(path: &Path, runs: &[RunResult]) -> std::io::Result<()> {
    let held = runs.iter().filter(|r| r.holds()).count();
    let text = format!(
        "# Reliability: the fault matrix\n\n\
Measured by `cargo run -- bench-faults --write docs/reliability.md` (debug build) on the local sandbox \
(crates/lab/src/bench_faults/), {date}. Each row is one run of the fixed workload in a namespace of its own: \
an IngressGroup (two Ingresses, a third joining during the fault), two NLB Services (the second created \
during the fault), a hand-made ALB with a TargetGroupBinding, readiness gates on every pod, and a Deployment \
of 3 pods rolling to a new revision during the fault under {rps} requests/s through the group's ALB. The \
controller runs as its own process, installed from the chart. After the fault clears the run must converge \
(every status, the rollout, every target group's targets equal to the Ready pods and healthy) within 300 s; \
then its objects are deleted and nothing of ours may name it.\n\n\
{held} of {total} rows hold every invariant.\n\n{table}\n\
Columns: *AWS calls met / made*: the controller's AWS calls from the fault going on until the run \
converged, and how many of them met the fault. \
*duplicates*: a load balancer, target group or security group of ours with the same tags as another \
(the same stack's same resource), two listeners on a port, a rule twice on a listener (security-group \
rules cannot be twice: EC2 and the emulator refuse a duplicate permission). *foreign changed*: a \
resource without this cluster's tag (the bindings' hand-made ALBs and target groups, a decoy tagged as \
another cluster's with the first run's stack tag, an untagged ALB) modified or deleted. *leaked*: \
resources of ours still naming the run 180 s after its objects were deleted. *memory*: the controller's \
RSS before the fault and after convergence; it holds within {slack:.0} %.\n\n\
The pod webhook row does not require 0 failed requests: pods created while the webhook is unreachable \
get no readiness gate (the chart's `podMutatorWebhookConfig.failurePolicy` is `Ignore`, upstream's \
default, so an outage of the controller never blocks pod creation); nothing then holds the rollout for \
the load balancer. `--set podMutatorWebhookConfig.failurePolicy=Fail` trades that for pods not created \
while the webhook is down.\n\n\
**A create whose answer was lost** (the lost-answers row; tests/aws_faults.rs in CI): the SDK's retry \
finds its own first attempt's work. ELB's CreateLoadBalancer, CreateTargetGroup and CreateListener \
answer with what exists when the settings are the same (the emulator does as ELB); EC2's \
`InvalidGroup.Duplicate` and `InvalidPermission.Duplicate`, and ELB's `PriorityInUse` on CreateRule, are \
taken as done when what is there is what was asked (for a rule: the same priority, conditions, action \
and tags), and stay errors otherwise.\n\n\
**A lost Lease** (the Lease row): every AWS call passes through one place (`lb_aws::calls::timed`), and \
there a mutating call meets the write fence (`lb_aws::WriteFence`, tied by the runtime to the Lease): \
while this replica does not lead, the call is not sent; a call in flight when the Lease is lost is given \
up at once, its SDK retries with it. The pass fails (`AWS CreateRule failed (not_leader): ...`; a \
binding's Event reason `NotLeader`), counted as \
`lb_controller_aws_calls_total{{result=\"not_leader\"}}`, and the new leader does the work. The row \
counts the mutating calls that reached AWS between the theft and leading again, by when they were sent. \
What no Lease-based election closes is the window before the holder sees its loss (at most its renew \
deadline, 10 s) and a call already sent (AWS may do it after the holder gave it up): creates are \
idempotent for that reason. Upstream's process exits when it loses its Lease, and its calls in flight \
end with it.\n",
        rps = super::REQUESTS_PER_SECOND,
        date = k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%d"),
        total = runs.len(),
        table = table(runs),
        slack = MEMORY_SLACK * 100.0,
    );
    std::fs::write(path, text)
}
