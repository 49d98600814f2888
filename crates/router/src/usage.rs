//! Token counts: read from the upstream's `usage` when it gives one, otherwise estimated with a
//! real tokenizer (o200k_base) over the request and the generated text — never over error text.

use std::sync::OnceLock;

use burncloud_service_api::{Money, Price, Rates};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::tokenizer::TokenCounter;

/// Token counts of one call. `prompt_tokens` counts every input token, those read from or written
/// to a prompt cache included; `completion_tokens` counts every output token, reasoning included.
/// The cache and reasoning counts are the parts of those totals that are billed differently.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Input tokens served from the provider's prompt cache.
    pub cached_tokens: u64,
    /// Input tokens written to the prompt cache, the 1-hour writes included.
    pub cache_write_tokens: u64,
    /// The cache writes kept for an hour (Anthropic's `ttl: "1h"`), billed at their own price.
    pub cache_write_1h_tokens: u64,
    pub reasoning_tokens: u64,
    /// Images returned by an image model.
    pub images: u64,
    /// Milliseconds of audio transcribed or translated.
    pub audio_ms: u64,
    /// Characters of text spoken.
    pub characters: u64,
}

impl Usage {
    pub fn new(prompt_tokens: u64, completion_tokens: u64) -> Usage {
        Usage { prompt_tokens, completion_tokens, ..Usage::default() }
    }

    /// Input tokens billed at the plain input price.
    pub fn uncached_prompt_tokens(&self) -> u64 {
        self.prompt_tokens.saturating_sub(self.cached_tokens).saturating_sub(self.cache_write_tokens)
    }

    /// What a call that started at `at_ms` costs at `price`: uncached input, cache reads, cache
    /// writes (5-minute and 1-hour) and output, each at its own rate (a cache rate that is not set
    /// is the input rate) — the rates of the prompt's length tier or of peak hours where the price
    /// has them — and the images, audio and characters at theirs where set.
    pub fn cost(&self, price: &Price, at_ms: i64) -> Money {
        let units = [
            (price.per_image, self.images, 1),
            (price.per_audio_second, self.audio_ms, 1000),
            (price.per_million_characters, self.characters, 1_000_000),
        ];
        units
            .into_iter()
            .filter_map(|(rate, count, per)| Some(Money::per_units(rate?, count, per)))
            .fold(self.token_cost(&price.rates_for(self.prompt_tokens, at_ms)), Money::saturating_add)
    }

    fn token_cost(&self, rates: &Rates) -> Money {
        let input = rates.input_per_mtok;
        let read = rates.cache_read_per_mtok.unwrap_or(input);
        let write = rates.cache_write_per_mtok.unwrap_or(input);
        let write_1h = rates.cache_write_1h_per_mtok.unwrap_or(write);
        let writes_1h = self.cache_write_1h_tokens.min(self.cache_write_tokens);
        [
            (input, self.uncached_prompt_tokens()),
            (read, self.cached_tokens),
            (write, self.cache_write_tokens - writes_1h),
            (write_1h, writes_1h),
            (rates.output_per_mtok, self.completion_tokens),
        ]
        .into_iter()
        .fold(Money::ZERO, |total, (rate, tokens)| total.saturating_add(Money::per_million_tokens(rate, tokens)))
    }

