//! The management pages rendered against the real services over a temp SQLite file.
#![allow(clippy::unwrap_used, reason = "in a test a failed unwrap is the failure report")]

use std::sync::Arc;

use burncloud_client::testing::PageUnderTest;
use burncloud_client::{AppInfo, Lang, Services};
use burncloud_client_settings::{Channels, Groups, Prices, Settings, Tokens};
use burncloud_server::{AppState, RouterConfig};
use burncloud_service_api::{
    AccountPatch, AccountService, ChannelInput, ChannelKind, ChannelService, Currency, GroupInput, GroupMember,
    GroupService, Money, PresetSelection, PriceInput, PriceService, Secret, Strategy, TokenInput, TokenService,
};
use burncloud_service_gateway::GatewayStore;

fn fixture() -> (tempfile::TempDir, Arc<GatewayStore>, Services) {
    let dir = tempfile::tempdir().unwrap();
    let state = AppState::open(dir.path(), RouterConfig::default()).unwrap();
    let store = state.store.clone();
    let info = AppInfo {
        version: "0.1.0".into(),
        listen: "127.0.0.1:3000".into(),
        data_dir: "/home/me/.local/share/BurnCloud".into(),
    };
    let services = Services::from_store(
        store.clone(),
        state.monitor.clone(),
        state.admin_keys.clone(),
        state.models.clone(),
        state.inference.clone(),
        state.playground.clone(),
        info,
    );
    (dir, store, services)
}

#[tokio::test]
async fn channels_list_shows_hints_never_keys() {
    let (_dir, store, services) = fixture();
    let empty = PageUnderTest::open(services.clone(), Lang::En, Channels).await.text();
    assert!(empty.contains("No channels yet") && empty.contains("Add channel"), "{empty}");
    store
        .create_channel(ChannelInput {
            name: "DeepSeek main".into(),
            kind: ChannelKind::Deepseek,
            base_url: None,
            api_key: Secret::new("sk-deepseek-private-9f3a"),
            models: vec!["deepseek-chat".into()],
            model_mapping: [("gpt-4o".to_string(), "deepseek-chat".to_string())].into(),
            priority: 5,
            weight: 2,
            enabled: true,
            native_responses: true,
        })
        .unwrap();
    let page = PageUnderTest::open(services.clone(), Lang::En, Channels).await;
    let text = page.text();
    assert!(text.contains("DeepSeek main DeepSeek deepseek-chat, gpt-4o 5 2 sk-…9f3a Enabled"), "{text}");
    assert!(!page.html().contains("sk-deepseek-private-9f3a"));
    let chinese = PageUnderTest::open(services, Lang::Zh, Channels).await.text();
    assert!(
        chinese.contains("DeepSeek 深度求索") && chinese.contains("已启用") && chinese.contains("添加渠道"),
        "{chinese}"
    );
}

#[tokio::test]
async fn tokens_show_prefix_limits_and_spend() {
    let (_dir, store, services) = fixture();
    let empty = PageUnderTest::open(services.clone(), Lang::En, Tokens).await.text();
    assert!(empty.contains("No tokens yet"), "{empty}");
    let created = store
        .create_token(TokenInput {
            name: "laptop".into(),
            group: "default".into(),
            quota_limit: Some(Money::parse("5").unwrap()),
            rpm_limit: Some(60),
            tpm_limit: None,
            expires_at_ms: None,
            models: vec!["gpt-4o-mini".into()],
            enabled: true,
        })
        .unwrap();
    let page = PageUnderTest::open(services, Lang::En, Tokens).await;
    let text = page.text();
    assert!(
        text.contains(&format!("laptop {}… default $0 $5 60 Never gpt-4o-mini Enabled", created.token.key_prefix)),
        "{text}"
    );
    assert!(!page.html().contains(&created.key), "the full key is never shown again");
}

#[tokio::test]
async fn prices_are_listed_per_model() {
    let (_dir, store, services) = fixture();
    let empty = PageUnderTest::open(services.clone(), Lang::En, Prices).await.text();
    assert!(empty.contains("No prices yet"), "{empty}");
    store
        .set_price(
            "gpt-4o-mini",
            PriceInput {
                input_per_mtok: Money::parse("0.15").unwrap(),
                output_per_mtok: Money::parse("0.6").unwrap(),
                cache_read_per_mtok: Some(Money::parse("0.075").unwrap()),
                ..PriceInput::default()
            },
        )
        .unwrap();
    store
        .set_price(
            "whisper-1",
            PriceInput {
                per_audio_second: Some(Money::parse("0.0001").unwrap()),
                per_million_characters: Some(Money::parse("15").unwrap()),
                ..PriceInput::default()
            },
        )
        .unwrap();
    let text = PageUnderTest::open(services.clone(), Lang::Zh, Prices).await.text();
    assert!(text.contains("gpt-4o-mini 0.15 0.6"), "{text}");
    assert!(text.contains("输入 / 百万 tokens"), "{text}");
    let text = PageUnderTest::open(services, Lang::En, Prices).await.text();
    assert!(text.contains("Per unit"), "{text}");
    assert!(text.contains("whisper-1 0 0 as input as input 0.0001 / s · 15 / 1M chars"), "{text}");
}

