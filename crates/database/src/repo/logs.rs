//! The `logs` table: one row per call, written in batches together with the quota it charges.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

use crate::engine::{Begin, Engine, Row};
use crate::values::{arg_list, args, Arg, Key, ToArg};
use crate::{Conn, DbError, DbResult};
use burncloud_service_api::{
    EndReason, LogEntry, LogPage, LogQuery, Money, StatusFilter, UsageGroupBy, UsageQuery, UsageReport, UsageRow,
    UsageSource, UsageTotals,
};

/// A call to record; its `cost` is charged to its token and the account in the same transaction.
#[derive(Clone, Debug, PartialEq)]
pub struct NewLogRow {
    pub request_id: String,
    pub created_at_ms: i64,
    pub token_id: Option<i64>,
    pub token_name: Option<String>,
    pub channel_id: Option<i64>,
    pub channel_name: Option<String>,
    pub endpoint: String,
    pub model: String,
    pub upstream_model: Option<String>,
    pub is_stream: bool,
    pub status: u16,
    pub error: Option<String>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
    pub cache_write_tokens: u64,
    pub cache_write_1h_tokens: u64,
    pub reasoning_tokens: u64,
    pub images: u64,
    pub audio_ms: u64,
    pub characters: u64,
    pub usage_source: UsageSource,
    pub cost: Money,
    pub priced: bool,
    pub latency_ms: u64,
    pub first_token_ms: Option<u64>,
    pub end_reason: EndReason,
    pub attempts: u32,
}

const HOUR_MS: i64 = 3_600_000;

/// The `usage_hourly` row a log row adds to; the token and channel keys match the report's. It
/// borrows from the rows, so grouping a batch allocates nothing for rows that share an hour.
#[derive(PartialEq, Eq, Hash)]
struct HourKey<'a> {
    hour_ms: i64,
    model: &'a str,
    token: Cow<'a, str>,
    channel: Cow<'a, str>,
}

impl<'a> HourKey<'a> {
    fn of(row: &'a NewLogRow) -> HourKey<'a> {
        let label = |name: &'a Option<String>, id: Option<i64>| match (name, id) {
            (Some(name), _) => Cow::Borrowed(name.as_str()),
            (None, Some(id)) => Cow::Owned(format!("#{id}")),
            (None, None) => Cow::Borrowed("-"),
        };
        HourKey {
            hour_ms: row.created_at_ms.div_euclid(HOUR_MS) * HOUR_MS,
            model: &row.model,
            token: label(&row.token_name, row.token_id),
            channel: label(&row.channel_name, row.channel_id),
        }
    }
}

/// The columns a new log row fills, in the order `bind_log_row` binds them.
const INSERTED_COLUMNS: &str = "request_id, created_at_ms, token_id, token_name, channel_id, channel_name, endpoint, \
     model, upstream_model, is_stream, status, error, prompt_tokens, completion_tokens, usage_source, cost_nano, \
     priced, latency_ms, first_token_ms, end_reason, attempts, cached_tokens, cache_write_tokens, \
     cache_write_1h_tokens, reasoning_tokens, images, audio_ms, characters";
const INSERTED_COLUMN_COUNT: usize = 28;

/// Rows per INSERT statement on SQLite. Each statement run has a fixed cost (starting the VM,
/// reading and writing back the AUTOINCREMENT counter) that many rows then share; 32 rows bind 896
/// values, well under SQLite's limit of 32,766.
const ROWS_PER_INSERT: usize = 32;

/// `OR FAIL`: a statement that writes many rows would otherwise keep a statement journal
/// (a temp file holding every page it changes, so that it alone could be undone), which made
/// filling a large log slower than one row per statement. A failing statement fails the whole
/// batch's transaction anyway, so nothing is lost by not undoing it by itself.
fn insert_sql(rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|row| {
            let first = row * INSERTED_COLUMN_COUNT + 1;
            let parameters: Vec<String> = (first..first + INSERTED_COLUMN_COUNT).map(|n| format!("?{n}")).collect();
            format!("({})", parameters.join(", "))
        })
        .collect();
    format!("INSERT OR FAIL INTO logs ({INSERTED_COLUMNS}) VALUES {}", values.join(", "))
}

