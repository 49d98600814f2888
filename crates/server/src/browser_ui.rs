//! The gate in front of the browser UI at `/ui`: a sign-in page that takes the admin key and sets a
//! session cookie, and a layer that lets only a signed-in browser on this server's own origin
//! reach the pages and their WebSocket.

use axum::extract::rejection::FormRejection;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Form;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::auth::{bears_admin_key, foreign_origin, same_secret};
use crate::state::AppState;

/// The cookie a signed-in browser carries; it holds a digest of the admin key, never the key.
const UI_SESSION_COOKIE: &str = "burncloud_ui";
/// Where the pages live.
pub const UI_PATH: &str = "/ui";
const LOGIN_PATH: &str = "/ui/login";
const LOGOUT_PATH: &str = "/ui/logout";
/// A signed-in browser stays signed in for 30 days, or until the admin key is rotated.
const SESSION_SECONDS: u64 = 30 * 24 * 3600;
/// The app's mark as the browser tab's icon, inline so no request goes unanswered.
pub const UI_ICON_LINK: &str = r#"<link rel="icon" href="data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 32 32'%3E%3Crect width='32' height='32' rx='7' fill='%23e8590c'/%3E%3Ctext x='16' y='23' font-size='20' font-family='sans-serif' font-weight='700' text-anchor='middle' fill='white'%3EB%3C/text%3E%3C/svg%3E">"#;
/// A wrong key costs the guesser this long.
const WRONG_KEY_DELAY: std::time::Duration = std::time::Duration::from_millis(400);

/// The session value for `admin_key`: rotating the key signs every browser out.
fn session_value(admin_key: &str) -> String {
    let mut digest = Sha256::new();
    digest.update(b"burncloud-ui-session\0");
    digest.update(admin_key.as_bytes());
    hex::encode(digest.finalize())
}

fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(UI_SESSION_COOKIE)?.strip_prefix('='))
}

fn signed_in(headers: &HeaderMap, admin_key: &str) -> bool {
    session_cookie(headers).is_some_and(|value| same_secret(value.as_bytes(), session_value(admin_key).as_bytes()))
        || bears_admin_key(headers, admin_key)
}

