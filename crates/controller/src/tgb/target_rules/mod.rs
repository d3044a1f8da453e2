//! The rules on the targets' security groups: every binding's `spec.networking` applied to the
//! endpoint groups of its targets' interfaces, pooled across bindings, labelled as upstream's
//! (the decisions are [`lb_model::target_rules`]'s; this module describes and writes).
//!
//! Costs do not grow with pods: interfaces are described per node instance and kept
//! ([`interfaces`]), a group is described and written only when what the bindings pool for it
//! changes, and rules from one security group are one port range: at steady state no EC2 call
//! is made. Rules are added before any is removed, so a range that widens never closes.
//!
//! After a start, nothing is revoked until every binding with `networking` has been computed
//! once (a rule another binding still needs must not go away in between), or for at most
//! [`AUTHORIZE_ONLY_LIMIT`] (a binding that can never be computed must not hold the others'
//! clean-up forever); then every group is made exact, and the cluster's groups with labelled
//! rules no binding wants lose them. A group whose write failed stays due ("dirty") until a
//! write succeeds. Losing the lease drops everything known: the next leader term starts over.

mod interfaces;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use lb_api::{TargetGroupBinding, TargetType};
use lb_aws::{AwsError, AwsErrorKind, TargetNetwork};
use lb_model::target_rules::{
    self, GroupInfo, Interface, Permission, Pool, RulesError, target_permissions,
};
use lb_model::targets::Desired;
use tokio::sync::Mutex;

use self::interfaces::{InterfaceCache, Place};
use super::diagnosis::Diagnoses;
use crate::stores::Stores;

/// The longest revocations are held back after a start.
pub const AUTHORIZE_ONLY_LIMIT: Duration = Duration::from_secs(600);

/// Upstream's flags for these rules.
#[derive(Debug, Clone, Default)]
pub struct TargetRulesSettings {
    /// `--cluster-name`: picks the cluster's group on an interface with several.
    pub cluster: String,
    /// `--service-target-eni-security-group-tags`: what the picked group must carry besides.
    pub extra_tags: BTreeMap<String, String>,
    /// False with `--disable-restricted-sg-rules`: the bindings' rules as they are, not merged
    /// into ranges.
    pub restricted: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TargetRulesError {
    #[error(transparent)]
    Rules(#[from] RulesError),
    #[error("describing or changing security-group rules: {0}")]
    Aws(#[from] AwsError),
}

pub struct TargetRules {
    network: Arc<dyn TargetNetwork>,
    settings: TargetRulesSettings,
    state: Mutex<State>,
    /// Set when the lease is lost: the state is dropped at the next use.
    stale: AtomicBool,
    /// The bindings' last diagnoses of unreachable targets.
    pub diagnoses: Diagnoses,
}

#[derive(Default)]
struct State {
    pool: Pool,
    /// Bindings with `networking` not computed yet since the start, and when they were listed
    /// (None: not listed yet).
    pending: Option<(Instant, BTreeSet<String>)>,
    interfaces: InterfaceCache,
    /// Groups described (their tags pick an interface's endpoint group; their rules diagnose).
    groups: HashMap<String, GroupInfo>,
    /// What each group was last made to carry.
    applied: HashMap<String, BTreeSet<Permission>>,
    /// Groups to write: their pool changed, or their last write failed.
    dirty: BTreeSet<String>,
    /// The clean-up after the start is done.
    swept: bool,
}

/// What a binding's targets are, for their rules.
pub struct BindingTargets<'a> {
    pub key: &'a str,
    pub binding: &'a TargetGroupBinding,
    pub target_type: TargetType,
    pub desired: &'a Desired,
}

/// How a pass's rules went.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RulesOutcome {
    /// Targets whose interface is not known yet: their rules come in a later pass.
    pub unresolved: Vec<String>,
    /// Rules were added: the targets behind them may turn healthy.
    pub opened: bool,
}

impl TargetRules {
    pub fn new(network: Arc<dyn TargetNetwork>, settings: TargetRulesSettings) -> Self {
        Self {
            network,
            settings,
            state: Mutex::default(),
            stale: AtomicBool::new(false),
            diagnoses: Diagnoses::default(),
        }
    }

    /// Called when the lease is lost: another replica may change what this one knew.
    pub fn forget_all(&self) {
        self.stale.store(true, Ordering::Release);
    }

    async fn state(&self) -> tokio::sync::MutexGuard<'_, State> {
        let mut state = self.state.lock().await;
        if self.stale.swap(false, Ordering::AcqRel) {
            *state = State::default();
        }
        state
    }

