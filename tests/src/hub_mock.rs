//! A local model hub that speaks the Hugging Face API (search with `Link` cursors, recursive tree,
//! `resolve` with a 302 to a second "CDN" host) and ModelScope's (dolphin search, repo files, repo
//! download with Range answered by 200 + Content-Range), serving files the tests provide. Faults on
//! demand: a connection cut mid-file, a corrupted byte, throttling, gated repos.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Json;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::Digest;

/// A repository the mock serves.
#[derive(Clone, Debug)]
pub struct MockRepo {
    pub files: BTreeMap<String, Bytes>,
    pub downloads: u64,
    pub likes: u64,
    /// 401 (private or gated without a token) or 403 (gated, license not accepted), unless the
    /// request carries `accepted_token`.
    pub refuse_with: Option<u16>,
    pub accepted_token: Option<String>,
    pub commit: String,
}

impl MockRepo {
    pub fn new(files: impl IntoIterator<Item = (String, Bytes)>) -> MockRepo {
        MockRepo {
            files: files.into_iter().collect(),
            downloads: 100,
            likes: 10,
            refuse_with: None,
            accepted_token: None,
            commit: "0123456789abcdef0123456789abcdef01234567".into(),
        }
    }
}

/// Faults for the next file bodies the CDN sends.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Faults {
    /// Cut the connection after this many body bytes, for the next `cut_times` bodies.
    pub cut_after: Option<u64>,
    #[serde(default)]
    pub cut_times: u32,
    /// Stop sending (without closing) after this many body bytes, for the next `stall_times` bodies.
    pub stall_after: Option<u64>,
    #[serde(default)]
    pub stall_times: u32,
    /// Flip one byte in the next body.
    #[serde(default)]
    pub corrupt_next: bool,
    /// Send bodies at about this many bytes per second.
    pub throttle_bps: Option<u64>,
}

/// One request the CDN host received.
#[derive(Clone, Debug)]
pub struct CdnRequest {
    pub path: String,
    pub range: Option<String>,
    pub authorization: Option<String>,
}

#[derive(Default)]
struct Shared {
    repos: BTreeMap<String, MockRepo>,
    /// SHA-256 of every file by repo and path, computed once when the repo is added, as a hub
    /// stores them: hashing a large file per request would bill the mock's time to the client.
    hashes: BTreeMap<(String, String), String>,
    faults: Faults,
    cdn_requests: Vec<CdnRequest>,
    hub_authorizations: Vec<Option<String>>,
    tree_page_size: usize,
}

type SharedState = Arc<HubContext>;

struct HubContext {
    shared: Mutex<Shared>,
    cdn_base: String,
    hub_base: Mutex<String>,
    bodies_started: AtomicUsize,
}

/// The running hub and its CDN; they stop when the process ends.
#[derive(Clone)]
pub struct HubMock {
    pub hub_address: SocketAddr,
    pub cdn_address: SocketAddr,
    context: SharedState,
}

impl HubMock {
    /// The hub on 127.0.0.1 and the CDN on 127.0.0.2 (a different host, as in production), or on
    /// 127.0.0.1 where that address cannot be bound.
    pub async fn start() -> HubMock {
        let hub = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind hub");
        let cdn = match tokio::net::TcpListener::bind("127.0.0.2:0").await {
            Ok(listener) => listener,
            Err(_) => tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind cdn"),
        };
        HubMock::serve_on(hub, cdn)
    }

