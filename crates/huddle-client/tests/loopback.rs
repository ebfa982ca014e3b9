//! Publisher and Viewer against a tiny in-test WHIP/WHEP server: a TcpListener HTTP/1.1
//! responder whose answers come from str0m `Rtc`s in RTP mode on their own UDP sockets,
//! relaying publisher RTP to the viewer and viewer PLIs back to the publisher.
//! Proves the client is a real WebRTC peer (ICE, DTLS, SRTP), without the SFU.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use huddle_client::clip::{CLIP_IVF, Ivf, OPUS_SILENCE};
use huddle_client::media::verify_payload;
use huddle_client::{ClientError, ClientOptions, Publisher, VideoCodec, VideoSource, Viewer};
use str0m::change::SdpOffer;
use str0m::format::Codec;
use str0m::media::{KeyframeRequestKind, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpWrite;
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

const TOKEN: &str = "secret";

/// Messages between the server's publisher-side and viewer-side Rtcs.
#[derive(Debug)]
enum Relay {
    Rtp {
        kind: MediaKind,
        codec: Codec,
        seq: u64,
        time: u32,
        marker: bool,
        payload: Arc<[u8]>,
    },
    Pli,
}

#[derive(Debug, Default)]
struct Received {
    audio: u64,
    video: u64,
    mismatches: u64,
    /// Whether the WHIP offer carried `a=candidate` lines.
    publish_offer_had_candidates: Option<bool>,
    /// Publisher video as received: (seq, RTP time, marker, payload), first 2,000.
    video_rtp: Vec<(u64, u32, bool, Vec<u8>)>,
    /// Publisher audio payloads, first 200.
    audio_payloads: Vec<Vec<u8>>,
}

struct Server {
    addr: SocketAddr,
    received: Arc<Mutex<Received>>,
}

struct Ends {
    pub_in: Option<(mpsc::Receiver<Relay>, mpsc::Sender<Relay>)>,
    view_in: Option<(mpsc::Receiver<Relay>, mpsc::Sender<Relay>)>,
}

async fn start_server() -> Server {
    // RUST_LOG=debug shows the peers' traces; warnings are shown by default.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
    huddle_client::ensure_crypto_provider();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(Mutex::new(Received::default()));
    let (to_view, view_rx) = mpsc::channel(4096);
    let (to_pub, pub_rx) = mpsc::channel(4096);
    let ends = Arc::new(Mutex::new(Ends {
        pub_in: Some((pub_rx, to_view)),
        view_in: Some((view_rx, to_pub)),
    }));
    let rec = received.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(handle_http(stream, ends.clone(), rec.clone()));
        }
    });
    Server { addr, received }
}

async fn handle_http(mut stream: TcpStream, ends: Arc<Mutex<Ends>>, rec: Arc<Mutex<Received>>) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "client closed early");
        data.extend_from_slice(&buf[..n]);
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap().to_string();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .get("content-length")
        .map(|v| v.parse().unwrap())
        .unwrap_or(0);
    while data.len() < head_end + len {
        let n = stream.read(&mut buf).await.unwrap();
        data.extend_from_slice(&buf[..n]);
    }
    let body = String::from_utf8_lossy(&data[head_end..head_end + len]).to_string();
    let mut parts = request_line.split(' ');
    let (method, path) = (parts.next().unwrap(), parts.next().unwrap());

    let authorized = headers.get("authorization").map(String::as_str) == Some("Bearer secret");
    let (status, extra, resp_body) = if !authorized {
        ("401 Unauthorized", String::new(), String::new())
    } else {
        match (method, path) {
            ("POST", "/whip" | "/whep") => {
                assert_eq!(headers.get("content-type").unwrap(), "application/sdp");
                let publish = path == "/whip";
                if publish {
                    rec.lock().unwrap().publish_offer_had_candidates =
                        Some(body.contains("a=candidate"));
                }
                let end = {
                    let mut e = ends.lock().unwrap();
                    if publish {
                        e.pub_in.take()
                    } else {
                        e.view_in.take()
                    }
                };
                let (inbox, outbox) = end.expect("one session per endpoint");
                let answer = answer_and_serve(&body, publish, inbox, outbox, rec).await;
                let loc = if publish {
                    "session/pub"
                } else {
                    "/session/view"
                };
                (
                    "201 Created",
                    format!("Content-Type: application/sdp\r\nLocation: {loc}\r\nETag: \"e1\"\r\n"),
                    answer,
                )
            }
            ("DELETE", "/session/pub" | "/session/view") => {
                ("200 OK", String::new(), String::new())
            }
            _ => (
                "404 Not Found",
                String::new(),
                "no such endpoint".to_string(),
            ),
        }
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{resp_body}",
        resp_body.len()
    );
    stream.write_all(resp.as_bytes()).await.unwrap();
    let _ = stream.shutdown().await;
}

