//! Wire protocols: SSM's AWS JSON 1.1 and STS's AWS query protocol.

pub mod json;
pub mod query;
