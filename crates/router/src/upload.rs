//! Multipart uploads (`/v1/audio/transcriptions`, `/v1/audio/translations`, `/v1/images/edits`):
//! received into a spool — memory for a small form, an anonymous temporary file past that — and
//! read for their fields on the way in, so that a long recording passes with flat memory, any
//! field order works (OpenAI's Node SDK sends the file before the model), and each channel tried
//! gets the same bytes, the model renamed where the channel maps it.

use std::io::Write;
use std::sync::Arc;

use axum::body::Body;
use axum::http::HeaderValue;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use memchr::memmem;

use crate::error::CallError;

/// A form up to this size stays in memory.
const MEMORY_BYTES: usize = 1024 * 1024;
/// Bytes collected before each write to the spool file.
const WRITE_BYTES: usize = 256 * 1024;
/// Bytes read from the spool file per chunk sent upstream.
const READ_BYTES: usize = 64 * 1024;
/// The longest value of a text field (a prompt, a model name).
const MAX_TEXT_FIELD: usize = 64 * 1024;
/// The longest header block of one part.
const MAX_PART_HEADERS: usize = 16 * 1024;
/// Parts in one form.
const MAX_PARTS: usize = 256;
/// Bytes kept from the start of each file part (for an audio file's own header).
const FILE_HEAD: usize = 4096;

/// A received form: its bytes as sent, and where each part lies in them.
pub(crate) struct Upload {
    content_type: HeaderValue,
    spool: Spool,
    len: u64,
    parts: Vec<Part>,
}

/// One part of a form, its body at `start..end` of the upload.
#[derive(Debug)]
pub struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub start: u64,
    pub end: u64,
    /// A text field's value; the first bytes of a file.
    pub value: Vec<u8>,
}

#[derive(Clone)]
enum Spool {
    Memory(Bytes),
    File(Arc<std::fs::File>),
}

impl Upload {
    /// Reads a `multipart/form-data` body of at most `limit` bytes.
    pub(crate) async fn receive(
        content_type: Option<&HeaderValue>,
        body: Body,
        limit: u64,
    ) -> Result<Upload, CallError> {
        let bad = |message: String| CallError::BadRequest { message, param: None };
        let content_type = content_type.cloned().ok_or_else(|| bad(not_a_form("no content type")))?;
        let text = content_type.to_str().map_err(|_| bad(not_a_form("a content type that is not text")))?;
        let boundary = boundary_of(text).ok_or_else(|| bad(not_a_form(text)))?;
        let mut scanner = FormScanner::new(&boundary);
        let mut spool = SpoolWriter::default();
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|error| bad(format!("could not read the request body: {error}")))?;
            if spool.len + chunk.len() as u64 > limit {
                return Err(CallError::PayloadTooLarge(limit as usize));
            }
            scanner.push(&chunk).map_err(bad)?;
            spool.write(chunk).await.map_err(spool_error)?;
        }
        let parts = scanner.finish().map_err(bad)?;
        let len = spool.len;
        let spool = spool.finish().await.map_err(spool_error)?;
        Ok(Upload { content_type, spool, len, parts })
    }

    /// The value of the text field `name`, the last where it repeats.
    pub(crate) fn field(&self, name: &str) -> Option<&str> {
        let part = self.parts.iter().rev().find(|part| part.name == name && part.filename.is_none())?;
        std::str::from_utf8(&part.value).ok()
    }

    pub(crate) fn files(&self) -> impl Iterator<Item = &Part> {
        self.parts.iter().filter(|part| part.filename.is_some())
    }

    pub(crate) fn content_type(&self) -> &HeaderValue {
        &self.content_type
    }

    /// The form as it was sent, with the model field's value replaced by `model` when it differs:
    /// its length, and its bytes as a stream.
    pub(crate) fn body_for(&self, model: &str) -> (u64, Body) {
        let model_part = self.parts.iter().rev().find(|part| part.name == "model" && part.filename.is_none());
        let segments = match model_part {
            Some(part) if part.value != model.as_bytes() => vec![
                Segment::Spool(0, part.start),
                Segment::Bytes(Bytes::copy_from_slice(model.as_bytes())),
                Segment::Spool(part.end, self.len),
            ],
            _ => vec![Segment::Spool(0, self.len)],
        };
        let len = segments.iter().map(Segment::len).sum();
        let spool = self.spool.clone();
        let chunks = futures_util::stream::iter(segments).flat_map(move |segment| segment.read(spool.clone()));
        (len, Body::from_stream(chunks))
    }
}

