//! The pages that manage the gateway: channels, tokens, prices, and the app's settings.

mod channels;
mod groups;
mod price_presets;
mod prices;
mod settings;
mod tokens;

pub use channels::Channels;
pub use groups::Groups;
pub use prices::Prices;
pub use settings::Settings;
pub use tokens::Tokens;
