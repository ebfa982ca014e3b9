//! A graceful shutdown: members are told, peers closed, within a bounded time.

use std::time::Duration;

use huddle_tests::start_server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_says_bye_to_members_and_closes_peers() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let server = start_server(None).await;
    let viewer = huddle_client::Viewer::connect(
        &server.whep_url("room"),
        huddle_client::ClientOptions::default(),
    )
    .await
    .expect("viewer");
    viewer
        .wait_connected(Duration::from_secs(10))
        .await
        .expect("connected");
    let ws = format!("{}/rooms/room/ws", server.base_url().replace("http", "ws"));
    let (mut socket, _) = tokio_tungstenite::connect_async(ws).await.expect("ws");
    socket
        .send(Message::text(r#"{"type":"join","name":"ada"}"#))
        .await
        .expect("join");
    let _welcome = socket.next().await;
    let started = std::time::Instant::now();
    server.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(10), "bounded drain");
    let mut bye = None;
    while let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_secs(2), socket.next()).await
    {
        if let Message::Text(t) = msg
            && t.contains(r#""type":"bye""#)
        {
            bye = Some(t.to_string());
        }
    }
    assert!(bye.is_some(), "members are told the server goes away");
    drop(viewer);
}
