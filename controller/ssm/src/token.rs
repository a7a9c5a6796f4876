//! Idempotency tokens for creates, made from (cluster, owner, owner uid, owner generation,
//! object name, fingerprint): the same create retried after a crash or a lost answer sends
//! the same token, and a resource deleted and applied again sends new ones (a new uid).

/// Tokens tried per create within one batch. SSM remembers a ClientToken and answers the
/// first call's id to a repeat, even once that object is deleted; a create identical to
/// one made before therefore moves on to the next token: at once when the answer names an
/// object known not to be ours, or when SSM answers IdempotentParameterMismatch; on the
/// next pass when the next list does not show the object (see `memory`).
pub(crate) const CREATE_ATTEMPTS: u32 = 3;

/// Which version of what a create sends the tokens are for: older patchfleets sent other
/// requests (the fingerprint as a tag, then no owner uid and generation in the parts).
const TOKEN_SCHEME: &str = "owner-revision";

/// The key the memory keeps a create's attempt under: the token's parts, hashed.
pub(crate) fn token_key(parts: &[&str]) -> u64 {
    fnv1a(0xcbf2_9ce4_8422_2325, parts, u32::MAX)
}

// FNV-1a: stable across Rust releases and platforms, unlike std's hashers.
fn fnv1a(seed: u64, parts: &[&str], attempt: u32) -> u64 {
    let mut h = seed;
    let mut eat = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    };
    for p in std::iter::once(&TOKEN_SCHEME).chain(parts) {
        p.bytes().for_each(&mut eat);
        eat(0);
    }
    attempt.to_le_bytes().into_iter().for_each(eat);
    h
}

/// A ClientToken derived from what is created, so a create retried after a crash or a
/// lost answer is recognised by SSM instead of making a second object. CreatePatchBaseline
/// and CreateMaintenanceWindow take 1-64 characters
/// (<https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CreatePatchBaseline.html>).
pub(crate) fn client_token(parts: &[&str], attempt: u32) -> String {
    let a = fnv1a(0xcbf2_9ce4_8422_2325, parts, attempt);
    let b = fnv1a(0x6c62_272e_07bb_0142, parts, attempt);
    format!("patchfleet-{a:016x}{b:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_tokens_are_stable_short_and_distinct() {
        let key = ["c1", "PatchPolicy/ns/p", "patchfleet-p", "fp"];
        let t = client_token(&key, 0);
        assert_eq!(t, client_token(&key, 0));
        assert!(t.len() <= 64, "{t}");
        assert_ne!(t, client_token(&key, 1));
        assert_ne!(
            t,
            client_token(&["c1", "PatchPolicy/ns/p", "patchfleet-p", "fp2"], 0)
        );
        // Field boundaries count: ("ab", "c") and ("a", "bc") differ.
        assert_ne!(client_token(&["ab", "c"], 0), client_token(&["a", "bc"], 0));
    }
}