    /// Computes `targets`' rules and writes what changed on their groups.
    pub async fn reconcile(
        &self,
        targets: &BindingTargets<'_>,
        stores: &Stores,
    ) -> Result<RulesOutcome, TargetRulesError> {
        let mut state = self.state().await;
        state.list_pending(stores);
        let (wanted, unresolved) = match self.compute(&mut state, targets, stores).await {
            Ok(computed) => computed,
            Err(TargetRulesError::Rules(err)) => {
                // It cannot be computed until it changes: it holds the others' clean-up back no
                // longer, and keeps what it had.
                state.computed(targets.key);
                return Err(err.into());
            }
            Err(err) => return Err(err),
        };
        let touched = state.pool.set(targets.key, wanted);
        state.dirty.extend(touched);
        state.computed(targets.key);
        let opened = self.write(&mut state).await?;
        Ok(RulesOutcome { unresolved, opened })
    }

    /// Forgets a deleted binding; its rules go from groups no other binding needs them on.
    pub async fn forget(&self, key: &str, stores: &Stores) -> Result<(), TargetRulesError> {
        self.diagnoses.forget(key);
        let mut state = self.state().await;
        state.list_pending(stores);
        state.computed(key);
        let touched = state.pool.remove(key);
        state.dirty.extend(touched);
        self.write(&mut state).await.map(|_| ())
    }

    /// The binding's permissions per endpoint group, and the targets not located yet.
    async fn compute(
        &self,
        state: &mut State,
        targets: &BindingTargets<'_>,
        stores: &Stores,
    ) -> Result<(BTreeMap<String, BTreeSet<Permission>>, Vec<String>), TargetRulesError> {
        let mut wanted: BTreeMap<String, BTreeSet<Permission>> = BTreeMap::new();
        let networking = targets.binding.spec.networking.as_ref();
        let Some(networking) = networking.filter(|n| !n.ingress.is_empty()) else {
            return Ok((wanted, Vec::new()));
        };
        let located = state
            .interfaces
            .locate(self.network.as_ref(), targets, stores)
            .await?;
        for (target, interface, pod) in located.found {
            let group = self.endpoint_group(state, &interface).await?;
            let permissions = target_permissions(networking, pod.as_deref())?;
            tracing::trace!(target = %target.id, %group, "target rules");
            wanted.entry(group).or_default().extend(permissions);
        }
        Ok((wanted, located.unresolved))
    }

    /// The interface's endpoint group, describing its groups when it has several.
    async fn endpoint_group(
        &self,
        state: &mut State,
        interface: &Interface,
    ) -> Result<String, TargetRulesError> {
        let needs_tags =
            interface.security_groups.len() > 1 || !self.settings.extra_tags.is_empty();
        let missing: Vec<String> = interface
            .security_groups
            .iter()
            .filter(|id| needs_tags && !state.groups.contains_key(*id))
            .cloned()
            .collect();
        if !missing.is_empty() {
            for group in self.network.security_groups(missing).await? {
                state.groups.insert(group.id.clone(), group);
            }
        }
        let groups: BTreeMap<String, GroupInfo> = interface
            .security_groups
            .iter()
            .filter_map(|id| Some((id.clone(), state.groups.get(id)?.clone())))
            .collect();
        Ok(target_rules::endpoint_group(
            interface,
            &groups,
            &self.settings.cluster,
            &self.settings.extra_tags,
        )?)
    }

    /// Makes the dirty groups carry what the pool wants; once revoking is allowed after a start,
    /// every group known (and the cluster's groups with labelled rules) first. Whether any rule
    /// was added.
    async fn write(&self, state: &mut State) -> Result<bool, TargetRulesError> {
        let authorize_only = state.authorize_only(Instant::now());
        if !authorize_only && !state.swept {
            let known: Vec<String> = state.applied.keys().cloned().collect();
            state.dirty.extend(known);
            let pooled = state.pool.groups();
            state.dirty.extend(pooled);
            for group in self.network.cluster_security_groups().await? {
                if group.ingress.iter().any(|r| r.labelled) {
                    state.dirty.insert(group.id.clone());
                }
            }
            state.applied.clear();
        }
        let mut opened = false;
        let due: Vec<String> = state.dirty.iter().cloned().collect();
        for group in due {
            opened |= self.write_group(state, &group, authorize_only).await?;
            state.dirty.remove(&group);
        }
        if !authorize_only {
            state.swept = true;
        }
        Ok(opened)
    }