/// Headers every UI answer carries: no framing by other sites, no caching of pages that show
/// account data, no referrer to other sites (`no-referrer` would make browsers send `Origin: null`
/// on the sign-in form, which the origin check refuses).
async fn harden(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("frame-ancestors 'none'"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// Every UI route, sign-in and sign-out included, answers only pages of this server's own origin.
async fn refuse_foreign_origin(request: Request, next: Next) -> Response {
    if !foreign_origin(request.headers()) {
        return next.run(request).await;
    }
    let page = sign_in_page(Some("This page belongs to BurnCloud and answers only its own address, not other sites."));
    (StatusCode::FORBIDDEN, page).into_response()
}

/// Wraps the UI's routes (`pages`, serving `/ui` and `/ui/ws`) in the sign-in gate and adds the
/// sign-in and sign-out routes.
pub fn browser_ui(state: AppState, pages: axum::Router) -> axum::Router {
    let gated = pages.route_layer(middleware::from_fn_with_state(state.clone(), require_session));
    axum::Router::new()
        .route(LOGIN_PATH, get(show_sign_in).post(sign_in))
        .route(LOGOUT_PATH, post(sign_out))
        .with_state(state)
        .merge(gated)
        .layer(middleware::from_fn(refuse_foreign_origin))
        .layer(middleware::map_response(harden))
}

fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

async fn require_session(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if signed_in(request.headers(), &state.admin_key()) {
        return next.run(request).await;
    }
    if request.headers().contains_key(header::UPGRADE) {
        return (StatusCode::UNAUTHORIZED, "sign in at /ui/login first").into_response();
    }
    Redirect::to(LOGIN_PATH).into_response()
}

async fn show_sign_in() -> Response {
    sign_in_page(None).into_response()
}

#[derive(Deserialize)]
struct SignIn {
    #[serde(default)]
    key: String,
}

async fn sign_in(State(state): State<AppState>, form: Result<Form<SignIn>, FormRejection>) -> Response {
    let key = form.map(|Form(form)| form.key).unwrap_or_default();
    let admin_key = state.admin_key();
    if key.trim().is_empty() || !same_secret(key.trim().as_bytes(), admin_key.as_bytes()) {
        tokio::time::sleep(WRONG_KEY_DELAY).await;
        let message =
            "That is not the admin key. `burncloud admin-key` prints it; the window's Settings page shows it too.";
        return (StatusCode::UNAUTHORIZED, sign_in_page(Some(message))).into_response();
    }
    let cookie = format!(
        "{UI_SESSION_COOKIE}={}; Path={UI_PATH}; Max-Age={SESSION_SECONDS}; HttpOnly; SameSite=Strict",
        session_value(&admin_key)
    );
    with_cookie(Redirect::to(UI_PATH).into_response(), &cookie)
}

async fn sign_out() -> Response {
    let expired = format!("{UI_SESSION_COOKIE}=; Path={UI_PATH}; Max-Age=0; HttpOnly; SameSite=Strict");
    with_cookie(Redirect::to(LOGIN_PATH).into_response(), &expired)
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The sign-in page, in both languages, with an optional notice.
fn sign_in_page(notice: Option<&str>) -> Html<String> {
    let notice =
        notice.map(|text| format!(r#"<p class="error" role="alert">{}</p>"#, escape_html(text))).unwrap_or_default();
    Html(format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>BurnCloud — sign in</title>{UI_ICON_LINK}
<style>
:root {{ color-scheme: light dark; font-family: system-ui, "Noto Sans CJK SC", sans-serif; }}
body {{ margin: 0; min-height: 100vh; display: grid; place-items: center; background: #f5f6f8; color: #1d2330; }}
@media (prefers-color-scheme: dark) {{ body {{ background: #14171c; color: #e6e8ec; }} form {{ background: #1d2128 !important; }} }}
form {{ background: #fff; padding: 32px; border-radius: 12px; width: 360px; box-shadow: 0 2px 12px rgba(0,0,0,.08); }}
h1 {{ font-size: 20px; margin: 0 0 4px; }} p {{ font-size: 14px; line-height: 1.5; }}
label {{ display: block; font-size: 13px; margin: 16px 0 6px; }}
input {{ width: 100%; box-sizing: border-box; padding: 9px 10px; border: 1px solid #c8ccd4; border-radius: 8px; font: inherit; }}
button {{ margin-top: 16px; width: 100%; padding: 10px; border: 0; border-radius: 8px; background: #e8590c; color: #fff; font: inherit; cursor: pointer; }}
.error {{ color: #c92a2a; }} .hint {{ color: #6b7280; font-size: 13px; }}
</style></head>
<body><form method="post" action="{LOGIN_PATH}">
<h1>BurnCloud</h1>
<p class="hint">Sign in with the admin key · 使用管理密钥登录</p>
{notice}
<label for="key">Admin key · 管理密钥</label>
<input id="key" name="key" type="password" autocomplete="current-password" autofocus required>
<button type="submit">Sign in · 登录</button>
<p class="hint">Run <code>burncloud admin-key</code> on the server to print it.<br>在服务器上运行 <code>burncloud admin-key</code> 查看。</p>
</form></body></html>"#
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn a_browser_is_signed_in_by_the_session_cookie_or_the_admin_key_alone() {
        let key = "bc-admin-abc";
        let cookie = format!("theme=dark; {UI_SESSION_COOKIE}={}", session_value(key));
        let check = |pairs: &[(&'static str, &str)]| signed_in(&headers(pairs), key);
        assert!(check(&[("cookie", &cookie)]));
        assert!(check(&[("cookie", "a=b"), ("cookie", &cookie)]));
        assert!(check(&[("authorization", "Bearer bc-admin-abc")]));
        assert!(!check(&[]));
        assert!(!check(&[("cookie", &format!("{UI_SESSION_COOKIE}={key}"))]), "the raw key is not a session");
        assert!(!check(&[("cookie", &format!("{UI_SESSION_COOKIE}={}", session_value("old-key")))]));
        assert!(!check(&[("authorization", "Bearer wrong")]));
    }

    #[test]
    fn notices_on_the_sign_in_page_are_escaped() {
        let Html(page) = sign_in_page(Some("<script>alert(1)</script>"));
        assert!(page.contains("&lt;script&gt;"));
        assert!(!page.contains("<script>alert"));
    }
}
