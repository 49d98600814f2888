//! The gateway's configuration services — channels, tokens, prices, account, logs and usage —
//! implemented over the SQLite store, with validation and change notification for the router.

mod presets;
pub mod retention;

use std::sync::{Arc, RwLock};

use burncloud_database::repo::{account, channels, groups, logs, prices, settings, tokens};
use burncloud_database::{now_ms, token_key_hash, ChannelRecord, Db, TokenRecord};
use burncloud_service_api::{
    Account, AccountPatch, AccountService, Channel, ChannelInput, ChannelPatch, ChannelService, CreatedToken, Group,
    GroupInput, GroupPatch, GroupService, LogPage, LogQuery, LogService, Money, PresetSelection, Price, PriceInput,
    PricePreset, PriceService, ServiceError, ServiceResult, SettingsService, Token, TokenInput, TokenPatch,
    TokenService, UsageQuery, UsageReport, DEFAULT_GROUP,
};

/// Called after every change that the router's snapshot depends on.
pub type ChangeListener = Box<dyn Fn() + Send + Sync>;

/// Every configuration service over one database.
pub struct GatewayStore {
    db: Arc<Db>,
    /// This machine's own store, for the settings about its local models: the same as `db` unless
    /// `db` is a team's shared PostgreSQL.
    local: Arc<Db>,
    listeners: RwLock<Vec<ChangeListener>>,
}

pub const TOKEN_KEY_PREFIX: &str = "sk-bc-";
const TOKEN_SECRET_LEN: usize = 48;
const VISIBLE_PREFIX_LEN: usize = 12;

impl GatewayStore {
    pub fn new(db: Arc<Db>) -> GatewayStore {
        GatewayStore { local: db.clone(), db, listeners: RwLock::new(Vec::new()) }
    }

    /// Over a team's shared store `db`, with `local` keeping this machine's own settings.
    pub fn with_local(db: Arc<Db>, local: Arc<Db>) -> GatewayStore {
        GatewayStore { db, local, listeners: RwLock::new(Vec::new()) }
    }

    /// Where setting `key` lives.
    fn settings_db(&self, key: &str) -> &Arc<Db> {
        if burncloud_service_api::MACHINE_SETTINGS.contains(&key) {
            &self.local
        } else {
            &self.db
        }
    }

    pub fn db(&self) -> &Arc<Db> {
        &self.db
    }

    /// A channel with its key, for the data plane's channel test.
    pub fn channel_record(&self, id: i64) -> ServiceResult<ChannelRecord> {
        self.db.read(|c| channels::get(c, self.db.vault(), id))?.ok_or_else(|| not_found("channel", id))
    }

    /// Registers `listener` to run after each configuration change.
    pub fn on_change(&self, listener: ChangeListener) {
        self.listeners.write().unwrap_or_else(|p| p.into_inner()).push(listener);
    }

    fn changed(&self) {
        for listener in self.listeners.read().unwrap_or_else(|p| p.into_inner()).iter() {
            listener();
        }
    }
}

fn not_found(what: &str, id: impl std::fmt::Display) -> ServiceError {
    ServiceError::NotFound(format!("{what} {id} does not exist"))
}

fn clean_models(models: Vec<String>) -> ServiceResult<Vec<String>> {
    let mut cleaned: Vec<String> = Vec::with_capacity(models.len());
    for model in models {
        let model = model.trim().to_string();
        if model.is_empty() {
            return Err(ServiceError::invalid("model names must not be empty"));
        }
        if !cleaned.contains(&model) {
            cleaned.push(model);
        }
    }
    Ok(cleaned)
}

fn required_name(name: &str, what: &str) -> ServiceResult<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(ServiceError::invalid(format!("{what} name must not be empty")));
    }
    Ok(name.to_string())
}