    /// OpenAI's `usage` object (chat completions), with the cached and reasoning details.
    pub fn openai_json(&self) -> Value {
        serde_json::json!({"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens}})
    }
}

#[derive(Deserialize)]
struct TokenDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

/// A `usage` object as OpenAI-format servers write it: chat completions (`prompt_tokens`…), the
/// Responses API (`input_tokens`…), DeepSeek's `prompt_cache_hit_tokens` and llama-server's
/// `tokens_cached`.
#[derive(Deserialize)]
struct WireUsage {
    #[serde(default, alias = "input_tokens")]
    prompt_tokens: u64,
    #[serde(default, alias = "output_tokens")]
    completion_tokens: u64,
    #[serde(default, alias = "input_tokens_details")]
    prompt_tokens_details: Option<TokenDetails>,
    #[serde(default, alias = "output_tokens_details")]
    completion_tokens_details: Option<TokenDetails>,
    #[serde(default)]
    prompt_cache_hit_tokens: Option<u64>,
    #[serde(default)]
    tokens_cached: Option<u64>,
    /// All a rerank server (Jina) reports: its tokens are all input.
    #[serde(default)]
    total_tokens: Option<u64>,
}

impl From<WireUsage> for Usage {
    fn from(wire: WireUsage) -> Usage {
        let cached = wire
            .prompt_tokens_details
            .and_then(|details| details.cached_tokens)
            .or(wire.prompt_cache_hit_tokens)
            .or(wire.tokens_cached)
            .unwrap_or(0);
        let reasoning = wire.completion_tokens_details.and_then(|details| details.reasoning_tokens).unwrap_or(0);
        let prompt_tokens = match (wire.prompt_tokens, wire.completion_tokens) {
            (0, 0) => wire.total_tokens.unwrap_or(0),
            (prompt, _) => prompt,
        };
        Usage {
            prompt_tokens,
            completion_tokens: wire.completion_tokens,
            cached_tokens: cached.min(prompt_tokens),
            reasoning_tokens: reasoning.min(wire.completion_tokens),
            ..Usage::default()
        }
    }
}

#[derive(Deserialize)]
struct WithUsage {
    #[serde(default)]
    usage: Option<WireUsage>,
}

/// The `usage` object of an OpenAI response body or stream chunk, if it has one.
pub fn usage_in(json: &[u8]) -> Option<Usage> {
    serde_json::from_slice::<WithUsage>(json).ok()?.usage.map(Usage::from)
}

/// The `usage` object itself, as OpenAI-format servers write it.
pub fn usage_of_value(usage: &Value) -> Option<Usage> {
    WireUsage::deserialize(usage).ok().map(Usage::from)
}

/// Reads a whole upstream answer in one pass: its `usage` if any, or why it is not a JSON object
/// a client could read (not UTF-8, not JSON, cut short).
pub fn checked_usage_in(json: &[u8]) -> Result<Option<Usage>, String> {
    std::str::from_utf8(json).map_err(|error| format!("a body that is not UTF-8 ({error})"))?;
    serde_json::from_slice::<WithUsage>(json).map(|parsed| parsed.usage.map(Usage::from)).map_err(|error| {
        match error.classify() {
            serde_json::error::Category::Eof => format!("a body cut short ({error})"),
            _ => format!("a body that is not a JSON object ({error})"),
        }
    })
}

static TOKENIZER: OnceLock<Option<TokenCounter>> = OnceLock::new();

fn tokenizer() -> Option<&'static TokenCounter> {
    TOKENIZER
        .get_or_init(|| match TokenCounter::o200k_base() {
            Ok(counter) => Some(counter),
            Err(error) => {
                tracing::error!(%error, "the o200k_base tokenizer failed to load; estimates will count bytes / 4");
                None
            }
        })
        .as_ref()
}

/// Loads the tokenizer in the background so that the first estimate does not wait for it.
pub fn warm_up() {
    std::thread::spawn(|| {
        tokenizer();
    });
}

pub fn count_tokens(text: &str) -> u64 {
    if text.is_empty() {
        return 0;
    }
    match tokenizer() {
        Some(counter) => counter.count(text),
        None => (text.len() as u64).div_ceil(4),
    }
}

/// Collects the text of a content value: a string or a list of parts with `text`.
fn push_content(content: Option<&Value>, out: &mut String) {
    match content {
        Some(Value::String(text)) => out.push_str(text),
        Some(Value::Array(parts)) => {
            for part in parts {
                if let Some(text) = part.get("text").and_then(Value::as_str) {
                    out.push_str(text);
                }
            }
        }
        _ => {}
    }
}

fn push_tool_calls(tool_calls: Option<&Value>, out: &mut String) {
    for call in tool_calls.and_then(Value::as_array).into_iter().flatten() {
        if let Some(function) = call.get("function") {
            for key in ["name", "arguments"] {
                if let Some(text) = function.get(key).and_then(Value::as_str) {
                    out.push_str(text);
                }
            }
        }
    }
}

/// OpenAI's per-message overhead for chat formats.
const TOKENS_PER_MESSAGE: u64 = 3;

/// Estimates the prompt tokens of a request body of the given endpoint.
pub fn estimate_prompt(request: &Map<String, Value>) -> u64 {
    if let Some(messages) = request.get("messages").and_then(Value::as_array) {
        let mut text = String::new();
        for message in messages {
            push_content(message.get("content"), &mut text);
            push_tool_calls(message.get("tool_calls"), &mut text);
            if let Some(name) = message.get("name").and_then(Value::as_str) {
                text.push_str(name);
            }
        }
        return count_tokens(&text) + TOKENS_PER_MESSAGE * (messages.len() as u64 + 1);
    }
    if let Some(query) = request.get("query").and_then(Value::as_str) {
        // A rerank: the query is read once per document.
        let documents = request.get("documents").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        let query_tokens = count_tokens(query);
        return documents
            .iter()
            .map(|document| {
                let text = document.as_str().or_else(|| document.get("text").and_then(Value::as_str));
                query_tokens + text.map_or(0, count_tokens)
            })
            .sum::<u64>()
            .max(query_tokens);
    }
    let input = request.get("prompt").or_else(|| request.get("input"));
    match input {
        Some(Value::String(text)) => count_tokens(text),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => count_tokens(text),
                Value::Array(ids) => ids.len() as u64,
                Value::Number(_) => 1,
                _ => 0,
            })
            .sum(),
        _ => 0,
    }
}

