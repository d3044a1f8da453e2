use std::collections::BTreeMap;

use lb_model::stack::{Condition, TargetGroupRef, WeightedTargetGroup};

use super::*;

const KIND: StackKind = StackKind::Ingress;

fn rule(path: &str, target: &str) -> Rule {
    Rule {
        conditions: vec![Condition::PathPattern {
            values: vec![path.into()],
            regex: false,
        }],
        action: Action::forward_to(target),
        tags: BTreeMap::from([("owner".to_string(), "us".to_string())]),
    }
}

/// What ELB holds for `rule` at `priority`: target groups by ARN, tagged for that priority.
fn existing(rule: &Rule, priority: u32) -> ExistingRule {
    let action = resolve(&rule.action, |id| Some(format!("arn:{id}"))).expect("resolves");
    ExistingRule {
        arn: format!("arn:rule/{priority}"),
        priority,
        rule: Rule {
            action,
            tags: rule_tags(rule, KIND, 80, priority),
            ..rule.clone()
        },
    }
}

/// `held_groups`: the target groups (by resource id) of held members.
fn steps_holding(desired: &[Rule], have: &[ExistingRule], held_groups: &[&str]) -> Vec<Step> {
    let mut steps = Vec::new();
    let ours = |r: &ExistingRule| r.rule.tags.get("owner").map(String::as_str) == Some("us");
    let arn_of = |id: &str| Some(format!("arn:{id}"));
    let held = |r: &ExistingRule| {
        r.rule.action.target_groups().any(|g| {
            held_groups
                .iter()
                .any(|id| *g == TargetGroupRef::Arn(format!("arn:{id}")))
        })
    };
    rule_steps(
        &RuleContext {
            port: 80,
            kind: KIND,
            ours: &ours,
            held: &held,
            arn_of: &arn_of,
            ignored_tags: &BTreeSet::new(),
        },
        desired,
        have,
        &mut steps,
    );
    steps
}

fn steps(desired: &[Rule], have: &[ExistingRule]) -> Vec<Step> {
    steps_holding(desired, have, &[])
}

/// The tag step that gives the rule at `from` the resource id of priority `to`.
fn retag(from: u32, to: u32) -> Step {
    Step::AddTags {
        arn: format!("arn:rule/{from}"),
        tags: BTreeMap::from([(KIND.resource_tag().to_string(), format!("80:{to}"))]),
    }
}

/// The step that creates `rules[index]` at `priority`, tagged for it.
fn create(rules: &[Rule], index: usize, priority: u32) -> Step {
    Step::CreateRule {
        port: 80,
        priority,
        rule: Box::new(Rule {
            tags: rule_tags(&rules[index], KIND, 80, priority),
            ..rules[index].clone()
        }),
    }
}

/// The step that rewrites rule `arn` to `rule`.
fn modify(arn: &str, rule: &Rule) -> Step {
    Step::ModifyRule {
        arn: arn.into(),
        port: 80,
        rule: Box::new(rule.clone()),
    }
}

fn five() -> Vec<Rule> {
    (1..=5).map(|i| rule(&format!("/p{i}"), "tg")).collect()
}

fn converged(rules: &[Rule]) -> Vec<ExistingRule> {
    rules
        .iter()
        .zip(1u32..)
        .map(|(r, p)| existing(r, p))
        .collect()
}

#[test]
fn a_converged_listener_takes_no_call() {
    let rules = five();
    assert_eq!(steps(&rules, &converged(&rules)), []);
}

#[test]
fn a_fresh_listener_creates_its_rules_at_1_to_n() {
    let rules = five();
    let created: Vec<Step> = (0..5)
        .map(|i| create(&rules, i, u32::try_from(i).expect("small") + 1))
        .collect();
    assert_eq!(steps(&rules, &[]), created);
}

#[test]
fn changing_one_path_is_one_modify() {
    let rules = five();
    let have = converged(&rules);
    let mut changed = rules.clone();
    changed[2] = rule("/changed", "tg");
    assert_eq!(steps(&changed, &have), [modify("arn:rule/3", &changed[2])]);
}

