//! The repositories of the shared tables answer alike on both stores: every scenario here runs on
//! a fresh SQLite file and on a fresh database in a real PostgreSQL cluster.

use std::sync::atomic::{AtomicUsize, Ordering};

use burncloud_database::repo::{account, channels, config, groups, logs, prices, responses, settings, tokens};
use burncloud_database::{ChannelRecord, Db, DbError, NewLogRow, TokenRecord};
use burncloud_service_api::{
    Channel, ChannelKind, Currency, EndReason, Group, GroupMember, LogQuery, Money, PeakHours, Price, PriceInput,
    PriceTier, Rates, Secret, StatusFilter, Strategy, Token, UsageGroupBy, UsageQuery, UsageSource, DEFAULT_GROUP,
};
use burncloud_tests::postgres::TempPostgres;

/// Runs `scenario` on an SQLite store and, where PostgreSQL is installed, on a PostgreSQL one;
/// a failure names the store.
fn on_both_stores(cluster: &Option<TempPostgres>, scenario: impl Fn(&str, &Db)) {
    static DATABASES: AtomicUsize = AtomicUsize::new(0);
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Db::open(dir.path().join("burncloud.db")).unwrap();
    scenario("sqlite", &sqlite);
    if let Some(cluster) = cluster {
        let name = format!("store_{}", DATABASES.fetch_add(1, Ordering::Relaxed));
        let url = cluster.create_database(&name);
        let keys = tempfile::tempdir().unwrap();
        let postgres = Db::open_postgres(&url, keys.path()).unwrap_or_else(|e| panic!("{e}\n{}", cluster.log()));
        assert!(postgres.is_postgres());
        scenario("postgres", &postgres);
    }
}

fn channel(name: &str, key: &str) -> ChannelRecord {
    ChannelRecord {
        channel: Channel {
            id: 0,
            name: name.to_string(),
            kind: ChannelKind::parse("deepseek").unwrap(),
            base_url: Some("http://127.0.0.1:9/v1".to_string()),
            key_hint: String::new(),
            models: vec!["deepseek-chat".to_string(), "deepseek-reasoner".to_string()],
            model_mapping: [("chat".to_string(), "deepseek-chat".to_string())].into(),
            priority: 3,
            weight: 7,
            enabled: true,
            native_responses: false,
            created_at_ms: 0,
            updated_at_ms: 0,
        },
        api_key: Secret::new(key.to_string()),
    }
}

fn price(model: &str, input: &str, output: &str) -> Price {
    PriceInput {
        input_per_mtok: Money::parse(input).unwrap(),
        output_per_mtok: Money::parse(output).unwrap(),
        ..PriceInput::default()
    }
    .priced(model)
}

fn token(name: &str, hash: &str) -> TokenRecord {
    TokenRecord {
        token: Token {
            id: 0,
            name: name.to_string(),
            key_prefix: "sk-bc-ab".to_string(),
            group: DEFAULT_GROUP.to_string(),
            quota_limit: Some(Money(5_000_000_000)),
            used_quota: Money(0),
            rpm_limit: Some(60),
            tpm_limit: None,
            expires_at_ms: Some(1_900_000_000_000),
            models: vec!["deepseek-chat".to_string()],
            enabled: true,
            created_at_ms: 0,
            updated_at_ms: 0,
            keyless_local: false,
        },
        key_hash: hash.to_string(),
    }
}