#[tokio::test]
async fn published_prices_show_their_rates_schedule_and_the_day_checked() {
    let (_dir, store, services) = fixture();
    let text = PageUnderTest::open(services.clone(), Lang::En, Prices).await.text();
    assert!(text.contains("Published prices"), "{text}");
    assert!(
        text.contains(
            "deepseek-flash 0.15 0.6 0.003 peak 01:00-04:00, 06:00-10:00 UTC Mon–Fri: 0.3 / 1.2 2026-12-06 Use"
        ),
        "{text}"
    );
    assert!(!text.contains("Cache write / 1M"), "DeepSeek publishes no write price: no empty column: {text}");
    assert!(text.contains("Use all from DeepSeek"), "{text}");
    assert!(!text.contains("no price yet"), "no channel yet, nothing to suggest: {text}");
    let served = |name: &str, models: &[&str], enabled: bool| ChannelInput {
        name: name.into(),
        kind: ChannelKind::Deepseek,
        base_url: None,
        api_key: Secret::new("sk-deepseek"),
        models: models.iter().map(|m| m.to_string()).collect(),
        model_mapping: [("claude-opus-5-5".to_string(), "deepseek-v4-pro".to_string())].into(),
        priority: 0,
        weight: 1,
        enabled,
        native_responses: true,
    };
    store.create_channel(served("main", &["deepseek-flash", "deepseek-v4-pro", "my-finetune"], true)).unwrap();
    store.create_channel(served("spare", &["deepseek-reasoner"], false)).unwrap();
    store.set_price("deepseek-v4-pro", PriceInput { input_per_mtok: Money(1), ..PriceInput::default() }).unwrap();
    let text = PageUnderTest::open(services.clone(), Lang::En, Prices).await.text();
    assert!(
        text.contains("Your channels serve models that have no price yet but a published one: deepseek-flash Use"),
        "only an enabled channel's unpriced, unmapped model with a published price: {text}"
    );
    store.apply_price_presets(PresetSelection { models: vec!["deepseek-flash".into()] }).unwrap();
    let page = PageUnderTest::open(services.clone(), Lang::En, Prices).await;
    let text = page.text();
    assert!(text.contains("2026-12-06 In use"), "applied presets are marked: {text}");
    assert!(!text.contains("no price yet"), "every served model is priced now: {text}");
    assert!(
        page.html().contains("href=\"https://api-docs.deepseek.com/quick_start/pricing\""),
        "the date links to its source"
    );
    assert!(
        text.contains("deepseek-flash 0.15 0.6 0.003 as input peak 01:00-04:00, 06:00-10:00 UTC Mon–Fri: 0.3 / 1.2"),
        "the price list shows the applied peak hours: {text}"
    );
    store.update_account(AccountPatch { currency: Some(Currency::Cny), ..AccountPatch::default() }).unwrap();
    let text = PageUnderTest::open(services, Lang::Zh, Prices).await.text();
    assert!(
        text.contains("官方公布价格") && text.contains("高峰 01:00-04:00, 06:00-10:00 UTC 周一至周五: 2 / 8"),
        "{text}"
    );
}

#[tokio::test]
async fn settings_show_money_paths_and_hide_the_admin_key() {
    let (_dir, store, services) = fixture();
    let page = PageUnderTest::open(services.clone(), Lang::En, Settings).await;
    let text = page.text();
    assert!(text.contains("Balance Unlimited"), "{text}");
    assert!(text.contains("http://127.0.0.1:3000/v1") && text.contains("/home/me/.local/share/BurnCloud"), "{text}");
    let key = services.admin.admin_key();
    assert!(key.starts_with("bc-admin-"));
    assert!(!page.html().contains(&key), "the admin key stays hidden until revealed");
    store.top_up(Money::parse("12.5").unwrap()).unwrap();
    let text = PageUnderTest::open(services, Lang::Zh, Settings).await.text();
    assert!(text.contains("余额 $12.5"), "{text}");
    assert!(text.contains("设为不限额"), "{text}");
}

#[tokio::test]
async fn settings_show_and_keep_the_log_retention() {
    let (_dir, _store, services) = fixture();
    let page = PageUnderTest::open(services.clone(), Lang::En, Settings).await;
    assert!(page.text().contains("Keep call logs forever"), "{}", page.text());
    assert!(page.html().contains(r#"<option value="" selected"#), "forever is chosen by default");
    // The same setting the server's hourly pruning reads.
    services.settings.set_setting(burncloud_service_api::LOG_RETENTION_SETTING, "90").unwrap();
    let page = PageUnderTest::open(services.clone(), Lang::Zh, Settings).await;
    assert!(page.html().contains(r#"<option value="90" selected"#), "{}", page.html());
    assert!(page.text().contains("调用日志保留"), "{}", page.text());
    assert_eq!(burncloud_server::log_retention_days(services.settings.as_ref()), Some(90));
}

#[tokio::test]
async fn groups_show_their_strategy_and_members() {
    let (_dir, store, services) = fixture();
    let page = PageUnderTest::open(services.clone(), Lang::En, Groups).await.text();
    assert!(page.contains("default Priority with failover Every enabled channel (no members yet)"), "{page}");
    let channel = store
        .create_channel(ChannelInput {
            name: "fast".into(),
            kind: ChannelKind::Qwen,
            base_url: None,
            api_key: Secret::new("sk-qwen-0123456789"),
            models: vec!["qwen-plus".into()],
            model_mapping: Default::default(),
            priority: 0,
            weight: 1,
            enabled: true,
            native_responses: true,
        })
        .unwrap();
    store
        .create_group(GroupInput {
            name: "team".into(),
            strategy: Strategy::Weighted,
            members: vec![GroupMember { channel_id: channel.id, weight: 3, priority: 1 }],
        })
        .unwrap();
    let page = PageUnderTest::open(services.clone(), Lang::Zh, Groups).await.text();
    assert!(page.contains("team 按权重 fast (w3 p1)"), "{page}");
    let channels = PageUnderTest::open(services, Lang::En, Channels).await.text();
    assert!(channels.contains("Enabled healthy"), "breaker state shows beside each channel: {channels}");
}
