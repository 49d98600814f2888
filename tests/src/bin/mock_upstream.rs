//! A standalone OpenAI-format upstream for end-to-end tests and benchmarks.
//! `mock-upstream [--listen ADDR] [--key KEY] [--latency-ms MS]`; prints `listening on http://ADDR`;
//! switch behaviour with `POST /_mock/mode {"mode":"error","status":500}`; `GET /_mock/received`
//! lists the calls' paths and bodies. `--latency-ms` holds every answer that long first, as a real
//! provider takes time before its first byte.

use std::time::Duration;

const USAGE: &str = "usage: mock-upstream [--listen ADDR] [--key KEY] [--latency-ms MS]";

fn main() -> anyhow::Result<()> {
    let mut listen = "127.0.0.1:0".to_string();
    let mut key = None;
    let mut latency = Duration::ZERO;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next().ok_or_else(|| anyhow::anyhow!("--listen needs an address"))?,
            "--key" => key = args.next(),
            "--latency-ms" => {
                let ms = args.next().and_then(|ms| ms.parse().ok());
                latency =
                    Duration::from_millis(ms.ok_or_else(|| anyhow::anyhow!("--latency-ms needs a number; {USAGE}"))?);
            }
            other => anyhow::bail!("unknown argument {other:?}; {USAGE}"),
        }
    }
    let threads: usize = std::env::var("MOCK_THREADS").ok().and_then(|t| t.parse().ok()).unwrap_or(1);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&listen).await?;
        println!("listening on http://{}", listener.local_addr()?);
        let listener = axum::serve::ListenerExt::tap_io(listener, |s| drop(s.set_nodelay(true)));
        let mut router = burncloud_tests::openai_mock::standalone_router(key);
        // Only when asked: the benchmarks' upstream stays without the extra layer.
        if !latency.is_zero() {
            router = router.layer(axum::middleware::from_fn(
                move |request: axum::extract::Request, next: axum::middleware::Next| async move {
                    tokio::time::sleep(latency).await;
                    next.run(request).await
                },
            ));
        }
        axum::serve(listener, router).await?;
        anyhow::Ok(())
    })
}
