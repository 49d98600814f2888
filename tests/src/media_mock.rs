//! OpenAI's media endpoints as a local server answers them: `/v1/audio/speech` (audio bytes in
//! chunks, or `speech.audio.*` events), `/v1/audio/transcriptions` and `/translations` (a
//! multipart upload in; `json`, `text`, `srt`, `vtt`, `verbose_json` or `transcript.text.*`
//! events out) and `/v1/images/edits` (a multipart upload in, images out). Each transcript says
//! what arrived — the model, the file's name and its exact length — so tests can check the upload
//! reached the upstream whole.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::mock_state::{admit, SharedState, ONE_PIXEL_PNG};

/// Bytes of audio the speech endpoint returns per chunk, and how many chunks.
pub const SPEECH_CHUNK: usize = 4096;
pub const SPEECH_CHUNKS: usize = 8;

/// One field of a received form: its name, file name, and bytes.
struct Field {
    name: String,
    filename: Option<String>,
    data: Bytes,
}

/// The fields of a `multipart/form-data` body.
fn fields(content_type: &str, body: &Bytes) -> Result<Vec<Field>, String> {
    let boundary = content_type
        .split(';')
        .find_map(|param| param.trim().strip_prefix("boundary="))
        .map(|b| b.trim_matches('"').to_string())
        .ok_or_else(|| format!("not a form: {content_type}"))?;
    let delimiter = format!("--{boundary}");
    let finder = memchr::memmem::Finder::new(delimiter.as_bytes());
    let starts: Vec<usize> = finder.find_iter(body).collect();
    let mut fields = Vec::new();
    for window in starts.windows(2) {
        let part = body.slice(window[0] + delimiter.len() + 2..window[1] - 2);
        let split = memchr::memmem::find(&part, b"\r\n\r\n").ok_or("a part without headers")?;
        let headers = String::from_utf8_lossy(&part[..split]).to_string();
        let param = |key: &str| {
            let start = headers.find(&format!("{key}=\""))? + key.len() + 2;
            let end = headers[start..].find('"')? + start;
            Some(headers[start..end].to_string())
        };
        let name = param("name").ok_or("a part without a name")?;
        fields.push(Field { name, filename: param("filename"), data: part.slice(split + 4..) });
    }
    Ok(fields)
}

fn text_field<'a>(fields: &'a [Field], name: &str) -> Option<&'a str> {
    fields.iter().find(|f| f.name == name && f.filename.is_none()).and_then(|f| std::str::from_utf8(&f.data).ok())
}

fn bad_request(message: &str) -> Response {
    let body = json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": null}});
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

/// A WAV's length in seconds from its header (16-byte `fmt ` chunk, then `data`), as OpenAI bills whisper.
fn wav_seconds(data: &[u8]) -> Option<f64> {
    if data.len() < 44 || &data[..4] != b"RIFF" || &data[8..12] != b"WAVE" {
        return None;
    }
    let byte_rate = u32::from_le_bytes(data[28..32].try_into().ok()?);
    (byte_rate > 0).then(|| (data.len() - 44) as f64 / f64::from(byte_rate))
}

/// Reads the whole body; a 100 MB upload is what the benchmark sends, and the mock may hold it.
async fn read_all(body: Body) -> Result<Bytes, String> {
    let mut stream = body.into_data_stream();
    let mut all = bytes::BytesMut::new();
    while let Some(chunk) = stream.next().await {
        all.extend_from_slice(&chunk.map_err(|e| e.to_string())?);
    }
    Ok(all.freeze())
}

pub(crate) async fn transcriptions(State(shared): State<SharedState>, headers: HeaderMap, body: Body) -> Response {
    hear(shared, headers, body, "/v1/audio/transcriptions").await
}

pub(crate) async fn translations(State(shared): State<SharedState>, headers: HeaderMap, body: Body) -> Response {
    hear(shared, headers, body, "/v1/audio/translations").await
}

/// The whole body and the fields of the form in it; a 400 in OpenAI's shape if it is none.
async fn read_form(headers: &HeaderMap, body: Body) -> Result<(Bytes, Vec<Field>), Response> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let body = read_all(body).await.map_err(|error| bad_request(&error))?;
    let fields = fields(content_type, &body).map_err(|error| bad_request(&error))?;
    Ok((body, fields))
}

