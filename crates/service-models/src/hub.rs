//! Talking to the hubs: search and file listings in each hub's own API shape, and resolving a file's
//! download URL hop by hop so the access token goes to the hub host and never to the CDN.

use burncloud_service_api::{
    HubFile, HubFileList, HubRepo, HubSearchPage, HubSort, HubSource, RemoteFailure, ServiceError, ServiceResult,
};
use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_RANGE, LOCATION, RANGE};
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

use crate::names;

const SEARCH_PAGE_SIZE: usize = 30;
const MAX_REDIRECTS: usize = 8;

/// One hub: which API it speaks, where, and with which token.
#[derive(Clone)]
pub struct Hub {
    pub source: HubSource,
    pub endpoint: String,
    pub token: Option<String>,
}

/// A file's download: the response that carries the bytes, and what the hub said about the file.
pub struct Resolved {
    pub response: reqwest::Response,
    /// The commit the hub served, to pin retries to it.
    pub commit: Option<String>,
    /// The first byte of the body: the requested start for a honoured range, else 0.
    pub body_starts_at: u64,
    /// The file's full size, when the answer says it.
    pub total_size: Option<u64>,
}

impl Hub {
    fn url(&self, path_and_query: &str) -> String {
        format!("{}{}", self.endpoint.trim_end_matches('/'), path_and_query)
    }

    fn is_hub_host(&self, url: &Url) -> bool {
        Url::parse(&self.endpoint).is_ok_and(|hub| hub.origin() == url.origin())
    }

    fn request(&self, client: &reqwest::Client, method: Method, url: &str) -> reqwest::RequestBuilder {
        let builder = client.request(method, url);
        match &self.token {
            Some(token) => builder.header(AUTHORIZATION, format!("Bearer {token}")),
            None => builder,
        }
    }

