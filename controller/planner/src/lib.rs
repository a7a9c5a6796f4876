//! The pure planner: resources -> desired SSM state per account and region -> operations.
//! No I/O: this crate depends on nothing that can do any. Filled by the controller issue.
