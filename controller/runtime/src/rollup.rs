//! Status of a PatchPolicy, PatchGroup or MaintenanceWindow, rolled up from the outcomes
//! of the account-regions it reaches. Pure: the owner reconciler gathers the inputs and
//! writes the result; the decisions are tested here.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use patchfleet_api::conditions::{self, Status};
use patchfleet_api::v1alpha1::{AccountFailure, FleetStatus, MAX_FAILURES, Summary};
use patchfleet_planner::model::{AccountRegion, Owner, Problem};

use crate::fleet::RegionOutcome;

/// Everything the rollup of one owner depends on.
pub struct RollupInput<'a> {
    pub owner: &'a Owner,
    pub generation: i64,
    /// Account-regions the owner reaches now.
    pub selected: &'a BTreeSet<AccountRegion>,
    pub outcomes: &'a BTreeMap<AccountRegion, RegionOutcome>,
    /// Problems found without looking at any account (a missing reference).
    pub own_problems: &'a [Problem],
    /// The current status, whose conditions keep their transition times.
    pub previous: Option<&'a FleetStatus>,
    pub now: Time,
}

/// How one selected account-region stands for this owner.
#[derive(Debug, PartialEq, Eq)]
enum Standing {
    Ready,
    Pending,
    Failing {
        reason: String,
        message: String,
        needs_attention: bool,
    },
}

fn standing(owner: &Owner, generation: i64, outcome: Option<&RegionOutcome>) -> Standing {
    let Some(outcome) = outcome else {
        return Standing::Pending;
    };
    if let Some(problem) = outcome.problems.iter().find(|p| &p.owner == owner) {
        return Standing::Failing {
            reason: problem.reason.to_owned(),
            message: problem.message.clone(),
            needs_attention: true,
        };
    }
    if let Some(error) = &outcome.error {
        return Standing::Failing {
            reason: error.reason.clone(),
            message: error.message.clone(),
            needs_attention: error.needs_attention,
        };
    }
    let planned_now = outcome.planned_generations.get(owner) == Some(&generation);
    if outcome.converged && planned_now {
        Standing::Ready
    } else {
        Standing::Pending
    }
}

pub fn rollup(input: RollupInput<'_>) -> FleetStatus {
    let tally = tally(&input);
    let generation = Some(input.generation);
    let mut conditions: Vec<Condition> = input
        .previous
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let selected = input.selected.len() as u32;
    conditions::set_standing(
        &mut conditions,
        standing_of(&tally, input.own_problems, selected),
        generation,
        input.now.clone(),
    );
    FleetStatus {
        observed_generation: generation,
        conditions,
        summary: Some(Summary {
            selected,
            ready: tally.ready,
            failing: tally.failing,
        }),
        failures: tally.failures,
        omitted_failures: tally.omitted,
    }
}

/// The selected account-regions counted by how they stand for the owner.
#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    ready: u32,
    pending: u32,
    failing: u32,
    /// Some failure needs a person (not a retry).
    stalled_by_accounts: bool,
    /// The first [`MAX_FAILURES`], in account-region order.
    failures: Vec<AccountFailure>,
    /// Failures beyond those.
    omitted: u32,
}

fn tally(input: &RollupInput<'_>) -> Tally {
    let mut tally = Tally::default();
    for region in input.selected {
        match standing(input.owner, input.generation, input.outcomes.get(region)) {
            Standing::Ready => tally.ready += 1,
            Standing::Pending => tally.pending += 1,
            Standing::Failing {
                reason,
                message,
                needs_attention,
            } => {
                tally.stalled_by_accounts |= needs_attention;
                tally.failing += 1;
                if tally.failures.len() < MAX_FAILURES {
                    tally.failures.push(AccountFailure {
                        account_id: region.account_id.clone(),
                        region: region.region.clone(),
                        reason,
                        message,
                    });
                } else {
                    tally.omitted += 1;
                }
            }
        }
    }
    tally
}

