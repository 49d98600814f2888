//! A local stand-in for llama.cpp's GitHub releases: `GET …/releases` and `…/releases/tags/{tag}`
//! in the GitHub API's shape (`tag_name`, `assets[]` with `name`, `size`, `browser_download_url`
//! and `digest: "sha256:…"`), and the asset downloads, with `Range` answered by 206.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;
use bytes::Bytes;
use serde_json::{json, Value};
use sha2::Digest as _;

/// What the listing says about an asset's checksum.
#[derive(Clone, Debug)]
pub enum Digest {
    /// The true sha256 of the bytes served.
    True,
    /// A wrong one: the download must fail its check.
    Wrong,
    /// None at all, as in releases before mid-2025.
    Missing,
}

#[derive(Clone, Debug)]
pub struct MockAsset {
    pub name: String,
    pub bytes: Bytes,
    pub digest: Digest,
}

#[derive(Clone, Debug)]
pub struct MockRelease {
    pub tag: String,
    pub assets: Vec<MockAsset>,
}

struct Served {
    releases: Vec<MockRelease>,
    base: String,
}

/// The releases API base URL (what `BURNCLOUD_LLAMACPP_RELEASES` takes) of a server started on
/// 127.0.0.1:0 serving `releases` (newest first).
pub async fn start(releases: Vec<MockRelease>) -> (String, SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let served = Arc::new(Served { releases, base: format!("http://{address}") });
    let app = axum::Router::new()
        .route("/repos/ggml-org/llama.cpp/releases", get(list))
        .route("/repos/ggml-org/llama.cpp/releases/tags/{tag}", get(one))
        .route("/ggml-org/llama.cpp/releases/download/{tag}/{name}", get(download))
        .with_state(served);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}/repos/ggml-org/llama.cpp/releases"), address)
}

fn release_json(served: &Served, release: &MockRelease) -> Value {
    let assets: Vec<Value> = release
        .assets
        .iter()
        .map(|asset| {
            let digest = match asset.digest {
                Digest::True => json!(format!("sha256:{}", hex(&sha2::Sha256::digest(&asset.bytes)))),
                Digest::Wrong => json!(format!("sha256:{}", "0".repeat(64))),
                Digest::Missing => Value::Null,
            };
            json!({
                "name": asset.name,
                "size": asset.bytes.len(),
                "content_type": "application/octet-stream",
                "state": "uploaded",
                "browser_download_url": format!("{}/ggml-org/llama.cpp/releases/download/{}/{}", served.base, release.tag, asset.name),
                "digest": digest,
            })
        })
        .collect();
    json!({"tag_name": release.tag, "name": release.tag, "draft": false, "prerelease": false, "assets": assets})
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn list(State(served): State<Arc<Served>>) -> Json<Value> {
    Json(Value::Array(served.releases.iter().map(|r| release_json(&served, r)).collect()))
}

async fn one(State(served): State<Arc<Served>>, Path(tag): Path<String>) -> Response {
    match served.releases.iter().find(|r| r.tag == tag) {
        Some(release) => Json(release_json(&served, release)).into_response(),
        None => (StatusCode::NOT_FOUND, Json(json!({"message": "Not Found", "status": "404"}))).into_response(),
    }
}

async fn download(
    State(served): State<Arc<Served>>,
    Path((tag, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let asset = served.releases.iter().filter(|r| r.tag == tag).flat_map(|r| &r.assets).find(|a| a.name == name);
    let Some(asset) = asset else { return StatusCode::NOT_FOUND.into_response() };
    let total = asset.bytes.len() as u64;
    let start = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.trim_end_matches('-').parse::<u64>().ok());
    match start {
        Some(start) if start < total => Response::builder()
            .status(StatusCode::PARTIAL_CONTENT)
            .header(header::CONTENT_RANGE, format!("bytes {start}-{}/{total}", total - 1))
            .body(Body::from(asset.bytes.slice(start as usize..)))
            .unwrap(),
        Some(_) => StatusCode::RANGE_NOT_SATISFIABLE.into_response(),
        None => {
            Response::builder().header(header::CONTENT_LENGTH, total).body(Body::from(asset.bytes.clone())).unwrap()
        }
    }
}
