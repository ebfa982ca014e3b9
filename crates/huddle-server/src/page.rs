//! The browser front end: the landing page, the call page and their scripts and styles,
//! embedded in the binary (no build step, nothing fetched from elsewhere).
//!
//! `GET /` and `GET /room/{room}` serve the same page (the script reads the URL);
//! `GET /assets/{file}` serves the ES modules and the style sheet.

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

const INDEX_HTML: &str = include_str!("../assets/index.html");

/// Every asset by name: (file name, content type, contents).
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/app.js"),
    ),
    (
        "call.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/call.js"),
    ),
    (
        "signaling.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/signaling.js"),
    ),
    (
        "stats.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/stats.js"),
    ),
    (
        "ui.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/ui.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../assets/style.css"),
    ),
];

/// The page routes; merge them into the application router.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/room/{room}", get(index))
        .route("/assets/{file}", get(asset))
}

async fn index() -> Response {
    ([(header::CACHE_CONTROL, "no-cache")], Html(INDEX_HTML)).into_response()
}

async fn asset(Path(file): Path<String>) -> Response {
    match lookup(&file) {
        Some((content_type, body)) => (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
    }
}

/// The content type and contents of an asset, by exact name.
fn lookup(file: &str) -> Option<(&'static str, &'static str)> {
    ASSETS
        .iter()
        .find(|(name, _, _)| *name == file)
        .map(|(_, content_type, body)| (*content_type, *body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_the_page_imports_is_served() {
        assert!(INDEX_HTML.contains("/assets/app.js"));
        assert!(INDEX_HTML.contains("/assets/style.css"));
        for (name, _, body) in ASSETS {
            for line in body.lines().filter(|l| l.starts_with("import ")) {
                let module = line
                    .split('\'')
                    .nth(1)
                    .and_then(|m| m.strip_prefix("./"))
                    .unwrap_or_else(|| panic!("{name}: unexpected import {line}"));
                assert!(
                    lookup(module).is_some(),
                    "{name} imports {module}, which is not served"
                );
            }
        }
    }

    #[test]
    fn unknown_and_traversal_names_are_not_found() {
        assert_eq!(
            lookup("app.js").map(|a| a.0),
            Some("text/javascript; charset=utf-8")
        );
        assert_eq!(
            lookup("style.css").map(|a| a.0),
            Some("text/css; charset=utf-8")
        );
        assert!(lookup("../Cargo.toml").is_none());
        assert!(lookup("index.html").is_none());
        assert!(lookup("").is_none());
    }
}
