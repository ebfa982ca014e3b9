//! The VideoRoom plugin's requests for the harness's peers: create a room, publish
//! (`join` as publisher, then `configure` with the offer), subscribe (`join` as subscriber
//! with `feed`: Janus offers, the viewer answers with `start`).

use huddle_client::{ClientError, ClientOptions, Publisher, VideoCodec, Viewer};
use serde_json::{Value, json};

use super::JanusError;
use super::api::Session;

pub const PLUGIN: &str = "janus.plugin.videoroom";
/// VideoRoom's error code for a feed that does not exist (or does not publish yet).
const NO_SUCH_FEED: i64 = 428;
/// How often, and how far apart, a subscriber retries a feed that is not there yet.
const FEED_RETRIES: u32 = 50;
const FEED_RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

/// `create`: a room for one publisher with the codec the harness sends; no bitrate cap,
/// no periodic keyframe requests.
pub async fn create_room(
    session: &Session,
    handle: u64,
    room: u64,
    video: Option<VideoCodec>,
) -> Result<(), JanusError> {
    let videocodec = match video {
        Some(VideoCodec::H264) => "h264",
        _ => "vp8",
    };
    let body = json!({
        "request": "create",
        "room": room,
        "description": "huddle-loadtest",
        "publishers": 3,
        "bitrate": 0,
        "fir_freq": 0,
        "audiocodec": "opus",
        "videocodec": videocodec,
    });
    let (data, _) = session.message(handle, body, None).await?;
    expect(&data, "videoroom", "created")
}

/// `destroy` of a room.
pub async fn destroy_room(session: &Session, handle: u64, room: u64) -> Result<(), JanusError> {
    let (data, _) = session
        .message(handle, json!({"request": "destroy", "room": room}), None)
        .await?;
    expect(&data, "videoroom", "destroyed")
}

/// Joins `room` as its publisher on `handle` and publishes; returns the peer and its feed id.
pub async fn publish(
    session: &Session,
    handle: u64,
    room: u64,
    opts: ClientOptions,
) -> Result<(Publisher, u64), JanusError> {
    let join =
        json!({"request": "join", "ptype": "publisher", "room": room, "display": "loadtest"});
    let (data, _) = session.message(handle, join, None).await?;
    expect(&data, "videoroom", "joined")?;
    let feed = data
        .get("id")
        .and_then(Value::as_u64)
        .ok_or_else(|| JanusError::Protocol(format!("joined without an id: {data}")))?;
    let publisher = Publisher::connect_with(opts, |offer| async move {
        let configure = json!({"request": "configure", "audio": true, "video": true});
        let jsep = json!({"type": "offer", "sdp": offer});
        let (data, jsep) = session
            .message(handle, configure, Some(jsep))
            .await
            .map_err(to_client)?;
        if data.get("configured").and_then(Value::as_str) != Some("ok") {
            return Err(ClientError::Protocol(format!("configure: {data}")));
        }
        let answer = sdp_of(jsep.as_ref(), "answer").map_err(to_client)?;
        session.end_of_candidates(handle).await.map_err(to_client)?;
        Ok(answer)
    })
    .await?;
    Ok((publisher, feed))
}

/// Subscribes to `feed` in `room` on a new handle: Janus offers, the viewer answers.
pub async fn subscribe(
    session: &Session,
    room: u64,
    feed: u64,
    opts: ClientOptions,
) -> Result<Viewer, JanusError> {
    let handle = session.attach(PLUGIN).await?;
    let join = json!({"request": "join", "ptype": "subscriber", "room": room, "feed": feed});
    // A feed can be subscribed to only once Janus has the publisher's media up, which may
    // be a little after our side of its PeerConnection connected.
    let mut tries = 0;
    let (data, jsep) = loop {
        match session.message(handle, join.clone(), None).await {
            Err(JanusError::Plugin {
                code: NO_SUCH_FEED, ..
            }) if tries < FEED_RETRIES => {
                tries += 1;
                tokio::time::sleep(FEED_RETRY_PAUSE).await;
            }
            r => break r?,
        }
    };
    expect(&data, "videoroom", "attached")?;
    let offer = sdp_of(jsep.as_ref(), "offer")?;
    let viewer = Viewer::answer(&offer, opts, |answer| async move {
        let start = json!({"request": "start", "room": room});
        let jsep = json!({"type": "answer", "sdp": answer});
        let (data, _) = session
            .message(handle, start, Some(jsep))
            .await
            .map_err(to_client)?;
        if data.get("started").and_then(Value::as_str) != Some("ok") {
            return Err(ClientError::Protocol(format!("start: {data}")));
        }
        session.end_of_candidates(handle).await.map_err(to_client)
    })
    .await?;
    Ok(viewer)
}

fn expect(data: &Value, key: &str, value: &str) -> Result<(), JanusError> {
    if data.get(key).and_then(Value::as_str) == Some(value) {
        Ok(())
    } else {
        Err(JanusError::Protocol(format!(
            "expected {key}={value}, got {data}"
        )))
    }
}

/// The SDP of a JSEP object of the given type.
fn sdp_of(jsep: Option<&Value>, kind: &str) -> Result<String, JanusError> {
    let jsep = jsep.ok_or_else(|| JanusError::Protocol(format!("no JSEP {kind}")))?;
    if jsep.get("type").and_then(Value::as_str) != Some(kind) {
        return Err(JanusError::Protocol(format!(
            "expected a JSEP {kind}, got {jsep}"
        )));
    }
    jsep.get("sdp")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| JanusError::Protocol(format!("JSEP {kind} without sdp")))
}

/// Janus failures inside the client's signalling callbacks.
fn to_client(e: JanusError) -> ClientError {
    ClientError::Protocol(format!("Janus: {e}"))
}