    pub fn serve_on(hub: tokio::net::TcpListener, cdn: tokio::net::TcpListener) -> HubMock {
        let hub_address = hub.local_addr().expect("hub address");
        let cdn_address = cdn.local_addr().expect("cdn address");
        let context = Arc::new(HubContext {
            shared: Mutex::new(Shared { tree_page_size: 50, ..Shared::default() }),
            cdn_base: format!("http://{cdn_address}"),
            hub_base: Mutex::new(format!("http://{hub_address}")),
            bodies_started: AtomicUsize::new(0),
        });
        let hub_app = hub_router(context.clone());
        let cdn_app = axum::Router::new().route("/cdn/{*rest}", get(cdn_file)).with_state(context.clone());
        tokio::spawn(async move {
            let _ = axum::serve(hub, hub_app).await;
        });
        tokio::spawn(async move {
            let _ = axum::serve(cdn, cdn_app).await;
        });
        HubMock { hub_address, cdn_address, context }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.hub_address)
    }

    pub fn add_repo(&self, repo: &str, mock: MockRepo) {
        let hashes: Vec<_> =
            mock.files.iter().map(|(path, bytes)| ((repo.to_string(), path.clone()), sha256_hex(bytes))).collect();
        let mut shared = self.context.shared.lock().unwrap();
        shared.hashes.retain(|(owner, _), _| owner != repo);
        shared.hashes.extend(hashes);
        shared.repos.insert(repo.to_string(), mock);
    }

    pub fn set_faults(&self, faults: Faults) {
        self.context.shared.lock().unwrap().faults = faults;
    }

    pub fn set_tree_page_size(&self, size: usize) {
        self.context.shared.lock().unwrap().tree_page_size = size.max(1);
    }

    pub fn cdn_requests(&self) -> Vec<CdnRequest> {
        self.context.shared.lock().unwrap().cdn_requests.clone()
    }

    /// The Authorization header of every hub API and resolve request, in order.
    pub fn hub_authorizations(&self) -> Vec<Option<String>> {
        self.context.shared.lock().unwrap().hub_authorizations.clone()
    }

    pub fn bodies_started(&self) -> usize {
        self.context.bodies_started.load(Ordering::SeqCst)
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex_string(&sha2::Sha256::digest(bytes))
}

fn stored_sha256(context: &HubContext, repo: &str, path: &str) -> String {
    context.shared.lock().unwrap().hashes.get(&(repo.to_string(), path.to_string())).cloned().unwrap_or_default()
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hub_router(context: SharedState) -> axum::Router {
    axum::Router::new()
        .route("/api/models", get(hf_search))
        .route("/api/models/{owner}/{name}/tree/{revision}", get(hf_tree))
        .route("/{owner}/{name}/resolve/{revision}/{*path}", get(hf_resolve))
        .route("/api/v1/dolphin/models", put(ms_search))
        .route("/api/v1/models/{owner}/{name}/repo/files", get(ms_files))
        .route("/api/v1/models/{owner}/{name}/repo", get(ms_download))
        .route("/_mock/faults", post(set_faults))
        .route("/_mock/cdn-requests", get(list_cdn_requests))
        .with_state(context)
}

fn authorization(headers: &HeaderMap) -> Option<String> {
    headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_string)
}

fn record_hub_call(context: &HubContext, headers: &HeaderMap) {
    context.shared.lock().unwrap().hub_authorizations.push(authorization(headers));
}

/// The repo, or Hugging Face's error answer for it.
fn find_repo(context: &HubContext, repo: &str, headers: &HeaderMap) -> Result<MockRepo, Box<Response>> {
    let shared = context.shared.lock().unwrap();
    let Some(found) = shared.repos.get(repo).cloned() else {
        return Err(Box::new(hf_error(StatusCode::NOT_FOUND, "RepoNotFound", "Repository not found")));
    };
    if let Some(status) = found.refuse_with {
        let presented = authorization(headers).and_then(|v| v.strip_prefix("Bearer ").map(str::to_string));
        if presented.is_none() || presented != found.accepted_token {
            return Err(Box::new(match status {
                403 => hf_error(StatusCode::FORBIDDEN, "GatedRepo", "Access to model is restricted"),
                _ => hf_error(StatusCode::UNAUTHORIZED, "RepoNotFound", "Invalid username or password."),
            }));
        }
    }
    Ok(found)
}

fn hf_error(status: StatusCode, code: &str, message: &str) -> Response {
    let mut response = (status, Json(json!({"error": message}))).into_response();
    response.headers_mut().insert("x-error-code", code.parse().unwrap());
    response.headers_mut().insert("x-error-message", message.parse().unwrap());
    response
}

