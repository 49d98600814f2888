//! The `logs` table: one row per call, written in batches together with the quota it charges.

use std::collections::HashMap;

use burncloud_service_api::{
    EndReason, LogEntry, LogPage, LogQuery, Money, UsageGroupBy, UsageQuery, UsageReport, UsageRow, UsageSource,
    UsageTotals,
};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, Row};

use crate::{DbError, DbResult};

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
    pub usage_source: UsageSource,
    pub cost: Money,
    pub priced: bool,
    pub latency_ms: u64,
    pub first_token_ms: Option<u64>,
    pub end_reason: EndReason,
    pub attempts: u32,
}

/// Inserts `rows` and applies their charges in one transaction: either all land or none do.
pub fn insert_batch(connection: &mut Connection, rows: &[NewLogRow]) -> DbResult<()> {
    let transaction = connection.transaction()?;
    {
        let mut insert = transaction.prepare_cached(
            "INSERT INTO logs (request_id, created_at_ms, token_id, token_name, channel_id, channel_name, endpoint, \
             model, upstream_model, is_stream, status, error, prompt_tokens, completion_tokens, usage_source, \
             cost_nano, priced, latency_ms, first_token_ms, end_reason, attempts) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
        )?;
        let mut charges: HashMap<i64, i64> = HashMap::new();
        let mut account_charge: i64 = 0;
        for row in rows {
            insert.execute(params![
                row.request_id,
                row.created_at_ms,
                row.token_id,
                row.token_name,
                row.channel_id,
                row.channel_name,
                row.endpoint,
                row.model,
                row.upstream_model,
                row.is_stream,
                row.status,
                row.error,
                row.prompt_tokens as i64,
                row.completion_tokens as i64,
                row.usage_source.as_str(),
                row.cost.0,
                row.priced,
                row.latency_ms as i64,
                row.first_token_ms.map(|ms| ms as i64),
                row.end_reason.as_str(),
                row.attempts,
            ])?;
            if row.cost.0 != 0 {
                account_charge += row.cost.0;
                if let Some(token_id) = row.token_id {
                    *charges.entry(token_id).or_default() += row.cost.0;
                }
            }
        }
        let mut charge_token =
            transaction.prepare_cached("UPDATE tokens SET used_quota_nano = used_quota_nano + ?2 WHERE id = ?1")?;
        for (token_id, amount) in charges {
            charge_token.execute(params![token_id, amount])?;
        }
        if account_charge != 0 {
            transaction.execute("UPDATE account SET used_nano = used_nano + ?1 WHERE id = 1", [account_charge])?;
        }
    }
    transaction.commit()?;
    Ok(())
}

const COLUMNS: &str =
    "id, request_id, created_at_ms, token_id, token_name, channel_id, channel_name, endpoint, model, \
                       upstream_model, is_stream, status, error, prompt_tokens, completion_tokens, usage_source, \
                       cost_nano, priced, latency_ms, first_token_ms, end_reason, attempts";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Result<LogEntry, DbError>> {
    let usage_source: String = row.get(15)?;
    let end_reason: String = row.get(20)?;
    let usage_source = match usage_source.as_str() {
        "upstream" => UsageSource::Upstream,
        "estimated" => UsageSource::Estimated,
        other => return Ok(Err(DbError::Corrupt(format!("logs.usage_source {other:?}")))),
    };
    let Some(end_reason) = EndReason::parse(&end_reason) else {
        return Ok(Err(DbError::Corrupt(format!("logs.end_reason {end_reason:?}"))));
    };
    Ok(Ok(LogEntry {
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
        prompt_tokens: row.get::<_, i64>(13)? as u64,
        completion_tokens: row.get::<_, i64>(14)? as u64,
        usage_source,
        cost: Money(row.get(16)?),
        priced: row.get(17)?,
        latency_ms: row.get::<_, i64>(18)? as u64,
        first_token_ms: row.get::<_, Option<i64>>(19)?.map(|ms| ms as u64),
        end_reason,
        attempts: row.get(21)?,
    }))
}

pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 1000;

/// Builds the WHERE clause shared by the log list and the usage report.
fn filters(query: &LogQuery) -> DbResult<(String, Vec<Value>)> {
    let mut clauses: Vec<&str> = Vec::new();
    let mut values: Vec<Value> = Vec::new();
    if let Some(before_id) = query.before_id {
        clauses.push("id < ?");
        values.push(before_id.into());
    }
    if let Some(model) = &query.model {
        clauses.push("model = ?");
        values.push(model.clone().into());
    }
    if let Some(token_id) = query.token_id {
        clauses.push("token_id = ?");
        values.push(token_id.into());
    }
    if let Some(channel_id) = query.channel_id {
        clauses.push("channel_id = ?");
        values.push(channel_id.into());
    }
    if let Some(status) = query.status.as_deref() {
        match status {
            "ok" | "success" => clauses.push("status BETWEEN 200 AND 299"),
            "error" => clauses.push("status NOT BETWEEN 200 AND 299"),
            code => {
                let code: i64 = code
                    .parse()
                    .map_err(|_| DbError::Corrupt(format!("status filter {code:?}: use a code, ok or error")))?;
                clauses.push("status = ?");
                values.push(code.into());
            }
        }
    }
    if let Some(since) = query.since_ms {
        clauses.push("created_at_ms >= ?");
        values.push(since.into());
    }
    if let Some(until) = query.until_ms {
        clauses.push("created_at_ms < ?");
        values.push(until.into());
    }
    let sql = if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
    Ok((sql, values))
}

pub fn query(connection: &Connection, query: &LogQuery) -> DbResult<LogPage> {
    let limit = query.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let (where_sql, mut values) = filters(query)?;
    values.push(i64::from(limit + 1).into());
    let sql = format!("SELECT {COLUMNS} FROM logs {where_sql} ORDER BY id DESC LIMIT ?");
    let mut statement = connection.prepare_cached(&sql)?;
    let mut items = statement
        .query_map(params_from_iter(values), from_row)?
        .map(|row| row?)
        .collect::<DbResult<Vec<LogEntry>>>()?;
    let next_before_id = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|entry| entry.id)
    } else {
        None
    };
    Ok(LogPage { items, next_before_id })
}

pub fn usage(connection: &Connection, query: &UsageQuery) -> DbResult<UsageReport> {
    let (where_sql, values) =
        filters(&LogQuery { since_ms: query.since_ms, until_ms: query.until_ms, ..LogQuery::default() })?;
    let key = match query.group_by {
        UsageGroupBy::Day => "strftime('%Y-%m-%d', created_at_ms / 1000, 'unixepoch')",
        UsageGroupBy::Model => "model",
        UsageGroupBy::Token => "COALESCE(token_name, '#' || token_id, '-')",
        UsageGroupBy::Channel => "COALESCE(channel_name, '#' || channel_id, '-')",
    };
    let sql = format!(
        "SELECT {key} AS k, COUNT(*), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0), \
         COALESCE(SUM(cost_nano), 0) FROM logs {where_sql} GROUP BY k ORDER BY k"
    );
    let mut statement = connection.prepare_cached(&sql)?;
    let rows = statement
        .query_map(params_from_iter(values), |row| {
            Ok(UsageRow {
                key: row.get(0)?,
                totals: UsageTotals {
                    requests: row.get::<_, i64>(1)? as u64,
                    prompt_tokens: row.get::<_, i64>(2)? as u64,
                    completion_tokens: row.get::<_, i64>(3)? as u64,
                    cost: Money(row.get(4)?),
                },
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut totals = UsageTotals::default();
    for row in &rows {
        totals.requests += row.totals.requests;
        totals.prompt_tokens += row.totals.prompt_tokens;
        totals.completion_tokens += row.totals.completion_tokens;
        totals.cost = totals.cost.saturating_add(row.totals.cost);
    }
    Ok(UsageReport { totals, rows })
}
