//! The HTTP front end: routes, shared state, CORS. WHIP/WHEP endpoints and their sessions
//! are in [`whip`], operator endpoints in [`admin`]; every handler asks [`crate::auth`] first.

mod admin;
mod whip;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::routing::{get, post};
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

use crate::auth::Access;
use crate::limits::Admission;
use crate::media::MediaHandle;
use crate::sessions::Sessions;

/// Offers and fragments are a few kilobytes; anything above this is refused with 413.
pub const MAX_BODY: usize = 64 * 1024;

pub(crate) const SDP: &str = "application/sdp";
pub(crate) const SDPFRAG: &str = "application/trickle-ice-sdpfrag";
pub(crate) const ACCEPT_POST: HeaderName = HeaderName::from_static("accept-post");
pub(crate) const ACCEPT_PATCH: HeaderName = HeaderName::from_static("accept-patch");

#[derive(Clone, Debug)]
pub struct AppState {
    pub media: MediaHandle,
    pub sessions: Sessions,
    pub registry: crate::signaling::Registry,
    pub health: crate::health::Health,
    pub access: Access,
    pub admission: Admission,
    /// STUN/TURN servers for clients (WebSocket `welcome`, WHIP/WHEP `Link` headers).
    pub ice: std::sync::Arc<crate::ice::IceServers>,
    /// Where each room lives when this node is one of several (always here otherwise).
    pub cluster: crate::cluster::Cluster,
}

/// The whole HTTP interface. `cors_origins` may call the API from pages elsewhere; WHIP and
/// WHEP (with their sessions) are open to any origin, as RFC 9725 clients in browsers need.
pub fn router(state: AppState, cors_origins: &[String]) -> Router {
    let whip_cors = cors(AllowOrigin::from(Any));
    let endpoints = Router::new()
        .route("/whip/{room}", post(whip::whip_post).options(whip::options))
        .route("/whep/{room}", post(whip::whep_post).options(whip::options))
        .route(
            "/whip/{room}/{session}",
            axum::routing::patch(whip::session_patch)
                .delete(whip::session_delete)
                .options(whip::options),
        )
        .route(
            "/whep/{room}/{session}",
            axum::routing::patch(whip::session_patch)
                .delete(whip::session_delete)
                .options(whip::options),
        )
        .layer(whip_cors)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            whip::advertise_accepted_types,
        ));
    let origins: Vec<HeaderValue> = cors_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    let api = Router::new()
        .route("/debug/stats", get(admin::debug_stats))
        .route("/cluster", get(admin::cluster))
        .route("/debug/residence/reset", post(admin::reset_residence))
        .route(
            "/rooms/{room}/subscriptions",
            get(admin::room_subscriptions),
        )
        .route("/metrics", get(admin::prometheus))
        .route("/sessions/{id}/diagnosis", get(admin::session_diagnosis))
        .route("/rooms/{room}/ws", get(crate::signaling::ws::upgrade))
        .layer(cors(AllowOrigin::list(origins)));
    endpoints
        .merge(api)
        .route("/healthz", get(crate::health::healthz))
        .route("/readyz", get(crate::health::readyz))
        .merge(crate::page::routes())
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

fn cors(origins: AllowOrigin) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
        ])
        .expose_headers([
            header::LOCATION,
            header::ETAG,
            header::LINK,
            ACCEPT_PATCH,
            ACCEPT_POST,
        ])
}

/// The client's address, for admission (the HTTP server records it per connection).
pub(crate) type Client = axum::extract::ConnectInfo<SocketAddr>;
