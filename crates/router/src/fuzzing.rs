//! Entry points for the fuzz targets in `fuzz/` (and their corpus replay in the unit tests): each
//! feeds arbitrary bytes to the parsers and converters that read what callers and upstreams send.
//! Any panic is a bug; the SSE splitter must also never lose or invent a byte.

use serde_json::{Map, Value};

use crate::adapters::gemini_inbound::{self, GeminiOp, GeminiStreamWriter};
use crate::adapters::ollama_inbound::{self, OllamaOp, OllamaStreamWriter};
use crate::adapters::{anthropic, anthropic_inbound, gemini, responses_inbound};
use crate::sse::{event_data, malformed_data, SseSplitter};
use crate::usage::{checked_usage_in, collect_generated_text, count_tokens, estimate_prompt, usage_in};

/// Splits `data` into chunks at boundaries taken from its own first bytes, so the fuzzer explores
/// where a network read ends as well as what it carries.
fn chunks(data: &[u8]) -> Vec<&[u8]> {
    let (sizes, body) = data.split_at(data.len().min(4));
    let mut out = Vec::new();
    let mut rest = body;
    let mut size_index = 0;
    while !rest.is_empty() {
        let size = (sizes.get(size_index % sizes.len().max(1)).copied().unwrap_or(7) as usize % 97) + 1;
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        out.push(chunk);
        rest = tail;
        size_index += 1;
    }
    out
}

/// The SSE splitter over arbitrary chunking: every byte comes out exactly once, in order.
pub fn sse_stream(data: &[u8]) {
    let pieces = chunks(data);
    let mut splitter = SseSplitter::default();
    let mut seen = Vec::new();
    for piece in &pieces {
        for event in splitter.push(piece) {
            if let Some(payload) = event_data(&event) {
                let _ = malformed_data(&payload);
            }
            seen.extend_from_slice(&event);
        }
    }
    let sent: Vec<u8> = pieces.concat();
    assert_eq!(&sent[..seen.len()], &seen[..], "events are the input, in order");
    match splitter.finish() {
        Some(rest) => assert_eq!(&sent[seen.len()..], &rest[..], "the unfinished event is the rest of the input"),
        None => assert!(sent[seen.len()..].iter().all(u8::is_ascii_whitespace), "only blank bytes may be dropped"),
    }
}