/// Checks a channel as it would be saved and normalises its base URL.
fn validate_channel(mut record: ChannelRecord) -> ServiceResult<ChannelRecord> {
    let channel = &mut record.channel;
    channel.name = required_name(&channel.name, "channel")?;
    channel.base_url = match channel.base_url.take().map(|url| url.trim().trim_end_matches('/').to_string()) {
        Some(url) if url.is_empty() => None,
        Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => {
            return Err(ServiceError::invalid(format!("base_url {url:?} must start with http:// or https://")))
        }
        other => other,
    };
    if channel.base_url.is_none() && channel.kind.default_base_url().is_none() {
        return Err(ServiceError::invalid(format!(
            "a channel of kind {} needs a base_url (for example http://127.0.0.1:8080/v1)",
            channel.kind.as_str()
        )));
    }
    channel.models = clean_models(std::mem::take(&mut channel.models))?;
    if channel.weight < 0 {
        return Err(ServiceError::invalid("weight must be 0 or more"));
    }
    if channel.model_mapping.iter().any(|(from, to)| from.trim().is_empty() || to.trim().is_empty()) {
        return Err(ServiceError::invalid("model_mapping names must not be empty"));
    }
    Ok(record)
}

impl ChannelService for GatewayStore {
    fn list_channels(&self) -> ServiceResult<Vec<Channel>> {
        Ok(self.db.read(|c| channels::list(c, self.db.vault()))?.into_iter().map(|record| record.channel).collect())
    }

    fn get_channel(&self, id: i64) -> ServiceResult<Channel> {
        self.db
            .read(|c| channels::get(c, self.db.vault(), id))?
            .map(|record| record.channel)
            .ok_or_else(|| not_found("channel", id))
    }

    fn create_channel(&self, input: ChannelInput) -> ServiceResult<Channel> {
        let record = validate_channel(ChannelRecord {
            channel: Channel {
                id: 0,
                name: input.name,
                kind: input.kind,
                base_url: input.base_url,
                key_hint: String::new(),
                models: input.models,
                model_mapping: input.model_mapping,
                priority: input.priority,
                weight: input.weight,
                enabled: input.enabled,
                native_responses: input.native_responses,
                created_at_ms: 0,
                updated_at_ms: 0,
            },
            api_key: input.api_key,
        })?;
        let id = self.db.write(|c| channels::insert(c, self.db.vault(), &record, now_ms()))?;
        self.changed();
        self.get_channel(id)
    }

    fn update_channel(&self, id: i64, patch: ChannelPatch) -> ServiceResult<Channel> {
        let mut record =
            self.db.read(|c| channels::get(c, self.db.vault(), id))?.ok_or_else(|| not_found("channel", id))?;
        let channel = &mut record.channel;
        if let Some(name) = patch.name {
            channel.name = name;
        }
        if let Some(kind) = patch.kind {
            channel.kind = kind;
        }
        if let Some(base_url) = patch.base_url {
            channel.base_url = base_url;
        }
        if let Some(models) = patch.models {
            channel.models = models;
        }
        if let Some(mapping) = patch.model_mapping {
            channel.model_mapping = mapping;
        }
        if let Some(priority) = patch.priority {
            channel.priority = priority;
        }
        if let Some(weight) = patch.weight {
            channel.weight = weight;
        }
        if let Some(enabled) = patch.enabled {
            channel.enabled = enabled;
        }
        if let Some(native) = patch.native_responses {
            channel.native_responses = native;
        }
        if let Some(api_key) = patch.api_key {
            record.api_key = api_key;
        }
        let record = validate_channel(record)?;
        if !self.db.write(|c| channels::update(c, self.db.vault(), &record, now_ms()))? {
            return Err(not_found("channel", id));
        }
        self.changed();
        self.get_channel(id)
    }

    fn delete_channel(&self, id: i64) -> ServiceResult<()> {
        if !self.db.write(|c| channels::delete(c, id))? {
            return Err(not_found("channel", id));
        }
        self.changed();
        Ok(())
    }
}

/// A fresh gateway key: `sk-bc-` and 48 random alphanumerics (about 285 bits).
fn generate_token_key() -> ServiceResult<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut key = String::from(TOKEN_KEY_PREFIX);
    while key.len() < TOKEN_KEY_PREFIX.len() + TOKEN_SECRET_LEN {
        let mut bytes = [0u8; 64];
        getrandom::fill(&mut bytes).map_err(|e| ServiceError::Storage(format!("no randomness: {e}")))?;
        // Rejection sampling keeps every character equally likely.
        for byte in bytes {
            if (byte as usize) < ALPHABET.len() * 4 && key.len() < TOKEN_KEY_PREFIX.len() + TOKEN_SECRET_LEN {
                key.push(ALPHABET[byte as usize % ALPHABET.len()] as char);
            }
        }
    }
    Ok(key)
}