fn not_a_form(what: &str) -> String {
    format!("this endpoint takes a multipart/form-data body with a boundary, not {what}")
}

fn spool_error(error: std::io::Error) -> CallError {
    CallError::Unavailable {
        message: format!("BurnCloud could not keep the upload in a temporary file: {error}"),
        retry_after_secs: 5,
    }
}

/// The `boundary` parameter of a `multipart/form-data` content type.
pub(crate) fn boundary_of(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    if !params.next()?.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.find_map(|param| {
        let (key, value) = param.split_once('=')?;
        if !key.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let value = value.trim();
        let value = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value);
        (!value.is_empty() && value.len() <= 200).then(|| value.to_string())
    })
}

/// A range of the spool or bytes of its own.
enum Segment {
    Spool(u64, u64),
    Bytes(Bytes),
}

impl Segment {
    fn len(&self) -> u64 {
        match self {
            Segment::Spool(start, end) => end - start,
            Segment::Bytes(bytes) => bytes.len() as u64,
        }
    }

    fn read(self, spool: Spool) -> futures_util::stream::BoxStream<'static, Result<Bytes, std::io::Error>> {
        match (self, spool) {
            (Segment::Bytes(bytes), _) => futures_util::stream::once(async move { Ok(bytes) }).boxed(),
            (Segment::Spool(start, end), Spool::Memory(bytes)) => {
                let slice = bytes.slice(start as usize..end as usize);
                futures_util::stream::once(async move { Ok(slice) }).boxed()
            }
            (Segment::Spool(start, end), Spool::File(file)) => futures_util::stream::try_unfold(start, move |offset| {
                let file = file.clone();
                async move {
                    if offset >= end {
                        return Ok(None);
                    }
                    let want = (end - offset).min(READ_BYTES as u64) as usize;
                    let chunk = tokio::task::spawn_blocking(move || read_exactly_at(&file, offset, want))
                        .await
                        .map_err(std::io::Error::other)??;
                    Ok(Some((chunk, offset + want as u64)))
                }
            })
            .boxed(),
        }
    }
}

fn read_exactly_at(file: &std::fs::File, offset: u64, len: usize) -> std::io::Result<Bytes> {
    let mut buffer = vec![0u8; len];
    let mut filled = 0;
    while filled < len {
        #[cfg(unix)]
        let read = std::os::unix::fs::FileExt::read_at(file, &mut buffer[filled..], offset + filled as u64)?;
        #[cfg(windows)]
        let read = std::os::windows::fs::FileExt::seek_read(file, &mut buffer[filled..], offset + filled as u64)?;
        if read == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the spool file is shorter than the upload",
            ));
        }
        filled += read;
    }
    Ok(Bytes::from(buffer))
}

/// Collects the upload in memory, moving it to a temporary file once it outgrows `MEMORY_BYTES`.
#[derive(Default)]
struct SpoolWriter {
    pending: BytesMut,
    file: Option<Arc<std::fs::File>>,
    len: u64,
}