fn as_request(data: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice::<Value>(data) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

/// A caller's request body through every conversion a channel might apply.
pub fn request(data: &[u8]) {
    let Some(openai) = as_request(data) else { return };
    let _ = estimate_prompt(&openai);
    for stream in [false, true] {
        let _ = anthropic::request(&openai, "claude-fuzz", stream);
    }
    let _ = gemini::request(&openai);
    let _ = gemini::embeddings_request(&openai, "gemini-fuzz");
    // The same bytes read as an Anthropic Messages request arriving on `/v1/messages`.
    if let Ok(converted) = anthropic_inbound::to_openai(&openai) {
        let _ = estimate_prompt(&converted);
        let _ = anthropic::request(&converted, "claude-fuzz", true);
        let _ = gemini::request(&converted);
    }
    // And as an OpenAI Responses request arriving on `/v1/responses`, plain and to be compacted.
    let compaction = responses_inbound::compaction_request(&openai);
    for request in [Ok(openai.clone()), compaction] {
        if let Ok(converted) = request.and_then(|request| responses_inbound::to_chat(&request)) {
            let _ = estimate_prompt(&converted.chat);
            let _ = anthropic::request(&converted.chat, "claude-fuzz", true);
            let _ = gemini::request(&converted.chat);
        }
    }
    let _ = responses_inbound::skeleton(&openai, "resp_fuzz", "fuzz");
    // And as each of Gemini's requests arriving on `/v1beta/models/…`.
    let gemini_ops = [
        GeminiOp::Generate,
        GeminiOp::StreamGenerate { sse: true },
        GeminiOp::CountTokens,
        GeminiOp::EmbedContent,
        GeminiOp::BatchEmbedContents,
    ];
    for op in gemini_ops {
        if let Ok(converted) = gemini_inbound::to_openai(op, "gemini-fuzz", &openai) {
            let _ = estimate_prompt(&converted);
            let _ = anthropic::request(&converted, "claude-fuzz", true);
            let _ = gemini::request(&converted);
        }
    }
    // And as each of Ollama's requests arriving on `/api/*`.
    for op in [OllamaOp::Chat, OllamaOp::Generate, OllamaOp::Embed, OllamaOp::Embeddings] {
        if let Ok(converted) = ollama_inbound::to_openai(op, &openai) {
            let _ = estimate_prompt(&converted);
            let _ = anthropic::request(&converted, "claude-fuzz", true);
            let _ = gemini::request(&converted);
        }
    }
}

/// An upstream's whole answer (or error body) read as each provider's format.
pub fn response(data: &[u8]) {
    let _ = usage_in(data);
    let _ = checked_usage_in(data);
    let _ = anthropic::response(data, "fuzz");
    let _ = gemini::response(data, "fuzz");
    let _ = gemini::embeddings_response(data, "fuzz");
    let _ = anthropic_inbound::from_openai_response(data, "fuzz");
    let skeleton = serde_json::json!({"id": "resp_fuzz"});
    let _ = responses_inbound::from_chat_response(data, skeleton, &responses_inbound::ToolNames::default());
    let started = std::time::Instant::now();
    for op in [OllamaOp::Chat, OllamaOp::Generate, OllamaOp::Embed, OllamaOp::Embeddings] {
        let _ = ollama_inbound::from_openai(op, data, "fuzz", started);
    }
    for op in [GeminiOp::Generate, GeminiOp::EmbedContent, GeminiOp::BatchEmbedContents] {
        let _ = gemini_inbound::from_openai(op, data, "fuzz", "fuzz");
    }
    let _ = anthropic::error_body(data);
    let _ = gemini::error_body(data);
    if let Ok(value) = serde_json::from_slice::<Value>(data) {
        let mut text = String::new();
        collect_generated_text(&value, &mut text);
    }
}

/// An upstream's event stream through each stream translator, and OpenAI chunks through the
/// writer that turns them into Anthropic events.
pub fn stream_events(data: &[u8]) {
    let mut splitter = SseSplitter::default();
    let mut events = Vec::new();
    for piece in chunks(data) {
        events.extend(splitter.push(piece));
    }
    events.extend(splitter.finish());
    let payloads: Vec<Vec<u8>> = events.iter().filter_map(|event| event_data(event)).collect();
    let mut claude = anthropic::StreamTranslator::new("fuzz");
    let mut gemini_stream = gemini::StreamTranslator::new("fuzz");
    let mut writer = anthropic_inbound::AnthropicStreamWriter::new("fuzz");
    let skeleton = serde_json::json!({"id": "resp_fuzz", "output": []});
    let mut responses = responses_inbound::ResponsesStreamWriter::new(skeleton, Default::default());
    let mut ollama = OllamaStreamWriter::new(OllamaOp::Chat, "fuzz", std::time::Instant::now());
    let mut gemini_events = GeminiStreamWriter::new(true, "fuzz", "fuzz");
    let mut gemini_array = GeminiStreamWriter::new(false, "fuzz", "fuzz");
    for payload in &payloads {
        for chunk in claude.on_event(payload).into_iter().chain(gemini_stream.on_event(payload)) {
            if let Some(inner) = event_data(&chunk) {
                let _ = writer.on_chunk(&inner);
                let _ = responses.on_chunk(&inner);
                let _ = ollama.on_chunk(&inner);
                let _ = gemini_events.on_chunk(&inner);
            }
        }
        let _ = writer.on_chunk(payload);
        let _ = responses.on_chunk(payload);
        let _ = ollama.on_chunk(payload);
        let _ = gemini_array.on_chunk(payload);
    }
    let _ = ollama.end();
    let _ = (gemini_events.end(), gemini_array.end());
    let _ = responses.end();
    let _ = responses.response();
    for include_usage in [false, true] {
        let _ = claude.finish(include_usage);
        let _ = gemini_stream.finish(include_usage);
    }
    let _ = (claude.usage(), gemini_stream.usage(), claude.finished(), gemini_stream.finished());
    let _ = writer.end();
}

/// A multipart form (boundary `b`) over arbitrary chunking, and a WAV header over the same bytes:
/// every part found lies inside the body, after the one before it, and a text field's value is
/// exactly its bytes.
pub fn multipart(data: &[u8]) {
    let pieces = chunks(data);
    let body = pieces.concat();
    let _ = crate::upload::wav_duration_ms(&body, body.len() as u64 * 2);
    let mut scanner = crate::upload::FormScanner::new("b");
    if pieces.iter().any(|piece| scanner.push(piece).is_err()) {
        return;
    }
    let Ok(parts) = scanner.finish() else { return };
    let mut previous_end = 0;
    for part in parts {
        assert!(previous_end <= part.start && part.start <= part.end && part.end <= body.len() as u64, "{part:?}");
        let bytes = &body[part.start as usize..part.end as usize];
        match part.filename {
            None => assert_eq!(part.value, bytes, "a text field's value is its bytes"),
            Some(_) => assert!(bytes.starts_with(&part.value), "a file's head is its first bytes"),
        }
        previous_end = part.end;
    }
}

/// The tokenizer over any text.
pub fn tokens(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let count = count_tokens(text);
        assert!(count <= text.len() as u64, "a token covers at least one byte");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replays the committed fuzz corpus (`fuzz/corpus/<target>/`), so every input a fuzzer ever
    /// kept is checked by plain `cargo test` too.
    #[test]
    fn the_fuzz_corpus_replays_cleanly() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
        type Target = fn(&[u8]);
        let targets: [(&str, Target); 6] = [
            ("sse", sse_stream),
            ("request", request),
            ("response", response),
            ("stream_events", stream_events),
            ("tokens", tokens),
            ("multipart", multipart),
        ];
        let mut replayed = 0;
        for (name, target) in targets {
            let dir = root.join(name);
            for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
                let path = entry.unwrap().path();
                target(&std::fs::read(&path).unwrap());
                replayed += 1;
            }
        }
        assert!(replayed >= 10, "the corpus has seeds for every target ({replayed} files)");
    }

    #[test]
    fn the_splitter_keeps_every_byte_of_awkward_streams() {
        // A cut final event, an empty stream, and nothing but blank lines.
        sse_stream(b"\x03\x05\x01\x02data: {\"a\":1}\n\ndata: [DONE]\n\ndata: tail");
        sse_stream(b"");
        sse_stream(b"\x01\r\n\r\n\n\n");
    }
}