fn validate_token(db: &Db, mut token: Token) -> ServiceResult<Token> {
    token.name = required_name(&token.name, "token")?;
    token.group = token.group.trim().to_string();
    if token.group.is_empty() {
        return Err(ServiceError::invalid("group must not be empty"));
    }
    if db.read(|c| groups::id_by_name(c, &token.group))?.is_none() {
        return Err(ServiceError::invalid(format!("group {:?} does not exist; create it first", token.group)));
    }
    if token.quota_limit.is_some_and(|limit| limit < Money::ZERO) {
        return Err(ServiceError::invalid("quota_limit must not be negative"));
    }
    if token.rpm_limit.is_some_and(|limit| limit < 1) || token.tpm_limit.is_some_and(|limit| limit < 1) {
        return Err(ServiceError::invalid("rpm_limit and tpm_limit must be at least 1, or null for none"));
    }
    token.models = clean_models(token.models)?;
    Ok(token)
}

impl TokenService for GatewayStore {
    fn list_tokens(&self) -> ServiceResult<Vec<Token>> {
        Ok(self.db.read(tokens::list)?.into_iter().map(|record| record.token).collect())
    }

    fn get_token(&self, id: i64) -> ServiceResult<Token> {
        self.db.read(|c| tokens::get(c, id))?.map(|record| record.token).ok_or_else(|| not_found("token", id))
    }

    fn create_token(&self, input: TokenInput) -> ServiceResult<CreatedToken> {
        let key = generate_token_key()?;
        let token = validate_token(
            &self.db,
            Token {
                id: 0,
                name: input.name,
                key_prefix: key[..VISIBLE_PREFIX_LEN].to_string(),
                group: input.group,
                quota_limit: input.quota_limit,
                used_quota: Money::ZERO,
                rpm_limit: input.rpm_limit,
                tpm_limit: input.tpm_limit,
                expires_at_ms: input.expires_at_ms,
                models: input.models,
                enabled: input.enabled,
                created_at_ms: 0,
                updated_at_ms: 0,
                keyless_local: false,
            },
        )?;
        let record = TokenRecord { token, key_hash: token_key_hash(&key) };
        let id = self.db.write(|c| tokens::insert(c, &record, now_ms()))?;
        self.changed();
        Ok(CreatedToken { token: self.get_token(id)?, key })
    }

    fn update_token(&self, id: i64, patch: TokenPatch) -> ServiceResult<Token> {
        let mut token = self.get_token(id)?;
        if let Some(name) = patch.name {
            token.name = name;
        }
        if let Some(group) = patch.group {
            token.group = group;
        }
        if let Some(limit) = patch.quota_limit {
            token.quota_limit = limit;
        }
        if let Some(limit) = patch.rpm_limit {
            token.rpm_limit = limit;
        }
        if let Some(limit) = patch.tpm_limit {
            token.tpm_limit = limit;
        }
        if let Some(expires) = patch.expires_at_ms {
            token.expires_at_ms = expires;
        }
        if let Some(models) = patch.models {
            token.models = models;
        }
        if let Some(enabled) = patch.enabled {
            token.enabled = enabled;
        }
        if let Some(keyless_local) = patch.keyless_local {
            token.keyless_local = keyless_local;
        }
        let token = validate_token(&self.db, token)?;
        if !self.db.write(|c| tokens::update(c, &token, now_ms()))? {
            return Err(not_found("token", id));
        }
        self.changed();
        self.get_token(id)
    }

    fn delete_token(&self, id: i64) -> ServiceResult<()> {
        if !self.db.write(|c| tokens::delete(c, id))? {
            return Err(not_found("token", id));
        }
        self.changed();
        Ok(())
    }
}

impl PriceService for GatewayStore {
    fn list_prices(&self) -> ServiceResult<Vec<Price>> {
        Ok(self.db.read(prices::list)?)
    }