/// `row`'s values in `INSERTED_COLUMNS` order.
fn log_row_args(row: &NewLogRow) -> [Arg<'_>; INSERTED_COLUMN_COUNT] {
    // Counters never reach 2^63; saturating keeps a corrupt one from wrapping negative.
    let count = |n: u64| Arg::Int(i64::try_from(n).unwrap_or(i64::MAX));
    [
        Arg::Text(&row.request_id),
        Arg::Int(row.created_at_ms),
        row.token_id.to_arg(),
        row.token_name.to_arg(),
        row.channel_id.to_arg(),
        row.channel_name.to_arg(),
        Arg::Text(&row.endpoint),
        Arg::Text(&row.model),
        row.upstream_model.to_arg(),
        row.is_stream.to_arg(),
        Arg::Int(row.status.into()),
        row.error.to_arg(),
        count(row.prompt_tokens),
        count(row.completion_tokens),
        Arg::Text(row.usage_source.as_str()),
        Arg::Int(row.cost.0),
        row.priced.to_arg(),
        count(row.latency_ms),
        row.first_token_ms.map_or(Arg::Null, count),
        Arg::Text(row.end_reason.as_str()),
        Arg::Int(row.attempts.into()),
        count(row.cached_tokens),
        count(row.cache_write_tokens),
        count(row.cache_write_1h_tokens),
        count(row.reasoning_tokens),
        count(row.images),
        count(row.audio_ms),
        count(row.characters),
    ]
}

/// Writes `rows` to the log. SQLite binds each value straight into one kept statement (the log
/// writer's hot loop); PostgreSQL takes the whole batch as one binary `COPY`, since every
/// statement there is a round trip to the server.
fn insert_rows(engine: &Engine, rows: &[NewLogRow]) -> DbResult<()> {
    match engine {
        Engine::Sqlite(connection) => {
            static INSERT_MANY: LazyLock<String> = LazyLock::new(|| insert_sql(ROWS_PER_INSERT));
            static INSERT_ONE: LazyLock<String> = LazyLock::new(|| insert_sql(1));
            let run = |sql: &str, rows: &[NewLogRow]| -> DbResult<()> {
                let mut insert = connection.prepare_cached(sql)?;
                for (position, row) in rows.iter().enumerate() {
                    for (offset, arg) in log_row_args(row).iter().enumerate() {
                        insert.raw_bind_parameter(1 + position * INSERTED_COLUMN_COUNT + offset, arg)?;
                    }
                }
                insert.raw_execute()?;
                Ok(())
            };
            let chunks = rows.chunks_exact(ROWS_PER_INSERT);
            let rest = chunks.remainder();
            for chunk in chunks {
                run(&INSERT_MANY, chunk)?;
            }
            for row in rest {
                run(&INSERT_ONE, std::slice::from_ref(row))?;
            }
        }
        Engine::Postgres(connection) => {
            connection.copy_in("logs", INSERTED_COLUMNS, rows, log_row_args)?;
        }
    }
    Ok(())
}

/// Inserts `rows` and applies their charges in one transaction: either all land or none do.
pub fn insert_batch(connection: &mut Conn, rows: &[NewLogRow]) -> DbResult<()> {
    let mut charges: HashMap<i64, i64> = HashMap::new();
    let mut account_charge: i64 = 0;
    let mut hourly: HashMap<HourKey, UsageTotals> = HashMap::new();
    for row in rows {
        let totals = hourly.entry(HourKey::of(row)).or_default();
        totals.requests += 1;
        totals.prompt_tokens += row.prompt_tokens;
        totals.completion_tokens += row.completion_tokens;
        totals.cached_tokens += row.cached_tokens;
        totals.cost = totals.cost.saturating_add(row.cost);
        if row.cost.0 != 0 {
            account_charge += row.cost.0;
            if let Some(token_id) = row.token_id {
                *charges.entry(token_id).or_default() += row.cost.0;
            }
        }
    }
    connection.engine().transaction(Begin::Write, |engine| {
        insert_rows(engine, rows)?;
        for (token_id, amount) in &charges {
            engine.execute("UPDATE tokens SET used_quota_nano = used_quota_nano + ?2 WHERE id = ?1", args![token_id, amount])?;
        }
        if account_charge != 0 {
            engine.execute("UPDATE account SET used_nano = used_nano + ?1 WHERE id = 1", args![account_charge])?;
            if matches!(engine, Engine::Postgres(_)) {
                // Delivered at commit: the other instances' quota checks then see this spending.
                engine.query("SELECT pg_notify('burncloud_spend', '')::text", args![], |_| Ok(()))?;
            }
        }
        for (key, totals) in &hourly {
            engine.execute(
                "INSERT INTO usage_hourly AS u (hour_ms, model, token_key, channel_key, requests, prompt_tokens, \
                 completion_tokens, cost_nano, cached_tokens) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
                 ON CONFLICT (hour_ms, model, token_key, channel_key) DO UPDATE SET \
                 requests = u.requests + excluded.requests, prompt_tokens = u.prompt_tokens + excluded.prompt_tokens, \
                 completion_tokens = u.completion_tokens + excluded.completion_tokens, \
                 cost_nano = u.cost_nano + excluded.cost_nano, cached_tokens = u.cached_tokens + excluded.cached_tokens",
                args![
                    key.hour_ms,
                    key.model,
                    key.token,
                    key.channel,
                    totals.requests,
                    totals.prompt_tokens,
                    totals.completion_tokens,
                    totals.cost.0,
                    totals.cached_tokens
                ],
            )?;
        }
        Ok(())
    })
}

