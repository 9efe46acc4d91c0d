//! The operator console: one page and its script and style, embedded in the binary (no CDN,
//! nothing fetched from another host) and served at `/`. The page is static; everything it
//! shows comes from the API with the key the operator types in (kept in the browser
//! session only), so it sees exactly what that key may see. docs/console.md describes it.

use axum::{
    http::{header, HeaderValue},
    response::{IntoResponse, Response},
};

/// The page.
pub const INDEX_HTML: &str = include_str!("../../console/index.html");
/// Its script.
pub const CONSOLE_JS: &str = include_str!("../../console/console.js");
/// Its style.
pub const CONSOLE_CSS: &str = include_str!("../../console/console.css");

/// What the browser may load for the console: only this server's own script, style and API
/// (so a job's content that reaches the page can never pull anything from elsewhere).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `GET /`: the console page.
pub async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

/// `GET /console/console.js`.
pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", CONSOLE_JS)
}

/// `GET /console/console.css`.
pub async fn style() -> Response {
    asset("text/css; charset=utf-8", CONSOLE_CSS)
}