#[derive(Deserialize)]
struct SearchParams {
    search: Option<String>,
    filter: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

async fn hf_search(
    State(context): State<SharedState>,
    headers: HeaderMap,
    Query(params): Query<SearchParams>,
) -> Response {
    record_hub_call(&context, &headers);
    if params.filter.as_deref() != Some("gguf") {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "the mock expects filter=gguf"}))).into_response();
    }
    let needle = params.search.unwrap_or_default().to_lowercase();
    let limit = params.limit.unwrap_or(20).max(1);
    let start: usize =
        params.cursor.as_deref().and_then(|c| c.strip_prefix("offset-")).and_then(|n| n.parse().ok()).unwrap_or(0);
    let shared = context.shared.lock().unwrap();
    let mut matching: Vec<(&String, &MockRepo)> =
        shared.repos.iter().filter(|(name, _)| name.to_lowercase().contains(&needle)).collect();
    matching.sort_by(|a, b| b.1.downloads.cmp(&a.1.downloads).then(a.0.cmp(b.0)));
    let page: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(limit)
        .map(|(name, repo)| {
            json!({"_id": "66f0", "id": name, "modelId": name, "likes": repo.likes, "trendingScore": 1,
                   "private": false, "downloads": repo.downloads, "tags": ["gguf", "text-generation"],
                   "pipeline_tag": "text-generation", "library_name": "gguf",
                   "createdAt": "2024-09-19T00:00:00.000Z"})
        })
        .collect();
    let mut response = Json(Value::Array(page)).into_response();
    if start + limit < matching.len() {
        let base = context.hub_base.lock().unwrap().clone();
        let link = format!(
            "<{base}/api/models?search={needle}&filter=gguf&limit={limit}&cursor=offset-{}>; rel=\"next\"",
            start + limit
        );
        response.headers_mut().insert(header::LINK, link.parse().unwrap());
    }
    response
}

#[derive(Deserialize)]
struct TreeParams {
    recursive: Option<String>,
    cursor: Option<String>,
}

async fn hf_tree(
    State(context): State<SharedState>,
    headers: HeaderMap,
    Path((owner, name, _revision)): Path<(String, String, String)>,
    Query(params): Query<TreeParams>,
) -> Response {
    record_hub_call(&context, &headers);
    let repo = match find_repo(&context, &format!("{owner}/{name}"), &headers) {
        Ok(repo) => repo,
        Err(refusal) => return *refusal,
    };
    let recursive = params.recursive.as_deref() == Some("true");
    let mut entries = Vec::new();
    let mut folders = std::collections::BTreeSet::new();
    for (path, bytes) in &repo.files {
        if let Some((folder, _)) = path.rsplit_once('/') {
            folders.insert(folder.to_string());
            if !recursive {
                continue;
            }
        }
        let mut entry = json!({"type": "file", "oid": "1111111111111111111111111111111111111111", "size": bytes.len(), "path": path});
        if path.ends_with(".gguf") {
            let oid = stored_sha256(&context, &format!("{owner}/{name}"), path);
            entry["lfs"] = json!({"oid": oid, "size": bytes.len(), "pointerSize": 135});
        }
        entries.push(entry);
    }
    for folder in folders {
        entries.insert(
            0,
            json!({"type": "directory", "oid": "2222222222222222222222222222222222222222", "size": 0, "path": folder}),
        );
    }
    let page_size = context.shared.lock().unwrap().tree_page_size;
    let start: usize = params.cursor.as_deref().and_then(|c| c.parse().ok()).unwrap_or(0);
    let page: Vec<Value> = entries.iter().skip(start).take(page_size).cloned().collect();
    let mut response = Json(Value::Array(page)).into_response();
    if start + page_size < entries.len() {
        let base = context.hub_base.lock().unwrap().clone();
        let link = format!(
            "<{base}/api/models/{owner}/{name}/tree/main?recursive=true&cursor={}>; rel=\"next\"",
            start + page_size
        );
        response.headers_mut().insert(header::LINK, link.parse().unwrap());
    }
    response
}