const COLUMNS: &str =
    "id, request_id, created_at_ms, token_id, token_name, channel_id, channel_name, endpoint, model, \
                       upstream_model, is_stream, status, error, prompt_tokens, completion_tokens, usage_source, \
                       cost_nano, priced, latency_ms, first_token_ms, end_reason, attempts, cached_tokens, \
                       cache_write_tokens, cache_write_1h_tokens, reasoning_tokens, images, audio_ms, characters";

fn from_row(row: &Row<'_>) -> DbResult<LogEntry> {
    let usage_source: String = row.get(15)?;
    let end_reason: String = row.get(20)?;
    let usage_source = match usage_source.as_str() {
        "upstream" => UsageSource::Upstream,
        "estimated" => UsageSource::Estimated,
        other => return Err(DbError::Corrupt(format!("logs.usage_source {other:?}"))),
    };
    let Some(end_reason) = EndReason::parse(&end_reason) else {
        return Err(DbError::Corrupt(format!("logs.end_reason {end_reason:?}")));
    };
    Ok(LogEntry {
        id: row.get(0)?,
        request_id: row.get(1)?,
        created_at_ms: row.get(2)?,
        token_id: row.get(3)?,
        token_name: row.get(4)?,
        channel_id: row.get(5)?,
        channel_name: row.get(6)?,
        endpoint: row.get(7)?,
        model: row.get(8)?,
        upstream_model: row.get(9)?,
        is_stream: row.get(10)?,
        status: row.get(11)?,
        error: row.get(12)?,
        prompt_tokens: row.get::<u64>(13)?,
        completion_tokens: row.get::<u64>(14)?,
        usage_source,
        cost: Money(row.get(16)?),
        priced: row.get(17)?,
        latency_ms: row.get::<u64>(18)?,
        first_token_ms: row.get(19)?,
        end_reason,
        attempts: row.get(21)?,
        cached_tokens: row.get::<u64>(22)?,
        cache_write_tokens: row.get::<u64>(23)?,
        cache_write_1h_tokens: row.get::<u64>(24)?,
        reasoning_tokens: row.get::<u64>(25)?,
        images: row.get::<u64>(26)?,
        audio_ms: row.get::<u64>(27)?,
        characters: row.get::<u64>(28)?,
    })
}

pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 1000;

/// Builds the WHERE clause shared by the log list and the usage report; its parameters are
/// numbered from 1.
fn filters(query: &LogQuery) -> (String, Vec<Key>) {
    let mut clauses: Vec<String> = Vec::new();
    let mut values: Vec<Key> = Vec::new();
    let mut clause = |condition: &str, value: Option<Key>| match value {
        Some(value) => {
            values.push(value);
            clauses.push(format!("{condition} ?{}", values.len()));
        }
        None => clauses.push(condition.to_string()),
    };
    if let Some(before_id) = query.before_id {
        clause("id <", Some(Key::Number(before_id)));
    }
    if let Some(request_id) = &query.request_id {
        clause("request_id =", Some(Key::Name(request_id.clone())));
    }
    if let Some(model) = &query.model {
        clause("model =", Some(Key::Name(model.clone())));
    }
    if let Some(token_id) = query.token_id {
        clause("token_id =", Some(Key::Number(token_id)));
    }
    if let Some(channel_id) = query.channel_id {
        clause("channel_id =", Some(Key::Number(channel_id)));
    }
    match query.status {
        None => {}
        Some(StatusFilter::Ok) => clause("status BETWEEN 200 AND 299", None),
        Some(StatusFilter::Error) => clause("status NOT BETWEEN 200 AND 299", None),
        Some(StatusFilter::Code(code)) => clause("status =", Some(Key::Number(code.into()))),
    }
    if let Some(since) = query.since_ms {
        clause("created_at_ms >=", Some(Key::Number(since)));
    }
    if let Some(until) = query.until_ms {
        clause("created_at_ms <", Some(Key::Number(until)));
    }
    let sql = if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
    (sql, values)
}