#[test]
fn shared_tables_answer_alike_on_sqlite_and_postgresql() {
    let cluster = TempPostgres::start();
    on_both_stores(&cluster, |store, db| {
        // Channels: ids come back, keys are sealed at rest and open again, every field round-trips.
        let first = db.write(|c| channels::insert(c, db.vault(), &channel("one", "sk-one"), 1_000)).unwrap();
        let second = db.write(|c| channels::insert(c, db.vault(), &channel("two", "sk-two"), 2_000)).unwrap();
        assert!(second > first, "{store}");
        let read = db.read(|c| channels::get(c, db.vault(), first)).unwrap().unwrap();
        assert_eq!(read.api_key.expose(), "sk-one", "{store}");
        assert_eq!(read.channel.model_mapping["chat"], "deepseek-chat", "{store}");
        assert_eq!((read.channel.priority, read.channel.weight, read.channel.enabled), (3, 7, true), "{store}");
        assert!(!read.channel.native_responses, "{store}");
        assert_eq!((read.channel.created_at_ms, read.channel.updated_at_ms), (1_000, 1_000), "{store}");
        let mut edited = read.clone();
        edited.channel.enabled = false;
        edited.channel.base_url = None;
        assert!(db.write(|c| channels::update(c, db.vault(), &edited, 3_000)).unwrap(), "{store}");
        let read = db.read(|c| channels::get(c, db.vault(), first)).unwrap().unwrap();
        assert_eq!(
            (read.channel.enabled, read.channel.base_url.clone(), read.channel.updated_at_ms),
            (false, None, 3_000)
        );
        assert_eq!(db.read(channels::ids).unwrap(), vec![first, second], "{store}");
        assert!(db.read(|c| channels::get(c, db.vault(), 999)).unwrap().is_none(), "{store}");

        // Groups: `default` exists from the start; members follow their channel when it is deleted.
        let default_group = db.read(|c| groups::id_by_name(c, DEFAULT_GROUP)).unwrap();
        assert!(default_group.is_some(), "{store}");
        let group = Group {
            id: 0,
            name: "team".to_string(),
            strategy: Strategy::Weighted,
            members: vec![
                GroupMember { channel_id: first, weight: 2, priority: 1 },
                GroupMember { channel_id: second, weight: 5, priority: 0 },
            ],
            created_at_ms: 0,
            updated_at_ms: 0,
        };
        let group_id = db.write(|c| groups::insert(c, &group, 4_000)).unwrap();
        let read = db.read(|c| groups::get(c, group_id)).unwrap().unwrap();
        assert_eq!(read.strategy, Strategy::Weighted, "{store}");
        assert_eq!(read.members, group.members, "{store}");
        assert!(db.write(|c| groups::insert(c, &group, 4_000)).is_err(), "{store}: group names are unique");
        assert!(db.write(|c| channels::delete(c, first)).unwrap(), "{store}");
        let read = db.read(|c| groups::get(c, group_id)).unwrap().unwrap();
        assert_eq!(read.members.iter().map(|m| m.channel_id).collect::<Vec<_>>(), vec![second], "{store}");
        let mut renamed = read.clone();
        renamed.name = "renamed".to_string();
        renamed.members.clear();
        assert!(db.write(|c| groups::update(c, &renamed, 5_000)).unwrap(), "{store}");
        assert!(db.read(|c| groups::get(c, group_id)).unwrap().unwrap().members.is_empty(), "{store}");
        assert!(db.write(|c| groups::delete(c, group_id)).unwrap(), "{store}");
        assert_eq!(db.read(groups::list).unwrap().len(), 1, "{store}");

        // Tokens: one keyless-local token at a time; key hashes are unique.
        let a = db.write(|c| tokens::insert(c, &token("a", "hash-a"), 6_000)).unwrap();
        let b = db.write(|c| tokens::insert(c, &token("b", "hash-b"), 6_000)).unwrap();
        assert!(db.write(|c| tokens::insert(c, &token("c", "hash-a"), 6_000)).is_err(), "{store}");
        for id in [a, b] {
            let mut keyless = db.read(|c| tokens::get(c, id)).unwrap().unwrap().token;
            keyless.keyless_local = true;
            assert!(db.write(|c| tokens::update(c, &keyless, 7_000)).unwrap(), "{store}");
        }
        let listed = db.read(tokens::list).unwrap();
        let flags: Vec<(i64, bool)> = listed.iter().map(|t| (t.token.id, t.token.keyless_local)).collect();
        assert_eq!(flags, vec![(a, false), (b, true)], "{store}");
        let read = &listed[0];
        assert_eq!(read.key_hash, "hash-a", "{store}");
        assert_eq!(
            (read.token.quota_limit, read.token.rpm_limit, read.token.tpm_limit),
            (Some(Money(5_000_000_000)), Some(60), None)
        );
        assert!(db.write(|c| tokens::delete(c, a)).unwrap(), "{store}");
        assert!(!db.write(|c| tokens::delete(c, a)).unwrap(), "{store}");

        // Prices: an upsert replaces every field; unset cache prices stay unset.
        let mut price = price("deepseek-chat", "0.28", "0.42");
        price.cache_read_per_mtok = Some(Money::parse("0.028").unwrap());
        db.write(|c| prices::upsert(c, &price, 8_000)).unwrap();
        price.output_per_mtok = Money::parse("0.5").unwrap();
        price.per_image = Some(Money::parse("0.04").unwrap());
        db.write(|c| prices::upsert(c, &price, 9_000)).unwrap();
        assert_eq!(db.read(prices::list).unwrap(), vec![price.clone()], "{store}");
        assert!(db.write(|c| prices::delete(c, "deepseek-chat")).unwrap(), "{store}");
        db.write(|c| prices::upsert(c, &price, 9_000)).unwrap();
        // Tiers and peak hours are kept whole; several prices set at once land together.
        let rates = |input: &str| Rates {
            input_per_mtok: Money::parse(input).unwrap(),
            output_per_mtok: Money::parse("2").unwrap(),
            cache_read_per_mtok: Some(Money::parse("0.01").unwrap()),
            ..Rates::default()
        };
        let mut tiered = self::price("tiered", "1", "2");
        tiered.tiers = vec![
            PriceTier { above_prompt_tokens: 32_768, rates: rates("4") },
            PriceTier { above_prompt_tokens: 131_072, rates: rates("7") },
        ];
        let mut peaked = self::price("peaked", "1", "2");
        peaked.peak = Some(PeakHours {
            windows_utc: vec!["01:00-04:00".parse().unwrap()],
            weekdays_only: true,
            rates: rates("2"),
        });
        db.write(|c| prices::upsert_all(c, &[tiered.clone(), peaked.clone()], 9_500)).unwrap();
        let listed = db.read(prices::list).unwrap();
        assert_eq!(listed, vec![price.clone(), peaked.clone(), tiered.clone()], "{store}");
        peaked.peak = None;
        db.write(|c| prices::upsert(c, &peaked, 9_600)).unwrap();
        assert_eq!(db.read(prices::list).unwrap()[1].peak, None, "{store}: peak hours removed");
        for model in ["tiered", "peaked"] {
            assert!(db.write(|c| prices::delete(c, model)).unwrap(), "{store}");
        }

        // Settings: secrets are sealed at rest; plain ones are not.
        db.write(|c| settings::set(c, db.vault(), "log_retention_days", "30")).unwrap();
        db.write(|c| settings::set(c, db.vault(), "log_retention_days", "7")).unwrap();
        db.write(|c| settings::set(c, db.vault(), "hub_token.huggingface", "hf_secret")).unwrap();
        assert_eq!(db.read(|c| settings::get(c, db.vault(), "log_retention_days")).unwrap().as_deref(), Some("7"));
        assert_eq!(
            db.read(|c| settings::get(c, db.vault(), "hub_token.huggingface")).unwrap().as_deref(),
            Some("hf_secret")
        );
        assert_eq!(db.read(|c| settings::get(c, db.vault(), "missing")).unwrap(), None, "{store}");

        // The account: unlimited until credit is set.
        let start = db.read(account::get).unwrap();
        assert_eq!((start.currency, start.credit, start.used), (Currency::Usd, None, Money(0)), "{store}");
        db.write(|c| account::set_currency(c, Currency::Cny)).unwrap();
        db.write(|c| account::set_credit(c, Some(Money(42)))).unwrap();
        let read = db.read(account::get).unwrap();
        assert_eq!((read.currency, read.credit), (Currency::Cny, Some(Money(42))), "{store}");

        // The router's snapshot reads all of it at one instant.
        let loaded = db.read(|c| config::load(c, db.vault())).unwrap();
        assert_eq!(loaded.channels.len(), 1, "{store}");
        assert_eq!(loaded.tokens.len(), 1, "{store}");
        assert_eq!(loaded.prices, vec![price.clone()], "{store}");
        assert_eq!(loaded.groups.len(), 1, "{store}");
        assert_eq!(loaded.account.currency, Currency::Cny, "{store}");

        // Stored Responses answers: per token, replaced by id, pruned by age.
        let stored = |id: &str, token_id: i64, at: i64| responses::StoredResponse {
            id: id.to_string(),
            token_id,
            created_at_ms: at,
            previous_id: None,
            items: "[]".to_string(),
            response: format!("{{\"id\":\"{id}\"}}"),
        };
        db.write(|c| responses::insert(c, &stored("resp_1", b, 10))).unwrap();
        db.write(|c| responses::insert(c, &stored("resp_1", b, 20))).unwrap();
        db.write(|c| responses::insert(c, &stored("resp_2", b, 30))).unwrap();
        assert_eq!(db.read(|c| responses::get(c, "resp_1", b)).unwrap(), Some(stored("resp_1", b, 20)), "{store}");
        assert_eq!(db.read(|c| responses::get(c, "resp_1", b + 1)).unwrap(), None, "{store}");
        assert_eq!(db.write(|c| responses::prune_before(c, 25, 100)).unwrap(), 1, "{store}");
        assert!(db.write(|c| responses::delete(c, "resp_2", b)).unwrap(), "{store}");
        assert_eq!(db.read(|c| responses::get(c, "resp_2", b)).unwrap(), None, "{store}");
    });
}

