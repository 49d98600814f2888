//! The dashboard and log pages rendered against the real services over a temp SQLite file.
#![allow(clippy::unwrap_used, reason = "in a test a failed unwrap is the failure report")]

use std::sync::Arc;

use burncloud_client::testing::PageUnderTest;
use burncloud_client::{AppInfo, Lang, Services};
use burncloud_client_dashboard::{Dashboard, Logs};
use burncloud_database::repo::logs::insert_batch;
use burncloud_database::{now_ms, NewLogRow};
use burncloud_server::{AppState, RouterConfig};
use burncloud_service_api::{EndReason, Money, TokenInput, TokenService, UsageSource};
use burncloud_service_gateway::GatewayStore;

struct Fixture {
    _dir: tempfile::TempDir,
    state: AppState,
    store: Arc<GatewayStore>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let state = AppState::open(dir.path(), RouterConfig::default()).unwrap();
        Fixture { _dir: dir, store: state.store.clone(), state }
    }

    fn services(&self) -> Services {
        let info = AppInfo { version: "0.1.0".into(), listen: "127.0.0.1:3000".into(), data_dir: "/tmp/bc".into() };
        Services::from_store(
            self.store.clone(),
            self.state.monitor.clone(),
            self.state.admin_keys.clone(),
            self.state.models.clone(),
            self.state.inference.clone(),
            self.state.playground.clone(),
            info,
        )
    }

    /// Stores calls the way the log writer does, charging their cost.
    fn log_calls(&self, calls: &[(&str, u16, &str)]) {
        let token = self
            .store
            .create_token(TokenInput {
                name: "alice".into(),
                group: "default".into(),
                quota_limit: None,
                rpm_limit: None,
                tpm_limit: None,
                expires_at_ms: None,
                models: vec![],
                enabled: true,
            })
            .unwrap()
            .token;
        let rows: Vec<NewLogRow> = calls
            .iter()
            .enumerate()
            .map(|(i, (model, status, cost))| NewLogRow {
                request_id: format!("req-{i}"),
                created_at_ms: now_ms() - 1000 + i as i64,
                token_id: Some(token.id),
                token_name: Some(token.name.clone()),
                channel_id: Some(1),
                channel_name: Some("mock".into()),
                endpoint: "/v1/chat/completions".into(),
                model: model.to_string(),
                upstream_model: Some(model.to_string()),
                is_stream: false,
                status: *status,
                error: (*status != 200).then(|| "upstream said no".to_string()),
                prompt_tokens: 1000,
                completion_tokens: 500,
                cached_tokens: 600,
                cache_write_tokens: 0,
                cache_write_1h_tokens: 0,
                reasoning_tokens: 0,
                images: 0,
                audio_ms: 0,
                characters: 0,
                usage_source: UsageSource::Upstream,
                cost: Money::parse(cost).unwrap(),
                priced: true,
                latency_ms: 420,
                first_token_ms: Some(120),
                end_reason: if *status == 200 { EndReason::Completed } else { EndReason::UpstreamError },
                attempts: 1,
            })
            .collect();
        self.store.db().write(|c| insert_batch(c, &rows)).unwrap();
    }
}

#[tokio::test]
async fn an_empty_dashboard_says_what_to_do_next_in_both_languages() {
    let fixture = Fixture::new();
    let english = PageUnderTest::open(fixture.services(), Lang::En, Dashboard).await.text();
    assert!(english.contains("Balance Unlimited"), "{english}");
    assert!(english.contains("No calls yet"), "{english}");
    assert!(english.contains("Add a channel, create a token"), "{english}");
    let chinese = PageUnderTest::open(fixture.services(), Lang::Zh, Dashboard).await.text();
    assert!(chinese.contains("余额 不限"), "{chinese}");
    assert!(chinese.contains("还没有调用"), "{chinese}");
    assert!(!chinese.contains("No calls yet"));
}

#[tokio::test]
async fn the_dashboard_sums_spend_and_lists_recent_calls() {
    let fixture = Fixture::new();
    fixture.log_calls(&[("gpt-4o-mini", 200, "0.25"), ("deepseek-chat", 200, "1.5"), ("gpt-4o-mini", 502, "0")]);
    let page = PageUnderTest::open(fixture.services(), Lang::En, Dashboard).await;
    let text = page.text();
    assert!(text.contains("Spent in total: $1.75"), "{text}");
    assert!(text.contains("Today $1.75 3 requests · 4,500 tokens"), "{text}");
    assert!(text.contains("Last 30 days $1.75 3 requests"), "{text}");
    assert!(text.contains("60% of prompt tokens from cache"), "the cache hit rate is shown: {text}");
    // Cost by model ranks the dearest first.
    let deepseek = text.find("deepseek-chat $1.5").expect("deepseek ranked");
    let mini = text.find("gpt-4o-mini $0.25").expect("gpt-4o-mini ranked");
    assert!(deepseek < mini, "{text}");
    let html = page.html();
    assert_eq!(html.matches("<tr").count() - 1, 3, "three recent calls and a header row");
    assert!(html.contains("badge bad") && html.contains(">502<"), "the failed call is marked");
    assert!(html.contains("<svg class=\"chart\""), "the usage chart is drawn");
    assert_eq!(html.matches("class=\"bar\"").count(), 30, "one bar a day for 30 days");
}

#[tokio::test]
async fn an_empty_log_says_how_calls_get_there() {
    let fixture = Fixture::new();
    let text = PageUnderTest::open(fixture.services(), Lang::En, Logs).await.text();
    assert!(text.contains("No calls yet") && text.contains("point any OpenAI client at the endpoint"), "{text}");
    assert!(!text.contains("match these filters"), "no filter is set: {text}");
}

#[tokio::test]
async fn the_log_page_pages_through_calls_newest_first() {
    let fixture = Fixture::new();
    let calls: Vec<(&str, u16, &str)> =
        (0..60).map(|i| (if i == 59 { "newest-model" } else { "gpt-4o-mini" }, 200, "0.01")).collect();
    fixture.log_calls(&calls);
    let page = PageUnderTest::open(fixture.services(), Lang::En, Logs).await;
    let html = page.html();
    assert_eq!(html.matches("class=\"clickable\"").count(), 50, "one page holds 50 calls");
    let text = page.text();
    let first_row = text.find("newest-model").expect("newest call shown");
    assert!(first_row < text.find("gpt-4o-mini").unwrap(), "newest first: {text}");
    assert!(text.contains("1,000 / 500") && text.contains("420 ms") && text.contains("$0.01"), "{text}");
    assert!(text.contains("(600 ⚡)"), "cached prompt tokens show in the row: {text}");
    assert!(html.contains(">Older</button>") && !html.contains("disabled=true>Older"), "{html}");
    let chinese = PageUnderTest::open(fixture.services(), Lang::Zh, Logs).await.text();
    assert!(chinese.contains("调用日志") && chinese.contains("更早"), "{chinese}");
}