async fn hear(shared: SharedState, headers: HeaderMap, body: Body, path: &str) -> Response {
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    let (body, fields) = match read_form(&headers, body).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    let model = text_field(&fields, "model").unwrap_or_default().to_string();
    let summary = json!({"model": model, "content_length": declared, "received": body.len(),
        "fields": fields.iter().map(|f| f.name.clone()).collect::<Vec<_>>()});
    if let Err(response) = admit(&shared, path, &headers, &summary) {
        return *response;
    }
    let Some(file) = fields.iter().find(|f| f.name == "file" && f.filename.is_some()) else {
        return bad_request("file: a file is required");
    };
    let seconds = wav_seconds(&file.data).unwrap_or(1.0);
    let verb = if path.ends_with("translations") { "translated" } else { "transcribed" };
    let text = format!("{verb} {} bytes of {} with {model}", file.data.len(), file.filename.as_deref().unwrap_or(""));
    let by_tokens = model.starts_with("gpt-4o");
    let usage = if by_tokens {
        json!({"type": "tokens", "input_tokens": 14, "output_tokens": 9, "total_tokens": 23,
            "input_token_details": {"text_tokens": 0, "audio_tokens": 14}})
    } else {
        json!({"type": "duration", "seconds": seconds.ceil()})
    };
    if text_field(&fields, "stream") == Some("true") {
        let words: Vec<String> = text.split(' ').map(|w| format!("{w} ")).collect();
        let mut events = String::new();
        for word in &words {
            let delta = json!({"type": "transcript.text.delta", "delta": word, "logprobs": null});
            events.push_str(&format!("data: {delta}\n\n"));
        }
        let done = json!({"type": "transcript.text.done", "text": text, "logprobs": null, "usage": usage});
        events.push_str(&format!("data: {done}\n\n"));
        return ([(header::CONTENT_TYPE, "text/event-stream")], events).into_response();
    }
    match text_field(&fields, "response_format").unwrap_or("json") {
        "text" => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{text}\n")).into_response(),
        "srt" => {
            let body = format!("1\n00:00:00,000 --> 00:00:0{},000\n{text}\n\n", seconds.ceil() as u64);
            ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
        }
        "vtt" => {
            let body = format!("WEBVTT\n\n00:00:00.000 --> 00:00:0{}.000\n{text}\n\n", seconds.ceil() as u64);
            ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
        }
        "verbose_json" => Json(json!({
            "task": if verb == "translated" { "translate" } else { "transcribe" }, "language": "english",
            "duration": seconds, "text": text,
            "segments": [{"id": 0, "seek": 0, "start": 0.0, "end": seconds, "text": text, "tokens": [50364],
                "temperature": 0.0, "avg_logprob": -0.2, "compression_ratio": 1.1, "no_speech_prob": 0.01}],
            "usage": {"type": "duration", "seconds": seconds.ceil()}
        }))
        .into_response(),
        _ => Json(json!({"text": text, "usage": usage})).into_response(),
    }
}

/// Speech as OpenAI streams it: the audio's bytes in chunks with the format's media type, or with
/// `stream_format: "sse"`, `speech.audio.delta` events and a `speech.audio.done` with usage.
pub(crate) async fn speech(State(shared): State<SharedState>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if let Err(response) = admit(&shared, "/v1/audio/speech", &headers, &body) {
        return *response;
    }
    let Some(input) = body.get("input").and_then(Value::as_str).filter(|i| !i.is_empty()) else {
        return bad_request("input: the text to speak is required");
    };
    let audio: Vec<u8> = (0..SPEECH_CHUNK * SPEECH_CHUNKS).map(|i| ((i * 7 + input.len()) % 256) as u8).collect();
    if body.get("stream_format").and_then(Value::as_str) == Some("sse") {
        use base64_lite::encode;
        let mut events = String::new();
        for chunk in audio.chunks(SPEECH_CHUNK) {
            events.push_str(&format!("data: {}\n\n", json!({"type": "speech.audio.delta", "audio": encode(chunk)})));
        }
        let done = json!({"type": "speech.audio.done", "usage": {"input_tokens": 14, "output_tokens": 101, "total_tokens": 115}});
        events.push_str(&format!("data: {done}\n\n"));
        return ([(header::CONTENT_TYPE, "text/event-stream")], events).into_response();
    }
    let media_type = match body.get("response_format").and_then(Value::as_str).unwrap_or("mp3") {
        "opus" => "audio/opus",
        "aac" => "audio/aac",
        "flac" => "audio/flac",
        "wav" => "audio/wav",
        "pcm" => "audio/pcm",
        _ => "audio/mpeg",
    };
    let chunks: Vec<Result<Bytes, std::io::Error>> =
        audio.chunks(SPEECH_CHUNK).map(|chunk| Ok(Bytes::copy_from_slice(chunk))).collect();
    let stream = futures_util::stream::iter(chunks).then(|chunk| async move {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        chunk
    });
    ([(header::CONTENT_TYPE, media_type)], Body::from_stream(stream)).into_response()
}

/// An image edit as OpenAI answers it: `n` images, with gpt-image-1's token usage.
pub(crate) async fn image_edits(State(shared): State<SharedState>, headers: HeaderMap, body: Body) -> Response {
    let fields = match read_form(&headers, body).await {
        Ok((_, fields)) => fields,
        Err(response) => return response,
    };
    let images: Vec<usize> =
        fields.iter().filter(|f| f.name.starts_with("image") && f.filename.is_some()).map(|f| f.data.len()).collect();
    let model = text_field(&fields, "model").unwrap_or("dall-e-2").to_string();
    let summary = json!({"model": model, "images": images, "prompt": text_field(&fields, "prompt")});
    if let Err(response) = admit(&shared, "/v1/images/edits", &headers, &summary) {
        return *response;
    }
    if images.is_empty() {
        return bad_request("image: at least one image is required");
    }
    let count = text_field(&fields, "n").and_then(|n| n.parse::<u64>().ok()).unwrap_or(1).clamp(1, 10);
    let data: Vec<Value> = (0..count).map(|_| json!({"b64_json": ONE_PIXEL_PNG})).collect();
    Json(json!({"created": 1_700_000_000, "data": data, "usage": {"input_tokens": 50, "output_tokens": 272,
        "total_tokens": 322, "input_tokens_details": {"text_tokens": 10, "image_tokens": 40}}}))
    .into_response()
}

/// Standard base64, for the audio in speech events.
mod base64_lite {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn encode(bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let value = (u32::from(chunk[0]) << 16)
                | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
                | u32::from(*chunk.get(2).unwrap_or(&0));
            for index in 0..4 {
                if index <= chunk.len() {
                    out.push(ALPHABET[(value >> (18 - 6 * index) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}