const HOUR_MS: i64 = 3_600_000;

fn log_row(n: i64, token: Option<(i64, &str)>, model: &str, status: u16) -> NewLogRow {
    NewLogRow {
        request_id: format!("req-{n}"),
        // Three calls an hour from midnight UTC, so reports cross whole and partial hours.
        created_at_ms: 1_796_083_200_000 + n * HOUR_MS / 3,
        token_id: token.map(|(id, _)| id),
        token_name: token.map(|(_, name)| name.to_string()),
        channel_id: Some(n % 2 + 1),
        channel_name: (n % 2 == 0).then(|| "even".to_string()),
        endpoint: "/v1/chat/completions".to_string(),
        model: model.to_string(),
        upstream_model: Some(format!("{model}-upstream")),
        is_stream: n % 3 == 0,
        status,
        error: (status != 200).then(|| "upstream said no".to_string()),
        prompt_tokens: 100 + n as u64,
        completion_tokens: 10 + n as u64,
        cached_tokens: n as u64,
        cache_write_tokens: 2,
        cache_write_1h_tokens: 1,
        reasoning_tokens: 3,
        images: 0,
        audio_ms: 1_500,
        characters: 0,
        usage_source: UsageSource::Upstream,
        cost: Money(1_000 + n),
        priced: true,
        latency_ms: 20,
        first_token_ms: (n % 2 == 1).then_some(7),
        end_reason: EndReason::Completed,
        attempts: 1,
    }
}

