//! Drop-in for real: ours started over the state the upstream controller leaves (its measured
//! footprint replayed with upstream's calls, its finalizers, statuses and TargetGroupBindings,
//! its CRDs as its chart installs them) changes nothing in AWS, keeps every load balancer (ARN and
//! DNS name) and adopts every binding; deleting the workload then removes all of it, finalizers
//! released, and nothing of someone else's.

use std::time::Duration;

use lb_lab::footprint::takeover::{TakeoverOptions, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ours_over_upstreams_state_makes_no_mutating_call_and_deletes_cleanly() {
    let report = run(TakeoverOptions {
        watch: Duration::from_secs(60),
        no_teardown: false,
    })
    .await
    .expect("the takeover runs");
    println!("{report}");
    assert_eq!(report.mutating_total(), 0, "{report}");
    assert!(report.replaced.is_empty(), "{report}");
    assert!(report.created.is_empty(), "{report}");
    assert!(report.changed.is_empty(), "{report}");
    assert_eq!(report.bindings_after, report.bindings_before, "{report}");
    assert_eq!(report.bindings_before.len(), 4, "{report}");
    // Three load balancers, four target groups, three managed groups and the backend group.
    assert_eq!(report.upstream_resources, 11, "{report}");
    let teardown = report.teardown.as_ref().expect("a teardown ran");
    assert!(teardown.left_in_aws.is_empty(), "{report}");
    assert!(teardown.left_in_kubernetes.is_empty(), "{report}");
    assert!(teardown.foreign_lost.is_empty(), "{report}");
}
