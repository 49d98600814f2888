//! Loads everything the router's in-memory snapshot is built from, in one read transaction.

use crate::engine::Begin;
use crate::Conn;
use burncloud_service_api::{Group, Price};

pub use super::account::AccountRecord;
pub use super::channels::ChannelRecord;
pub use super::tokens::TokenRecord;
use crate::DbResult;

/// The gateway's whole configuration at one instant.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    pub channels: Vec<ChannelRecord>,
    pub tokens: Vec<TokenRecord>,
    pub prices: Vec<Price>,
    pub groups: Vec<Group>,
    pub account: AccountRecord,
}

pub fn load(connection: &Conn, vault: &crate::vault::Vault) -> DbResult<GatewayConfig> {
    connection.engine().transaction(Begin::Read, |_| {
        Ok(GatewayConfig {
            channels: super::channels::list(connection, vault)?,
            tokens: super::tokens::list(connection)?,
            prices: super::prices::list(connection)?,
            groups: super::groups::list(connection)?,
            account: super::account::get(connection)?,
        })
    })
}
