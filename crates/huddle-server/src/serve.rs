//! Serving HTTP (or HTTPS) until told to stop, with each connection's address known to the
//! handlers.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum_server::tls_rustls::RustlsConfig;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Requests in flight get this long to finish once stopping.
const GRACE: Duration = Duration::from_secs(5);

/// Serves `app` on `listener` (TLS with `tls`) until `stop` fires.
pub(crate) fn spawn(
    listener: TcpListener,
    app: Router,
    tls: Option<RustlsConfig>,
    stop: oneshot::Receiver<()>,
) -> std::io::Result<JoinHandle<()>> {
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    let Some(tls) = tls else {
        return Ok(tokio::spawn(async move {
            let serve = axum::serve(listener, service).with_graceful_shutdown(async {
                let _ = stop.await;
            });
            if let Err(e) = serve.await {
                tracing::error!("http server: {e}");
            }
        }));
    };
    let listener = listener.into_std()?;
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        let _ = stop.await;
        stopper.graceful_shutdown(Some(GRACE));
    });
    let server = axum_server::from_tcp_rustls(listener, tls).handle(handle);
    Ok(tokio::spawn(async move {
        if let Err(e) = server.serve(service).await {
            tracing::error!("https server: {e}");
        }
    }))
}
