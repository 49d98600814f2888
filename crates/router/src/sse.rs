//! Splits a byte stream into complete server-sent events, whatever the chunk boundaries.

use bytes::{Bytes, BytesMut};

#[derive(Default)]
pub struct SseSplitter {
    buffer: BytesMut,
    /// Bytes of `buffer` already searched for an event end.
    scanned: usize,
}

impl SseSplitter {
    /// Adds `chunk` and returns every event it completed, each with its blank-line terminator.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Bytes> {
        self.buffer.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some(end) = find_event_end(&self.buffer, self.scanned) {
            events.push(self.buffer.split_to(end).freeze());
            self.scanned = 0;
        }
        // A terminator may straddle the next chunk: rescan the last few bytes.
        self.scanned = self.buffer.len().saturating_sub(3);
        events
    }

    /// Bytes received that do not yet end an event.
    pub fn pending(&self) -> usize {
        self.buffer.len()
    }

    /// Whatever is left when the stream ends: an event without its final blank line.
    pub fn finish(&mut self) -> Option<Bytes> {
        self.scanned = 0;
        let rest = self.buffer.split().freeze();
        (!rest.iter().all(u8::is_ascii_whitespace)).then_some(rest)
    }
}

/// Why one event's `data` is not something a client can parse, if it is not: every data payload
/// of the streams we read is a JSON value, except OpenAI's closing `[DONE]`.
pub fn malformed_data(data: &[u8]) -> Option<String> {
    if data == b"[DONE]" || data.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    if let Err(error) = std::str::from_utf8(data) {
        return Some(format!("an event that is not UTF-8 ({error})"));
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(data)
        .err()
        .map(|error| format!("an event that is not JSON ({error})"))
}

/// The end (exclusive) of the first event in `buffer`: after `\n\n`, `\r\n\r\n` or `\r\r`.
fn find_event_end(buffer: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(offset) = memchr::memchr2(b'\n', b'\r', &buffer[i..]) {
        let at = i + offset;
        let rest = &buffer[at..];
        if rest.starts_with(b"\n\n") || rest.starts_with(b"\r\r") {
            return Some(at + 2);
        }
        if rest.starts_with(b"\r\n\r\n") {
            return Some(at + 4);
        }
        i = at + 1;
    }
    None
}

/// The `data` of an event: its `data:` lines joined by newlines, or None for a comment-only event.
pub fn event_data(event: &[u8]) -> Option<Vec<u8>> {
    let mut data: Option<Vec<u8>> = None;
    for line in event.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(value) = line.strip_prefix(b"data:") {
            let value = value.strip_prefix(b" ").unwrap_or(value);
            match data.as_mut() {
                Some(existing) => {
                    existing.push(b'\n');
                    existing.extend_from_slice(value);
                }
                None => data = Some(value.to_vec()),
            }
        }
    }
    data
}

/// Whether `json` has `"key"` followed by a value starting with `first` (skipping whitespace).
pub fn has_key_with(json: &[u8], key: &[u8], first: u8) -> bool {
    let finder = memchr::memmem::Finder::new(key);
    finder.find_iter(json).any(|at| {
        let mut rest = json[at + key.len()..].iter().skip_while(|b| b.is_ascii_whitespace());
        if rest.next() != Some(&b':') {
            return false;
        }
        rest.find(|b| !b.is_ascii_whitespace()) == Some(&first)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_event_data_is_named() {
        for good in [&b"[DONE]"[..], b"", b"  ", br#"{"choices":[]}"#, b"42", br#""text""#] {
            assert_eq!(malformed_data(good), None, "{:?}", String::from_utf8_lossy(good));
        }
        assert!(malformed_data(br#"{"id": broken"#).unwrap().contains("not JSON"));
        assert!(malformed_data(br#"{"id": "x""#).unwrap().contains("not JSON"));
        assert!(malformed_data(b"{\"id\": \"\xff\"}").unwrap().contains("not UTF-8"));
    }

    #[test]
    fn splits_events_at_any_chunk_boundary() {
        let stream = b"data: {\"a\":1}\n\n: keep-alive\r\n\r\ndata: {\"b\":\"\xc3\xa9\"}\n\ndata: [DONE]\n\n";
        for split in 0..stream.len() {
            for second in split..stream.len() {
                let mut splitter = SseSplitter::default();
                let mut events = splitter.push(&stream[..split]);
                events.extend(splitter.push(&stream[split..second]));
                events.extend(splitter.push(&stream[second..]));
                assert_eq!(splitter.finish(), None);
                let joined: Vec<u8> = events.iter().flat_map(|e| e.iter().copied()).collect();
                assert_eq!(joined, stream.to_vec());
                assert_eq!(events.len(), 4, "split at {split}/{second}");
            }
        }
    }

    #[test]
    fn reads_data_and_finds_keys() {
        assert_eq!(event_data(b"event: x\ndata: one\ndata:two\n\n").unwrap(), b"one\ntwo");
        assert_eq!(event_data(b": comment\n\n"), None);
        assert!(has_key_with(br#"{"usage": {"prompt_tokens":1}}"#, b"\"usage\"", b'{'));
        assert!(!has_key_with(br#"{"usage":null}"#, b"\"usage\"", b'{'));
        assert!(has_key_with(br#"{"finish_reason":"stop"}"#, b"\"finish_reason\"", b'"'));
    }

    #[test]
    fn keeps_an_unterminated_last_event() {
        let mut splitter = SseSplitter::default();
        assert!(splitter.push(b"data: [DONE]").is_empty());
        assert_eq!(splitter.finish().unwrap(), Bytes::from_static(b"data: [DONE]"));
    }
}