impl SpoolWriter {
    async fn write(&mut self, chunk: Bytes) -> std::io::Result<()> {
        self.len += chunk.len() as u64;
        self.pending.extend_from_slice(&chunk);
        if self.file.is_none() && self.pending.len() > MEMORY_BYTES {
            self.file =
                Some(Arc::new(tokio::task::spawn_blocking(tempfile::tempfile).await.map_err(std::io::Error::other)??));
        }
        if self.file.is_some() && self.pending.len() >= WRITE_BYTES {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        let Some(file) = self.file.clone() else { return Ok(()) };
        let bytes = self.pending.split().freeze();
        tokio::task::spawn_blocking(move || (&*file).write_all(&bytes)).await.map_err(std::io::Error::other)?
    }

    async fn finish(mut self) -> std::io::Result<Spool> {
        match self.file.clone() {
            Some(file) => {
                self.flush().await?;
                Ok(Spool::File(file))
            }
            None => Ok(Spool::Memory(self.pending.freeze())),
        }
    }
}

/// Where the scanner is in the form.
#[derive(Debug, PartialEq)]
enum State {
    /// Before the first boundary.
    Preamble,
    /// Just after a boundary: either `--` (the end) or a line break and a part's headers.
    AfterBoundary,
    Headers,
    /// In a part's body.
    Body,
    /// After the closing boundary.
    Epilogue,
}

/// Finds the parts of a `multipart/form-data` body fed to it piece by piece, keeping no more than
/// a boundary's length of it, each text field's value and the head of each file.
pub(crate) struct FormScanner {
    /// `\r\n--boundary`: what ends every part. The body is scanned as if it began with `\r\n`,
    /// so that the first boundary (which has no line break before it) is found the same way.
    delimiter: Vec<u8>,
    window: Vec<u8>,
    /// Offset in the body, `\r\n` included, of `window[0]`.
    window_at: u64,
    state: State,
    parts: Vec<Part>,
}

/// The `\r\n` the scanner puts before the body.
const LEAD: u64 = 2;

impl FormScanner {
    pub(crate) fn new(boundary: &str) -> FormScanner {
        let mut delimiter = b"\r\n--".to_vec();
        delimiter.extend_from_slice(boundary.as_bytes());
        FormScanner { delimiter, window: b"\r\n".to_vec(), window_at: 0, state: State::Preamble, parts: Vec::new() }
    }

    pub(crate) fn push(&mut self, chunk: &[u8]) -> Result<(), String> {
        if self.state == State::Epilogue {
            return Ok(());
        }
        self.window.extend_from_slice(chunk);
        let mut used = 0;
        loop {
            let rest = &self.window[used..];
            match self.state {
                State::Preamble | State::Body => match memmem::find(rest, &self.delimiter) {
                    Some(found) => {
                        if self.state == State::Body {
                            self.add_to_part(used, used + found)?;
                            let end = self.window_at + (used + found) as u64 - LEAD;
                            if let Some(part) = self.parts.last_mut() {
                                part.end = end;
                            }
                        }
                        used += found + self.delimiter.len();
                        self.state = State::AfterBoundary;
                    }
                    None => {
                        // The last bytes may be the start of a boundary: they wait for more.
                        let safe = rest.len().saturating_sub(self.delimiter.len() - 1);
                        if self.state == State::Body {
                            self.add_to_part(used, used + safe)?;
                        }
                        used += safe;
                        break;
                    }
                },
                State::AfterBoundary => {
                    if rest.len() < 2 {
                        break;
                    }
                    if rest.starts_with(b"--") {
                        self.state = State::Epilogue;
                        used = self.window.len();
                        break;
                    }
                    // Transport padding (spaces, tabs) may follow a boundary before its line break.
                    let padding = rest.iter().take_while(|b| **b == b' ' || **b == b'\t').count();
                    match rest.get(padding..padding + 2) {
                        Some(b"\r\n") => {
                            used += padding + 2;
                            self.state = State::Headers;
                        }
                        Some(_) => return Err("the multipart body has a malformed boundary line".into()),
                        None if rest.len() > 1024 => {
                            return Err("the multipart body has a malformed boundary line".into())
                        }
                        None => break,
                    }
                }
                State::Headers => {
                    let end = if rest.starts_with(b"\r\n") {
                        Some((0, 2))
                    } else {
                        memmem::find(rest, b"\r\n\r\n").map(|at| (at, at + 4))
                    };
                    let Some((headers_end, body_start)) = end else {
                        if rest.len() > MAX_PART_HEADERS {
                            return Err(format!("a part's headers are longer than {} KiB", MAX_PART_HEADERS / 1024));
                        }
                        break;
                    };
                    if self.parts.len() >= MAX_PARTS {
                        return Err(format!("the form has more than {MAX_PARTS} parts"));
                    }
                    let part = part_of(&rest[..headers_end], self.window_at + (used + body_start) as u64 - LEAD)?;
                    self.parts.push(part);
                    used += body_start;
                    self.state = State::Body;
                }
                State::Epilogue => {
                    used = self.window.len();
                    break;
                }
            }
        }
        self.window.drain(..used);
        self.window_at += used as u64;
        Ok(())
    }

