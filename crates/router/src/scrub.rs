//! Removes secrets from upstream text before it reaches logs, the console or the caller.

use bytes::Bytes;

const MAX_LOGGED_ERROR: usize = 2000;

/// Replaces every occurrence of `secret` and anything shaped like an API key with `***`.
pub fn scrub(text: &str, secret: &str) -> String {
    let text = if secret.len() >= 4 { text.replace(secret, "***") } else { text.to_string() };
    mask_key_shapes(&text)
}

/// Masks `sk-…`, `AIza…` and `Bearer …` key shapes: long runs of key characters after a known prefix.
fn mask_key_shapes(text: &str) -> String {
    const PREFIXES: [&str; 4] = ["sk-", "AIza", "Bearer ", "bearer "];
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    'outer: while !rest.is_empty() {
        for prefix in PREFIXES {
            if let Some(tail) = rest.strip_prefix(prefix) {
                let run = tail.bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_').count();
                if run >= 12 {
                    out.push_str(prefix);
                    out.push_str("***");
                    rest = &tail[run..];
                    continue 'outer;
                }
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    out
}

/// A short, secret-free message for the log row, taken from an upstream error body.
pub fn error_message(body: &Bytes) -> String {
    let from_json = serde_json::from_slice::<serde_json::Value>(body).ok().and_then(|value| {
        let error = value.get("error")?;
        error.get("message").and_then(|m| m.as_str()).map(str::to_string).or_else(|| error.as_str().map(str::to_string))
    });
    let text = from_json.unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    let text = mask_key_shapes(&text);
    truncate(&text, MAX_LOGGED_ERROR)
}

pub fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_the_channel_key_and_key_shapes() {
        let out = scrub("bad key sk-live-abcdefghijklmnopqrst and mykey-123456 here", "mykey-123456");
        assert_eq!(out, "bad key sk-*** and *** here");
        assert_eq!(scrub("Authorization: Bearer abcdefghijklmnopq", ""), "Authorization: Bearer ***");
        assert_eq!(scrub("sk-short ok", ""), "sk-short ok");
        assert_eq!(scrub("ключ sk-1234567890abcdef", ""), "ключ sk-***");
    }

    #[test]
    fn error_message_prefers_the_json_message() {
        let body = Bytes::from_static(
            br#"{"error":{"message":"Incorrect API key provided: sk-abcdefghijklmnop1234","type":"x"}}"#,
        );
        assert_eq!(error_message(&body), "Incorrect API key provided: sk-***");
        assert_eq!(error_message(&Bytes::from_static(b"plain failure")), "plain failure");
    }
}