pub fn query(connection: &Conn, query: &LogQuery) -> DbResult<LogPage> {
    let limit = query.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let (where_sql, mut values) = filters(query);
    values.push(Key::Number(i64::from(limit) + 1));
    let sql = format!("SELECT {COLUMNS} FROM logs {where_sql} ORDER BY id DESC LIMIT ?{}", values.len());
    let mut items = connection.engine().query(&sql, &arg_list(&values), from_row)?;
    let next_before_id = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|entry| entry.id)
    } else {
        None
    };
    Ok(LogPage { items, next_before_id })
}

/// How many calls are logged, and under how many distinct request ids (equal unless a call was
/// written twice).
pub fn row_counts(connection: &Conn) -> DbResult<(u64, u64)> {
    connection.engine().query_one("SELECT COUNT(*), COUNT(DISTINCT request_id) FROM logs", args![], |row| {
        Ok((row.get(0)?, row.get(1)?))
    })
}

/// Deletes up to `limit` log rows older than `cutoff_ms`, oldest first; returns how many went.
/// Small batches keep each write short, so the log writer never waits long behind a prune. Usage
/// totals stay: they live in `usage_hourly`.
pub fn prune_before(connection: &Conn, cutoff_ms: i64, limit: usize) -> DbResult<usize> {
    let deleted = connection.engine().execute(
        "DELETE FROM logs WHERE id IN (SELECT id FROM logs WHERE created_at_ms < ?1 ORDER BY id LIMIT ?2)",
        args![cutoff_ms, limit],
    )?;
    Ok(deleted as usize)
}

/// Totals over `[since, until)` grouped as asked: whole hours come from `usage_hourly`, the partial
/// hours at either edge from `logs` (through its time index), so the answer is exact and its cost
/// does not grow with the number of calls in the range.
pub fn usage(connection: &Conn, query: &UsageQuery) -> DbResult<UsageReport> {
    let connection = connection.engine();
    let whole_from = query
        .since_ms
        .map(|since| since.div_euclid(HOUR_MS) * HOUR_MS + if since.rem_euclid(HOUR_MS) == 0 { 0 } else { HOUR_MS });
    let whole_until = query.until_ms.map(|until| until.div_euclid(HOUR_MS) * HOUR_MS);
    let mut by_key: std::collections::BTreeMap<String, UsageTotals> = std::collections::BTreeMap::new();
    let mut add = |key: String, totals: UsageTotals| {
        let entry = by_key.entry(key).or_default();
        entry.requests += totals.requests;
        entry.prompt_tokens += totals.prompt_tokens;
        entry.completion_tokens += totals.completion_tokens;
        entry.cached_tokens += totals.cached_tokens;
        entry.cost = entry.cost.saturating_add(totals.cost);
    };
    let has_whole_hours = match (whole_from, whole_until) {
        (Some(from), Some(until)) => from < until,
        _ => true,
    };
    if has_whole_hours {
        let key = match query.group_by {
            UsageGroupBy::Day => "hour_ms / 86400000",
            UsageGroupBy::Model => "model",
            UsageGroupBy::Token => "token_key",
            UsageGroupBy::Channel => "channel_key",
        };
        let mut clauses = Vec::new();
        let mut values: Vec<Key> = Vec::new();
        if let Some(from) = whole_from {
            values.push(Key::Number(from));
            clauses.push(format!("hour_ms >= ?{}", values.len()));
        }
        if let Some(until) = whole_until {
            values.push(Key::Number(until));
            clauses.push(format!("hour_ms < ?{}", values.len()));
        }
        let where_sql = if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
        let sql = format!(
            "SELECT {key} AS k, {} FROM usage_hourly {where_sql} GROUP BY k",
            ["requests", "prompt_tokens", "completion_tokens", "cost_nano", "cached_tokens"]
                .map(|column| format!("CAST(SUM({column}) AS BIGINT)"))
                .join(", ")
        );
        for (key, totals) in grouped_totals(connection, &sql, values)? {
            add(key, totals);
        }
        // The partial hours at the edges, straight from the log.
        let edges = [(query.since_ms, whole_from), (whole_until, query.until_ms)];
        for (from, until) in edges {
            if let (Some(from), Some(until)) = (from, until) {
                if from < until {
                    for (key, totals) in logged_usage(connection, query.group_by, Some(from), Some(until))? {
                        add(key, totals);
                    }
                }
            }
        }
    } else {
        for (key, totals) in logged_usage(connection, query.group_by, query.since_ms, query.until_ms)? {
            add(key, totals);
        }
    }
    let rows: Vec<UsageRow> = by_key.into_iter().map(|(key, totals)| UsageRow { key, totals }).collect();
    let mut totals = UsageTotals::default();
    for row in &rows {
        totals.requests += row.totals.requests;
        totals.prompt_tokens += row.totals.prompt_tokens;
        totals.completion_tokens += row.totals.completion_tokens;
        totals.cached_tokens += row.totals.cached_tokens;
        totals.cost = totals.cost.saturating_add(row.totals.cost);
    }
    Ok(UsageReport { totals, rows })
}

