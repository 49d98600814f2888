//! Media answers: speech audio, transcripts in any of their formats, and the event streams of
//! both, relayed to the caller byte for byte as they arrive; the usage and units they report
//! (tokens, seconds of audio) read on the way, the request's own measure where they report none.

use super::*;

/// The most of a whole (non-stream) text answer kept for reading its usage.
const MAX_KEPT_ANSWER: usize = 1024 * 1024;

/// How many images an images answer holds (its `data` array).
pub(super) fn images_in(body: &[u8]) -> u64 {
    #[derive(serde::Deserialize)]
    struct Images {
        #[serde(default)]
        data: Vec<serde::de::IgnoredAny>,
    }
    serde_json::from_slice::<Images>(body).map_or(0, |images| images.data.len() as u64)
}

/// What a media answer (or one of its events) reports: token usage, and the audio's length.
#[derive(Default)]
struct MediaReport {
    usage: Option<Usage>,
    audio_ms: Option<u64>,
}

impl MediaReport {
    /// Reads OpenAI's shapes: `usage` by tokens (`input_tokens`…) or by duration
    /// (`{"type": "duration", "seconds": …}`), and verbose JSON's `duration`.
    fn read(&mut self, value: &Value) {
        let seconds = |value: Option<&Value>| value.and_then(Value::as_f64).filter(|s| s.is_finite() && *s >= 0.0);
        if let Some(usage) = value.get("usage") {
            if usage.get("type").and_then(Value::as_str) == Some("duration") {
                self.audio_ms = seconds(usage.get("seconds")).map(|s| (s * 1000.0).round() as u64).or(self.audio_ms);
            } else if let Some(tokens) = crate::usage::usage_of_value(usage) {
                self.usage = Some(tokens);
            }
        }
        if let Some(duration) = seconds(value.get("duration")) {
            self.audio_ms = Some((duration * 1000.0).round() as u64);
        }
    }
}

/// Relays a media answer: waits for its first bytes (before them, another channel may still
/// answer), then passes every chunk on as it comes, with the upstream's status and content type.
pub(super) async fn relay(
    gateway: &Gateway,
    call: &Call,
    channel: &ChannelEntry,
    mut upstream: UpstreamResponse,
    reply: &mut Option<oneshot::Sender<Response>>,
    deadline: tokio::time::Instant,
) -> Attempt {
    let first = match first_chunk(gateway, channel, &mut upstream).await {
        Ok(first) => first,
        Err(failed) => return failed,
    };
    let content_type = upstream
        .headers
        .get(header::CONTENT_TYPE)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("application/octet-stream"));
    let media_type = content_type.to_str().unwrap_or_default().to_ascii_lowercase();
    let is_events = media_type.starts_with("text/event-stream");
    let is_json = media_type.starts_with("application/json");
    let (sender, body) = body_channel();
    let mut response = Response::new(body);
    *response.status_mut() = upstream.status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type);
    if is_events {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    }
    let mut client_gone = !deliver(reply, with_request_id(response, &call.request_id));

    let mut report = MediaReport::default();
    let mut splitter = SseSplitter::default();
    let mut kept = bytes::BytesMut::new();
    let mut first_token_ms = None;
    let mut cut = None;
    let mut drain_deadline: Option<tokio::time::Instant> = None;
    let mut next_chunk = first;
    while let Some(chunk) = next_chunk.take() {
        first_token_ms.get_or_insert_with(|| call.started.elapsed().as_millis() as u64);
        if is_events {
            for event in splitter.push(&chunk) {
                if let Some(value) = event_data(&event).and_then(|data| serde_json::from_slice::<Value>(&data).ok()) {
                    report.read(&value);
                }
            }
        } else if kept.len() + chunk.len() <= MAX_KEPT_ANSWER && call.endpoint != Endpoint::AudioSpeech {
            kept.extend_from_slice(&chunk);
        }
        if !client_gone {
            client_gone = !send(&sender, chunk).await;
            if client_gone {
                drain_deadline = Some(tokio::time::Instant::now() + gateway.config.cancel_drain_timeout);
            }
        }
        let (wait, is_deadline) = match drain_deadline {
            Some(drain) => (drain.min(deadline).saturating_duration_since(tokio::time::Instant::now()), false),
            None => next_read_wait(gateway, deadline),
        };
        next_chunk = match tokio::time::timeout(wait, upstream.chunk()).await {
            Ok(Some(Ok(chunk))) => Some(chunk),
            Ok(None) => None,
            Ok(Some(Err(error))) => {
                cut = Some(scrub(&format!("the upstream answer broke: {error}"), &channel.api_key));
                None
            }
            Err(_) => {
                if is_deadline {
                    cut = Some(total_timeout_error(gateway).message());
                } else if drain_deadline.is_none() {
                    cut = Some("the upstream answer went silent".into());
                }
                None
            }
        };
    }
    if let Some(message) = &cut {
        // The caller already has the status and part of the body: ending the body with an error
        // is how it learns the answer is incomplete.
        let _ = sender.send(Err(std::io::Error::other(message.clone()))).await;
    }
    // A whole JSON answer is read once: for its usage, or else for its text to count.
    let answer = is_json.then(|| serde_json::from_slice::<Value>(&kept).ok()).flatten();
    if let Some(answer) = &answer {
        report.read(answer);
    }
    let (mut usage, usage_source) = match report.usage {
        Some(usage) => (usage, UsageSource::Upstream),
        None => (estimated_media_usage(call, &kept, answer.as_ref(), is_json), UsageSource::Estimated),
    };
    usage.characters = call.units.characters;
    usage.audio_ms = report.audio_ms.unwrap_or(call.units.audio_ms);
    let end_reason = match (client_gone, &cut) {
        (true, _) => EndReason::ClientCancelled,
        (false, Some(_)) => EndReason::UpstreamCut,
        (false, None) => EndReason::Completed,
    };
    let outcome = Outcome {
        channel: None,
        status: 200,
        error: cut,
        usage,
        usage_source,
        first_token_ms,
        end_reason,
        attempts: 0,
    };
    Attempt::Done(outcome, None)
}