#[test]
fn the_call_log_answers_alike_on_sqlite_and_postgresql() {
    let cluster = TempPostgres::start();
    on_both_stores(&cluster, |store, db| {
        let id = db.write(|c| tokens::insert(c, &token("team", "hash-team"), 0)).unwrap();
        // 70 rows: two full 32-row statements and six single ones, as the writer batches them.
        let rows: Vec<NewLogRow> = (0..70)
            .map(|n| {
                log_row(
                    n,
                    (n % 5 != 0).then_some((id, "team")),
                    if n % 2 == 0 { "a" } else { "b" },
                    if n % 7 == 0 { 502 } else { 200 },
                )
            })
            .collect();
        db.write(|c| logs::insert_batch(c, &rows[..40])).unwrap();
        db.write(|c| logs::insert_batch(c, &rows[40..])).unwrap();

        // Charged in the same transactions: the token's share and the account's whole.
        let charged_token: i64 = rows.iter().filter(|r| r.token_id.is_some()).map(|r| r.cost.0).sum();
        let charged_all: i64 = rows.iter().map(|r| r.cost.0).sum();
        assert_eq!(db.read(|c| tokens::get(c, id)).unwrap().unwrap().token.used_quota, Money(charged_token), "{store}");
        assert_eq!(db.read(account::get).unwrap().used, Money(charged_all), "{store}");
        assert_eq!(db.read(logs::row_counts).unwrap(), (70, 70), "{store}");

        // Pages, newest first, and every column as written.
        let first = db.read(|c| logs::query(c, &LogQuery { limit: Some(30), ..LogQuery::default() })).unwrap();
        assert_eq!(first.items.len(), 30, "{store}");
        assert_eq!(first.items[0].request_id, "req-69", "{store}");
        let newest = &first.items[0];
        let written = &rows[69];
        assert_eq!(
            (newest.prompt_tokens, newest.cached_tokens, newest.cache_write_1h_tokens, newest.audio_ms),
            (written.prompt_tokens, written.cached_tokens, 1, 1_500),
            "{store}"
        );
        assert_eq!((newest.first_token_ms, newest.is_stream, newest.priced), (Some(7), true, true), "{store}");
        assert_eq!(newest.upstream_model.as_deref(), Some("b-upstream"), "{store}");
        let second = db
            .read(|c| {
                logs::query(c, &LogQuery { limit: Some(30), before_id: first.next_before_id, ..LogQuery::default() })
            })
            .unwrap();
        assert_eq!(second.items[0].request_id, "req-39", "{store}");
        let failed = db
            .read(|c| {
                logs::query(
                    c,
                    &LogQuery { status: Some(StatusFilter::Error), model: Some("b".into()), ..LogQuery::default() },
                )
            })
            .unwrap();
        let expected: Vec<String> =
            (0..70).rev().filter(|n| n % 7 == 0 && n % 2 == 1).map(|n| format!("req-{n}")).collect();
        assert_eq!(failed.items.iter().map(|e| e.request_id.clone()).collect::<Vec<_>>(), expected, "{store}");
        let one =
            db.read(|c| logs::query(c, &LogQuery { request_id: Some("req-5".into()), ..LogQuery::default() })).unwrap();
        assert_eq!((one.items.len(), one.items[0].token_id), (1, None), "{store}");

        // Usage over a range that starts and ends inside an hour: rollup and log edges agree with
        // the rows themselves.
        let (since, until) = (rows[4].created_at_ms + 1, rows[64].created_at_ms + 1);
        for group_by in [UsageGroupBy::Day, UsageGroupBy::Model, UsageGroupBy::Token, UsageGroupBy::Channel] {
            let report = db
                .read(|c| logs::usage(c, &UsageQuery { since_ms: Some(since), until_ms: Some(until), group_by }))
                .unwrap();
            let inside: Vec<&NewLogRow> =
                rows.iter().filter(|r| r.created_at_ms >= since && r.created_at_ms < until).collect();
            assert_eq!(report.totals.requests, inside.len() as u64, "{store} {group_by:?}");
            assert_eq!(report.totals.cost, Money(inside.iter().map(|r| r.cost.0).sum()), "{store} {group_by:?}");
            assert_eq!(
                report.totals.cached_tokens,
                inside.iter().map(|r| r.cached_tokens).sum::<u64>(),
                "{store} {group_by:?}"
            );
        }
        let by_model = db
            .read(|c| logs::usage(c, &UsageQuery { group_by: UsageGroupBy::Model, ..UsageQuery::default() }))
            .unwrap();
        assert_eq!(
            by_model.rows.iter().map(|r| (r.key.as_str(), r.totals.requests)).collect::<Vec<_>>(),
            [("a", 35), ("b", 35)]
        );
        let by_day = db.read(|c| logs::usage(c, &UsageQuery::default())).unwrap();
        assert_eq!(by_day.rows.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), ["2026-12-01"], "{store}");
        let by_token = db
            .read(|c| logs::usage(c, &UsageQuery { group_by: UsageGroupBy::Token, ..UsageQuery::default() }))
            .unwrap();
        assert_eq!(
            by_token.rows.iter().map(|r| (r.key.as_str(), r.totals.requests)).collect::<Vec<_>>(),
            [("-", 14), ("team", 56)]
        );

        // Pruning takes the oldest rows in bounded steps; the hourly totals stay.
        assert_eq!(db.write(|c| logs::prune_before(c, rows[30].created_at_ms, 20)).unwrap(), 20, "{store}");
        assert_eq!(db.write(|c| logs::prune_before(c, rows[30].created_at_ms, 20)).unwrap(), 10, "{store}");
        assert_eq!(db.read(logs::row_counts).unwrap(), (40, 40), "{store}");
        let after = db.read(|c| logs::usage(c, &UsageQuery::default())).unwrap();
        assert_eq!(after.totals.requests, 70, "{store}: whole hours come from the rollup");
    });
}