/// Accepts the offer with a str0m Rtc in RTP mode and drives it on its own socket.
async fn answer_and_serve(
    offer: &str,
    publish: bool,
    inbox: mpsc::Receiver<Relay>,
    outbox: mpsc::Sender<Relay>,
    rec: Arc<Mutex<Received>>,
) -> String {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = socket.local_addr().unwrap();
    let mut rtc = Rtc::builder()
        .set_rtp_mode(true)
        .set_mtu(1150..=1500)
        .build(Instant::now());
    rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
    let offer = SdpOffer::from_sdp_string(offer).unwrap();
    let answer = rtc.sdp_api().accept_offer(offer).unwrap();
    tokio::spawn(serve(rtc, socket, local, publish, inbox, outbox, rec));
    answer.to_sdp_string()
}

fn codec_of(rtc: &Rtc, pt: Pt) -> Option<Codec> {
    rtc.codec_config()
        .params()
        .iter()
        .find(|p| p.pt() == pt)
        .map(|p| p.spec().codec)
}

async fn serve(
    mut rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    publish: bool,
    mut inbox: mpsc::Receiver<Relay>,
    outbox: mpsc::Sender<Relay>,
    rec: Arc<Mutex<Received>>,
) {
    let mut mids: HashMap<MediaKind, Mid> = HashMap::new();
    let mut buf = vec![0u8; 2048];
    loop {
        // Drain to Timeout after every mutation.
        let timeout = loop {
            match rtc.poll_output() {
                Ok(Output::Timeout(t)) => break t,
                Ok(Output::Transmit(t)) => {
                    let _ = socket.send_to(&t.contents, t.destination).await;
                }
                Ok(Output::Event(e)) => match e {
                    Event::MediaAdded(m) => {
                        mids.insert(m.kind, m.mid);
                    }
                    Event::RtpPacket(pkt) if publish => {
                        let codec = codec_of(&rtc, pkt.header.payload_type).unwrap();
                        let kind = if codec.is_audio() {
                            MediaKind::Audio
                        } else {
                            MediaKind::Video
                        };
                        let video_codec = match codec {
                            Codec::Vp8 => Some(VideoCodec::Vp8),
                            Codec::H264 => Some(VideoCodec::H264),
                            _ => None,
                        };
                        let ok = verify_payload(video_codec, &pkt.payload).is_ok();
                        {
                            let mut r = rec.lock().unwrap();
                            match kind {
                                MediaKind::Audio => r.audio += 1,
                                MediaKind::Video => r.video += 1,
                            }
                            if kind == MediaKind::Video && r.video_rtp.len() < 2000 {
                                r.video_rtp.push((
                                    *pkt.seq_no,
                                    pkt.header.timestamp,
                                    pkt.header.marker,
                                    pkt.payload.to_vec(),
                                ));
                            }
                            if kind == MediaKind::Audio && r.audio_payloads.len() < 200 {
                                r.audio_payloads.push(pkt.payload.to_vec());
                            }
                            if !ok {
                                r.mismatches += 1;
                            }
                        }
                        let _ = outbox.try_send(Relay::Rtp {
                            kind,
                            codec,
                            seq: *pkt.seq_no,
                            time: pkt.header.timestamp,
                            marker: pkt.header.marker,
                            payload: pkt.payload.clone(),
                        });
                    }
                    Event::KeyframeRequest(_) if !publish => {
                        let _ = outbox.try_send(Relay::Pli);
                    }
                    Event::Closed => return,
                    _ => {}
                },
                Err(_) => return,
            }
        };
        if !rtc.is_alive() {
            return;
        }
        tokio::select! {
            r = socket.recv_from(&mut buf) => {
                let Ok((n, source)) = r else { continue };
                let Ok(contents) = buf[..n].try_into() else { continue };
                let input = Input::Receive(
                    Instant::now(),
                    Receive { proto: Protocol::Udp, source, destination: local, contents },
                );
                let _ = rtc.handle_input(input);
            }
            _ = tokio::time::sleep_until(timeout.into()) => {
                let _ = rtc.handle_input(Input::Timeout(Instant::now()));
            }
            Some(msg) = inbox.recv() => match msg {
                Relay::Pli => {
                    if let Some(&mid) = mids.get(&MediaKind::Video)
                        && let Some(rx) = rtc.direct_api().stream_rx_by_mid(mid, None)
                    {
                        rx.request_keyframe(KeyframeRequestKind::Pli);
                    }
                }
                Relay::Rtp { kind, codec, seq, time, marker, payload } => {
                    if !rtc.is_connected() {
                        continue;
                    }
                    let Some(&mid) = mids.get(&kind) else { continue };
                    let Some(media) = rtc.media(mid) else { continue };
                    let params = rtc.codec_config().params();
                    let Some(pt) = media.remote_pts().iter().copied().find(|pt| {
                        params.iter().any(|p| p.pt() == *pt && p.spec().codec == codec
                            && (codec != Codec::H264 || p.spec().format.packetization_mode == Some(1)))
                    }) else { continue };
                    let mut api = rtc.direct_api();
                    if let Some(tx) = api.stream_tx_by_mid(mid, None) {
                        tx.write_rtp(
                            RtpWrite::new(pt, seq.into(), time, Instant::now(), payload)
                                .marker(marker)
                                .nackable(kind == MediaKind::Video),
                        );
                    }
                }
            },
        }
    }
}