/// Appends the generated text of one response or stream chunk (`message`, `delta` or `text`).
pub fn collect_generated_text(body: &Value, out: &mut String) {
    for choice in body.get("choices").and_then(Value::as_array).into_iter().flatten() {
        if let Some(text) = choice.get("text").and_then(Value::as_str) {
            out.push_str(text);
        }
        for key in ["message", "delta"] {
            if let Some(message) = choice.get(key) {
                push_content(message.get("content"), out);
                if let Some(reasoning) = message.get("reasoning_content").and_then(Value::as_str) {
                    out.push_str(reasoning);
                }
                push_tool_calls(message.get("tool_calls"), out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burncloud_service_api::PriceInput;

    #[test]
    fn reads_usage_and_ignores_null() {
        let body = br#"{"id":"x","usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}"#;
        assert_eq!(usage_in(body), Some(Usage::new(12, 5)));
        assert_eq!(usage_in(br#"{"usage":null}"#), None);
        assert_eq!(usage_in(br#"{"usage":{"prompt_tokens":3,"total_tokens":3}}"#).unwrap().prompt_tokens, 3);
        assert_eq!(usage_in(b"not json"), None);
    }

    /// Each provider's way of saying how much of the prompt came from its cache.
    #[test]
    fn cached_and_reasoning_tokens_are_read_from_every_openai_format_shape() {
        let check = |body: &str, expected: (u64, u64, u64, u64)| {
            let usage = usage_in(body.as_bytes()).unwrap();
            assert_eq!(
                (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens, usage.reasoning_tokens),
                expected,
                "{body}"
            );
        };
        check(
            r#"{"usage":{"prompt_tokens":100,"completion_tokens":50,"prompt_tokens_details":{"cached_tokens":80},"completion_tokens_details":{"reasoning_tokens":30}}}"#,
            (100, 50, 80, 30),
        );
        check(
            r#"{"usage":{"prompt_tokens":100,"completion_tokens":5,"prompt_cache_hit_tokens":64,"prompt_cache_miss_tokens":36}}"#,
            (100, 5, 64, 0),
        );
        check(
            r#"{"usage":{"input_tokens":90,"output_tokens":9,"input_tokens_details":{"cached_tokens":10},"output_tokens_details":{"reasoning_tokens":4}}}"#,
            (90, 9, 10, 4),
        );
        check(r#"{"usage":{"prompt_tokens":12,"completion_tokens":3,"tokens_cached":8}}"#, (12, 3, 8, 0));
        check(r#"{"usage":{"prompt_tokens":5,"completion_tokens":3,"prompt_tokens_details":null}}"#, (5, 3, 0, 0));
        check(
            r#"{"usage":{"prompt_tokens":5,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":9}}}"#,
            (5, 3, 5, 0),
        );
    }

    /// cost = uncached input × input + reads × read + writes × write (1 h at its own) + output × output.
    #[test]
    fn cost_prices_each_kind_of_token_at_its_own_rate() {
        let money = |text: &str| Money::parse(text).unwrap();
        let mut price = PriceInput {
            input_per_mtok: money("3"),
            output_per_mtok: money("15"),
            cache_read_per_mtok: Some(money("0.3")),
            cache_write_per_mtok: Some(money("3.75")),
            cache_write_1h_per_mtok: Some(money("6")),
            ..PriceInput::default()
        }
        .priced("m");
        let usage = Usage {
            prompt_tokens: 1_310_000,
            completion_tokens: 20_000,
            cached_tokens: 1_000_000,
            cache_write_tokens: 300_000,
            cache_write_1h_tokens: 200_000,
            reasoning_tokens: 5_000,
            ..Usage::default()
        };
        // 10k × 3 + 1M × 0.3 + 100k × 3.75 + 200k × 6 + 20k × 15, per million.
        assert_eq!(usage.cost(&price, 0), money("2.205"));
        price.cache_write_1h_per_mtok = None;
        assert_eq!(usage.cost(&price, 0), money("1.755"), "1-hour writes fall back to the write price");
        price.cache_read_per_mtok = None;
        price.cache_write_per_mtok = None;
        assert_eq!(usage.cost(&price, 0), money("4.23"), "no cache prices: every prompt token at the input price");
    }

    /// Claude Haiku 5.5's published prices: a prompt over 100,000 tokens (cache reads and writes
    /// counted) pays five times the rates on every token; DeepSeek's peak hours pay twice.
    #[test]
    fn cost_uses_the_prompt_tier_or_peak_rates_for_every_token() {
        use burncloud_service_api::{PeakHours, PriceTier, Rates};
        let money = |text: &str| Money::parse(text).unwrap();
        let rates = |input: &str, output: &str, read: &str, write: &str, write_1h: &str| Rates {
            input_per_mtok: money(input),
            output_per_mtok: money(output),
            cache_read_per_mtok: Some(money(read)),
            cache_write_per_mtok: Some(money(write)),
            cache_write_1h_per_mtok: Some(money(write_1h)),
        };
        let short = rates("0.10", "0.50", "0.01", "0.125", "0.20");
        let haiku = PriceInput {
            input_per_mtok: short.input_per_mtok,
            output_per_mtok: short.output_per_mtok,
            cache_read_per_mtok: short.cache_read_per_mtok,
            cache_write_per_mtok: short.cache_write_per_mtok,
            cache_write_1h_per_mtok: short.cache_write_1h_per_mtok,
            tiers: vec![PriceTier {
                above_prompt_tokens: 100_000,
                rates: rates("0.50", "2.50", "0.05", "0.625", "1.00"),
            }],
            ..PriceInput::default()
        }
        .priced("claude-haiku-5-5");
        let call = |prompt_tokens: u64| Usage {
            prompt_tokens,
            completion_tokens: 10_000,
            cached_tokens: prompt_tokens - 20_000,
            cache_write_tokens: 10_000,
            cache_write_1h_tokens: 4_000,
            ..Usage::default()
        };
        // 10k × 0.10 + 80k × 0.01 + 6k × 0.125 + 4k × 0.20 + 10k × 0.50, per million.
        assert_eq!(call(100_000).cost(&haiku, 0), money("0.00835"));
        // One token over: 10k × 0.50 + 80,001 × 0.05 + 6k × 0.625 + 4k × 1.00 + 10k × 2.50.
        assert_eq!(call(100_001).cost(&haiku, 0), money("0.04175005"));

        let deepseek = Price {
            model: "deepseek-flash".into(),
            input_per_mtok: money("0.15"),
            output_per_mtok: money("0.60"),
            cache_read_per_mtok: Some(money("0.003")),
            tiers: vec![],
            peak: Some(PeakHours {
                windows_utc: vec!["01:00-04:00".parse().unwrap(), "06:00-10:00".parse().unwrap()],
                weekdays_only: true,
                rates: Rates {
                    input_per_mtok: money("0.30"),
                    output_per_mtok: money("1.20"),
                    cache_read_per_mtok: Some(money("0.006")),
                    ..Rates::default()
                },
            }),
            ..haiku
        };
        let usage =
            Usage { prompt_tokens: 1_000_000, completion_tokens: 100_000, cached_tokens: 900_000, ..Usage::default() };
        let monday_two_am_utc = 1_796_608_800_000; // 2026-12-07T02:00:00Z
        let monday_noon_utc = monday_two_am_utc + 10 * 3_600_000;
        // 100k × 0.30 + 900k × 0.006 + 100k × 1.20 at peak; half of each off-peak.
        assert_eq!(usage.cost(&deepseek, monday_two_am_utc), money("0.1554"));
        assert_eq!(usage.cost(&deepseek, monday_noon_utc), money("0.0777"));
    }

    #[test]
    fn cost_adds_images_audio_and_characters_where_priced() {
        let money = |text: &str| Money::parse(text).unwrap();
        let mut price =
            PriceInput { input_per_mtok: money("5"), output_per_mtok: money("40"), ..PriceInput::default() }
                .priced("m");
        let usage =
            Usage { prompt_tokens: 100_000, images: 3, audio_ms: 61_500, characters: 200_000, ..Usage::default() };
        assert_eq!(usage.cost(&price, 0), money("0.5"), "unit prices not set: only the tokens");
        price.per_image = Some(money("0.04"));
        price.per_audio_second = Some(money("0.0001"));
        price.per_million_characters = Some(money("15"));
        // 0.5 for the tokens + 3 × 0.04 + 61.5 s × 0.0001 + 0.2M characters × 15.
        assert_eq!(usage.cost(&price, 0), money("3.62615"));
    }

    #[test]
    fn whole_answers_are_checked_in_the_same_pass_that_reads_usage() {
        let body = br#"{"id":"x","usage":{"prompt_tokens":2,"completion_tokens":1}}"#;
        assert_eq!(checked_usage_in(body), Ok(Some(Usage::new(2, 1))));
        assert_eq!(checked_usage_in(br#"{"id":"x"}"#), Ok(None));
        assert!(checked_usage_in(br#"{"id":"x","choi"#).unwrap_err().contains("cut short"));
        assert!(checked_usage_in(b"<html></html>").unwrap_err().contains("not a JSON object"));
        assert!(checked_usage_in(b"[1, 2]").unwrap_err().contains("not a JSON object"));
        assert!(checked_usage_in(b"{\"id\":\"\xff\"}").unwrap_err().contains("not UTF-8"));
    }

    #[test]
    fn estimates_with_the_real_tokenizer() {
        assert_eq!(count_tokens("hello world"), 2);
        let request: Map<String, Value> = serde_json::from_str(
            r#"{"model":"m","messages":[{"role":"user","content":"hello world"},{"role":"user","content":[{"type":"text","text":"hello world"}]}]}"#,
        )
        .unwrap();
        assert_eq!(estimate_prompt(&request), 4 + 3 * 3);
        let mut text = String::new();
        collect_generated_text(
            &serde_json::json!({"choices":[{"delta":{"content":"hello"}},{"message":{"content":" world"}}]}),
            &mut text,
        );
        assert_eq!(text, "hello world");
    }
}
