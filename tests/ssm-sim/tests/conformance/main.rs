//! Conformance: the unmodified aws-sdk-rust clients driven against the simulator.

mod activations;
mod baselines;
mod commands;
mod common;
mod compliance;
mod control;
mod executions;
mod fleet;
mod instances;
mod registration;
mod sts;
mod summaries;
mod tags;
mod windows;
