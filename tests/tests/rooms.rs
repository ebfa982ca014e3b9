//! Room signaling end to end without a browser: str0m peers that speak the room WebSocket
//! protocol the page speaks (join, one offer, then answer every server offer; chat over the
//! data channel), against huddle over real UDP on loopback.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use huddle_tests::{eventually, start_server};
use serde_json::{Value, json};
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpWrite;
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// What a member saw, shared with the test.
#[derive(Debug, Default, Clone)]
struct Seen {
    id: String,
    connected: bool,
    server_offers: u32,
    /// RTP packets received per msid stream id (the publishing participant).
    video_from: HashMap<String, u64>,
    audio_packets: u64,
    chat: Vec<Value>,
    left: Vec<String>,
    errors: Vec<String>,
}

struct Member {
    seen: std::sync::Arc<std::sync::Mutex<Seen>>,
    say: mpsc::UnboundedSender<String>,
    raw: mpsc::UnboundedSender<String>,
    task: tokio::task::JoinHandle<()>,
}

impl Member {
    fn seen(&self) -> Seen {
        self.seen.lock().unwrap().clone()
    }
}

async fn join(ws_url: &str, name: &str) -> Member {
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    ws.send(Message::text(
        json!({"type": "join", "name": name}).to_string(),
    ))
    .await
    .unwrap();
    let welcome: Value = match ws.next().await.unwrap().unwrap() {
        Message::Text(t) => serde_json::from_str(&t).unwrap(),
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(welcome["type"], "welcome", "{welcome}");

    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = socket.local_addr().unwrap();
    huddle_client::ensure_crypto_provider();
    let mut rtc = Rtc::builder()
        .set_rtp_mode(true)
        .clear_codecs()
        .enable_vp8(true)
        .enable_opus(true, false)
        .build(Instant::now());
    rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
    let mut api = rtc.sdp_api();
    let video = api.add_media(
        MediaKind::Video,
        Direction::SendOnly,
        Some(name.into()),
        None,
        None,
    );
    let audio = api.add_media(
        MediaKind::Audio,
        Direction::SendOnly,
        Some(name.into()),
        None,
        None,
    );
    api.add_channel("chat".into());
    let (offer, pending) = api.apply().unwrap();
    ws.send(Message::text(
        json!({"type": "offer", "sdp": offer.to_sdp_string()}).to_string(),
    ))
    .await
    .unwrap();
    let answer = loop {
        let msg: Value = match ws.next().await.unwrap().unwrap() {
            Message::Text(t) => serde_json::from_str(&t).unwrap(),
            _ => continue,
        };
        if msg["type"] == "answer" {
            break msg["sdp"].as_str().unwrap().to_owned();
        }
        assert_ne!(msg["type"], "error", "{msg}");
    };
    rtc.sdp_api()
        .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
        .unwrap();

    let seen = std::sync::Arc::new(std::sync::Mutex::new(Seen {
        id: welcome["id"].as_str().unwrap().to_owned(),
        ..Seen::default()
    }));
    let (say, mut said) = mpsc::unbounded_channel::<String>();
    let (raw, mut raws) = mpsc::unbounded_channel::<String>();
    let shared = seen.clone();
    let task = tokio::spawn(async move {
        let pt = |rtc: &Rtc, codec: Codec| -> Pt {
            rtc.codec_config()
                .find(|p| p.spec().codec == codec)
                .unwrap()
                .pt()
        };
        let (vpt, apt) = (pt(&rtc, Codec::Vp8), pt(&rtc, Codec::Opus));
        let mut buf = vec![0u8; 2048];
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        let mut channel = None;
        let mut seq = 1u64;
        let mut msid: HashMap<Mid, String> = HashMap::new();
        loop {
            // Drain the Rtc to its next timeout.
            let timeout = loop {
                match rtc.poll_output().unwrap() {
                    Output::Timeout(t) => break t,
                    Output::Transmit(t) => {
                        let _ = socket.send_to(&t.contents, t.destination).await;
                    }
                    Output::Event(e) => {
                        let mut s = shared.lock().unwrap();
                        match e {
                            Event::Connected => s.connected = true,
                            Event::ChannelOpen(id, _) => channel = Some(id),
                            Event::ChannelData(d) => {
                                s.chat.push(serde_json::from_slice(&d.data).unwrap())
                            }
                            Event::MediaAdded(m) => {
                                if let Some(media) = rtc.media(m.mid) {
                                    msid.insert(m.mid, media.stream_id().to_owned());
                                }
                            }
                            Event::RtpPacket(p) => {
                                if p.header.payload_type == apt {
                                    s.audio_packets += 1;
                                } else {
                                    let mid = p.header.ext_vals.mid.or_else(|| {
                                        rtc.direct_api().stream_rx(&p.header.ssrc).map(|r| r.mid())
                                    });
                                    let from =
                                        mid.and_then(|m| msid.get(&m).cloned()).unwrap_or_default();
                                    *s.video_from.entry(from).or_default() += 1;
                                }
                            }
                            _ => {}
                        }
                    }
                }
            };
            tokio::select! {
                r = socket.recv_from(&mut buf) => {
                    let (n, source) = r.unwrap();
                    let input = Input::Receive(Instant::now(), Receive { proto: Protocol::Udp, source, destination: local, contents: buf[..n].try_into().unwrap() });
                    rtc.handle_input(input).unwrap();
                }
                msg = ws.next() => {
                    let Some(Ok(Message::Text(t))) = msg else { break };
                    let msg: Value = serde_json::from_str(&t).unwrap();
                    let reply = {
                        let mut s = shared.lock().unwrap();
                        match msg["type"].as_str().unwrap() {
                            "offer" => {
                                s.server_offers += 1;
                                let offer = SdpOffer::from_sdp_string(msg["sdp"].as_str().unwrap()).unwrap();
                                let answer = rtc.sdp_api().accept_offer(offer).unwrap();
                                Some(json!({"type": "answer", "sdp": answer.to_sdp_string()}).to_string())
                            }
                            "participant-left" => {
                                s.left.push(msg["id"].as_str().unwrap().to_owned());
                                None
                            }
                            "error" => {
                                s.errors.push(msg["reason"].as_str().unwrap().to_owned());
                                None
                            }
                            _ => None,
                        }
                    };
                    if let Some(reply) = reply {
                        ws.send(Message::text(reply)).await.unwrap();
                    }
                }
                () = tokio::time::sleep_until(timeout.into()) => rtc.handle_input(Input::Timeout(Instant::now())).unwrap(),
                _ = tick.tick() => {
                    if rtc.is_connected() {
                        let now = Instant::now();
                        let mut payload = vec![0x10, if seq.is_multiple_of(100) { 0x50 } else { 0x51 }, 0x01, 0x00];
                        payload.extend_from_slice(&seq.to_be_bytes());
                        payload.resize(900, 7);
                        // One write per tick (video, then audio on the next): every
                        // mutation is drained by the loop above before the next one.
                        let mut api = rtc.direct_api();
                        if seq.is_multiple_of(2) {
                            if let Some(tx) = api.stream_tx_by_mid(video, None) {
                                tx.write_rtp(RtpWrite::new(vpt, (seq / 2).into(), (seq * 1800) as u32, now, payload).marker(true).nackable(true));
                            }
                        } else if let Some(tx) = api.stream_tx_by_mid(audio, None) {
                            tx.write_rtp(RtpWrite::new(apt, (seq / 2 + 1).into(), (seq * 480) as u32, now, vec![0xf8, 0xff, 0xfe]));
                        }
                        seq += 1;
                    }
                    rtc.handle_input(Input::Timeout(Instant::now())).unwrap();
                }
                Some(text) = said.recv() => {
                    if let Some(mut ch) = channel.and_then(|c| rtc.channel(c)) {
                        ch.write(false, json!({"text": text}).to_string().as_bytes()).unwrap();
                    }
                }
                Some(text) = raws.recv() => {
                    ws.send(Message::text(text)).await.unwrap();
                }
            }
        }
    });
    Member {
        seen,
        say,
        raw,
        task,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_see_each_other_chat_and_leave() {
    let server = start_server(None).await;
    let ws = format!("ws://{}/rooms/standup/ws", server.http_addr);
    let a = join(&ws, "ada").await;
    let b = join(&ws, "bob").await;
    let c = join(&ws, "cy").await;
    let ids: Vec<String> = [&a, &b, &c].iter().map(|m| m.seen().id).collect();

    let all_flowing = eventually(Duration::from_secs(10), || async {
        [&a, &b, &c].iter().enumerate().all(|(i, m)| {
            let s = m.seen();
            let others: HashSet<&String> = ids
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, id)| id)
                .collect();
            others
                .iter()
                .all(|id| s.video_from.get(*id).is_some_and(|n| *n > 20))
                && s.audio_packets > 20
        })
    })
    .await;
    for m in [&a, &b, &c] {
        println!("{}: {:?}", m.seen().id, m.seen().video_from);
    }
    assert!(
        all_flowing,
        "every member receives both others' video and audio"
    );
    assert!(a.seen().server_offers >= 1);

    b.say.send("hello from bob".into()).unwrap();
    let chatted = eventually(Duration::from_secs(3), || async {
        a.seen().chat.len() == 1 && c.seen().chat.len() == 1
    })
    .await;
    assert!(
        chatted,
        "chat reached the others: {:?} {:?}",
        a.seen().chat,
        c.seen().chat
    );
    assert_eq!(a.seen().chat[0]["text"], "hello from bob");
    assert_eq!(a.seen().chat[0]["name"], "bob");
    assert!(b.seen().chat.is_empty(), "no echo to the sender");

    // Garbage on the socket gets an error, not a disconnect.
    a.raw.send("{not json".into()).unwrap();
    a.raw.send(r#"{"type":"dance"}"#.into()).unwrap();
    assert!(
        eventually(Duration::from_secs(2), || async {
            a.seen().errors.len() >= 2
        })
        .await
    );

    // Bob closes his socket: the others hear of it and the server lets go of him.
    let before = server.stats().await.unwrap();
    b.task.abort();
    let told = eventually(Duration::from_secs(3), || async {
        a.seen().left.contains(&ids[1]) && c.seen().left.contains(&ids[1])
    })
    .await;
    assert!(told, "others told bob left");
    let released = eventually(Duration::from_secs(3), || async {
        server.stats().await.is_some_and(|s| {
            s.participants == before.participants - 1 && s.tracks == before.tracks - 2
        })
    })
    .await;
    assert!(
        released,
        "server still holds bob: {:?}",
        server.stats().await
    );
    a.task.abort();
    c.task.abort();
    server.shutdown().await;
}
