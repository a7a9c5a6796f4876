//! Stateless nonces for Azure attested data.
//!
//! Azure documents the nonce of `/metadata/attested/document` as "an optional 10-digit
//! string" that comes back inside the signed document
//! (<https://learn.microsoft.com/en-us/azure/virtual-machines/instance-metadata-service>,
//! section "Attested data"). A nonce we issued proves the document was made after we
//! issued it, so an old attested document copied off a VM cannot be replayed.
//!
//! Format, 10 decimal digits `SSSSMMMMMM`:
//! - `SSSS`: the time slot, `(unix / 300) mod 10000`;
//! - `MMMMMM`: HMAC-SHA256(secret, `"patchfleet-enroll nonce " + full slot number`),
//!   its first 4 bytes big-endian mod 1,000,000.
//!
//! A nonce is accepted in its slot and the next one, so it lives 5 to 10 minutes. No
//! state: every replica holding the same secret issues and accepts the same nonces.

use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::sign::Signer;

use crate::refusal::shown;
use crate::{Reason, Refusal, TrustError};

/// The length of a nonce's time slot, in seconds. A nonce is accepted in the slot it
/// was issued in and the next one.
pub const NONCE_SLOT_SECS: i64 = 300;

/// The shortest secret [`NonceKey::new`] accepts, in bytes.
const MIN_SECRET_BYTES: usize = 16;

/// The key that issues and checks nonces: made from a secret shared by every replica of
/// the enrollment server.
#[derive(Clone)]
pub struct NonceKey {
    key: PKey<Private>,
}

impl std::fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NonceKey(..)")
    }
}