#[test]
fn adding_at_the_end_is_one_create_and_in_the_middle_shifts_what_follows_in_one_call() {
    let rules = five();
    let have = converged(&rules);
    let mut appended = rules.clone();
    appended.push(rule("/p6", "tg"));
    assert_eq!(steps(&appended, &have), [create(&appended, 5, 6)]);
    // Upstream's layout is 1..n in order: what follows the new rule moves down one (one call)
    // and takes the resource id of its new priority.
    let mut inserted = rules.clone();
    inserted.insert(1, rule("/new", "tg"));
    let mut expected = vec![
        Step::SetRulePriorities {
            priorities: (2..=5).map(|p| (format!("arn:rule/{p}"), p + 1)).collect(),
        },
        create(&inserted, 1, 2),
    ];
    expected.extend((2..=5).map(|p| retag(p, p + 1)));
    assert_eq!(steps(&inserted, &have), expected);
}

#[test]
fn removing_a_rule_deletes_it_and_closes_the_gap() {
    let rules = five();
    let have = converged(&rules);
    let mut removed = rules.clone();
    removed.remove(1);
    let mut expected = vec![
        Step::DeleteRule {
            arn: "arn:rule/2".into(),
        },
        Step::SetRulePriorities {
            priorities: (3..=5).map(|p| (format!("arn:rule/{p}"), p - 1)).collect(),
        },
    ];
    expected.extend((3..=5).map(|p| retag(p, p - 1)));
    assert_eq!(steps(&removed, &have), expected);
}

/// A held member's rules (those forwarding to its target groups) stay where they are while the
/// others change around them: a healthy member's changed path is still rewritten in place.
#[test]
fn a_held_members_rules_stay_and_the_others_change() {
    let mut rules = five();
    rules[1] = rule("/held", "held-tg");
    let have = converged(&rules);
    let mut without = rules.clone();
    without.remove(1);
    assert_eq!(steps_holding(&without, &have, &["held-tg"]), []);
    // A changed path of another member: rewritten where it is; a new rule after the held one.
    let mut changed = without.clone();
    changed[2] = rule("/changed", "tg");
    changed.push(rule("/p6", "tg"));
    assert_eq!(
        steps_holding(&changed, &have, &["held-tg"]),
        [modify("arn:rule/4", &changed[2]), create(&changed, 4, 6),]
    );
    // Fixed, the member's rule is back in the stack: nothing to do.
    assert_eq!(steps(&rules, &have), []);
}

#[test]
fn a_weight_change_is_one_modify() {
    let weighted = |a: i32, b: i32| Rule {
        action: Action::Forward {
            target_groups: vec![
                WeightedTargetGroup {
                    target_group: TargetGroupRef::Stack("ng".into()),
                    weight: Some(a),
                },
                WeightedTargetGroup {
                    target_group: TargetGroupRef::Stack("canary".into()),
                    weight: Some(b),
                },
            ],
            stickiness_seconds: None,
        },
        ..rule("/*", "unused")
    };
    let have = converged(&[weighted(50, 50)]);
    assert_eq!(steps(&[weighted(50, 50)], &have), []);
    assert_eq!(
        steps(&[weighted(90, 10)], &have),
        [modify("arn:rule/1", &weighted(90, 10))]
    );
}

#[test]
fn rules_not_ours_are_untouched_and_their_priorities_avoided() {
    let mut foreign = existing(&rule("/theirs", "x"), 2);
    foreign.rule.tags.clear();
    let rules = vec![rule("/a", "tg"), rule("/b", "tg")];
    assert_eq!(
        steps(&rules, &[foreign]),
        [create(&rules, 0, 1), create(&rules, 1, 3),]
    );
}

#[test]
fn a_rule_waiting_for_its_target_group_is_rewritten_once_it_exists() {
    let rules = vec![rule("/a", "new-tg")];
    let have = vec![existing(&rule("/a", "old-tg"), 1)];
    assert_eq!(steps(&rules, &have), [modify("arn:rule/1", &rules[0])]);
}

#[test]
fn the_layout_is_1_to_n_around_occupied_priorities() {
    assert_eq!(layout(3, &BTreeSet::new()), [1, 2, 3]);
    assert_eq!(layout(3, &BTreeSet::from([1, 3])), [2, 4, 5]);
    assert_eq!(layout(0, &BTreeSet::from([1])), Vec::<u32>::new());
}
