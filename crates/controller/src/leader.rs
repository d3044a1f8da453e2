//! Leader election on a `coordination.k8s.io/v1` Lease, with a warm standby.
//!
//! Every replica runs the watches, keeps the caches and serves the webhooks; only the holder of
//! the Lease reconciles (writes to AWS and to objects). The reconcilers ask [`Leadership`] at the
//! start of each pass, and re-queue every object once when leadership is gained, from caches that
//! are already synced: a takeover starts work at once instead of after a fresh LIST of the cluster.
//!
//! Why our own module rather than a crate: the standby *watches* the Lease, so a holder that
//! releases it on SIGTERM is replaced within one watch event (well under a second), not at the
//! next poll. Expiry is judged by the local clock since the record last changed (as client-go
//! does), never by comparing the holder's clock with ours.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::sync::{oneshot, watch};

/// The timings of controller-runtime's defaults, which upstream keeps.
#[derive(Debug, Clone)]
pub struct LeaderOptions {
    /// The Lease's namespace and name (`--leader-election-namespace`, `--leader-election-id`).
    pub namespace: String,
    pub name: String,
    /// This replica's identity in `holderIdentity` (the pod's name).
    pub identity: String,
    /// How long a Lease not renewed stays its holder's.
    pub lease_duration: Duration,
    /// How long the leader keeps leading while its renewals fail.
    pub renew_deadline: Duration,
    /// How often the leader renews, and a standby without news looks again.
    pub retry_period: Duration,
}

impl LeaderOptions {
    pub fn new(namespace: String, name: String, identity: String) -> Self {
        Self {
            namespace,
            name,
            identity,
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// Whether this replica leads now, and news when that changes. Without leader election it
/// always leads.
#[derive(Clone, Debug)]
pub struct Leadership {
    leading: watch::Receiver<bool>,
}

impl Leadership {
    /// A replica that leads for its whole life (leader election off; tests).
    pub fn always() -> Self {
        let (sender, leading) = watch::channel(true);
        // Keep the value alive without a sender task: a closed channel keeps its last value.
        drop(sender);
        Self { leading }
    }

    /// A leadership the test sets through the sender it gets with it.
    #[cfg(test)]
    pub fn switched_by_hand(leading: bool) -> (watch::Sender<bool>, Self) {
        let (sender, leading) = watch::channel(leading);
        (sender, Self { leading })
    }

    pub fn is_leader(&self) -> bool {
        *self.leading.borrow()
    }

    /// The leadership as a watch (true while leading): what the AWS clients' write fence follows.
    pub fn watch(&self) -> watch::Receiver<bool> {
        self.leading.clone()
    }

    /// One item each time leadership is gained (and at once if it is held already): what a
    /// controller's `reconcile_all_on` takes, so a new leader looks at every object once.
    pub fn gained(&self) -> impl Stream<Item = ()> + Send + 'static {
        self.turned_to(true)
    }

    /// One item each time leadership is lost (and at once if it is not held): what the writers
    /// take to drop what an earlier term queued.
    pub fn lost(&self) -> impl Stream<Item = ()> + Send + 'static {
        self.turned_to(false)
    }

    fn turned_to(&self, wanted: bool) -> impl Stream<Item = ()> + Send + 'static {
        let mut leading = self.leading.clone();
        leading.mark_changed();
        futures::stream::unfold(leading, move |mut leading| async move {
            loop {
                leading.changed().await.ok()?;
                if *leading.borrow_and_update() == wanted {
                    return Some(((), leading));
                }
            }
        })
    }

    /// Resolves when this replica leads (at once if it does).
    pub async fn acquired(&self) {
        let mut leading = self.leading.clone();
        let _ = leading.wait_for(|leading| *leading).await;
    }
}

/// Calls `forget` with `owner` each time `leadership` is lost, for as long as `owner` lives: what
/// a background writer uses to drop what it queued in its term, even when no write comes to
/// notice the loss.
pub fn on_loss<T: Send + Sync + 'static>(
    leadership: &Leadership,
    owner: &Arc<T>,
    forget: impl Fn(&T) + Send + 'static,
) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!("no async runtime: a loss of leadership is noticed only at the next write");
        return;
    };
    let owner = Arc::downgrade(owner);
    let lost = leadership.lost();
    runtime.spawn(async move {
        let mut lost = std::pin::pin!(lost);
        while lost.next().await.is_some() {
            let Some(owner) = owner.upgrade() else { return };
            forget(&owner);
        }
    });
}