impl NonceKey {
    /// A key from secret bytes (at least 16; 32 random bytes are a good choice).
    pub fn new(secret: &[u8]) -> Result<NonceKey, TrustError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(TrustError(format!(
                "the nonce secret has {} bytes; it needs at least {MIN_SECRET_BYTES} (32 random bytes are a good choice)",
                secret.len()
            )));
        }
        let key = PKey::hmac(secret).map_err(|e| {
            TrustError(format!(
                "the nonce secret cannot be used as an HMAC key: {e}"
            ))
        })?;
        let key = NonceKey { key };
        match key.mac(0) {
            Some(_) => Ok(key),
            None => Err(TrustError(
                "OpenSSL cannot compute HMAC-SHA256 here, so no nonce can be issued".into(),
            )),
        }
    }

    /// A nonce for a VM to pass to `/metadata/attested/document?nonce=`, valid from
    /// `now` for 5 to 10 minutes.
    pub fn issue(&self, now: i64) -> String {
        let slot = now.div_euclid(NONCE_SLOT_SECS);
        // Should HMAC ever fail here, the nonce is one `check` refuses (it refuses
        // every nonce when it cannot compute the MAC).
        format!(
            "{:04}{:06}",
            slot.rem_euclid(10_000),
            self.mac(slot).unwrap_or(0)
        )
    }

    /// Accepts a nonce issued by this key (or one with the same secret) in the current
    /// or the previous time slot.
    pub fn check(&self, nonce: &str, now: i64) -> Result<(), Refusal> {
        if nonce.len() != 10 || !nonce.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Refusal::new(
                Reason::BadNonce,
                format!(
                    "the attested document's nonce {} is not the 10 digits this server issues \
                     (Azure puts a timestamp there when the VM asks without a nonce): get a nonce \
                     from the enrollment server and request /metadata/attested/document?nonce=<it>",
                    shown(nonce)
                ),
            ));
        }
        let (slot_digits, mac_digits) = nonce.split_at(4);
        let current = now.div_euclid(NONCE_SLOT_SECS);
        let Some(slot) = [current, current - 1]
            .into_iter()
            .find(|slot| format!("{:04}", slot.rem_euclid(10_000)) == slot_digits)
        else {
            return Err(Refusal::new(
                Reason::BadNonce,
                format!(
                    "the nonce {nonce} was not issued in the last {} minutes (or IMDS returned a \
                     cached document): get a fresh nonce from the enrollment server and fetch the \
                     attested document with it right away",
                    2 * NONCE_SLOT_SECS / 60
                ),
            ));
        };
        let Some(expected) = self.mac(slot) else {
            return Err(Refusal::new(
                Reason::BadNonce,
                "this enrollment server cannot check nonces (OpenSSL's HMAC-SHA256 failed): \
                 report it to the enrollment server's operators",
            ));
        };
        let expected = format!("{expected:06}");
        if !openssl::memcmp::eq(expected.as_bytes(), mac_digits.as_bytes()) {
            return Err(Refusal::new(
                Reason::BadNonce,
                format!(
                    "the nonce {nonce} was not issued by this enrollment server (if it was, its \
                     replicas do not share one nonce secret): get a nonce from the enrollment \
                     server and fetch the attested document with it"
                ),
            ));
        }
        Ok(())
    }

    /// Six decimal digits of HMAC-SHA256 over the full slot number; `None` only if
    /// OpenSSL cannot compute HMAC-SHA256 at all.
    fn mac(&self, slot: i64) -> Option<u32> {
        let message = format!("patchfleet-enroll nonce {slot}");
        let tag = Signer::new(MessageDigest::sha256(), &self.key)
            .and_then(|mut signer| signer.sign_oneshot_to_vec(message.as_bytes()))
            .ok()?;
        match tag.get(..4) {
            Some(&[a, b, c, d]) => Some(u32::from_be_bytes([a, b, c, d]) % 1_000_000),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z, the start of a slot
    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn key(secret: &[u8]) -> NonceKey {
        NonceKey::new(secret).expect("a long enough secret")
    }

    #[test]
    fn round_trip() {
        let k = key(KEY);
        let nonce = k.issue(NOW);
        assert_eq!(nonce.len(), 10);
        assert!(nonce.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(&nonce[..4], format!("{:04}", (NOW / 300) % 10_000));
        // The same at any time within the slot, and on another replica with the same secret.
        assert_eq!(k.issue(NOW + 299), nonce);
        assert_eq!(key(KEY).issue(NOW), nonce);
        assert_ne!(k.issue(NOW + 300), nonce);

        let cases: [(&str, i64, Option<&str>); 7] = [
            ("issued this instant", NOW, None),
            ("end of its slot", NOW + 299, None),
            ("in the next slot", NOW + 300, None),
            ("end of the next slot", NOW + 599, None),
            (
                "two slots later",
                NOW + 600,
                Some("not issued in the last 10 minutes"),
            ),
            (
                "a day later",
                NOW + 86_400,
                Some("not issued in the last 10 minutes"),
            ),
            (
                "before it was issued",
                NOW - 1,
                Some("not issued in the last 10 minutes"),
            ),
        ];
        for (name, at, refused) in cases {
            match (k.check(&nonce, at), refused) {
                (Ok(()), None) => {}
                (Err(r), Some(text)) => {
                    assert_eq!(r.reason, Reason::BadNonce, "{name}");
                    assert!(r.message.contains(text), "{name}: {}", r.message);
                }
                (got, want) => panic!("{name}: got {got:?}, want refusal {want:?}"),
            }
        }
    }

    #[test]
    fn refused_nonces() {
        let k = key(KEY);
        let nonce = k.issue(NOW);
        let other = key(b"another secret, also 32 bytes...").issue(NOW);
        let mut flipped = nonce.clone().into_bytes();
        flipped[9] = if flipped[9] == b'9' {
            b'0'
        } else {
            flipped[9] + 1
        };
        let flipped = String::from_utf8(flipped).expect("digits");
        let cases = [
            (
                "another key",
                other.as_str(),
                "not issued by this enrollment server",
            ),
            (
                "one digit changed",
                flipped.as_str(),
                "not issued by this enrollment server",
            ),
            ("nine digits", &nonce[..9], "not the 10 digits"),
            ("eleven digits", &format!("{nonce}0"), "not the 10 digits"),
            ("letters", "12345abcde", "not the 10 digits"),
            (
                "Azure's default timestamp",
                "20201130-211924",
                "not the 10 digits",
            ),
            ("empty", "", "not the 10 digits"),
            ("non-ASCII digits", "١٢٣٤٥٦٧٨٩٠", "not the 10 digits"),
        ];
        for (name, presented, text) in cases {
            let r = k.check(presented, NOW).expect_err(name);
            assert_eq!(r.reason, Reason::BadNonce, "{name}");
            assert!(r.message.contains(text), "{name}: {}", r.message);
            assert!(
                r.message.contains("get a") && r.message.contains("nonce"),
                "{name}: {}",
                r.message
            );
        }
    }

    #[test]
    fn short_secret_is_refused() {
        let e = NonceKey::new(b"short").expect_err("5 bytes");
        assert!(e.0.contains("at least 16"), "{e}");
        assert_eq!(format!("{:?}", key(KEY)), "NonceKey(..)");
    }
}