    /// Adds `window[from..to]` to the current part: a text field's value, or a file's head.
    fn add_to_part(&mut self, from: usize, to: usize) -> Result<(), String> {
        let Some(part) = self.parts.last_mut() else { return Ok(()) };
        let bytes = &self.window[from..to];
        if part.filename.is_some() {
            let room = FILE_HEAD.saturating_sub(part.value.len());
            part.value.extend_from_slice(&bytes[..room.min(bytes.len())]);
        } else {
            if part.value.len() + bytes.len() > MAX_TEXT_FIELD {
                return Err(format!("the form field '{}' is longer than {} KiB", part.name, MAX_TEXT_FIELD / 1024));
            }
            part.value.extend_from_slice(bytes);
        }
        Ok(())
    }

    pub(crate) fn finish(self) -> Result<Vec<Part>, String> {
        match self.state {
            State::Epilogue if self.parts.is_empty() => Err("the multipart form has no fields".into()),
            State::Epilogue => Ok(self.parts),
            State::Preamble => {
                Err("the body has no multipart boundary: is it really the form its content type says?".into())
            }
            State::AfterBoundary | State::Headers | State::Body => {
                Err("the multipart body ends before its closing boundary".into())
            }
        }
    }
}

/// A part from its header block (`Content-Disposition: form-data; name="…"`, a content type).
fn part_of(headers: &[u8], start: u64) -> Result<Part, String> {
    let text = std::str::from_utf8(headers).map_err(|_| "a part's headers are not UTF-8".to_string())?;
    let mut part =
        Part { name: String::new(), filename: None, content_type: None, start, end: start, value: Vec::new() };
    let mut disposed = false;
    for line in text.split("\r\n") {
        let Some((key, value)) = line.split_once(':') else { continue };
        let key = key.trim();
        if key.eq_ignore_ascii_case("content-disposition") {
            disposed = true;
            for (param, value) in disposition_params(value) {
                match param.to_ascii_lowercase().as_str() {
                    "name" => part.name = value,
                    "filename" => part.filename = Some(value),
                    _ => {}
                }
            }
        } else if key.eq_ignore_ascii_case("content-type") {
            part.content_type = Some(value.trim().to_string());
        }
    }
    if !disposed || part.name.is_empty() {
        return Err("a part of the form has no Content-Disposition name".into());
    }
    Ok(part)
}

/// The `key=value` parameters after `form-data;`, values unquoted (`\"` inside quotes unescaped).
fn disposition_params(value: &str) -> Vec<(String, String)> {
    let mut params = Vec::new();
    let mut rest = value;
    while let Some(semicolon) = rest.find(';') {
        rest = &rest[semicolon + 1..];
        let Some(equals) = rest.find('=') else { break };
        let key = rest[..equals].trim().to_string();
        rest = rest[equals + 1..].trim_start();
        let mut value = String::new();
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((at, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '"' => {
                        end = at + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            rest = &quoted[end.min(quoted.len())..];
        } else {
            let end = rest.find(';').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        params.push((key, value));
    }
    params
}

/// How long a WAV recording plays, from its header: the data chunk's size (or, where the header
/// says none, what follows the header) over the byte rate. `None` for anything else.
pub(crate) fn wav_duration_ms(head: &[u8], file_len: u64) -> Option<u64> {
    if head.len() < 12 || &head[..4] != b"RIFF" || &head[8..12] != b"WAVE" {
        return None;
    }
    let u32_at = |at: usize| head.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let mut at = 12;
    let mut byte_rate = None;
    while let (Some(id), Some(size)) = (head.get(at..at + 4), u32_at(at + 4)) {
        let body = at + 8;
        match id {
            b"fmt " => byte_rate = u32_at(body + 8).filter(|rate| *rate > 0),
            b"data" => {
                let rate = u64::from(byte_rate?);
                let available = file_len.saturating_sub(body as u64);
                // Streamed WAVs say 0 or 0xFFFFFFFF when the writer did not know the length.
                let size = match size {
                    0 | u32::MAX => available,
                    size => u64::from(size).min(available),
                };
                return Some(size.saturating_mul(1000) / rate);
            }
            _ => {}
        }
        at = body + size as usize + (size as usize & 1);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(boundary: &str, parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (name, filename, value) in parts {
            body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            match filename {
                Some(filename) => body.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: audio/wav\r\n\r\n").as_bytes(),
                ),
                None => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
            }
            body.extend_from_slice(value);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        body
    }

    fn scan(body: &[u8], boundary: &str, piece: usize) -> Result<Vec<Part>, String> {
        let mut scanner = FormScanner::new(boundary);
        for chunk in body.chunks(piece) {
            scanner.push(chunk)?;
        }
        scanner.finish()
    }

    #[test]
    fn finds_every_part_whatever_the_pieces_the_body_comes_in() {
        let audio: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let mut tricky = b"almost \r\n--boun, not quite\r\n-".to_vec();
        tricky.extend_from_slice(&audio);
        let body =
            form("bound", &[("file", Some("a b.wav"), &tricky), ("model", None, b"whisper-1"), ("prompt", None, b"")]);
        for piece in [1, 2, 3, 7, 64, 4096, body.len()] {
            let parts = scan(&body, "bound", piece).unwrap();
            assert_eq!(parts.len(), 3, "pieces of {piece}");
            assert_eq!(parts[0].filename.as_deref(), Some("a b.wav"));
            assert_eq!(&body[parts[0].start as usize..parts[0].end as usize], &tricky[..]);
            assert_eq!(parts[0].value, tricky[..FILE_HEAD.min(tricky.len())]);
            assert_eq!((parts[1].name.as_str(), parts[1].value.as_slice()), ("model", &b"whisper-1"[..]));
            assert_eq!(&body[parts[1].start as usize..parts[1].end as usize], b"whisper-1");
            assert_eq!(parts[2].value, b"");
        }
    }

    #[test]
    fn refuses_broken_forms_with_a_reason() {
        let body = form("b", &[("model", None, b"m")]);
        assert!(scan(&body[..body.len() - 6], "b", 5).unwrap_err().contains("closing boundary"));
        assert!(scan(b"just text", "b", 4).unwrap_err().contains("no multipart boundary"));
        assert!(scan(b"--b\r\nX-Nothing: here\r\n\r\nv\r\n--b--", "b", 3)
            .unwrap_err()
            .contains("no Content-Disposition name"));
        let long = vec![b'x'; MAX_TEXT_FIELD + 1];
        assert!(scan(&form("b", &[("prompt", None, &long)]), "b", 1000).unwrap_err().contains("longer than 64 KiB"));
        assert!(scan(b"--bXYZ", "b", 3).unwrap_err().contains("malformed boundary"));
    }

    #[test]
    fn reads_the_boundary_from_the_content_type() {
        assert_eq!(boundary_of("multipart/form-data; boundary=abc").as_deref(), Some("abc"));
        assert_eq!(boundary_of("Multipart/Form-Data;charset=utf-8; Boundary=\"a b\"").as_deref(), Some("a b"));
        assert_eq!(boundary_of("application/json"), None);
        assert_eq!(boundary_of("multipart/form-data"), None);
        assert_eq!(boundary_of("multipart/form-data; boundary="), None);
    }

    #[test]
    fn disposition_values_may_be_quoted_escaped_or_bare() {
        let params = disposition_params(r#" form-data; name="file"; filename="say \"hi\"; now.wav"; x=bare"#);
        let expected = [("name", "file"), ("filename", "say \"hi\"; now.wav"), ("x", "bare")];
        assert_eq!(params, expected.map(|(k, v)| (k.to_string(), v.to_string())));
    }

    fn wav(seconds: u32, rate: u32, extra_chunk: bool, data_size: Option<u32>) -> Vec<u8> {
        let byte_rate = rate * 2;
        let data_len = seconds * byte_rate;
        let mut out = b"RIFF\0\0\0\0WAVE".to_vec();
        out.extend_from_slice(b"fmt ");
        out.extend_from_slice(&16u32.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&rate.to_le_bytes());
        out.extend_from_slice(&byte_rate.to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&16u16.to_le_bytes());
        if extra_chunk {
            out.extend_from_slice(b"LIST");
            out.extend_from_slice(&3u32.to_le_bytes());
            out.extend_from_slice(b"abc\0");
        }
        out.extend_from_slice(b"data");
        out.extend_from_slice(&data_size.unwrap_or(data_len).to_le_bytes());
        out.resize(out.len() + data_len as usize, 0);
        out
    }

    #[test]
    fn a_wav_header_gives_the_recording_length() {
        let plain = wav(3, 16_000, false, None);
        assert_eq!(wav_duration_ms(&plain[..FILE_HEAD], plain.len() as u64), Some(3000));
        let listed = wav(2, 8_000, true, None);
        assert_eq!(wav_duration_ms(&listed[..100], listed.len() as u64), Some(2000), "a padded odd chunk before data");
        let streamed = wav(4, 8_000, false, Some(u32::MAX));
        assert_eq!(
            wav_duration_ms(&streamed[..100], streamed.len() as u64),
            Some(4000),
            "unknown size: the rest of the file"
        );
        assert_eq!(wav_duration_ms(b"ID3\x04 an mp3", 1000), None);
        assert_eq!(wav_duration_ms(b"RIFF\0\0\0\0WAVEdata\0\0\0\0", 1000), None, "no format chunk, no rate");
    }

    #[tokio::test]
    async fn a_large_upload_goes_to_a_file_and_comes_back_with_the_model_renamed() {
        let audio: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
        let body = form("xyz", &[("file", Some("long.wav"), &audio), ("model", None, b"whisper-1")]);
        let pieces: Vec<Result<Bytes, std::io::Error>> =
            body.chunks(10_000).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        let content_type = HeaderValue::from_static("multipart/form-data; boundary=xyz");
        let upload =
            Upload::receive(Some(&content_type), Body::from_stream(futures_util::stream::iter(pieces)), 10 << 20)
                .await
                .unwrap();
        assert!(matches!(upload.spool, Spool::File(_)), "3 MB is past the memory bound");
        assert_eq!(upload.field("model"), Some("whisper-1"));
        assert_eq!(upload.len, body.len() as u64);
        let collect = |body: Body| async move { axum::body::to_bytes(body, usize::MAX).await.unwrap() };
        let (len, same) = upload.body_for("whisper-1");
        assert_eq!((len, collect(same).await.as_ref()), (body.len() as u64, body.as_slice()));
        let (len, renamed) = upload.body_for("upstream/whisper-large-v3");
        let renamed = collect(renamed).await;
        assert_eq!(len, renamed.len() as u64);
        let expected =
            String::from_utf8_lossy(&body).replace("\r\n\r\nwhisper-1\r\n", "\r\n\r\nupstream/whisper-large-v3\r\n");
        assert_eq!(String::from_utf8_lossy(&renamed), expected);

        let too_large = Upload::receive(Some(&content_type), Body::from(body.clone()), 1000).await;
        assert!(matches!(too_large, Err(CallError::PayloadTooLarge(1000))));
        let json = HeaderValue::from_static("application/json");
        let refused = Upload::receive(Some(&json), Body::from(body), 10 << 20).await;
        assert!(
            matches!(refused, Err(CallError::BadRequest { message, .. }) if message.contains("multipart/form-data"))
        );
    }
}
