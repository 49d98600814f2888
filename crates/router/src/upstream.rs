//! The HTTP client for upstream calls. A plain-HTTP upstream that no proxy setting covers (a
//! local llama-server, a server on the LAN) is called straight through hyper's pooled client;
//! everything else (TLS, HTTP/2, `HTTP_PROXY`/`HTTPS_PROXY`/`ALL_PROXY`) goes through reqwest.
//!
//! reqwest re-parses the URL twice per request for its redirect bookkeeping and copies the
//! header map on the way: about a fifth of a local call's CPU in the gateway. For a TLS upstream
//! across the internet that is noise; for a local model answering in microseconds it is not.

use std::sync::LazyLock;
use std::time::Duration;

use axum::http::{header, HeaderName, HeaderValue, Method, Request, StatusCode, Uri};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// The proxies the environment asks for, read once: the same rules reqwest applies.
static PROXIES: LazyLock<Matcher> = LazyLock::new(Matcher::from_system);

pub(crate) struct UpstreamClient {
    direct: Client<HttpConnector, Full<Bytes>>,
    general: reqwest::Client,
}

/// Where an upstream call goes: the URL, and the same as a URI when the direct client may take
/// it. Channel endpoints are built once per snapshot, so a call does not re-parse its URL.
#[derive(Clone, Debug)]
pub(crate) struct UpstreamUrl {
    url: reqwest::Url,
    direct: Option<Uri>,
}

impl UpstreamUrl {
    pub(crate) fn new(url: reqwest::Url) -> UpstreamUrl {
        let direct = direct_uri(&url);
        UpstreamUrl { url, direct }
    }
}

/// What a call sends upstream: JSON, or a multipart form from an upload.
pub(crate) enum Outgoing {
    Json(Bytes),
    /// The caller's form, with the model the channel calls it by.
    Form(std::sync::Arc<crate::upload::Upload>, String),
}

/// An upstream's answer: status and headers, and a body read chunk by chunk.
pub(crate) struct UpstreamResponse {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    body: Body,
}

enum Body {
    Direct(hyper::body::Incoming),
    General(reqwest::Response),
}

impl UpstreamClient {
    pub(crate) fn new(connect_timeout: Duration, pool_idle_timeout: Duration) -> Result<UpstreamClient, String> {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(connect_timeout));
        connector.set_nodelay(true);
        let direct = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(pool_idle_timeout)
            .pool_timer(TokioTimer::new())
            .build(connector);
        let general = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .pool_idle_timeout(pool_idle_timeout)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(UpstreamClient { direct, general })
    }

    /// POSTs `body` to `target` with `headers`. The error is a sentence for the log.
    pub(crate) async fn post(
        &self,
        target: &UpstreamUrl,
        headers: &[(HeaderName, HeaderValue)],
        body: Outgoing,
    ) -> Result<UpstreamResponse, String> {
        match body {
            Outgoing::Json(body) => self.post_json(target, headers, body).await,
            Outgoing::Form(upload, model) => self.post_form(target, headers, &upload, &model).await,
        }
    }

    /// POSTs an upload's form, streamed from its spool. Through reqwest whatever the URL: the
    /// direct client's bodies are whole buffers, and an upload is never held whole.
    async fn post_form(
        &self,
        target: &UpstreamUrl,
        headers: &[(HeaderName, HeaderValue)],
        upload: &crate::upload::Upload,
        model: &str,
    ) -> Result<UpstreamResponse, String> {
        let (len, body) = upload.body_for(model);
        let mut request = self
            .general
            .post(target.url.clone())
            .header(header::CONTENT_TYPE, upload.content_type().clone())
            .header(header::CONTENT_LENGTH, len)
            .body(reqwest::Body::wrap_stream(body.into_data_stream()));
        for (name, value) in headers {
            request = request.header(name, value.clone());
        }
        let response = request.send().await.map_err(|error| with_causes(&error))?;
        let status = StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        Ok(UpstreamResponse { status, headers: response.headers().clone(), body: Body::General(response) })
    }

    /// POSTs a JSON `body` to `url` with `headers`. The error is a sentence for the log.
    pub(crate) async fn post_json(
        &self,
        target: &UpstreamUrl,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<UpstreamResponse, String> {
        if let Some(uri) = &target.direct {
            let request = |body: Bytes| {
                let mut request = Request::new(Full::new(body));
                *request.method_mut() = Method::POST;
                *request.uri_mut() = uri.clone();
                let request_headers = request.headers_mut();
                request_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                request_headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
                for (name, value) in headers {
                    request_headers.insert(name, value.clone());
                }
                request
            };
            // A pooled keep-alive connection the server closed as the request went out (llama-server
            // closes idle ones) fails with no answer at all: the request goes once more, on a new one.
            let response = match self.direct.request(request(body.clone())).await {
                Err(error) if closed_before_answer(&error) => self.direct.request(request(body)).await,
                sent => sent,
            };
            let response = response.map_err(|error| with_causes(&error))?;
            let (parts, body) = response.into_parts();
            return Ok(UpstreamResponse { status: parts.status, headers: parts.headers, body: Body::Direct(body) });
        }
        let mut request =
            self.general.post(target.url.clone()).header(header::CONTENT_TYPE, "application/json").body(body);
        for (name, value) in headers {
            request = request.header(name, value.clone());
        }
        let response = request.send().await.map_err(|error| with_causes(&error))?;
        let status = StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        Ok(UpstreamResponse { status, headers: response.headers().clone(), body: Body::General(response) })
    }
}