/// Usage over `[since, until)` computed from the log rows themselves.
fn logged_usage(
    connection: &Engine,
    group_by: UsageGroupBy,
    since_ms: Option<i64>,
    until_ms: Option<i64>,
) -> DbResult<Vec<(String, UsageTotals)>> {
    let (where_sql, values) = filters(&LogQuery { since_ms, until_ms, ..LogQuery::default() });
    let key = match group_by {
        UsageGroupBy::Day => "created_at_ms / 86400000",
        UsageGroupBy::Model => "model",
        UsageGroupBy::Token => "COALESCE(token_name, '#' || token_id, '-')",
        UsageGroupBy::Channel => "COALESCE(channel_name, '#' || channel_id, '-')",
    };
    let sql = format!(
        "SELECT {key} AS k, COUNT(*), {} FROM logs {where_sql} GROUP BY k",
        ["prompt_tokens", "completion_tokens", "cost_nano", "cached_tokens"]
            .map(|column| format!("CAST(COALESCE(SUM({column}), 0) AS BIGINT)"))
            .join(", ")
    );
    grouped_totals(connection, &sql, values)
}

fn grouped_totals(connection: &Engine, sql: &str, values: Vec<Key>) -> DbResult<Vec<(String, UsageTotals)>> {
    connection.query(sql, &arg_list(&values), |row| {
        // Days come back as day numbers (cheaper to group than formatted dates) and are named
        // here, as the UTC date.
        let key = match row.get::<Key>(0)? {
            Key::Number(day) => {
                let (year, month, day) = burncloud_service_api::civil_from_days(day);
                format!("{year:04}-{month:02}-{day:02}")
            }
            Key::Name(name) => name,
        };
        Ok((
            key,
            UsageTotals {
                requests: row.get(1)?,
                prompt_tokens: row.get(2)?,
                completion_tokens: row.get(3)?,
                cost: Money(row.get(4)?),
                cached_tokens: row.get(5)?,
            },
        ))
    })
}

#[cfg(test)]
mod tests {
    use burncloud_service_api::{EndReason, UsageSource};

    use super::*;
    use crate::Db;

    fn row(created_at_ms: i64, model: &str, token: Option<(i64, &str)>, cost: i64) -> NewLogRow {
        NewLogRow {
            request_id: format!("req-{created_at_ms}-{model}"),
            created_at_ms,
            token_id: token.map(|(id, _)| id),
            token_name: token.map(|(_, name)| name.to_string()).filter(|name| !name.is_empty()),
            channel_id: Some(created_at_ms % 3),
            channel_name: None,
            endpoint: "/v1/chat/completions".into(),
            model: model.into(),
            upstream_model: None,
            is_stream: false,
            status: 200,
            error: None,
            prompt_tokens: (created_at_ms % 97) as u64,
            completion_tokens: (created_at_ms % 13) as u64,
            cached_tokens: (created_at_ms % 7) as u64,
            cache_write_tokens: (created_at_ms % 5) as u64,
            cache_write_1h_tokens: (created_at_ms % 2) as u64,
            reasoning_tokens: (created_at_ms % 3) as u64,
            images: (created_at_ms % 4) as u64,
            audio_ms: (created_at_ms % 11) as u64,
            characters: (created_at_ms % 17) as u64,
            usage_source: UsageSource::Upstream,
            cost: Money(cost),
            priced: true,
            latency_ms: 1,
            first_token_ms: None,
            end_reason: EndReason::Completed,
            attempts: 1,
        }
    }

