//! The Service builder's tests: the shared fixtures ([`crate::fixtures`]) and the builder run
//! over them.

use k8s_openapi::api::core::v1::Service;
use lb_api::TargetType;

pub(super) use crate::fixtures::{P, SEED, seed_spec, service, settings, vpc};

use super::annotations::parse;
use super::build::{BuildError, Built, build};

pub(super) fn built(svc: &Service, target_type: TargetType) -> Result<Built, BuildError> {
    let annotations =
        parse(svc.metadata.annotations.as_ref().expect("annotations")).expect("annotations parse");
    build(svc, &annotations, target_type, &settings(), &vpc())
}