impl UpstreamResponse {
    /// The next piece of the body; `None` at its end.
    pub(crate) async fn chunk(&mut self) -> Option<Result<Bytes, String>> {
        match &mut self.body {
            Body::Direct(body) => loop {
                match body.frame().await? {
                    Ok(frame) => match frame.into_data() {
                        Ok(data) => return Some(Ok(data)),
                        // Trailers carry nothing an answer needs.
                        Err(_) => continue,
                    },
                    Err(error) => return Some(Err(with_causes(&error))),
                }
            },
            Body::General(response) => response.chunk().await.map_err(|error| with_causes(&error)).transpose(),
        }
    }
}

/// Whether the connection closed before any of the answer came (hyper's incomplete message).
fn closed_before_answer(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_incomplete_message) {
            return true;
        }
        cause = error.source();
    }
    false
}

/// The URL as a URI for the direct client, when it may take it: plain HTTP and no proxy.
fn direct_uri(url: &reqwest::Url) -> Option<Uri> {
    if url.scheme() != "http" {
        return None;
    }
    let uri: Uri = url.as_str().parse().ok()?;
    PROXIES.intercept(&uri).is_none().then_some(uri)
}

/// An error with the causes that say what actually happened ("Connection refused").
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_without_a_proxy_goes_direct() {
        let url = |s: &str| reqwest::Url::parse(s).unwrap();
        // The test environment sets no proxy; CI neither.
        if std::env::var_os("HTTP_PROXY").is_none()
            && std::env::var_os("http_proxy").is_none()
            && std::env::var_os("ALL_PROXY").is_none()
            && std::env::var_os("all_proxy").is_none()
        {
            let uri = direct_uri(&url("http://127.0.0.1:8080/v1/chat/completions")).expect("a local upstream");
            assert_eq!(uri.to_string(), "http://127.0.0.1:8080/v1/chat/completions");
        }
        assert!(direct_uri(&url("https://api.openai.com/v1/chat/completions")).is_none());
    }

    #[tokio::test]
    async fn a_refused_connection_says_so() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let client = UpstreamClient::new(Duration::from_secs(2), Duration::from_secs(90)).unwrap();
        let url = reqwest::Url::parse(&format!("http://{address}/v1/chat/completions")).unwrap();
        let error = client
            .post_json(&UpstreamUrl::new(url), &[], Bytes::from_static(b"{}"))
            .await
            .err()
            .expect("nothing listens there");
        assert!(error.to_lowercase().contains("refused"), "{error}");
    }
}