/// The owner's conditions, first cause first: its own problem (a reference the schema
/// cannot check), then failing account-regions, then those not converged yet.
fn standing_of<'a>(
    tally: &'a Tally,
    own_problems: &'a [Problem],
    selected: u32,
) -> conditions::Standing<'a> {
    if let Some(problem) = own_problems.first() {
        return conditions::Standing {
            ready: (Status::False, problem.reason, problem.message.clone()),
            reconciling: None,
            stalled: Some((problem.reason, problem.message.clone())),
        };
    }
    if let Some(first) = tally.failures.first() {
        let message = format!(
            "{} of {selected} account-regions failing; first: {} {}: {}",
            tally.failing, first.account_id, first.region, first.message
        );
        let abnormal = Some(("AccountsFailing", message.clone()));
        let (reconciling, stalled) = if tally.stalled_by_accounts {
            (None, abnormal)
        } else {
            (Some(("Retrying", message.clone())), None)
        };
        return conditions::Standing {
            ready: (Status::False, "AccountsFailing", message),
            reconciling,
            stalled,
        };
    }
    if tally.pending > 0 {
        let message = format!("{} of {selected} account-regions converged", tally.ready);
        return conditions::Standing {
            ready: (Status::False, "Progressing", message.clone()),
            reconciling: Some(("Progressing", message)),
            stalled: None,
        };
    }
    let message = match selected {
        0 => "selects no account-region".to_owned(),
        n => format!("converged in {n} account-regions"),
    };
    conditions::Standing {
        ready: (Status::True, "Converged", message),
        reconciling: None,
        stalled: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::PassError;
    use patchfleet_api::conditions::{READY, RECONCILING, STALLED};
    use patchfleet_planner::model::OwnerKind;

    fn owner() -> Owner {
        Owner {
            kind: OwnerKind::PatchGroup,
            namespace: "ns".into(),
            name: "early".into(),
        }
    }

    fn region(n: u32) -> AccountRegion {
        AccountRegion {
            account: format!("acct-{n}"),
            account_id: format!("{n:012}"),
            region: "eu-west-1".into(),
        }
    }

    fn converged(generation: i64) -> RegionOutcome {
        RegionOutcome {
            planned_generations: [(owner(), generation)].into(),
            owners_present: [owner()].into(),
            observed: true,
            converged: true,
            ..RegionOutcome::default()
        }
    }

    fn at(seconds: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(seconds).expect("valid"))
    }

    fn run(
        selected: &[AccountRegion],
        outcomes: &[(AccountRegion, RegionOutcome)],
        own_problems: &[Problem],
    ) -> FleetStatus {
        let selected: BTreeSet<_> = selected.iter().cloned().collect();
        let outcomes: BTreeMap<_, _> = outcomes.iter().cloned().collect();
        rollup(RollupInput {
            owner: &owner(),
            generation: 2,
            selected: &selected,
            outcomes: &outcomes,
            own_problems,
            previous: None,
            now: at(100),
        })
    }

    fn condition<'a>(status: &'a FleetStatus, type_: &str) -> &'a Condition {
        conditions::find(&status.conditions, type_).expect("condition present")
    }

    #[test]
    fn all_converged_at_the_current_generation_is_ready() {
        let status = run(
            &[region(1), region(2)],
            &[(region(1), converged(2)), (region(2), converged(2))],
            &[],
        );
        assert_eq!(
            status.summary,
            Some(Summary {
                selected: 2,
                ready: 2,
                failing: 0
            })
        );
        assert_eq!(condition(&status, READY).status, "True");
        assert_eq!(condition(&status, RECONCILING).status, "False");
        assert_eq!(condition(&status, STALLED).status, "False");
        assert_eq!(status.observed_generation, Some(2));
    }

    #[test]
    fn converged_at_an_older_generation_is_still_progressing() {
        let status = run(&[region(1)], &[(region(1), converged(1))], &[]);
        assert_eq!(
            status.summary,
            Some(Summary {
                selected: 1,
                ready: 0,
                failing: 0
            })
        );
        assert_eq!(condition(&status, READY).status, "False");
        assert_eq!(condition(&status, RECONCILING).status, "True");
    }

    #[test]
    fn an_account_never_passed_over_is_pending() {
        let status = run(&[region(1), region(2)], &[(region(1), converged(2))], &[]);
        assert_eq!(
            status.summary,
            Some(Summary {
                selected: 2,
                ready: 1,
                failing: 0
            })
        );
        assert_eq!(condition(&status, READY).reason, "Progressing");
    }

    #[test]
    fn a_denied_account_is_named_and_stalls() {
        let mut denied = converged(2);
        denied.error = Some(PassError {
            reason: "AccessDenied".into(),
            message: "AssumeRole denied".into(),
            needs_attention: true,
        });
        let status = run(
            &[region(1), region(2)],
            &[(region(1), converged(2)), (region(2), denied)],
            &[],
        );
        assert_eq!(
            status.summary,
            Some(Summary {
                selected: 2,
                ready: 1,
                failing: 1
            })
        );
        assert_eq!(status.failures[0].account_id, "000000000002");
        assert_eq!(status.failures[0].reason, "AccessDenied");
        assert_eq!(condition(&status, STALLED).status, "True");
        assert_eq!(condition(&status, RECONCILING).status, "False");
    }

    #[test]
    fn a_throttled_account_is_retried_not_stalled() {
        let mut throttled = converged(2);
        throttled.error = Some(PassError {
            reason: "Throttled".into(),
            message: "rate exceeded".into(),
            needs_attention: false,
        });
        let status = run(&[region(1)], &[(region(1), throttled)], &[]);
        assert_eq!(condition(&status, RECONCILING).status, "True");
        assert_eq!(condition(&status, STALLED).status, "False");
    }

    #[test]
    fn an_own_problem_stalls_whatever_the_accounts_say() {
        let problem = Problem {
            owner: owner(),
            account_region: None,
            reason: "PolicyNotFound",
            message: "spec.policyRef.name: PatchPolicy ns/x not found".into(),
        };
        let status = run(&[region(1)], &[(region(1), converged(2))], &[problem]);
        assert_eq!(condition(&status, READY).reason, "PolicyNotFound");
        assert_eq!(condition(&status, STALLED).status, "True");
        assert!(
            condition(&status, STALLED)
                .message
                .contains("spec.policyRef.name")
        );
    }

    #[test]
    fn failures_are_capped_and_counted() {
        let regions: Vec<_> = (1..=25).map(region).collect();
        let outcomes: Vec<_> = regions
            .iter()
            .map(|r| {
                let mut outcome = converged(2);
                outcome.error = Some(PassError {
                    reason: "Throttled".into(),
                    message: "slow down".into(),
                    needs_attention: false,
                });
                (r.clone(), outcome)
            })
            .collect();
        let status = run(&regions, &outcomes, &[]);
        assert_eq!(status.failures.len(), MAX_FAILURES);
        assert_eq!(status.omitted_failures, 5);
        assert_eq!(status.summary.map(|s| s.failing), Some(25));
    }

    #[test]
    fn selecting_nothing_is_ready() {
        let status = run(&[], &[], &[]);
        assert_eq!(condition(&status, READY).status, "True");
        assert_eq!(
            condition(&status, READY).message,
            "selects no account-region"
        );
    }

    #[test]
    fn the_same_inputs_give_the_same_status() {
        let first = run(&[region(1)], &[(region(1), converged(2))], &[]);
        let selected: BTreeSet<_> = [region(1)].into();
        let outcomes: BTreeMap<_, _> = [(region(1), converged(2))].into();
        let again = rollup(RollupInput {
            owner: &owner(),
            generation: 2,
            selected: &selected,
            outcomes: &outcomes,
            own_problems: &[],
            previous: Some(&first),
            now: at(999),
        });
        assert_eq!(
            first, again,
            "a later pass with nothing new must write nothing new"
        );
    }

    #[test]
    fn the_first_cause_decides_the_standing() {
        let failing = Tally {
            failing: 1,
            failures: vec![AccountFailure {
                account_id: "000000000001".into(),
                region: "eu-west-1".into(),
                reason: "Throttled".into(),
                message: "slow down".into(),
            }],
            pending: 1,
            ..Tally::default()
        };
        let problem = Problem {
            owner: owner(),
            account_region: None,
            reason: "PolicyNotFound",
            message: "spec.policyRef.name: not found".into(),
        };
        let cases: [(&str, &Tally, &[Problem], &str); 4] = [
            (
                "own problem first",
                &failing,
                std::slice::from_ref(&problem),
                "PolicyNotFound",
            ),
            ("then failures", &failing, &[], "AccountsFailing"),
            (
                "then pending",
                &Tally {
                    pending: 1,
                    ready: 1,
                    ..Tally::default()
                },
                &[],
                "Progressing",
            ),
            ("else converged", &Tally::default(), &[], "Converged"),
        ];
        for (case, tally, problems, reason) in cases {
            assert_eq!(standing_of(tally, problems, 2).ready.1, reason, "{case}");
        }
        let retrying = standing_of(&failing, &[], 2);
        assert!(retrying.stalled.is_none() && retrying.reconciling.is_some());
    }
}
