//! The Playground page rendered against the real services: with no model it says how to get one;
//! with a cloud channel and a local deployment (not loaded) it offers both, in both languages.
#![allow(clippy::unwrap_used, reason = "in a test a failed unwrap is the failure report")]

use burncloud_client::testing::PageUnderTest;
use burncloud_client::{AppInfo, Lang, Services};
use burncloud_client_playground::Playground;
use burncloud_server::{AppState, RouterConfig};
use burncloud_service_api::{ChannelInput, ChannelKind, ChannelService, Secret};

fn services_of(state: &AppState) -> Services {
    let info = AppInfo { version: "0.1.0".into(), listen: "127.0.0.1:3000".into(), data_dir: "/tmp/bc".into() };
    Services::from_store(
        state.store.clone(),
        state.monitor.clone(),
        state.admin_keys.clone(),
        state.models.clone(),
        state.inference.clone(),
        state.playground.clone(),
        info,
    )
}

#[tokio::test]
async fn the_page_offers_every_model_the_gateway_serves_in_both_languages() {
    let dir = tempfile::tempdir().unwrap();
    let state = AppState::open(dir.path(), RouterConfig::default()).unwrap();
    let services = services_of(&state);
    let empty = PageUnderTest::open(services.clone(), Lang::En, Playground).await.text();
    assert!(empty.contains("No model yet: add a channel or deploy a local model first."), "{empty}");

    state
        .store
        .create_channel(ChannelInput {
            name: "deepseek".into(),
            kind: ChannelKind::Deepseek,
            base_url: None,
            api_key: Secret::new("sk-test"),
            models: vec!["deepseek-chat".into(), "deepseek-reasoner".into()],
            model_mapping: Default::default(),
            priority: 0,
            weight: 1,
            enabled: true,
            native_responses: false,
        })
        .unwrap();
    let page = PageUnderTest::open(services.clone(), Lang::En, Playground).await;
    let html = page.html();
    assert!(html.contains("deepseek-chat (deepseek)") && html.contains("deepseek-reasoner (deepseek)"), "{html}");
    let text = page.text();
    assert!(text.contains("Send a message to start") && text.contains("Playground token"), "{text}");
    assert!(text.contains("System prompt") && text.contains("Max tokens"), "{text}");
    let chinese = PageUnderTest::open(services, Lang::Zh, Playground).await.text();
    assert!(chinese.contains("系统提示词") && chinese.contains("发送"), "{chinese}");
}