async fn hf_resolve(
    State(context): State<SharedState>,
    headers: HeaderMap,
    Path((owner, name, _revision, path)): Path<(String, String, String, String)>,
) -> Response {
    record_hub_call(&context, &headers);
    let repo_id = format!("{owner}/{name}");
    let repo = match find_repo(&context, &repo_id, &headers) {
        Ok(repo) => repo,
        Err(refusal) => return *refusal,
    };
    let Some(bytes) = repo.files.get(&path) else {
        return hf_error(StatusCode::NOT_FOUND, "EntryNotFound", &format!("{path} does not exist"));
    };
    let location = format!("{}/cdn/hf/{repo_id}/{path}?X-Amz-Expires=3600&X-Amz-Signature=abc", context.cdn_base);
    let mut response = (StatusCode::FOUND, [(header::LOCATION, location)]).into_response();
    let response_headers = response.headers_mut();
    response_headers.insert("x-repo-commit", repo.commit.parse().unwrap());
    response_headers
        .insert("x-linked-etag", format!("\"{}\"", stored_sha256(&context, &repo_id, &path)).parse().unwrap());
    response_headers.insert("x-linked-size", bytes.len().to_string().parse().unwrap());
    response_headers.insert(header::ETAG, "\"other\"".parse().unwrap());
    response_headers.insert(header::ACCEPT_RANGES, "bytes".parse().unwrap());
    response
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DolphinSearch {
    name: String,
    page_size: usize,
    page_number: usize,
    criterion: Vec<Value>,
}

async fn ms_search(
    State(context): State<SharedState>,
    headers: HeaderMap,
    Json(body): Json<DolphinSearch>,
) -> Response {
    record_hub_call(&context, &headers);
    let gguf_only = body.criterion.iter().any(|c| c["values"].as_array().is_some_and(|v| v.contains(&json!("gguf"))));
    if !gguf_only {
        return (StatusCode::BAD_REQUEST, Json(json!({"Code": 400, "Message": "the mock expects the gguf criterion"})))
            .into_response();
    }
    let needle = body.name.to_lowercase();
    let shared = context.shared.lock().unwrap();
    let matching: Vec<(&String, &MockRepo)> =
        shared.repos.iter().filter(|(name, _)| name.to_lowercase().contains(&needle)).collect();
    let models: Vec<Value> = matching
        .iter()
        .skip((body.page_number.max(1) - 1) * body.page_size)
        .take(body.page_size)
        .map(|(name, repo)| {
            let (owner, short) = name.split_once('/').unwrap();
            json!({"Path": owner, "Name": short, "ChineseName": "", "Downloads": repo.downloads, "Stars": repo.likes,
                   "LastUpdatedTime": 1_726_665_606, "Tags": ["gguf"]})
        })
        .collect();
    Json(json!({"Code": 200, "Data": {"Model": {"TotalCount": matching.len(), "Models": models}}, "Success": true}))
        .into_response()
}

async fn ms_files(
    State(context): State<SharedState>,
    headers: HeaderMap,
    Path((owner, name)): Path<(String, String)>,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    record_hub_call(&context, &headers);
    let repo = match find_repo(&context, &format!("{owner}/{name}"), &headers) {
        Ok(repo) => repo,
        Err(_) => {
            return (StatusCode::NOT_FOUND, Json(json!({"Code": 10_010_205_001_i64, "Message": "model not found"})))
                .into_response()
        }
    };
    let recursive = params.get("Recursive").map(String::as_str) == Some("true");
    let mut files = Vec::new();
    for (path, bytes) in &repo.files {
        if path.contains('/') && !recursive {
            continue;
        }
        let file_name = path.rsplit('/').next().unwrap();
        files.push(json!({"Name": file_name, "Path": path, "Type": "blob", "Size": bytes.len(),
                          "Sha256": stored_sha256(&context, &format!("{owner}/{name}"), path), "IsLFS": true, "Revision": repo.commit,
                          "Mode": "33188", "CommittedDate": 1_726_665_606}));
    }
    Json(json!({"Code": 200, "Message": "success", "RequestId": "mock", "Data": {"Files": files}})).into_response()
}

async fn ms_download(
    State(context): State<SharedState>,
    headers: HeaderMap,
    Path((owner, name)): Path<(String, String)>,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    record_hub_call(&context, &headers);
    let repo_id = format!("{owner}/{name}");
    let Ok(repo) = find_repo(&context, &repo_id, &headers) else {
        return (StatusCode::NOT_FOUND, Json(json!({"Code": 10_010_205_001_i64, "Message": "model not found"})))
            .into_response();
    };
    let path = params.get("FilePath").cloned().unwrap_or_default();
    if !repo.files.contains_key(&path) {
        return (StatusCode::NOT_FOUND, Json(json!({"Code": 10_010_205_001_i64, "Message": "file not found"})))
            .into_response();
    }
    let location = format!("{}/cdn/ms/{repo_id}/{path}?auth_key=1700000000-0-0-abc", context.cdn_base);
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

async fn set_faults(State(context): State<SharedState>, Json(faults): Json<Faults>) -> Response {
    context.shared.lock().unwrap().faults = faults;
    Json(json!({"ok": true})).into_response()
}

async fn list_cdn_requests(State(context): State<SharedState>) -> Response {
    let shared = context.shared.lock().unwrap();
    let requests: Vec<Value> = shared
        .cdn_requests
        .iter()
        .map(|r| json!({"path": r.path, "range": r.range, "authorization": r.authorization}))
        .collect();
    Json(Value::Array(requests)).into_response()
}

/// The CDN: Range answered by 206 (Hugging Face) or by 200 with Content-Range (ModelScope); no ETag.
async fn cdn_file(State(context): State<SharedState>, headers: HeaderMap, Path(rest): Path<String>) -> Response {
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (style, repo_and_path) = rest.split_once('/').unwrap_or(("", ""));
    let mut parts = repo_and_path.splitn(3, '/');
    let (owner, name, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (bytes, faults) = {
        let mut shared = context.shared.lock().unwrap();
        shared.cdn_requests.push(CdnRequest {
            path: rest.clone(),
            range: range.clone(),
            authorization: authorization(&headers),
        });
        let Some(bytes) = shared.repos.get(&format!("{owner}/{name}")).and_then(|r| r.files.get(path)).cloned() else {
            return (StatusCode::NOT_FOUND, "no such object").into_response();
        };
        let faults = shared.faults.clone();
        if shared.faults.cut_times > 0 {
            shared.faults.cut_times -= 1;
            if shared.faults.cut_times == 0 {
                shared.faults.cut_after = None;
            }
        }
        shared.faults.corrupt_next = false;
        if shared.faults.stall_times > 0 {
            shared.faults.stall_times -= 1;
            if shared.faults.stall_times == 0 {
                shared.faults.stall_after = None;
            }
        }
        (bytes, faults)
    };
    context.bodies_started.fetch_add(1, Ordering::SeqCst);
    let total = bytes.len() as u64;
    let start = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.split_once('-'))
        .and_then(|(first, _)| first.parse::<u64>().ok());
    if let Some(first) = start {
        if first >= total {
            return (StatusCode::RANGE_NOT_SATISFIABLE, [(header::CONTENT_RANGE, format!("bytes */{total}"))])
                .into_response();
        }
    }
    let first = start.unwrap_or(0);
    let mut body = bytes.slice(first as usize..);
    if faults.corrupt_next && !body.is_empty() {
        let mut corrupted = body.to_vec();
        let middle = corrupted.len() / 2;
        corrupted[middle] ^= 0xff;
        body = Bytes::from(corrupted);
    }
    let status = match (start, style) {
        (Some(_), "hf") => StatusCode::PARTIAL_CONTENT,
        _ => StatusCode::OK,
    };
    let mut response_headers = vec![
        (header::CONTENT_TYPE, "application/octet-stream".to_string()),
        (header::CONTENT_LENGTH, body.len().to_string()),
        (header::ACCEPT_RANGES, "bytes".to_string()),
    ];
    if start.is_some() {
        response_headers.push((header::CONTENT_RANGE, format!("bytes {first}-{}/{total}", total - 1)));
    }
    let cut_after = if faults.cut_times > 0 { faults.cut_after } else { None };
    let stall_after = if faults.stall_times > 0 { faults.stall_after } else { None };
    let stream = body_stream(body, cut_after, stall_after, faults.throttle_bps);
    let mut response = (status, Body::from_stream(stream)).into_response();
    for (name, value) in response_headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}

/// The body in 64 KiB pieces, optionally throttled, cut (an error ends the connection) or stalled
/// (the connection stays open and silent).
fn body_stream(
    body: Bytes,
    cut_after: Option<u64>,
    stall_after: Option<u64>,
    throttle_bps: Option<u64>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    const PIECE: usize = 64 * 1024;
    futures_util::stream::unfold((body, 0usize), move |(body, sent)| async move {
        if sent >= body.len() {
            return None;
        }
        if stall_after.is_some_and(|limit| sent as u64 >= limit) {
            std::future::pending::<()>().await;
        }
        if let Some(limit) = cut_after {
            if sent as u64 >= limit {
                return Some((Err(std::io::Error::other("mock cut the connection")), (body.clone(), usize::MAX)));
            }
        }
        let mut end = (sent + PIECE).min(body.len());
        for limit in [cut_after, stall_after].into_iter().flatten() {
            end = end.min(limit.max(sent as u64 + 1) as usize);
        }
        if let Some(rate) = throttle_bps.filter(|&r| r > 0) {
            tokio::time::sleep(Duration::from_secs_f64((end - sent) as f64 / rate as f64)).await;
        }
        Some((Ok(body.slice(sent..end)), (body, end)))
    })
}
