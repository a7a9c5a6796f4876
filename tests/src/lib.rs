//! What patchfleet's integration tests share: the repository's examples and validation
//! cases, an offline validator built from the generated CRDs, and the fixture that runs a
//! real control plane on loopback (tests/env/control-plane).

pub mod bench;
pub mod cases;
pub mod control_plane;
pub mod e2e;
pub mod enroll;
pub mod examples;
pub mod fleet;
pub mod helm;
pub mod inspect;
pub mod json_patch;
pub mod offline;
pub mod stack;
pub mod web;

use std::path::PathBuf;

/// The repository root (this crate lives in `tests/`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}
