//! MaxResults/NextToken paging. Tokens are opaque to callers; inside they name
//! the last key returned, so objects added or removed between pages neither
//! repeat nor shift the remaining ones.

use crate::error::{ApiError, ApiResult};

pub fn encode(key: &str) -> String {
    key.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The key after which the next page starts.
pub fn decode(token: Option<&str>) -> ApiResult<Option<String>> {
    let Some(token) = token else { return Ok(None) };
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || ApiError::new("InvalidNextToken", "The specified token isn't valid.");
    if token.len() % 2 != 0 {
        return Err(invalid());
    }
    let bytes = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(token.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| invalid())?;
    String::from_utf8(bytes).map(Some).map_err(|_| invalid())
}

/// Takes up to `max` items of a sorted, filtered iterator; returns them and the
/// token for the rest, if any remain.
pub fn page<T>(
    mut items: impl Iterator<Item = (String, T)>,
    max: usize,
) -> (Vec<T>, Option<String>) {
    let mut out = Vec::new();
    let mut last = None;
    for (key, item) in items.by_ref() {
        if out.len() == max {
            return (out, last.map(|k: String| encode(&k)));
        }
        out.push(item);
        last = Some(key);
    }
    (out, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_round_trips_tokens() {
        let items = (0..5).map(|i| (format!("k{i}"), i));
        let (first, token) = page(items, 2);
        assert_eq!(first, vec![0, 1]);
        let after = decode(token.as_deref())
            .expect("valid token")
            .expect("a key");
        assert_eq!(after, "k1");
        let (all, token) = page((0..2).map(|i| (format!("k{i}"), i)), 2);
        assert_eq!(all.len(), 2);
        assert_eq!(token, None, "no token when nothing remains");
        assert_eq!(
            decode(Some("xyz")).expect_err("bad").code,
            "InvalidNextToken"
        );
    }
}