    /// Makes `group` carry what the pool wants (nothing revoked while `authorize_only`): added
    /// first, then removed. Whether any rule was added.
    async fn write_group(
        &self,
        state: &mut State,
        group: &str,
        authorize_only: bool,
    ) -> Result<bool, TargetRulesError> {
        let desired = state.pool.desired(group, self.settings.restricted);
        if state.applied.get(group) == Some(&desired) {
            return Ok(false);
        }
        let described = match self.network.security_groups(vec![group.to_string()]).await {
            Ok(found) => found.into_iter().next(),
            Err(err) if err.kind == AwsErrorKind::NotFound => None,
            Err(err) => return Err(err.into()),
        };
        let Some(described) = described else {
            // Gone: nothing to write, nothing to keep.
            state.applied.remove(group);
            state.groups.remove(group);
            return Ok(false);
        };
        let changes = target_rules::changes(&desired, &described.ingress, authorize_only);
        let opened = !changes.authorize.is_empty();
        if opened {
            tracing::info!(%group, rules = ?changes.authorize.iter().map(ToString::to_string).collect::<Vec<_>>(), "authorizing target rules");
            self.network
                .authorize(group.to_string(), changes.authorize)
                .await?;
        }
        if !changes.revoke.is_empty() {
            tracing::info!(%group, rules = ?changes.revoke.iter().map(ToString::to_string).collect::<Vec<_>>(), "revoking target rules");
            self.network
                .revoke(group.to_string(), changes.revoke)
                .await?;
        }
        state.groups.insert(group.to_string(), described);
        // While revoking is held back, the group is written again after the sweep anyway.
        state.applied.insert(group.to_string(), desired);
        Ok(opened)
    }

    /// A target's interface (an instance's primary one, or the one holding an address) with its
    /// groups described now, for the diagnosis of an unreachable target. An interface not known
    /// yet (a binding without `networking` resolves none) is described.
    pub async fn interface_for_diagnosis(
        &self,
        instance_target: bool,
        id: &str,
    ) -> Result<Option<(Interface, Vec<GroupInfo>)>, TargetRulesError> {
        let mut state = self.state().await;
        let place = match (instance_target, id.parse::<IpAddr>()) {
            (true, _) => Place::Primary(id.to_string()),
            (false, Err(_)) => return Ok(None),
            (false, Ok(address)) => match state.interfaces.instance_holding(address) {
                Some(instance) => Place::Address(instance, address),
                None => {
                    let found = self.network.interfaces_with_address(id.to_string()).await?;
                    let Some(interface) = found.into_iter().next() else {
                        return Ok(None);
                    };
                    let branch = interface.id.clone();
                    state.interfaces.keep_branch(interface);
                    Place::Branch(branch)
                }
            },
        };
        if let Place::Primary(instance) = &place
            && state.interfaces.find(&place).is_none()
        {
            let described = self
                .network
                .instance_interfaces(vec![instance.clone()])
                .await?;
            state
                .interfaces
                .keep_instances(&BTreeSet::from([instance.clone()]), described);
        }
        let Some(interface) = state.interfaces.find(&place).cloned() else {
            return Ok(None);
        };
        let groups = self
            .network
            .security_groups(interface.security_groups.clone())
            .await?;
        for group in &groups {
            state.groups.insert(group.id.clone(), group.clone());
        }
        Ok(Some((interface, groups)))
    }
}

impl State {
    /// At the first call after a start: every binding with `networking` is pending.
    fn list_pending(&mut self, stores: &Stores) {
        if self.pending.is_some() {
            return;
        }
        let pending = stores
            .bindings
            .state()
            .iter()
            .filter(|b| {
                b.spec
                    .networking
                    .as_ref()
                    .is_some_and(|n| !n.ingress.is_empty())
            })
            .filter(|b| b.metadata.deletion_timestamp.is_none())
            .map(|b| crate::tgb::binding_key(b))
            .collect();
        self.pending = Some((Instant::now(), pending));
    }

    fn computed(&mut self, key: &str) {
        if let Some((_, pending)) = self.pending.as_mut() {
            pending.remove(key);
        }
    }

    fn authorize_only(&self, now: Instant) -> bool {
        match &self.pending {
            None => true,
            Some((listed, pending)) => !pending.is_empty() && now < *listed + AUTHORIZE_ONLY_LIMIT,
        }
    }
}

#[cfg(test)]
mod tests;