    fn set_price(&self, model: &str, mut input: PriceInput) -> ServiceResult<Price> {
        let model = model.trim();
        if model.is_empty() {
            return Err(ServiceError::invalid("model must not be empty"));
        }
        input.check().map_err(ServiceError::invalid)?;
        let price = input.priced(model);
        self.db.write(|c| prices::upsert(c, &price, now_ms()))?;
        self.changed();
        Ok(price)
    }

    fn delete_price(&self, model: &str) -> ServiceResult<()> {
        if !self.db.write(|c| prices::delete(c, model))? {
            return Err(not_found("price for model", model));
        }
        self.changed();
        Ok(())
    }

    fn price_presets(&self) -> ServiceResult<Vec<PricePreset>> {
        Ok(presets::catalog()?.to_vec())
    }

    fn apply_price_presets(&self, selection: PresetSelection) -> ServiceResult<Vec<Price>> {
        let currency = self.account()?.currency;
        let chosen = presets::choose(presets::catalog()?, &selection.models, currency)?;
        let now = now_ms();
        let prices: Vec<Price> = chosen.iter().map(|preset| preset.price.clone().priced(&preset.model)).collect();
        self.db.write(|c| prices::upsert_all(c, &prices, now))?;
        self.changed();
        Ok(prices)
    }
}

impl AccountService for GatewayStore {
    fn account(&self) -> ServiceResult<Account> {
        Ok(self.db.read(account::get)?.to_account())
    }

    fn top_up(&self, amount: Money) -> ServiceResult<Account> {
        if amount <= Money::ZERO {
            return Err(ServiceError::invalid("amount must be more than 0"));
        }
        let updated = self.db.write(|c| {
            let current = account::get(c)?;
            // Topping up an unlimited account starts a balance of exactly `amount`.
            let credit = current.credit.unwrap_or(current.used).saturating_add(amount);
            account::set_credit(c, Some(credit))?;
            account::get(c)
        })?;
        self.changed();
        Ok(updated.to_account())
    }

    fn update_account(&self, patch: AccountPatch) -> ServiceResult<Account> {
        let updated = self.db.write(|c| {
            if let Some(currency) = patch.currency {
                account::set_currency(c, currency)?;
            }
            if let Some(balance) = patch.balance {
                let used = account::get(c)?.used;
                account::set_credit(c, balance.map(|b| used.saturating_add(b)))?;
            }
            account::get(c)
        })?;
        self.changed();
        Ok(updated.to_account())
    }
}

impl LogService for GatewayStore {
    fn query_logs(&self, query: &LogQuery) -> ServiceResult<LogPage> {
        burncloud_service_api::check_time_range(query.since_ms, query.until_ms)?;
        Ok(self.db.read(|c| logs::query(c, query))?)
    }

    fn usage(&self, query: &UsageQuery) -> ServiceResult<UsageReport> {
        burncloud_service_api::check_time_range(query.since_ms, query.until_ms)?;
        Ok(self.db.read(|c| logs::usage(c, query))?)
    }
}

/// Checks a group as it would be saved: a name, known channels once each, weights of 0 or more.
fn validate_group(db: &Db, mut group: Group) -> ServiceResult<Group> {
    group.name = required_name(&group.name, "group")?;
    let known = db.read(channels::ids)?;
    for (index, member) in group.members.iter().enumerate() {
        if !known.contains(&member.channel_id) {
            return Err(ServiceError::invalid(format!("channel {} does not exist", member.channel_id)));
        }
        if group.members[..index].iter().any(|m| m.channel_id == member.channel_id) {
            return Err(ServiceError::invalid(format!("channel {} is listed twice", member.channel_id)));
        }
        if member.weight < 0 {
            return Err(ServiceError::invalid("member weights must be 0 or more"));
        }
    }
    Ok(group)
}

fn name_taken(db: &Db, name: &str, except: Option<i64>) -> ServiceResult<()> {
    match db.read(|c| groups::id_by_name(c, name))? {
        Some(id) if Some(id) != except => Err(ServiceError::Conflict(format!("a group named {name:?} exists already"))),
        _ => Ok(()),
    }
}