/// The running election: ask it for [`Leadership`]; [`LeaderElector::release`] at shutdown.
pub struct LeaderElector {
    leadership: Leadership,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl LeaderElector {
    /// Starts campaigning for the Lease in the background.
    pub fn start(client: Client, options: LeaderOptions) -> Self {
        let (leading_tx, leading) = watch::channel(false);
        let (stop, stop_rx) = oneshot::channel();
        let api: Api<Lease> = Api::namespaced(client, &options.namespace);
        let task = tokio::spawn(campaign(api, Arc::new(options), leading_tx, stop_rx));
        Self {
            leadership: Leadership { leading },
            stop,
            task,
        }
    }

    pub fn leadership(&self) -> Leadership {
        self.leadership.clone()
    }

    /// Gives the Lease up (when held), so a standby takes over at once instead of after the
    /// lease duration. Call it after the reconcilers have finished their in-flight work.
    pub async fn release(mut self) {
        let _ = self.stop.send(());
        if tokio::time::timeout(Duration::from_secs(5), &mut self.task)
            .await
            .is_err()
        {
            tracing::warn!("leader election: the Lease was not released within 5 s");
            self.task.abort();
        }
    }
}

/// What this replica last saw of the Lease, and when it changed (local clock).
struct Observed {
    holder: Option<String>,
    renew_time: Option<MicroTime>,
    changed_at: Instant,
}

/// The campaign: acquire when free or expired, renew while held, release on stop.
async fn campaign(
    api: Api<Lease>,
    options: Arc<LeaderOptions>,
    leading: watch::Sender<bool>,
    mut stop: oneshot::Receiver<()>,
) {
    let selector = format!("metadata.name={}", options.name);
    let mut news = watcher(api.clone(), watcher::Config::default().fields(&selector))
        .default_backoff()
        .applied_objects()
        .boxed();
    let mut observed: Option<Observed> = None;
    let mut last_renewal = Instant::now();
    'campaign: loop {
        // No look may outlast the renew deadline: a leader whose renewal hangs (a stalled
        // connection) must stop leading before a standby may take the Lease over.
        let was_leading = *leading.borrow();
        let budget = if was_leading {
            options
                .renew_deadline
                .saturating_sub(last_renewal.elapsed())
        } else {
            options.renew_deadline
        };
        let attempt = Instant::now();
        let looked = tokio::time::timeout(budget, step(&api, &options, &mut observed))
            .await
            .unwrap_or(Err(LeaseError::Timeout(budget)));
        let wait = match looked {
            Ok(Step::Leading) => {
                // The renewal counts from when it was sent, not from when it was answered.
                last_renewal = attempt;
                set(&leading, true, &options);
                options.retry_period
            }
            Ok(Step::Standing(until_expiry)) => {
                set(&leading, false, &options);
                until_expiry.min(options.retry_period)
            }
            Err(err) => {
                if *leading.borrow() && last_renewal.elapsed() >= options.renew_deadline {
                    tracing::error!(
                        "leader election: could not renew the Lease for {:?}: {err}",
                        options.renew_deadline
                    );
                    set(&leading, false, &options);
                } else {
                    tracing::warn!("leader election: {err}");
                }
                options.retry_period
            }
        };
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            tokio::select! {
                _ = &mut stop => break 'campaign,
                _ = tokio::time::sleep_until(deadline) => break,
                // A change of the Lease (released, taken, renewed): a standby looks again at
                // once. The leader's own renewals come back here too; it keeps its rhythm.
                Some(_) = news.next() => if !*leading.borrow() { break },
            }
        }
    }
    if *leading.borrow() {
        release(&api, &options).await;
        set(&leading, false, &options);
    }
}

fn set(leading: &watch::Sender<bool>, now: bool, options: &LeaderOptions) {
    let was = leading.send_replace(now);
    if was != now {
        tracing::info!(identity = %options.identity, lease = %options.name, leading = now, "leadership changed");
    }
}

enum Step {
    /// This replica holds the Lease (just acquired or renewed).
    Leading,
    /// Another holds it; it expires in this long unless renewed.
    Standing(Duration),
}

