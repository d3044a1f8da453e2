//! Who is in a group right now, read from the watch caches: the Ingresses of ours whose group it
//! is (members), and those still holding the group's finalizer that are deleted, no longer ours,
//! or gone to another group (leaving: their finalizer goes once the ALB no longer has them).

use std::sync::Arc;

use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::ResourceExt;
use kube::runtime::reflector::Store;
use lb_api::keys::ingress as keys;
use lb_api::{IngressClassParams, IngressClassParamsSpec};
use lb_model::ingress::GroupId;
use lb_model::ingress::class::{ClassSettings, KnownClass, Selection, select};
use lb_model::ingress::group::group_of;

use crate::stores::Stores;

/// The classes and class parameters, as the caches hold them.
pub struct Classes {
    known: Vec<KnownClass>,
}

impl Classes {
    pub fn read(classes: &Store<IngressClass>, params: &Store<IngressClassParams>) -> Self {
        let params = params.state();
        let known = classes
            .state()
            .iter()
            .map(|class| {
                let mut known = KnownClass {
                    class: class.as_ref().clone(),
                    params: None,
                };
                known.params = known.params_name().and_then(|name| {
                    params
                        .iter()
                        .find(|p| p.name_any() == name)
                        .map(|p| p.spec.clone())
                });
                known
            })
            .collect();
        Self { known }
    }
}

/// Whether `ingress` is ours (and with which parameters), as the class rules say.
pub fn selection(
    ingress: &Ingress,
    classes: &Classes,
    stores: &Stores,
    settings: &ClassSettings,
) -> Selection {
    let labels = ingress
        .namespace()
        .and_then(|ns| {
            stores
                .namespaces
                .get(&kube::runtime::reflector::ObjectRef::new(&ns))
        })
        .map(|ns| ns.labels().clone())
        .unwrap_or_default();
    select(ingress, &classes.known, &labels, settings)
}

/// The groups whose finalizer `ingress` carries.
pub fn finalizer_groups(ingress: &Ingress) -> Vec<GroupId> {
    ingress
        .finalizers()
        .iter()
        .filter_map(|f| {
            if f == keys::FINALIZER {
                Some(GroupId::Implicit {
                    namespace: ingress.namespace().unwrap_or_default(),
                    name: ingress.name_any(),
                })
            } else {
                f.strip_prefix(keys::GROUP_FINALIZER_PREFIX)
                    .map(|name| GroupId::Explicit(name.to_string()))
            }
        })
        .collect()
}

/// The group `ingress` belongs to now, if it is ours and not being deleted.
pub fn current_group(ingress: &Ingress, selection: &Selection) -> Option<GroupId> {
    if ingress.metadata.deletion_timestamp.is_some() {
        return None;
    }
    match selection {
        Selection::Ours { params } => Some(group_of(ingress, params.as_deref())),
        // A refused class still names the group: the member is held, not removed.
        Selection::Refused(_) => Some(group_of(ingress, None)),
        Selection::NotOurs => None,
    }
}

pub struct Member {
    pub ingress: Arc<Ingress>,
    pub params: Option<IngressClassParamsSpec>,
    /// Why the class refuses it (missing parameters, namespace not admitted).
    pub refused: Option<String>,
}

pub struct GroupView {
    pub members: Vec<Member>,
    pub leaving: Vec<Arc<Ingress>>,
}

/// The group's members and leavers, from the Ingress cache.
pub fn view(
    group: &GroupId,
    ingresses: &Store<Ingress>,
    classes: &Classes,
    stores: &Stores,
    settings: &ClassSettings,
) -> GroupView {
    let mut members = Vec::new();
    let mut leaving = Vec::new();
    for ingress in ingresses.state() {
        let selection = selection(&ingress, classes, stores, settings);
        let here = current_group(&ingress, &selection).as_ref() == Some(group);
        if here {
            let (params, refused) = match selection {
                Selection::Ours { params } => (params.map(|p| *p), None),
                Selection::Refused(why) => (None, Some(why)),
                Selection::NotOurs => (None, None),
            };
            members.push(Member {
                ingress,
                params,
                refused,
            });
        } else if finalizer_groups(&ingress).contains(group) {
            leaving.push(ingress);
        }
    }
    GroupView { members, leaving }
}
