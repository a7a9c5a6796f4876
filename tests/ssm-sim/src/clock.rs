//! Time and identifiers.
//!
//! Each [`crate::Sim`] has its own [`SimClock`]: wall time plus an offset that tests move
//! forward (`/_sim/clock`), so time keeps flowing (commands still complete) and several
//! simulators in one process keep their own time.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock seconds since the epoch. Simulated objects are stamped with
/// [`SimClock::now`] instead; this is for what clients judge by their own clock.
pub fn wall() -> f64 {
    wall_millis() as f64 / 1000.0
}

fn wall_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The longest single advance accepted: 366 days.
pub const MAX_ADVANCE_SECONDS: f64 = 366.0 * 86_400.0;
/// The latest time the clock can be set to (2200-01-01T00:00:00Z): cron years end at 2199.
pub const MAX_TIME: f64 = 7_258_118_400.0;

/// A simulator's clock: wall time plus a non-negative offset that only grows, so
/// simulated time never runs backwards.
#[derive(Debug, Default)]
pub struct SimClock {
    offset_millis: AtomicI64,
}

impl SimClock {
    /// Simulated seconds since the epoch, as AWS JSON 1.1 timestamps are sent.
    pub fn now(&self) -> f64 {
        self.now_millis() as f64 / 1000.0
    }

    fn now_millis(&self) -> i64 {
        wall_millis().saturating_add(self.offset_millis.load(Ordering::Acquire))
    }

    /// Moves the clock to `to` (epoch seconds); refuses to go backwards.
    pub fn set(&self, to: f64) -> Result<f64, String> {
        if !to.is_finite() || to > MAX_TIME {
            return Err(format!(
                "now must be a time before {}, got {to}",
                iso8601(MAX_TIME)
            ));
        }
        let target = (to * 1000.0).round() as i64;
        self.offset_millis
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |offset| {
                let wall = wall_millis();
                (target >= wall.saturating_add(offset)).then(|| target - wall)
            })
            .map_err(|offset| {
                format!(
                    "the clock never goes backwards: {} is before the simulated time {}",
                    iso8601(to),
                    iso8601((wall_millis().saturating_add(offset)) as f64 / 1000.0)
                )
            })?;
        Ok(self.now())
    }

    /// Moves the clock forward by `seconds` (0 to [`MAX_ADVANCE_SECONDS`]).
    pub fn advance(&self, seconds: f64) -> Result<f64, String> {
        if !seconds.is_finite() || !(0.0..=MAX_ADVANCE_SECONDS).contains(&seconds) {
            return Err(format!(
                "seconds must be within 0 and {MAX_ADVANCE_SECONDS} (366 days), got {seconds}"
            ));
        }
        if self.now() + seconds > MAX_TIME {
            return Err(format!("the clock cannot pass {}", iso8601(MAX_TIME)));
        }
        let millis = (seconds * 1000.0).round() as i64;
        self.offset_millis.fetch_add(millis, Ordering::AcqRel);
        Ok(self.now())
    }

    /// Back to wall time (`/_sim/reset`).
    pub fn reset(&self) {
        self.offset_millis.store(0, Ordering::Release);
    }
}

/// ISO 8601 UTC with milliseconds, as STS's XML replies carry timestamps.
pub fn iso8601(epoch_secs: f64) -> String {
    let millis = (epoch_secs * 1000.0) as i64;
    let secs = millis.div_euclid(1000);
    let ms = millis.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

pub fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

static ID_COUNTER: AtomicU64 = AtomicU64::new(0);
static ID_SALT: std::sync::LazyLock<u64> = std::sync::LazyLock::new(|| {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
        ^ u64::from(std::process::id())
});

fn next_random() -> u64 {
    splitmix64(
        *ID_SALT
            ^ ID_COUNTER
                .fetch_add(1, Ordering::Relaxed)
                .wrapping_mul(0x2545_F491_4F6C_DD1D),
    )
}

/// `prefix-` and 17 lowercase hex digits, the shape of `pb-` and `mw-` ids.
pub fn short_id(prefix: &str) -> String {
    let hi = next_random() & 0xF;
    format!("{prefix}-{hi:x}{:016x}", next_random())
}

/// A random (version 4 shaped) UUID, the shape of window target, task and command ids.
pub fn uuid() -> String {
    let a = next_random();
    let b = next_random();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xFFFF,
        a & 0xFFF,
        ((b >> 48) & 0x3FFF) | 0x8000,
        b & 0xFFFF_FFFF_FFFF
    )
}

/// Uppercase alphanumerics for secrets and tokens.
pub fn token(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = String::with_capacity(len);
    let mut r = next_random();
    for i in 0..len {
        if i % 8 == 7 {
            r = next_random();
        }
        out.push(char::from(ALPHABET[(r % ALPHABET.len() as u64) as usize]));
        r /= ALPHABET.len() as u64;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_iso8601() {
        assert_eq!(iso8601(0.0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_709_965_447.25), "2024-03-09T06:24:07.250Z");
    }

    #[test]
    fn the_clock_moves_forward_only() {
        let clock = SimClock::default();
        let start = clock.now();
        assert!((start - wall()).abs() < 1.0, "starts at wall time");
        let later = clock.advance(8.0 * 86_400.0).expect("advance 8 days");
        assert!(later >= start + 8.0 * 86_400.0);
        assert!(clock.set(start).is_err(), "never backwards");
        let set = clock.set(later + 60.0).expect("forward");
        assert!(set >= later + 60.0);
        assert!(clock.advance(-1.0).is_err());
        assert!(clock.advance(MAX_ADVANCE_SECONDS + 1.0).is_err());
        assert!(clock.set(f64::NAN).is_err());
        clock.reset();
        assert!((clock.now() - wall()).abs() < 1.0);
    }

    #[test]
    fn ids_have_aws_shapes() {
        let pb = short_id("pb");
        assert_eq!(pb.len(), 20);
        assert!(crate::validate::matches(r"^pb-[0-9a-f]{17}$", &pb));
        let u = uuid();
        assert!(crate::validate::matches(
            crate::validate::WINDOW_CHILD_ID.pattern.unwrap_or_default(),
            &u
        ));
        assert_ne!(uuid(), u);
    }
}