/// Tokens counted where the upstream reports none: the text to speak, or the transcript.
fn estimated_media_usage(call: &Call, kept: &[u8], answer: Option<&Value>, is_json: bool) -> Usage {
    match call.endpoint {
        Endpoint::AudioSpeech => {
            let input = call.request().get("input").and_then(Value::as_str).unwrap_or_default();
            Usage::new(count_tokens(input), 0)
        }
        _ if is_json => {
            let text = answer.and_then(|value| value.get("text")).and_then(Value::as_str).unwrap_or_default();
            Usage::new(0, count_tokens(text))
        }
        _ => Usage::new(0, count_tokens(&String::from_utf8_lossy(kept))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_answers_report_tokens_or_seconds() {
        let mut report = MediaReport::default();
        report.read(&json!({"text": "hi", "usage": {"type": "duration", "seconds": 9.5}}));
        assert_eq!((report.usage, report.audio_ms), (None, Some(9500)));

        let mut report = MediaReport::default();
        report.read(&json!({"text": "hi", "usage": {"type": "tokens", "input_tokens": 14, "output_tokens": 45,
            "total_tokens": 59, "input_token_details": {"text_tokens": 0, "audio_tokens": 14}}}));
        assert_eq!(report.usage, Some(Usage::new(14, 45)));

        let mut report = MediaReport::default();
        report.read(&json!({"task": "transcribe", "language": "english", "duration": 3.25, "text": "hi"}));
        assert_eq!(report.audio_ms, Some(3250));

        let mut report = MediaReport::default();
        report.read(&json!({"type": "speech.audio.done", "usage": {"input_tokens": 14, "output_tokens": 101, "total_tokens": 115}}));
        assert_eq!(report.usage, Some(Usage::new(14, 101)));

        let mut report = MediaReport::default();
        report.read(&json!({"duration": -1, "usage": {"type": "duration", "seconds": "ten"}}));
        assert_eq!((report.usage, report.audio_ms), (None, None), "nonsense is not a measure");
    }

    #[test]
    fn images_are_counted_from_the_data_array() {
        assert_eq!(images_in(br#"{"created":1,"data":[{"url":"a"},{"b64_json":"b"}]}"#), 2);
        assert_eq!(images_in(br#"{"created":1}"#), 0);
        assert_eq!(images_in(b"not json"), 0);
    }
}