#[test]
fn machine_local_tables_say_so_on_postgresql() {
    let Some(cluster) = TempPostgres::start() else { return };
    let url = cluster.create_database("local_only");
    let keys = tempfile::tempdir().unwrap();
    let db = Db::open_postgres(&url, keys.path()).unwrap();
    let error = db.read(burncloud_database::repo::downloads::list).unwrap_err();
    assert!(matches!(error, DbError::LocalOnly(_)), "{error}");
    assert!(error.to_string().contains("this machine's own SQLite store"), "{error}");
}

#[test]
fn postgresql_migrations_apply_once_when_instances_start_together() {
    let Some(cluster) = TempPostgres::start() else { return };
    let url = cluster.create_database("started_together");
    let keys = tempfile::tempdir().unwrap();
    let opened: Vec<Result<Db, DbError>> = std::thread::scope(|scope| {
        let starts: Vec<_> = (0..4).map(|_| scope.spawn(|| Db::open_postgres(&url, keys.path()))).collect();
        starts.into_iter().map(|start| start.join().unwrap()).collect()
    });
    for db in &opened {
        assert!(db.is_ok(), "{:?}\n{}", db.as_ref().err(), cluster.log());
    }
    let db = Db::open_postgres(&url, keys.path()).unwrap();
    // One default group and one account row: the schema was made once, not four times.
    assert_eq!(db.read(groups::list).unwrap().len(), 1);
    assert_eq!(db.read(account::get).unwrap().used, Money(0));
}

