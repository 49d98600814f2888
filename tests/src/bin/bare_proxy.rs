//! The floor for the benchmark: the thinnest reverse proxy axum and hyper allow (no auth, no
//! parsing, no accounting), so `scripts/bench` can show what one extra HTTP hop costs by itself.
//! `bare-proxy --upstream http://ADDR`; prints `listening on http://ADDR`.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

type Upstream = (Client<HttpConnector, Body>, String);

async fn forward(State((client, upstream)): State<Upstream>, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    parts.uri = match format!("{upstream}{path}").parse() {
        Ok(uri) => uri,
        Err(_) => return axum::http::StatusCode::BAD_REQUEST.into_response(),
    };
    match client.request(Request::from_parts(parts, body)).await {
        Ok(response) => response.map(Body::new),
        Err(_) => axum::http::StatusCode::BAD_GATEWAY.into_response(),
    }
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let upstream = match (args.next().as_deref(), args.next()) {
        (Some("--upstream"), Some(url)) => url,
        _ => anyhow::bail!("usage: bare-proxy --upstream http://ADDR"),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let client = Client::builder(TokioExecutor::new()).build_http();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("listening on http://{}", listener.local_addr()?);
        let app = axum::Router::new().fallback(forward).with_state((client, upstream));
        let listener = axum::serve::ListenerExt::tap_io(listener, |s| drop(s.set_nodelay(true)));
        axum::serve(listener, app).await?;
        anyhow::Ok(())
    })
}
