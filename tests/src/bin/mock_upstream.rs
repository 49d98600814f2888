//! A standalone OpenAI-format upstream for end-to-end tests and benchmarks.
//! `mock-upstream [--listen ADDR] [--key KEY]`; prints `listening on http://ADDR`;
//! switch behaviour with `POST /_mock/mode {"mode":"error","status":500}`.

fn main() -> anyhow::Result<()> {
    let mut listen = "127.0.0.1:0".to_string();
    let mut key = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next().ok_or_else(|| anyhow::anyhow!("--listen needs an address"))?,
            "--key" => key = args.next(),
            other => anyhow::bail!("unknown argument {other:?}; usage: mock-upstream [--listen ADDR] [--key KEY]"),
        }
    }
    let threads: usize = std::env::var("MOCK_THREADS").ok().and_then(|t| t.parse().ok()).unwrap_or(1);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&listen).await?;
        println!("listening on http://{}", listener.local_addr()?);
        let listener = axum::serve::ListenerExt::tap_io(listener, |s| drop(s.set_nodelay(true)));
        axum::serve(listener, burncloud_tests::openai_mock::standalone_router(key)).await?;
        anyhow::Ok(())
    })
}