impl GroupService for GatewayStore {
    fn list_groups(&self) -> ServiceResult<Vec<Group>> {
        Ok(self.db.read(groups::list)?)
    }

    fn get_group(&self, id: i64) -> ServiceResult<Group> {
        self.db.read(|c| groups::get(c, id))?.ok_or_else(|| not_found("group", id))
    }

    fn create_group(&self, input: GroupInput) -> ServiceResult<Group> {
        let group = validate_group(
            &self.db,
            Group {
                id: 0,
                name: input.name,
                strategy: input.strategy,
                members: input.members,
                created_at_ms: 0,
                updated_at_ms: 0,
            },
        )?;
        name_taken(&self.db, &group.name, None)?;
        let id = self.db.write(|c| groups::insert(c, &group, now_ms()))?;
        self.changed();
        self.get_group(id)
    }

    fn update_group(&self, id: i64, patch: GroupPatch) -> ServiceResult<Group> {
        let mut group = self.get_group(id)?;
        if let Some(name) = patch.name {
            if group.name == DEFAULT_GROUP && name.trim() != DEFAULT_GROUP {
                return Err(ServiceError::invalid("the default group cannot be renamed"));
            }
            group.name = name;
        }
        if let Some(strategy) = patch.strategy {
            group.strategy = strategy;
        }
        if let Some(members) = patch.members {
            group.members = members;
        }
        let group = validate_group(&self.db, group)?;
        name_taken(&self.db, &group.name, Some(id))?;
        if !self.db.write(|c| groups::update(c, &group, now_ms()))? {
            return Err(not_found("group", id));
        }
        self.changed();
        self.get_group(id)
    }

    fn delete_group(&self, id: i64) -> ServiceResult<()> {
        let group = self.get_group(id)?;
        if group.name == DEFAULT_GROUP {
            return Err(ServiceError::invalid("the default group cannot be deleted"));
        }
        let in_use = self.db.read(tokens::list)?.iter().filter(|t| t.token.group == group.name).count();
        if in_use > 0 {
            return Err(ServiceError::Conflict(format!(
                "{in_use} token(s) use group {:?}; move them first",
                group.name
            )));
        }
        self.db.write(|c| groups::delete(c, id))?;
        self.changed();
        Ok(())
    }
}

impl SettingsService for GatewayStore {
    fn get_setting(&self, key: &str) -> ServiceResult<Option<String>> {
        let db = self.settings_db(key);
        Ok(db.read(|c| settings::get(c, db.vault(), key))?)
    }

    fn set_setting(&self, key: &str, value: &str) -> ServiceResult<()> {
        if key.trim().is_empty() {
            return Err(ServiceError::invalid("setting key must not be empty"));
        }
        let db = self.settings_db(key);
        Ok(db.write(|c| settings::set(c, db.vault(), key, value))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burncloud_service_api::ChannelKind;

    fn store() -> (tempfile::TempDir, GatewayStore) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("burncloud.db")).unwrap();
        (dir, GatewayStore::new(Arc::new(db)))
    }

    #[test]
    fn settings_about_this_machine_stay_in_its_own_store() {
        let dir = tempfile::tempdir().unwrap();
        let shared = Arc::new(Db::open(dir.path().join("shared").join("burncloud.db")).unwrap());
        let local = Arc::new(Db::open(dir.path().join("local").join("burncloud.db")).unwrap());
        let store = GatewayStore::with_local(shared.clone(), local.clone());
        store.set_setting(burncloud_service_api::LLAMA_RUNTIME_SETTING, "b7412-vulkan").unwrap();
        store.set_setting(burncloud_service_api::LOG_RETENTION_SETTING, "30").unwrap();
        let stored = |db: &Arc<Db>, key: &str| db.read(|c| settings::get(c, db.vault(), key)).unwrap();
        assert_eq!(stored(&local, burncloud_service_api::LLAMA_RUNTIME_SETTING).as_deref(), Some("b7412-vulkan"));
        assert_eq!(stored(&shared, burncloud_service_api::LLAMA_RUNTIME_SETTING), None);
        assert_eq!(stored(&shared, burncloud_service_api::LOG_RETENTION_SETTING).as_deref(), Some("30"));
        assert_eq!(stored(&local, burncloud_service_api::LOG_RETENTION_SETTING), None);
        assert_eq!(
            store.get_setting(burncloud_service_api::LLAMA_RUNTIME_SETTING).unwrap().as_deref(),
            Some("b7412-vulkan")
        );
    }