#[test]
fn a_restarted_postgresql_is_reconnected_to() {
    let Some(cluster) = TempPostgres::start() else { return };
    let url = cluster.create_database("restarted");
    let keys = tempfile::tempdir().unwrap();
    let db = Db::open_postgres(&url, keys.path()).unwrap();
    db.write(|c| prices::upsert(c, &price("m", "1", "2"), 1)).unwrap();
    assert_eq!(db.read(prices::list).unwrap().len(), 1);
    cluster.restart().unwrap();
    // The sessions held before the restart are dead: a read runs again on a fresh one; a write
    // may fail once (it cannot know whether the server committed it), and the next one reconnects.
    assert_eq!(db.read(prices::list).unwrap().len(), 1);
    let _ = db.write(|c| prices::delete(c, "none"));
    assert!(db.write(|c| prices::delete(c, "m")).unwrap());
}

#[test]
fn instances_on_one_database_must_share_the_secret_key() {
    let Some(cluster) = TempPostgres::start() else { return };
    let url = cluster.create_database("shared_key");
    let first_keys = tempfile::tempdir().unwrap();
    let first = Db::open_postgres(&url, first_keys.path()).unwrap();
    let id = first.write(|c| channels::insert(c, first.vault(), &channel("one", "sk-shared"), 1)).unwrap();

    let stranger = tempfile::tempdir().unwrap();
    let Err(refused) = Db::open_postgres(&url, stranger.path()) else { panic!("a stranger's key was accepted") };
    let refused = refused.to_string();
    assert!(refused.contains("same key") && refused.contains("BURNCLOUD_SECRET_KEY"), "{refused}");

    let second_keys = tempfile::tempdir().unwrap();
    std::fs::copy(first_keys.path().join("secret.key"), second_keys.path().join("secret.key")).unwrap();
    let second = Db::open_postgres(&url, second_keys.path()).unwrap();
    let read = second.read(|c| channels::get(c, second.vault(), id)).unwrap().unwrap();
    assert_eq!(read.api_key.expose(), "sk-shared");
}

