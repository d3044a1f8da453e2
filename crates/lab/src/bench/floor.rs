//! The fewest RegisterTargets calls a scale-out allows a controller that must register each pod
//! within a deadline. The issue asks for both at most 10 calls per 100 pods and registration
//! within 0.5 s; how far apart those are depends on how the pods arrive, which this tells per run.

use std::collections::HashMap;

/// The fewest calls that register every target within `deadline` seconds of the moment it could
/// first be registered (its pod ready and listed in its EndpointSlice), given those moments by
/// target group: one call names one target group, so each group is counted on its own.
///
/// Within a group, the best any controller can do is the greedy cover: the earliest target not yet
/// registered waits at most `deadline`, so a call made then registers every target that arrived by
/// that time; the next call starts from the first target after them. Any schedule meeting the
/// deadline needs a call within each of these windows, so none makes fewer calls.
pub fn fewest_calls(arrivals: &HashMap<String, Vec<f64>>, deadline: f64) -> usize {
    arrivals
        .values()
        .map(|times| calls_for_group(times, deadline))
        .sum()
}

fn calls_for_group(times: &[f64], deadline: f64) -> usize {
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mut calls = 0;
    let mut covered_until = f64::NEG_INFINITY;
    for at in sorted {
        if at > covered_until {
            calls += 1;
            covered_until = at + deadline;
        }
    }
    calls
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(times: &[f64]) -> HashMap<String, Vec<f64>> {
        HashMap::from([("bench".to_string(), times.to_vec())])
    }

    #[test]
    fn targets_arriving_together_need_one_call() {
        assert_eq!(fewest_calls(&group(&[1.0, 1.1, 1.2, 1.5]), 0.5), 1);
    }

    #[test]
    fn a_target_past_the_deadline_of_the_first_needs_another_call() {
        // The call for 1.0 is made at 1.5 at the latest; 1.6 waits for the next, which also
        // takes 2.0 (within 0.5 s of 1.6), and 2.2 needs a third.
        assert_eq!(fewest_calls(&group(&[2.2, 1.0, 1.6, 2.0]), 0.5), 3);
    }

    #[test]
    fn a_longer_deadline_allows_fewer_calls() {
        let paced: Vec<f64> = (0..100).map(|i| f64::from(i) * 0.04).collect();
        assert_eq!(fewest_calls(&group(&paced), 0.5), 8);
        assert_eq!(fewest_calls(&group(&paced), 1.0), 4);
    }

    #[test]
    fn each_target_group_is_a_call_of_its_own() {
        let groups = HashMap::from([
            ("a".to_string(), vec![1.0, 1.1]),
            ("b".to_string(), vec![1.0, 1.1]),
            ("c".to_string(), Vec::new()),
        ]);
        assert_eq!(fewest_calls(&groups, 0.5), 2);
    }
}
