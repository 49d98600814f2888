//! Provider wire formats. Every channel speaks OpenAI's format to BurnCloud's callers; a channel
//! whose upstream speaks another format has an adapter here that converts requests, responses,
//! stream events and errors, one file per provider, all of the same shape.

pub mod anthropic;
pub mod anthropic_inbound;
pub mod gemini;

use burncloud_service_api::ChannelKind;

/// The format a channel's upstream speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    /// OpenAI's own format: requests and answers pass through.
    OpenAi,
    Anthropic,
    Gemini,
}

impl Wire {
    pub fn of(kind: ChannelKind) -> Wire {
        match kind {
            ChannelKind::Openai | ChannelKind::Deepseek | ChannelKind::Qwen => Wire::OpenAi,
            ChannelKind::Anthropic => Wire::Anthropic,
            ChannelKind::Gemini => Wire::Gemini,
        }
    }
}

/// Converts another provider's stream events into OpenAI chat completion chunks, event by event.
pub trait EventTranslator: Send {
    /// The OpenAI chunks for one upstream event's `data`.
    fn on_event(&mut self, data: &[u8]) -> Vec<bytes::Bytes>;
    /// What ends the OpenAI stream: the usage chunk if the caller asked for it, then `[DONE]`.
    fn finish(&self, include_usage: bool) -> Vec<bytes::Bytes>;
    /// Whether the upstream said the answer is complete.
    fn finished(&self) -> bool;
    fn usage(&self) -> Option<crate::usage::Usage>;
    /// The upstream's own error event, already passed on to the caller translated.
    fn error(&self) -> Option<String>;
}

macro_rules! event_translator {
    ($translator:ty) => {
        impl EventTranslator for $translator {
            fn on_event(&mut self, data: &[u8]) -> Vec<bytes::Bytes> {
                <$translator>::on_event(self, data)
            }
            fn finish(&self, include_usage: bool) -> Vec<bytes::Bytes> {
                <$translator>::finish(self, include_usage)
            }
            fn finished(&self) -> bool {
                <$translator>::finished(self)
            }
            fn usage(&self) -> Option<crate::usage::Usage> {
                <$translator>::usage(self)
            }
            fn error(&self) -> Option<String> {
                self.error.clone()
            }
        }
    };
}

event_translator!(anthropic::StreamTranslator);
event_translator!(gemini::StreamTranslator);