    #[expect(unsafe_code, reason = "rusqlite does not expose sqlite3_db_status")]
    fn cached_bytes(connection: &rusqlite::Connection) -> i32 {
        let (mut current, mut highest) = (0, 0);
        // SAFETY: the handle is this open connection's; the out-pointers live for the call.
        let code = unsafe {
            rusqlite::ffi::sqlite3_db_status(
                connection.handle(),
                rusqlite::ffi::SQLITE_DBSTATUS_CACHE_USED,
                &mut current,
                &mut highest,
                0,
            )
        };
        assert_eq!(code, rusqlite::ffi::SQLITE_OK);
        current
    }

    #[test]
    fn idle_memory_is_released_and_the_log_still_reads_and_writes() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("burncloud.db")).unwrap();
        let rows: Vec<NewLogRow> = (0..5_000).map(|n| row(1_795_000_000_000 + n, "gpt-4o-mini", None, 10)).collect();
        db.write(|c| insert_batch(c, &rows)).unwrap();
        let page = db.read(|c| query(c, &LogQuery { limit: Some(1000), ..LogQuery::default() })).unwrap();
        assert_eq!(page.items.len(), 1000);
        let (writer_before, reader_before) = (
            db.write(|c| Ok(cached_bytes(c.sqlite("")?))).unwrap(),
            db.read(|c| Ok(cached_bytes(c.sqlite("")?))).unwrap(),
        );
        assert!(writer_before > 500_000 && reader_before > 100_000, "{writer_before} {reader_before}");

        db.release_idle_memory();
        let (writer_after, reader_after) = (
            db.write(|c| Ok(cached_bytes(c.sqlite("")?))).unwrap(),
            db.read(|c| Ok(cached_bytes(c.sqlite("")?))).unwrap(),
        );
        assert!(writer_after < writer_before / 10, "writer cache {writer_before} -> {writer_after}");
        assert!(reader_after < reader_before / 10, "reader cache {reader_before} -> {reader_after}");

        db.write(|c| insert_batch(c, &rows[..10])).unwrap();
        let count: i64 =
            db.read(|c| Ok(c.sqlite("")?.query_row("SELECT COUNT(*) FROM logs", [], |r| r.get(0))?)).unwrap();
        assert_eq!(count, 5_010);
    }

    /// A batch of two full multi-row statements and a remainder, every field varied.
    fn mixed_batch(count: usize) -> Vec<NewLogRow> {
        (0..count as i64)
            .map(|n| {
                let mut logged =
                    row(1_795_000_000_000 + n, ["m-a", "m-b", "m-c"][n as usize % 3], Some((n % 4, "t")), n);
                logged.request_id = format!("req-{n:032x}");
                logged.channel_name = (n % 2 == 0).then(|| format!("channel {n}"));
                logged.upstream_model = (n % 3 == 0).then(|| "upstream-name".to_string());
                logged.is_stream = n % 5 == 0;
                logged.status = if n % 7 == 0 { 502 } else { 200 };
                logged.error = (n % 7 == 0).then(|| format!("upstream said no to call {n}"));
                logged.usage_source = if n % 2 == 0 { UsageSource::Upstream } else { UsageSource::Estimated };
                logged.priced = n % 3 != 1;
                logged.latency_ms = n as u64 * 11;
                logged.first_token_ms = (n % 4 == 0).then_some(n as u64);
                logged.end_reason = if n % 9 == 0 { EndReason::ClientCancelled } else { EndReason::Completed };
                logged.attempts = (n % 3) as u32 + 1;
                logged
            })
            .collect()
    }

    #[test]
    fn a_batch_of_many_statements_stores_every_row_in_order_with_every_field() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("burncloud.db")).unwrap();
        let count = 2 * ROWS_PER_INSERT + 6;
        let rows = mixed_batch(count);
        db.write(|c| insert_batch(c, &rows)).unwrap();
        let page = db.read(|c| query(c, &LogQuery { limit: Some(count as u32), ..LogQuery::default() })).unwrap();
        let mut stored = page.items;
        stored.reverse();
        assert_eq!(stored.len(), count);
        for (index, (entry, row)) in stored.iter().zip(&rows).enumerate() {
            if index > 0 {
                assert!(entry.id > stored[index - 1].id, "ids follow the batch's order");
            }
            let as_stored = NewLogRow {
                request_id: entry.request_id.clone(),
                created_at_ms: entry.created_at_ms,
                token_id: entry.token_id,
                token_name: entry.token_name.clone(),
                channel_id: entry.channel_id,
                channel_name: entry.channel_name.clone(),
                endpoint: entry.endpoint.clone(),
                model: entry.model.clone(),
                upstream_model: entry.upstream_model.clone(),
                is_stream: entry.is_stream,
                status: entry.status,
                error: entry.error.clone(),
                prompt_tokens: entry.prompt_tokens,
                completion_tokens: entry.completion_tokens,
                cached_tokens: entry.cached_tokens,
                cache_write_tokens: entry.cache_write_tokens,
                cache_write_1h_tokens: entry.cache_write_1h_tokens,
                reasoning_tokens: entry.reasoning_tokens,
                images: entry.images,
                audio_ms: entry.audio_ms,
                characters: entry.characters,
                usage_source: entry.usage_source,
                cost: entry.cost,
                priced: entry.priced,
                latency_ms: entry.latency_ms,
                first_token_ms: entry.first_token_ms,
                end_reason: entry.end_reason,
                attempts: entry.attempts,
            };
            assert_eq!(&as_stored, row, "row {index}");
        }
        let used: i64 =
            db.read(|c| Ok(c.sqlite("")?.query_row("SELECT used_nano FROM account", [], |r| r.get(0))?)).unwrap();
        assert_eq!(used, rows.iter().map(|r| r.cost.0).sum::<i64>());
    }

    #[test]
    fn a_batch_that_fails_part_way_stores_nothing_and_charges_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("burncloud.db")).unwrap();
        db.write(|c| {
            c.sqlite("")?.execute_batch(
                "CREATE TRIGGER refuse_poison BEFORE INSERT ON logs WHEN NEW.model = 'poison' \
                 BEGIN SELECT RAISE(FAIL, 'poisoned row'); END;",
            )?;
            Ok(())
        })
        .unwrap();
        let mut rows = mixed_batch(2 * ROWS_PER_INSERT + 6);
        // In the second multi-row statement, after the first statement and part of this one landed.
        rows[ROWS_PER_INSERT + 5].model = "poison".into();
        assert!(db.write(|c| insert_batch(c, &rows)).is_err());
        let (count, used): (i64, i64) = db
            .read(|c| {
                Ok(c.sqlite("")?.query_row(
                    "SELECT (SELECT COUNT(*) FROM logs), (SELECT used_nano FROM account)",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?)
            })
            .unwrap();
        assert_eq!((count, used), (0, 0));
        let hours: i64 =
            db.read(|c| Ok(c.sqlite("")?.query_row("SELECT COUNT(*) FROM usage_hourly", [], |r| r.get(0))?)).unwrap();
        assert_eq!(hours, 0);
    }

    /// Rows over three days at irregular times, several models, named and unnamed tokens.
    fn filled() -> (tempfile::TempDir, Db, i64) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("burncloud.db")).unwrap();
        let start = 1_795_000_000_000 - 1_795_000_000_000 % HOUR_MS + 1_234_567;
        let models = ["gpt-4o-mini", "deepseek-chat", "qwen-plus"];
        let tokens = [Some((1, "alice")), Some((2, "")), None];
        let rows: Vec<NewLogRow> = (0..3000i64)
            .map(|n| {
                row(start + n * 86_413 + (n * n) % 50_000, models[n as usize % 3], tokens[(n as usize / 3) % 3], n * 7)
            })
            .collect();
        for batch in rows.chunks(128) {
            db.write(|c| insert_batch(c, batch)).unwrap();
        }
        (dir, db, start)
    }

    fn from_logs_only(db: &Db, query: &UsageQuery) -> Vec<(String, UsageTotals)> {
        let mut rows = db.read(|c| logged_usage(c.engine(), query.group_by, query.since_ms, query.until_ms)).unwrap();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        rows
    }

    #[test]
    fn the_hourly_rollup_answers_exactly_what_the_log_rows_add_up_to() {
        let (_dir, db, start) = filled();
        let ranges = [
            (None, None),
            (Some(start), None),
            (None, Some(start + 40 * HOUR_MS)),
            (Some(start + 17), Some(start + 50 * HOUR_MS + 999)),
            (Some(start - start % HOUR_MS + 5 * HOUR_MS), Some(start - start % HOUR_MS + 29 * HOUR_MS)),
            (Some(start + 100), Some(start + 100 + HOUR_MS / 2)),
            (Some(start + 3 * HOUR_MS + 10), Some(start + 4 * HOUR_MS + 10)),
            (Some(start + 90 * HOUR_MS), Some(start + 10)),
        ];
        for (since_ms, until_ms) in ranges {
            for group_by in [UsageGroupBy::Day, UsageGroupBy::Model, UsageGroupBy::Token, UsageGroupBy::Channel] {
                let query = UsageQuery { since_ms, until_ms, group_by };
                let report = db.read(|c| usage(c, &query)).unwrap();
                let got: Vec<(String, UsageTotals)> = report.rows.into_iter().map(|r| (r.key, r.totals)).collect();
                assert_eq!(got, from_logs_only(&db, &query), "{since_ms:?}..{until_ms:?} by {group_by:?}");
            }
        }
        let all = db.read(|c| usage(c, &UsageQuery::default())).unwrap();
        assert_eq!(all.totals.requests, 3000);
        let first_day: String = db
            .read(|c| {
                Ok(c.sqlite("")?.query_row(
                    "SELECT strftime('%Y-%m-%d', MIN(created_at_ms) / 1000, 'unixepoch') FROM logs",
                    [],
                    |r| r.get(0),
                )?)
            })
            .unwrap();
        assert_eq!(all.rows[0].key, first_day, "days are named by their UTC date");
    }

    #[test]
    fn pruning_removes_old_calls_in_batches_and_keeps_the_totals() {
        let (_dir, db, start) = filled();
        let before = db.read(|c| usage(c, &UsageQuery::default())).unwrap();
        let cutoff = start + 40 * HOUR_MS;
        let mut pruned = 0;
        loop {
            let removed = db.write(|c| prune_before(c, cutoff, 100)).unwrap();
            assert!(removed <= 100);
            if removed == 0 {
                break;
            }
            pruned += removed;
        }
        let left: i64 =
            db.read(|c| Ok(c.sqlite("")?.query_row("SELECT COUNT(*) FROM logs", [], |r| r.get(0))?)).unwrap();
        let oldest: i64 =
            db.read(|c| Ok(c.sqlite("")?.query_row("SELECT MIN(created_at_ms) FROM logs", [], |r| r.get(0))?)).unwrap();
        assert!(pruned > 0 && oldest >= cutoff);
        assert_eq!(pruned as i64 + left, 3000);
        let after = db
            .read(|c| {
                usage(
                    c,
                    &UsageQuery { since_ms: None, until_ms: Some(cutoff - cutoff % HOUR_MS), ..UsageQuery::default() },
                )
            })
            .unwrap();
        let whole = db.read(|c| usage(c, &UsageQuery::default())).unwrap();
        assert_eq!(whole.totals, before.totals, "usage totals outlive the pruned rows");
        assert!(after.totals.requests > 0);
    }

    type RollupRow = (i64, String, String, String, i64, i64);

    fn rollup_rows(db: &Db) -> Vec<RollupRow> {
        db
            .read(|c| {
                let mut statement = c.sqlite("")?.prepare(
                    "SELECT hour_ms, model, token_key, channel_key, requests, cost_nano FROM usage_hourly ORDER BY 1, 2, 3, 4",
                )?;
                let rows = statement
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .unwrap()
    }

    #[test]
    fn the_migration_builds_the_rollup_from_existing_logs() {
        let (_dir, db, _) = filled();
        let before = rollup_rows(&db);
        db.write(|c| {
            c.sqlite("")?.execute_batch("DROP TABLE usage_hourly")?;
            c.sqlite("")?.execute_batch(include_str!("../../../../migrations/0006_usage_hourly.sql"))?;
            Ok(())
        })
        .unwrap();
        let after = rollup_rows(&db);
        assert!(!before.is_empty());
        assert_eq!(before, after, "the writer and the backfill agree row for row");
    }
}
