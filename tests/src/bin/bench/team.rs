//! The team store's figures: the log writer into PostgreSQL, the dashboard over a million calls
//! there, and what a call costs when its instance keeps its books in PostgreSQL rather than SQLite.
//! The cluster is a real, durable one (commits reach the disk), started for the run.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use burncloud_tests::postgres::TempPostgres;

use crate::{
    dashboard_times, latencies, micros, percentile, sample_log_row, serve_command, set_up_gateway, spread_log_row,
    tempfile_dir, HttpClient, Options, Server,
};

/// What `team_figures` measured.
pub struct TeamFigures {
    pub writer_rows_per_second: f64,
    pub fill_rows_per_second: f64,
    pub dashboard: Vec<(String, f64)>,
    /// (store, p50 µs, p99 µs, added p50 µs, added p99 µs) at concurrency 1.
    pub latency: Vec<(&'static str, f64, f64, f64, f64)>,
}

pub async fn team_figures(client: &HttpClient, options: &Options, server_bin: &Path) -> anyhow::Result<TeamFigures> {
    let cluster = TempPostgres::start_durable().context("the team figures need PostgreSQL (apt install postgresql)")?;
    let dir = tempfile_dir()?.join("team");
    std::fs::create_dir_all(&dir)?;

    eprintln!("team store: log writer, {} rows into PostgreSQL", options.log_rows);
    let writer = Arc::new(burncloud_database::Db::open_postgres(&cluster.create_database("writer"), &dir)?);
    let writer_rows_per_second = fill(&writer, options.log_rows, false).await?;

    eprintln!("team store: {} logged calls, then the dashboard's queries", options.startup_rows);
    let url = cluster.create_database("dashboard");
    let store = Arc::new(burncloud_database::Db::open_postgres(&url, &dir)?);
    let fill_rows_per_second = fill(&store, options.startup_rows, true).await?;
    drop(store);
    let dashboard = {
        let gateway = Server::start(
            serve_command(&mut std::process::Command::new(server_bin), &dir).arg("--database-url").arg(&url),
        )?;
        dashboard_times(client, &gateway, burncloud_database::now_ms()).await?
    };

    eprintln!("team store: added latency per call, SQLite against PostgreSQL");
    let upstream =
        Server::start(std::process::Command::new(options.bin_dir.join("mock-upstream")).env("MOCK_THREADS", "1"))?;
    let sqlite_dir = dir.join("sqlite");
    let on_sqlite = Server::start(serve_command(&mut std::process::Command::new(server_bin), &sqlite_dir))?;
    let team_url = cluster.create_database("calls");
    let on_postgres = Server::start(
        serve_command(&mut std::process::Command::new(server_bin), &dir.join("postgres"))
            .arg("--database-url")
            .arg(&team_url),
    )?;
    let sqlite_key = set_up_gateway(client, &on_sqlite, &upstream, 1, "bench").await?;
    let postgres_key = set_up_gateway(client, &on_postgres, &upstream, 1, "bench").await?;
    let targets = [
        (format!("{}/v1/chat/completions", upstream.base), None),
        (format!("{}/v1/chat/completions", on_sqlite.base), Some(sqlite_key)),
        (format!("{}/v1/chat/completions", on_postgres.base), Some(postgres_key)),
    ];
    let lists = latencies(client, &targets, options.latency_requests).await?;
    let (direct_p50, direct_p99) = (micros(percentile(&lists[0], 0.5)), micros(percentile(&lists[0], 0.99)));
    let latency = ["mock upstream, called directly", "BurnCloud on SQLite", "BurnCloud on PostgreSQL"]
        .into_iter()
        .zip(&lists)
        .map(|(name, list)| {
            let (p50, p99) = (micros(percentile(list, 0.5)), micros(percentile(list, 0.99)));
            (name, p50, p99, p50 - direct_p50, p99 - direct_p99)
        })
        .collect();
    drop((on_sqlite, on_postgres, upstream));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(TeamFigures { writer_rows_per_second, fill_rows_per_second, dashboard, latency })
}

/// Rows per second the log writer stores into `db`: `rows` queued, then waited for until all are
/// stored. With `spread`, the rows cover the last 30 days as the dashboard's queries expect.
async fn fill(db: &Arc<burncloud_database::Db>, rows: usize, spread: bool) -> anyhow::Result<f64> {
    let sink = burncloud_router::LogSink::start(db.clone(), burncloud_router::LogWriterConfig::default());
    let now = burncloud_database::now_ms();
    let started = Instant::now();
    for n in 0..rows {
        sink.record(if spread { spread_log_row(n, rows, now) } else { sample_log_row() }).await;
    }
    sink.flush().await;
    let rate = rows as f64 / started.elapsed().as_secs_f64();
    let (stored, _) = db.read(burncloud_database::repo::logs::row_counts)?;
    if stored as usize != rows {
        bail!("the log writer stored {stored} of {rows} rows");
    }
    Ok(rate)
}

/// The report's section.
pub fn team_section(figures: &TeamFigures, options: &Options) -> String {
    let mut section = format!(
        "## A team store on PostgreSQL\n\n\
         A real PostgreSQL 15 cluster on this machine, started for the run with its defaults (commits \
         reach the disk). Log writer, rows queued and stored in batched transactions with their \
         charges, as the gateway makes them (target: ≥ 50,000 rows/s): {} rows into an empty log, \
         **{:.0} rows/s**; the {} rows below, as the log grows, **{:.0} rows/s**.\n\n\
         Dashboard queries over {} logged calls in PostgreSQL, through `burncloud serve --database-url` \
         (median of 5; target ≤ 50 ms):\n\n| query | ms |\n|---|---|\n",
        options.log_rows,
        figures.writer_rows_per_second,
        options.startup_rows,
        figures.fill_rows_per_second,
        options.startup_rows
    );
    for (name, ms) in &figures.dashboard {
        section.push_str(&format!("| {name} | {ms:.1} |\n"));
    }
    section.push_str(&format!(
        "\nA call's latency at concurrency 1, {} calls each, the three taking turns (the hot path reads \
         only memory on either store; the log writer and the charge notifications run beside it):\n\n\
         | path | p50 µs | p99 µs | added p50 µs | added p99 µs |\n|---|---|---|---|---|\n",
        options.latency_requests
    ));
    for (name, p50, p99, added_p50, added_p99) in &figures.latency {
        section.push_str(&format!("| {name} | {p50:.0} | {p99:.0} | {added_p50:.0} | {added_p99:.0} |\n"));
    }
    section
}