fn opts(video: VideoCodec, obs_like: bool) -> ClientOptions {
    ClientOptions {
        token: Some(TOKEN.to_string()),
        video: Some(video),
        obs_like,
        ..ClientOptions::default()
    }
}

async fn publish_and_view(codec: VideoCodec, obs_like: bool) {
    let server = start_server().await;
    let base = format!("http://{}", server.addr);

    let publisher = Publisher::connect(&format!("{base}/whip"), opts(codec, obs_like))
        .await
        .unwrap();
    assert_eq!(
        publisher.session_url(),
        Some(format!("{base}/session/pub").as_str())
    );
    assert_eq!(publisher.etag(), Some("\"e1\""));
    publisher
        .wait_connected(Duration::from_secs(10))
        .await
        .unwrap();

    let viewer = Viewer::connect(&format!("{base}/whep"), opts(codec, false))
        .await
        .unwrap();
    assert_eq!(
        viewer.session_url(),
        Some(format!("{base}/session/view").as_str())
    );
    viewer
        .wait_connected(Duration::from_secs(10))
        .await
        .unwrap();

    // Run until the viewer has decoded-worthy video: a keyframe and a second of media.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = viewer.stats();
        if v.video.first_keyframe_at.is_some() && v.video.packets > 150 && v.audio.packets > 50 {
            break;
        }
        assert!(Instant::now() < deadline, "viewer starved: {v:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let p = publisher.stats();
    let v = viewer.stats();
    let r = std::mem::take(&mut *server.received.lock().unwrap());
    println!("publisher {p:?}");
    println!(
        "server saw audio {} video {} mismatches {}",
        r.audio, r.video, r.mismatches
    );
    println!(
        "viewer video packets {} gaps {} kf-requests {} first-is-key {:?}",
        v.video.packets,
        v.video.seq_gaps,
        v.keyframe_requests_sent,
        v.video.first_packet_is_keyframe
    );
    assert!(p.connected);
    assert!(p.video_packets_sent > 0 && p.audio_packets_sent > 0);
    assert!(p.keyframes_sent >= 1);
    // The server peer got real SRTP packets that verify byte for byte.
    assert!(r.video > 0 && r.audio > 0);
    assert_eq!(r.mismatches, 0);
    // OBS-shaped: no candidates in the offer; the server learnt us as peer-reflexive.
    assert_eq!(r.publish_offer_had_candidates, Some(!obs_like));

    assert!(v.connected && v.connected_at.is_some());
    for s in [&v.audio, &v.video] {
        assert_eq!(s.payload_mismatches, 0, "{s:?}");
        assert_eq!(s.duplicates, 0);
        assert_eq!(s.ssrcs.len(), 1);
        assert!(s.counters_seen > 0);
        assert!(s.first_seq.unwrap() < 30_000);
        assert!(!s.latency_us.is_empty());
        // Loopback: well under a second.
        let max = s.latency_us.iter().max().unwrap();
        assert!(*max < 1_000_000, "latency {max} µs");
    }
    if v.keyframe_requests_sent > 0 {
        // The viewer's PLI went through the relay to the publisher.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(publisher.stats().keyframe_requests >= 1);
    }

    assert_eq!(viewer.close().await.unwrap(), 200);
    assert_eq!(publisher.close().await.unwrap(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vp8_publisher_to_viewer() {
    publish_and_view(VideoCodec::Vp8, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_obs_like_publisher_to_viewer() {
    publish_and_view(VideoCodec::H264, true).await;
}

/// The real VP8 clip: what reaches the server reassembles into the clip's frames, in
/// clip order (looping; jumping only forward to a keyframe on a keyframe request), with
/// RTP timestamps 3000 apart, and the audio is Opus silence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vp8_clip_publisher_to_viewer() {
    let server = start_server().await;
    let base = format!("http://{}", server.addr);
    let clip_opts = ClientOptions {
        video_source: VideoSource::Clip,
        ..opts(VideoCodec::Vp8, false)
    };
    let publisher = Publisher::connect(&format!("{base}/whip"), clip_opts)
        .await
        .unwrap();
    publisher
        .wait_connected(Duration::from_secs(10))
        .await
        .unwrap();
    let viewer = Viewer::connect(&format!("{base}/whep"), opts(VideoCodec::Vp8, false))
        .await
        .unwrap();
    viewer
        .wait_connected(Duration::from_secs(10))
        .await
        .unwrap();

    // Run for more than one loop of the 4 s clip.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let v = viewer.stats();
        let frames = server
            .received
            .lock()
            .unwrap()
            .video_rtp
            .iter()
            .filter(|x| x.2)
            .count();
        if v.video.first_keyframe_at.is_some() && frames > 140 {
            break;
        }
        assert!(Instant::now() < deadline, "starved: {frames} frames, {v:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let p = publisher.stats();
    let v = viewer.stats();
    let r = std::mem::take(&mut *server.received.lock().unwrap());
    println!("publisher {p:?}");
    assert!(p.keyframes_sent >= 2, "{p:?}");
    // The viewer saw a keyframe start through the relay (its check treats the real
    // payloads as mismatches, which is expected).
    assert!(v.video.first_keyframe_at.is_some());
    assert!(v.video.payload_mismatches > 0);

    // Reassemble frames from contiguous packets.
    let clip = Ivf::parse(CLIP_IVF).unwrap();
    let mut frames: Vec<(u32, Vec<u8>)> = Vec::new();
    let mut cur: Option<(u64, u32, Vec<u8>)> = None;
    for (seq, time, marker, payload) in &r.video_rtp {
        let start = payload[0] & 0x10 != 0;
        assert_eq!(payload[0] & !0x10, 0, "descriptor {:#x}", payload[0]);
        assert!(payload.len() <= 1200);
        if start {
            cur = Some((*seq, *time, payload[1..].to_vec()));
        } else if let Some((last, t, data)) = &mut cur {
            assert_eq!(*seq, *last + 1, "loopback lost or reordered a packet");
            assert_eq!(*time, *t);
            *last = *seq;
            data.extend_from_slice(&payload[1..]);
        }
        if *marker && let Some((_, t, data)) = cur.take() {
            frames.push((t, data));
        }
    }
    assert!(frames.len() > 140, "{}", frames.len());
    let index_of = |data: &[u8]| {
        clip.frames
            .iter()
            .position(|f| f.data == data)
            .expect("a received frame is a clip frame")
    };
    let mut prev: Option<(u32, usize)> = None;
    let mut wrapped = false;
    for (t, data) in &frames {
        let i = index_of(data);
        match prev {
            None => assert_eq!(i, 0, "first frame is the clip's first keyframe"),
            Some((pt, pi)) => {
                assert_eq!(t.wrapping_sub(pt), 3000, "RTP time step");
                let next = (pi + 1) % clip.frames.len();
                if i != next {
                    // Only a jump forward to a keyframe (a served keyframe request).
                    assert!(clip.frames[i].is_vp8_keyframe(), "{pi} -> {i}");
                }
                wrapped |= i < pi;
            }
        }
        prev = Some((*t, i));
    }
    assert!(wrapped, "the clip looped");
    assert!(!r.audio_payloads.is_empty());
    for a in &r.audio_payloads {
        assert_eq!(a[..], OPUS_SILENCE[..]);
    }

    assert_eq!(viewer.close().await.unwrap(), 200);
    assert_eq!(publisher.close().await.unwrap(), 200);

    // H.264 cannot carry the VP8 clip: refused before any request is made.
    let bad = ClientOptions {
        video_source: VideoSource::Clip,
        ..opts(VideoCodec::H264, false)
    };
    match Publisher::connect(&format!("{base}/whip"), bad).await {
        Err(ClientError::Options(_)) => {}
        other => panic!("expected an options error, got {other:?}"),
    }
}

#[tokio::test]
async fn http_errors_surface_with_status() {
    let server = start_server().await;
    let url = format!("http://{}/nope", server.addr);
    match Publisher::connect(&url, opts(VideoCodec::Vp8, false)).await {
        Err(ClientError::Http { status, body }) => {
            assert_eq!(status, 404);
            assert_eq!(body, "no such endpoint");
        }
        other => panic!("expected 404, got {other:?}"),
    }
    let no_token = ClientOptions::default();
    match Viewer::connect(&format!("http://{}/whep", server.addr), no_token).await {
        Err(ClientError::Http { status, .. }) => assert_eq!(status, 401),
        other => panic!("expected 401, got {other:?}"),
    }
}