#[derive(Debug, thiserror::Error)]
enum LeaseError {
    #[error("reading Lease {name}: {source}")]
    Read { name: String, source: kube::Error },
    #[error("writing Lease {name}: {source}")]
    Write { name: String, source: kube::Error },
    #[error("no answer from the apiserver within {0:?}")]
    Timeout(Duration),
}

/// One look at the Lease: create, renew, take over an expired or free one, or stand by.
async fn step(
    api: &Api<Lease>,
    options: &LeaderOptions,
    observed: &mut Option<Observed>,
) -> Result<Step, LeaseError> {
    let read_error = |source| LeaseError::Read {
        name: options.name.clone(),
        source,
    };
    let write_error = |source| LeaseError::Write {
        name: options.name.clone(),
        source,
    };
    let Some(lease) = api.get_opt(&options.name).await.map_err(read_error)? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(options.name.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(held_by(options, None)),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(Step::Leading),
            // Another replica created it first: stand by until the next look.
            Err(kube::Error::Api(status)) if status.code == 409 => {
                Ok(Step::Standing(Duration::ZERO))
            }
            Err(source) => Err(write_error(source)),
        };
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
    let now = Instant::now();
    let changed = observed
        .as_ref()
        .is_none_or(|o| o.holder != holder || o.renew_time != spec.renew_time);
    if changed {
        *observed = Some(Observed {
            holder: holder.clone(),
            renew_time: spec.renew_time.clone(),
            changed_at: now,
        });
    }
    let duration = spec
        .lease_duration_seconds
        .map_or(options.lease_duration, |s| {
            Duration::from_secs(u64::try_from(s).unwrap_or(0))
        });
    let changed_at = observed.as_ref().map_or(now, |o| o.changed_at);
    let expires_in = (changed_at + duration).saturating_duration_since(now);
    let mine = holder.as_deref() == Some(options.identity.as_str());
    if !mine && holder.is_some() && !expires_in.is_zero() {
        return Ok(Step::Standing(expires_in));
    }
    // Ours to renew, or free, or expired: write it with the version read, so that of two
    // replicas taking it at once, one wins and the other gets a conflict.
    let mut updated = lease.clone();
    updated.spec = Some(held_by(options, (mine).then_some(&spec)));
    if !mine {
        let transitions = spec.lease_transitions.unwrap_or(0);
        if let Some(spec) = updated.spec.as_mut() {
            spec.lease_transitions = Some(transitions + 1);
        }
    }
    match api
        .replace(&options.name, &PostParams::default(), &updated)
        .await
    {
        Ok(_) => Ok(Step::Leading),
        // Someone wrote the Lease since we read it: another replica took it (or won the race
        // to take it). Stop leading now; the next look, at once, says who holds it.
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(Step::Standing(Duration::ZERO)),
        Err(source) => Err(write_error(source)),
    }
}

/// The Lease's spec with this replica holding it from now; `current` when it already did (the
/// acquire time and transitions are kept).
fn held_by(options: &LeaderOptions, current: Option<&LeaseSpec>) -> LeaseSpec {
    let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
    LeaseSpec {
        holder_identity: Some(options.identity.clone()),
        lease_duration_seconds: Some(
            i32::try_from(options.lease_duration.as_secs()).unwrap_or(i32::MAX),
        ),
        acquire_time: current
            .and_then(|c| c.acquire_time.clone())
            .or_else(|| Some(now.clone())),
        renew_time: Some(now),
        lease_transitions: current.and_then(|c| c.lease_transitions),
        ..LeaseSpec::default()
    }
}

/// Clears the holder (as client-go's ReleaseOnCancel does), so a standby need not wait out the
/// lease duration.
async fn release(api: &Api<Lease>, options: &LeaderOptions) {
    let Ok(Some(mut lease)) = api.get_opt(&options.name).await else {
        return;
    };
    let Some(spec) = lease.spec.as_mut() else {
        return;
    };
    if spec.holder_identity.as_deref() != Some(options.identity.as_str()) {
        return;
    }
    spec.holder_identity = None;
    spec.lease_duration_seconds = Some(1);
    match api
        .replace(&options.name, &PostParams::default(), &lease)
        .await
    {
        Ok(_) => tracing::info!(identity = %options.identity, "released the Lease"),
        Err(err) => tracing::warn!("releasing the Lease: {err}"),
    }
}