    fn name(&self) -> &'static str {
        match self.source {
            HubSource::Huggingface => "Hugging Face",
            HubSource::HfMirror => "hf-mirror",
            HubSource::Modelscope => "ModelScope",
            HubSource::LlamaCpp => "llama.cpp releases",
        }
    }

    /// Turns a hub's refusal into an error that tells the user what to do.
    async fn refusal(&self, what: &str, response: reqwest::Response) -> ServiceError {
        let status = response.status();
        let hub_code = response.headers().get("x-error-code").and_then(|v| v.to_str().ok()).map(str::to_string);
        let body = response.text().await.unwrap_or_default();
        let hub_message = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v.get("error").or_else(|| v.get("Message")).and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| body.chars().take(200).collect());
        let token_hint = match self.source {
            HubSource::LlamaCpp => "check the llama.cpp download source (GitHub or a mirror prefix) in Settings",
            HubSource::Modelscope => {
                "add a ModelScope access token in Settings → Model hub (or BURNCLOUD_MODELSCOPE_TOKEN)"
            }
            _ => "add a Hugging Face access token in Settings → Model hub (or BURNCLOUD_HF_TOKEN)",
        };
        let hub = self.name();
        match status {
            StatusCode::UNAUTHORIZED => ServiceError::Remote {
                code: RemoteFailure::HubTokenRequired,
                message: format!(
                    "{hub} refused {what}: it is private, gated or does not exist. If it exists, {token_hint}."
                ),
            },
            StatusCode::FORBIDDEN => ServiceError::Remote {
                code: RemoteFailure::HubGated,
                message: format!(
                    "{hub} refused {what}: the repository is gated. Accept its license on the {hub} website, then {token_hint}."
                ),
            },
            StatusCode::NOT_FOUND => ServiceError::NotFound(format!(
                "{hub} has no {what}{}",
                hub_code.map(|code| format!(" ({code})")).unwrap_or_default()
            )),
            _ => ServiceError::Remote {
                code: RemoteFailure::HubError,
                message: format!("{hub} answered {status} for {what}: {hub_message}"),
            },
        }
    }

    fn unreachable(&self, error: reqwest::Error) -> ServiceError {
        ServiceError::Remote {
            code: RemoteFailure::HubUnreachable,
            message: format!(
                "cannot reach {} at {}: {error}. Behind a firewall or in China, try the hf-mirror or ModelScope source.",
                self.name(),
                self.endpoint
            ),
        }
    }

    async fn send(&self, builder: reqwest::RequestBuilder) -> ServiceResult<reqwest::Response> {
        builder.send().await.map_err(|error| self.unreachable(error))
    }

    async fn json(&self, what: &str, response: reqwest::Response) -> ServiceResult<(HeaderMap, Value)> {
        if !response.status().is_success() {
            return Err(self.refusal(what, response).await);
        }
        let headers = response.headers().clone();
        let value = response.json::<Value>().await.map_err(|error| ServiceError::Remote {
            code: RemoteFailure::HubError,
            message: format!("{} sent an unreadable answer for {what}: {error}", self.name()),
        })?;
        Ok((headers, value))
    }

    /// GGUF repositories matching `query`.
    pub async fn search(
        &self,
        client: &reqwest::Client,
        query: &str,
        sort: HubSort,
        page: Option<&str>,
    ) -> ServiceResult<HubSearchPage> {
        match self.source {
            HubSource::Modelscope => self.search_modelscope(client, query, sort, page).await,
            _ => self.search_huggingface(client, query, sort, page).await,
        }
    }

    async fn search_huggingface(
        &self,
        client: &reqwest::Client,
        query: &str,
        sort: HubSort,
        cursor: Option<&str>,
    ) -> ServiceResult<HubSearchPage> {
        let sort_key = match sort {
            HubSort::Likes => "likes",
            HubSort::Trending => "trendingScore",
            HubSort::Updated => "lastModified",
            HubSort::Downloads => "downloads",
        };
        let limit = SEARCH_PAGE_SIZE.to_string();
        let mut params = vec![
            ("search", query),
            ("filter", "gguf"),
            ("sort", sort_key),
            ("direction", "-1"),
            ("limit", limit.as_str()),
        ];
        if let Some(cursor) = cursor {
            params.push(("cursor", cursor));
        }
        let builder = self.request(client, Method::GET, &self.url("/api/models")).query(&params);
        let (headers, value) = self.json("the model search", self.send(builder).await?).await?;
        let data = value
            .as_array()
            .map(|models| {
                models
                    .iter()
                    .filter_map(|model| {
                        let repo = model.get("id").or_else(|| model.get("modelId"))?.as_str()?.to_string();
                        Some(HubRepo {
                            repo,
                            downloads: model.get("downloads").and_then(Value::as_u64).unwrap_or(0),
                            likes: model.get("likes").and_then(Value::as_u64).unwrap_or(0),
                            updated_at: model
                                .get("lastModified")
                                .or_else(|| model.get("createdAt"))
                                .and_then(Value::as_str)
                                .map(str::to_string),
                            tags: string_list(model.get("tags")),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(HubSearchPage { source: self.source, data, next_page: next_cursor(&headers) })
    }

    async fn search_modelscope(
        &self,
        client: &reqwest::Client,
        query: &str,
        sort: HubSort,
        page: Option<&str>,
    ) -> ServiceResult<HubSearchPage> {
        let page_number: u64 = page.and_then(|p| p.parse().ok()).filter(|&p| p >= 1).unwrap_or(1);
        let sort_by = match sort {
            HubSort::Likes => "StarsCount",
            HubSort::Updated => "GmtModified",
            HubSort::Trending => "Default",
            HubSort::Downloads => "DownloadsCount",
        };
        let body = serde_json::json!({
            "Name": query, "PageSize": SEARCH_PAGE_SIZE, "PageNumber": page_number, "SortBy": sort_by,
            "Target": "", "SingleCriterion": [],
            "Criterion": [{"category": "libraries", "predicate": "contains", "values": ["gguf"]}],
        });
        let builder = self.request(client, Method::PUT, &self.url("/api/v1/dolphin/models")).json(&body);
        let (_, value) = self.json("the model search", self.send(builder).await?).await?;
        let listing = value.pointer("/Data/Model").cloned().unwrap_or(Value::Null);
        let total = listing.get("TotalCount").and_then(Value::as_u64).unwrap_or(0);
        let data: Vec<HubRepo> = listing
            .get("Models")
            .and_then(Value::as_array)
            .map(|models| {
                models
                    .iter()
                    .filter_map(|model| {
                        let owner = model.get("Path")?.as_str()?;
                        let name = model.get("Name")?.as_str()?;
                        Some(HubRepo {
                            repo: format!("{owner}/{name}"),
                            downloads: model.get("Downloads").and_then(Value::as_u64).unwrap_or(0),
                            likes: model.get("Stars").and_then(Value::as_u64).unwrap_or(0),
                            updated_at: model.get("LastUpdatedTime").and_then(unix_seconds_to_rfc3339),
                            tags: string_list(model.get("Tags")),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let seen = page_number.saturating_mul(SEARCH_PAGE_SIZE as u64);
        let next_page = (seen < total && !data.is_empty()).then(|| (page_number + 1).to_string());
        Ok(HubSearchPage { source: self.source, data, next_page })
    }

    /// Every file of `repo`, recursively, with sizes and SHA-256 where the hub knows it.
    pub async fn files(&self, client: &reqwest::Client, repo: &str) -> ServiceResult<HubFileList> {
        check_repo_name(repo)?;
        let what = format!("repository {repo}");
        let mut listed: Vec<(String, u64, Option<String>)> = Vec::new();
        match self.source {
            HubSource::Modelscope => {
                let url = self.url(&format!("/api/v1/models/{repo}/repo/files"));
                let builder =
                    self.request(client, Method::GET, &url).query(&[("Revision", "master"), ("Recursive", "true")]);
                let (_, value) = self.json(&what, self.send(builder).await?).await?;
                for file in value.pointer("/Data/Files").and_then(Value::as_array).into_iter().flatten() {
                    if file.get("Type").and_then(Value::as_str) != Some("blob") {
                        continue;
                    }
                    let Some(path) = file.get("Path").and_then(Value::as_str) else { continue };
                    let size = file.get("Size").and_then(Value::as_u64).unwrap_or(0);
                    let sha256 =
                        file.get("Sha256").and_then(Value::as_str).filter(|s| is_sha256(s)).map(str::to_string);
                    listed.push((path.to_string(), size, sha256));
                }
            }
            _ => {
                let mut cursor: Option<String> = None;
                loop {
                    let url = self.url(&format!("/api/models/{repo}/tree/main"));
                    let mut params = vec![("recursive", "true".to_string())];
                    if let Some(cursor) = &cursor {
                        params.push(("cursor", cursor.clone()));
                    }
                    let builder = self.request(client, Method::GET, &url).query(&params);
                    let (headers, value) = self.json(&what, self.send(builder).await?).await?;
                    for entry in value.as_array().into_iter().flatten() {
                        if entry.get("type").and_then(Value::as_str) != Some("file") {
                            continue;
                        }
                        let Some(path) = entry.get("path").and_then(Value::as_str) else { continue };
                        let size = entry.get("size").and_then(Value::as_u64).unwrap_or(0);
                        let sha256 = entry
                            .pointer("/lfs/oid")
                            .and_then(Value::as_str)
                            .filter(|s| is_sha256(s))
                            .map(str::to_string);
                        listed.push((path.to_string(), size, sha256));
                    }
                    cursor = next_cursor(&headers);
                    if cursor.is_none() {
                        break;
                    }
                }
            }
        }
        listed.sort_by(|a, b| a.0.cmp(&b.0));
        let files = listed
            .into_iter()
            .map(|(path, size, sha256)| HubFile {
                quant: names::quant(&path),
                shard: names::shard(&path),
                group: names::group(&path),
                mmproj: names::is_mmproj(&path),
                estimated_bytes: None,
                fit: burncloud_service_api::Fit::Unknown,
                path,
                size,
                sha256,
            })
            .collect();
        Ok(HubFileList { source: self.source, repo: repo.to_string(), files })
    }

    /// The first URL of a file's download, at `revision` (a commit once pinned).
    fn download_url(&self, repo: &str, revision: &str, path: &str) -> String {
        let encoded_path: String = path.split('/').map(encode_segment).collect::<Vec<_>>().join("/");
        match self.source {
            HubSource::Modelscope => format!(
                "{}?Revision={}&FilePath={}",
                self.url(&format!("/api/v1/models/{repo}/repo")),
                encode_segment(revision),
                encode_segment(path)
            ),
            _ => self.url(&format!("/{repo}/resolve/{}/{encoded_path}", encode_segment(revision))),
        }
    }

    /// Follows the hub's redirects by hand, asking for the bytes from `start` on. The token goes only
    /// to the hub's own host; signed CDN URLs are resolved afresh on every call because they expire.
    pub async fn open(
        &self,
        client: &reqwest::Client,
        repo: &str,
        revision: &str,
        path: &str,
        start: u64,
    ) -> ServiceResult<Resolved> {
        let what = format!("{path} in {repo}");
        self.follow(client, &self.download_url(repo, revision, path), &what, start).await
    }

    /// The model shape in a GGUF's metadata, from as much of its start as that takes (at most
    /// 16 MB, on the default branch).
    pub async fn read_shape(
        &self,
        client: &reqwest::Client,
        repo: &str,
        path: &str,
    ) -> Result<crate::ModelShape, String> {
        const LIMIT: usize = 16 << 20;
        let revision = match self.source {
            HubSource::Modelscope => "master",
            _ => "main",
        };
        let mut response = self.open(client, repo, revision, path, 0).await.map_err(|e| e.to_string())?.response;
        let mut bytes = Vec::new();
        // Parsed at 256 KB, then each time the bytes double: a vocabulary of a few MB is read once or twice.
        let mut next_try = 256 << 10;
        loop {
            match response.chunk().await.map_err(|e| e.to_string())? {
                Some(chunk) => bytes.extend_from_slice(&chunk),
                None => return crate::parse_shape(&bytes).map_err(|e| format!("{e:?}")),
            }
            if bytes.len() < next_try {
                continue;
            }
            next_try = bytes.len() * 2;
            match crate::parse_shape(&bytes) {
                Ok(shape) => return Ok(shape),
                Err(crate::MetadataError::NeedMore) if bytes.len() < LIMIT => {}
                Err(error) => return Err(format!("{error:?}")),
            }
        }
    }

    /// Opens a file by its own URL (a release asset), from byte `start` on.
    pub async fn open_url(&self, client: &reqwest::Client, url: &str, start: u64) -> ServiceResult<Resolved> {
        let what = url.rsplit('/').next().unwrap_or(url).to_string();
        self.follow(client, url, &what, start).await
    }

    async fn follow(
        &self,
        client: &reqwest::Client,
        first_url: &str,
        what: &str,
        start: u64,
    ) -> ServiceResult<Resolved> {
        let mut url = Url::parse(first_url).map_err(|e| ServiceError::Remote {
            code: RemoteFailure::HubError,
            message: format!("bad download URL for {what}: {e}"),
        })?;
        let mut commit: Option<String> = None;
        for _ in 0..MAX_REDIRECTS {
            let mut builder = if self.is_hub_host(&url) {
                self.request(client, Method::GET, url.as_str())
            } else {
                client.get(url.as_str())
            };
            if start > 0 {
                builder = builder.header(RANGE, format!("bytes={start}-"));
            }
            let response = self.send(builder).await?;
            if let Some(found) = response.headers().get("x-repo-commit").and_then(|v| v.to_str().ok()) {
                commit.get_or_insert_with(|| found.to_string());
            }
            let status = response.status();
            if status.is_redirection() {
                let location = response.headers().get(LOCATION).and_then(|v| v.to_str().ok()).ok_or_else(|| {
                    ServiceError::Remote {
                        code: RemoteFailure::HubError,
                        message: format!("a redirect without a Location for {what}"),
                    }
                })?;
                url = url.join(location).map_err(|e| ServiceError::Remote {
                    code: RemoteFailure::HubError,
                    message: format!("a bad redirect for {what}: {e}"),
                })?;
                continue;
            }
            if status == StatusCode::RANGE_NOT_SATISFIABLE {
                return Err(ServiceError::Remote {
                    code: RemoteFailure::HubRangeRefused,
                    message: format!("the server refused to resume {what} at byte {start}"),
                });
            }
            if !status.is_success() {
                return Err(self.refusal(what, response).await);
            }
            let content_range =
                response.headers().get(CONTENT_RANGE).and_then(|v| v.to_str().ok()).and_then(parse_content_range);
            let (body_starts_at, total_size) = match content_range {
                // 206, or ModelScope's 200 with a Content-Range: the body starts where the range says.
                Some((first, total)) => (first, total),
                None if status == StatusCode::PARTIAL_CONTENT => {
                    return Err(ServiceError::Remote {
                        code: RemoteFailure::HubError,
                        message: format!("a partial answer without Content-Range for {what}"),
                    })
                }
                None => (0, response.content_length()),
            };
            return Ok(Resolved { response, commit, body_starts_at, total_size });
        }
        Err(ServiceError::Remote { code: RemoteFailure::HubError, message: format!("too many redirects for {what}") })
    }
}

/// `bytes 100-199/1000` → (100, Some(1000)).
fn parse_content_range(value: &str) -> Option<(u64, Option<u64>)> {
    let range = value.trim().strip_prefix("bytes ")?;
    let (span, total) = range.split_once('/')?;
    let (first, _) = span.split_once('-')?;
    Some((first.trim().parse().ok()?, total.trim().parse().ok()))
}

/// The `cursor` of a `Link: <…>; rel="next"` header.
fn next_cursor(headers: &HeaderMap) -> Option<String> {
    let link = headers.get(reqwest::header::LINK)?.to_str().ok()?;
    link.split(',').find(|part| part.contains("rel=\"next\"")).and_then(|part| {
        let url = part.split_once('<')?.1.split_once('>')?.0;
        let url = Url::parse(url).ok()?;
        url.query_pairs().find(|(key, _)| key == "cursor").map(|(_, value)| value.into_owned())
    })
}

fn string_list(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default()
}

fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Repo ids are `owner/name` with the characters hubs allow; anything else is refused before it
/// reaches a URL.
pub fn check_repo_name(repo: &str) -> ServiceResult<()> {
    let valid_part = |part: &str| {
        !part.is_empty()
            && part != "."
            && part != ".."
            && part.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    match repo.split_once('/') {
        Some((owner, name)) if valid_part(owner) && valid_part(name) => Ok(()),
        _ => Err(ServiceError::invalid(format!("'{repo}' is not a repository id like owner/name"))),
    }
}

/// A file path inside a repo: relative, no `..`, nothing that could escape the model folder.
pub fn check_file_path(path: &str) -> ServiceResult<()> {
    let bad = path.is_empty()
        || path.starts_with('/')
        || path.contains('\\')
        || path.contains('\0')
        || path.split('/').any(|part| part.is_empty() || part == "." || part == "..");
    if bad {
        return Err(ServiceError::invalid(format!("'{path}' is not a file path inside the repository")));
    }
    Ok(())
}

fn unix_seconds_to_rfc3339(value: &Value) -> Option<String> {
    value.as_i64().map(burncloud_service_api::rfc3339_from_unix_seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ranges_cursors_and_dates() {
        assert_eq!(parse_content_range("bytes 100-199/1000"), Some((100, Some(1000))));
        assert_eq!(parse_content_range("bytes 0-9/*"), Some((0, None)));
        assert_eq!(parse_content_range("items 1-2/3"), None);
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::LINK,
            "<https://huggingface.co/api/models?search=q&cursor=eyJ7In0%3D>; rel=\"next\"".parse().unwrap(),
        );
        assert_eq!(next_cursor(&headers).as_deref(), Some("eyJ7In0="));
        assert_eq!(unix_seconds_to_rfc3339(&Value::from(1_726_665_606)).as_deref(), Some("2024-09-18T13:20:06Z"));
        assert_eq!(unix_seconds_to_rfc3339(&Value::from(0)).as_deref(), Some("1970-01-01T00:00:00Z"));
    }

    #[test]
    fn refuses_names_that_could_escape() {
        assert!(check_repo_name("bartowski/Qwen2.5-7B-Instruct-GGUF").is_ok());
        for bad in ["noslash", "../x", "a/..", "a/b/c", "a b/c", "/x"] {
            assert!(check_repo_name(bad).is_err(), "{bad}");
        }
        assert!(check_file_path("Q8_0/model-Q8_0-00001-of-00002.gguf").is_ok());
        for bad in ["", "/etc/passwd", "a/../../b", "a//b", "a\\b", "./a"] {
            assert!(check_file_path(bad).is_err(), "{bad}");
        }
        assert_eq!(encode_segment("a b/ü"), "a%20b%2F%C3%BC");
    }
}
