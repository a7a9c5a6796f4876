//! patchfleet-ssm against the in-process SSM/STS simulator.

mod common;

mod apply_observe;
mod calls;
mod compliance;
mod defaults;
mod faults;
mod identity;
mod instances;
mod ownership;
mod planner_loop;