#[test]
fn a_desktop_store_grows_into_a_team_store() {
    let Some(cluster) = TempPostgres::start() else { return };
    let desktop = tempfile::tempdir().unwrap();
    let source = Db::open(desktop.path().join("burncloud.db")).unwrap();
    let first = source.write(|c| channels::insert(c, source.vault(), &channel("one", "sk-first"), 1)).unwrap();
    let second = source.write(|c| channels::insert(c, source.vault(), &channel("two", "sk-second"), 2)).unwrap();
    source.write(|c| channels::delete(c, first)).unwrap();
    let group = Group {
        id: 0,
        name: "team".to_string(),
        strategy: Strategy::RoundRobin,
        members: vec![GroupMember { channel_id: second, weight: 3, priority: 2 }],
        created_at_ms: 0,
        updated_at_ms: 0,
    };
    let group_id = source.write(|c| groups::insert(c, &group, 5)).unwrap();
    let token_id = source.write(|c| tokens::insert(c, &token("desk", "hash-desk"), 6)).unwrap();
    source.write(|c| prices::upsert(c, &price("gpt-4o-mini", "0.15", "0.6"), 7)).unwrap();
    source.write(|c| settings::set(c, source.vault(), "hub_token.huggingface", "hf_desktop")).unwrap();
    source.write(|c| account::set_credit(c, Some(Money(1_000_000_000_000)))).unwrap();
    // More calls than one page of the copy, so it reads the log a page at a time.
    let rows: Vec<NewLogRow> = (0..10_050).map(|n| log_row(n, Some((token_id, "desk")), "gpt-4o-mini", 200)).collect();
    source.write(|c| logs::insert_batch(c, &rows)).unwrap();
    let before = source.read(|c| logs::usage(c, &UsageQuery::default())).unwrap();

    let team_keys = tempfile::tempdir().unwrap();
    let url = cluster.create_database("grown");
    let target = Db::open_postgres(&url, team_keys.path()).unwrap();
    let report = burncloud_database::copy_shared_tables(&source, &target).unwrap();
    let copied: std::collections::HashMap<&str, u64> = report.tables.iter().copied().collect();
    assert_eq!((copied["channels"], copied["logs"], copied["tokens"]), (1, 10_050, 1), "{report:?}");

    // Ids are kept, and the secrets open with the team store's key, not the desktop's.
    let copied_channel = target.read(|c| channels::get(c, target.vault(), second)).unwrap().unwrap();
    assert_eq!(copied_channel.api_key.expose(), "sk-second");
    assert_eq!(
        target.read(|c| settings::get(c, target.vault(), "hub_token.huggingface")).unwrap().as_deref(),
        Some("hf_desktop")
    );
    assert_eq!(target.read(|c| groups::get(c, group_id)).unwrap().unwrap().members, group.members);
    let token = target.read(|c| tokens::get(c, token_id)).unwrap().unwrap();
    assert_eq!(token.token.used_quota, Money(rows.iter().map(|r| r.cost.0).sum()));
    assert_eq!(target.read(account::get).unwrap().credit, Some(Money(1_000_000_000_000)));
    let after = target.read(|c| logs::usage(c, &UsageQuery::default())).unwrap();
    assert_eq!((after.totals.requests, after.totals.cost), (before.totals.requests, before.totals.cost));
    assert_eq!(target.read(logs::row_counts).unwrap(), (10_050, 10_050));

    // New rows get ids after the copied ones.
    let next = target.write(|c| channels::insert(c, target.vault(), &channel("three", "sk-new"), 9)).unwrap();
    assert!(next > second, "{next} after {second}");
    target.write(|c| logs::insert_batch(c, &[log_row(20_000, None, "m", 200)])).unwrap();
    let newest = target.read(|c| logs::query(c, &LogQuery { limit: Some(1), ..LogQuery::default() })).unwrap();
    assert_eq!(newest.items[0].id, 10_051);

    // A second copy into the same database would double everything: it is refused, and changes nothing.
    let again = burncloud_database::copy_shared_tables(&source, &target).unwrap_err().to_string();
    assert!(again.contains("already holds"), "{again}");
    assert_eq!(target.read(logs::row_counts).unwrap(), (10_051, 10_051));
}
