//! Status conditions as the Gateway API spells them (`metav1.Condition`), set so that a condition
//! that says the same keeps its `lastTransitionTime` (a status written again must not look like a
//! change).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// The condition types and reasons this controller writes (the spec's own spellings).
pub mod types {
    pub const ACCEPTED: &str = "Accepted";
    pub const PROGRAMMED: &str = "Programmed";
    pub const RESOLVED_REFS: &str = "ResolvedRefs";
    pub const CONFLICTED: &str = "Conflicted";
}

/// One condition's status, reason and message, before it is dated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub type_: &'static str,
    pub status: bool,
    pub reason: &'static str,
    pub message: String,
}

impl Verdict {
    pub fn new(
        type_: &'static str,
        status: bool,
        reason: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_,
            status,
            reason,
            message: message.into(),
        }
    }
}

/// Sets `verdicts` on `previous` conditions, at `generation`: each verdict replaces the condition
/// of its type, keeping its `lastTransitionTime` when the status is unchanged; conditions of
/// other types (another writer's) stay.
pub fn merge(
    previous: &[Condition],
    verdicts: &[Verdict],
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    let mut conditions: Vec<Condition> = previous
        .iter()
        .filter(|c| !verdicts.iter().any(|v| v.type_ == c.type_))
        .cloned()
        .collect();
    for verdict in verdicts {
        let status = if verdict.status { "True" } else { "False" };
        let transition = previous
            .iter()
            .find(|c| c.type_ == verdict.type_ && c.status == status)
            .map_or_else(|| now.clone(), |c| c.last_transition_time.clone());
        conditions.push(Condition {
            type_: verdict.type_.to_string(),
            status: status.to_string(),
            reason: verdict.reason.to_string(),
            message: verdict.message.clone(),
            observed_generation: generation,
            last_transition_time: transition,
        });
    }
    conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
    conditions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(second).expect("time"))
    }

    #[test]
    fn a_condition_that_says_the_same_keeps_its_transition_time_and_others_stay() {
        let foreign = Condition {
            type_: "Example".into(),
            status: "True".into(),
            reason: "Example".into(),
            message: String::new(),
            observed_generation: None,
            last_transition_time: at(1),
        };
        let first = merge(
            &[foreign],
            &[Verdict::new(types::ACCEPTED, true, "Accepted", "ok")],
            Some(1),
            &at(10),
        );
        let again = merge(
            &first,
            &[Verdict::new(types::ACCEPTED, true, "Accepted", "still ok")],
            Some(2),
            &at(20),
        );
        let accepted = again
            .iter()
            .find(|c| c.type_ == "Accepted")
            .expect("accepted");
        assert_eq!(accepted.last_transition_time, at(10));
        assert_eq!(accepted.observed_generation, Some(2));
        assert_eq!(accepted.message, "still ok");
        assert!(again.iter().any(|c| c.type_ == "Example"));

        let flipped = merge(
            &again,
            &[Verdict::new(types::ACCEPTED, false, "Invalid", "no")],
            Some(3),
            &at(30),
        );
        let accepted = flipped
            .iter()
            .find(|c| c.type_ == "Accepted")
            .expect("accepted");
        assert_eq!(
            (
                accepted.status.as_str(),
                accepted.last_transition_time.clone()
            ),
            ("False", at(30))
        );
    }
}
