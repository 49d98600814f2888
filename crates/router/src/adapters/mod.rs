//! Provider wire formats. Every channel speaks OpenAI's format to BurnCloud's callers; a channel
//! whose upstream speaks another format has an adapter here that converts requests, responses,
//! stream events and errors, one file per provider, all of the same shape.

pub mod anthropic;

use burncloud_service_api::ChannelKind;

/// The format a channel's upstream speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    /// OpenAI's own format: requests and answers pass through.
    OpenAi,
    Anthropic,
}

impl Wire {
    pub fn of(kind: ChannelKind) -> Wire {
        match kind {
            ChannelKind::Openai | ChannelKind::Deepseek | ChannelKind::Qwen => Wire::OpenAi,
            ChannelKind::Anthropic => Wire::Anthropic,
        }
    }
}
