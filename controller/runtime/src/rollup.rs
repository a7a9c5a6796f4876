//! Status of a PatchPolicy, PatchGroup or MaintenanceWindow, rolled up from the outcomes
//! of the account-regions it reaches. Pure: the owner reconciler gathers the inputs and
//! writes the result; the decisions are tested here.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use patchfleet_api::conditions::{self, Desired, READY, RECONCILING, STALLED, Status};
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
    let mut failures = Vec::new();
    let mut ready = 0u32;
    let mut pending = 0u32;
    let mut stalled_by_accounts = false;
    for region in input.selected {
        match standing(input.owner, input.generation, input.outcomes.get(region)) {
            Standing::Ready => ready += 1,
            Standing::Pending => pending += 1,
            Standing::Failing {
                reason,
                message,
                needs_attention,
            } => {
                stalled_by_accounts |= needs_attention;
                failures.push(AccountFailure {
                    account_id: region.account_id.clone(),
                    region: region.region.clone(),
                    reason,
                    message,
                });
            }
        }
    }
    let failing = failures.len() as u32;
    let omitted = failures.len().saturating_sub(MAX_FAILURES) as u32;
    failures.truncate(MAX_FAILURES);

    let selected = input.selected.len() as u32;
    let (ready_condition, reconciling, stalled) = if let Some(problem) = input.own_problems.first()
    {
        (
            (Status::False, problem.reason, problem.message.clone()),
            None,
            Some((problem.reason, problem.message.clone())),
        )
    } else if failing > 0 {
        let message = format!(
            "{failing} of {selected} account-regions failing; first: {} {}: {}",
            failures[0].account_id, failures[0].region, failures[0].message
        );
        let stalled = stalled_by_accounts.then(|| ("AccountsFailing", message.clone()));
        let reconciling = (!stalled_by_accounts).then(|| ("Retrying", message.clone()));
        (
            (Status::False, "AccountsFailing", message),
            reconciling,
            stalled,
        )
    } else if pending > 0 {
        let message = format!("{ready} of {selected} account-regions converged");
        (
            (Status::False, "Progressing", message.clone()),
            Some(("Progressing", message)),
            None,
        )
    } else {
        let message = match selected {
            0 => "selects no account-region".to_owned(),
            n => format!("converged in {n} account-regions"),
        };
        ((Status::True, "Converged", message), None, None)
    };

    let mut conditions: Vec<Condition> = input
        .previous
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let generation = Some(input.generation);
    let (status, reason, message) = ready_condition;
    conditions::set(
        &mut conditions,
        Desired {
            type_: READY,
            status,
            reason,
            message,
        },
        generation,
        input.now.clone(),
    );
    for (type_, abnormal) in [(RECONCILING, reconciling), (STALLED, stalled)] {
        let desired = match abnormal {
            Some((reason, message)) => Desired {
                type_,
                status: Status::True,
                reason,
                message,
            },
            None => Desired {
                type_,
                status: Status::False,
                reason: "AsExpected",
                message: String::new(),
            },
        };
        conditions::set(&mut conditions, desired, generation, input.now.clone());
    }

    FleetStatus {
        observed_generation: generation,
        conditions,
        summary: Some(Summary {
            selected,
            ready,
            failing,
        }),
        failures,
        omitted_failures: omitted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::PassError;
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
}