    /// A token in the default group with no limits.
    fn plain_token(name: &str) -> TokenInput {
        TokenInput {
            name: name.into(),
            group: "default".into(),
            quota_limit: None,
            rpm_limit: None,
            tpm_limit: None,
            expires_at_ms: None,
            models: vec![],
            enabled: true,
        }
    }

    #[test]
    fn token_keys_are_shown_once_and_stored_as_hashes() {
        let (_dir, store) = store();
        let created = store.create_token(plain_token("laptop")).unwrap();
        assert!(created.key.starts_with("sk-bc-") && created.key.len() == 54, "{}", created.key);
        assert!(created.key.starts_with(&created.token.key_prefix));
        let stored: Vec<String> =
            store.db().read(tokens::list).unwrap().into_iter().map(|record| record.key_hash).collect();
        assert_eq!(stored, vec![token_key_hash(&created.key)]);
        assert_ne!(generate_token_key().unwrap(), created.key);
    }

    #[test]
    fn one_token_at_most_takes_keyless_local_calls() {
        let (_dir, store) = store();
        let ids: Vec<i64> =
            ["first", "second"].iter().map(|name| store.create_token(plain_token(name)).unwrap().token.id).collect();
        let keyless = |store: &GatewayStore| -> Vec<String> {
            store.list_tokens().unwrap().into_iter().filter(|t| t.keyless_local).map(|t| t.name).collect()
        };
        assert!(keyless(&store).is_empty(), "none until the user picks one");
        for id in &ids {
            store.update_token(*id, TokenPatch { keyless_local: Some(true), ..TokenPatch::default() }).unwrap();
        }
        assert_eq!(keyless(&store), ["second"]);
        // Other edits leave it where it is.
        store.update_token(ids[1], TokenPatch { name: Some("renamed".into()), ..TokenPatch::default() }).unwrap();
        assert_eq!(keyless(&store), ["renamed"]);
        store.update_token(ids[1], TokenPatch { keyless_local: Some(false), ..TokenPatch::default() }).unwrap();
        assert!(keyless(&store).is_empty());
    }

    #[test]
    fn channels_need_a_reachable_base_url() {
        let (_dir, store) = store();
        let input = |kind, base_url: Option<&str>| ChannelInput {
            name: "c".into(),
            kind,
            base_url: base_url.map(String::from),
            api_key: Default::default(),
            models: vec!["m".into()],
            model_mapping: Default::default(),
            priority: 0,
            weight: 1,
            enabled: true,
            native_responses: true,
        };
        assert!(matches!(store.create_channel(input(ChannelKind::Openai, None)), Err(ServiceError::Invalid(_))));
        assert!(matches!(
            store.create_channel(input(ChannelKind::Openai, Some("ftp://x"))),
            Err(ServiceError::Invalid(_))
        ));
        let deepseek = store.create_channel(input(ChannelKind::Deepseek, None)).unwrap();
        assert_eq!(deepseek.effective_base_url(), Some("https://api.deepseek.com"));
        let custom = store.create_channel(input(ChannelKind::Openai, Some("http://127.0.0.1:9/v1/"))).unwrap();
        assert_eq!(custom.base_url.as_deref(), Some("http://127.0.0.1:9/v1"));
    }

    #[test]
    fn top_up_turns_unlimited_into_a_balance() {
        let (_dir, store) = store();
        assert_eq!(store.account().unwrap().balance, None);
        let account = store.top_up(Money::parse("10").unwrap()).unwrap();
        assert_eq!(account.balance, Some(Money::parse("10").unwrap()));
        let account = store.top_up(Money::parse("2.5").unwrap()).unwrap();
        assert_eq!(account.balance, Some(Money::parse("12.5").unwrap()));
        assert!(store.top_up(Money::ZERO).is_err());
        let account = store.update_account(AccountPatch { currency: None, balance: Some(None) }).unwrap();
        assert_eq!(account.balance, None);
    }
}
