//! The str0m peer's drive loop over a tokio `UdpSocket`: publishing, viewing, or both.
//!
//! The loop follows str0m's contract: after every mutation (`handle_input`,
//! `write_rtp`, `close`) `poll_output` is drained to `Output::Timeout`, sending every
//! `Transmit` and handling every `Event`, before the next mutation.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use str0m::change::SdpOffer;
use str0m::channel::ChannelId;
use str0m::format::Codec;
use str0m::media::{KeyframeRequestKind, Mid, Pt, Rid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{ExtensionValues, RtpPacket, RtpWrite, SeqNo, Ssrc};
use str0m::{Event, IceConnectionState, Input, Output, Rtc, RtcError};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{MissedTickBehavior, interval, sleep_until};

use crate::batch_recv::{BATCH, Buffers, DATAGRAM_MAX, Datagram};
use crate::clip::{CLIP_FPS, ClipPlayer, OPUS_SILENCE};
use crate::error::ClientError;
use crate::lean::{Kind, LeanCounter, Verdict};
use crate::media::{
    AudioGenerator, VideoFrame, VideoGenerator, is_keyframe_start, now_us, verify_payload,
};
use crate::offer::{Negotiated, negotiated_pt};
use crate::options::{AudioLevel, ClientOptions, LEAN_SETTLE, VideoCodec, VideoSource};
use crate::room::MemberShared;
use crate::socket::PeerSocket;
use crate::stats::{ChatMessage, PublisherStats, Received, StreamTracker, ViewerStats};
use crate::tcp::{TcpLink, next_frame};

/// How long `close` waits for the drive task to send its goodbyes.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Least time between two PLIs a viewer sends while it waits for a keyframe.
const PLI_INTERVAL: Duration = Duration::from_millis(500);
/// Most datagrams read without waiting after the socket became readable.
const RECV_BATCH: usize = 64;
/// Most `recvmmsg` batches read per tick by a polled lean viewer.
const MAX_BATCHES_PER_TICK: usize = 128;

/// Locks a mutex, ignoring poisoning (stats stay usable after a panic elsewhere).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Video codec of an incoming payload type, if it is one we generate.
fn codec_of(rtc: &Rtc, pt: Pt) -> Option<Codec> {
    rtc.codec_config()
        .params()
        .iter()
        .find(|p| p.pt() == pt)
        .map(|p| p.spec().codec)
}

/// The Opus payload type whose RED payload type `pt` is, if it is one.
fn red_primary_pt(rtc: &Rtc, pt: Pt) -> Option<Pt> {
    rtc.codec_config()
        .params()
        .iter()
        .find(|p| p.red() == Some(pt))
        .map(|p| p.pt())
}

/// What the receive statistics take of one RTP packet (or of one frame of a RED packet).
#[derive(Clone, Copy)]
struct Incoming<'a> {
    pt: Pt,
    seq: u64,
    seq16: u16,
    ssrc: Ssrc,
    rtp_time: u32,
    marker: bool,
    mid: Option<Mid>,
    payload: &'a [u8],
}

/// One outgoing media stream of a publisher.
#[derive(Debug)]
struct TxStream {
    mid: Mid,
    pt: Pt,
    seq: u64,
    rtp_time: u32,
    /// Video: whether [`tune_rtx`] ran on its str0m stream.
    rtx_tuned: bool,
}

impl TxStream {
    fn new(mid: Mid, pt: Pt) -> Self {
        TxStream {
            mid,
            pt,
            seq: rand::random_range(1..30_000),
            rtp_time: rand::random(),
            rtx_tuned: false,
        }
    }
}

/// One simulcast layer a publisher sends: its own numbering and generator.
#[derive(Debug)]
struct LayerTx {
    rid: Rid,
    seq: u64,
    generator: VideoGenerator,
    rtx_tuned: bool,
}

/// Retransmissions may take up to this share of what a video stream sent in the last
/// second, as a browser allows: str0m's default, 15%, drops the resends a 15% lossy link
/// needs (they are lost at that rate too).
const RTX_RATIO_CAP: f32 = 0.5;
/// Packets and age of the retransmission history (str0m's defaults for both).
const RTX_HISTORY_PACKETS: usize = 1024;
const RTX_HISTORY: Duration = Duration::from_secs(3);

/// Sets a video send stream's retransmission history (once per stream).
fn tune_rtx(stream: &mut str0m::rtp::StreamTx) {
    stream.set_rtx_cache(RTX_HISTORY_PACKETS, RTX_HISTORY, Some(RTX_RATIO_CAP));
}

/// Where a publisher's video frames come from.
#[derive(Debug)]
enum VideoFrames {
    Synthetic(VideoGenerator),
    Clip(ClipPlayer),
}

/// Publisher-side state of the drive loop.
#[derive(Debug)]
pub(crate) struct PublishState {
    video: Option<(TxStream, VideoFrames)>,
    /// Simulcast layers ([`ClientOptions::simulcast`]); empty: `video` is the one encoding.
    layers: Vec<LayerTx>,
    audio: Option<(TxStream, AudioGenerator)>,
    /// Opus RED negotiated: its payload type, and the last Opus frame sent (the next packet's
    /// redundant block).
    audio_red: Option<(Pt, Option<Vec<u8>>)>,
    /// The RFC 6464 level each audio packet carries ([`ClientOptions::audio_level`]).
    audio_level: Option<AudioLevel>,
    /// Send [`OPUS_SILENCE`] instead of synthetic audio (with the clip).
    opus_silence: bool,
    fps: u32,
    keyframe_interval: Duration,
    ignore_keyframe_requests: bool,
    last_keyframe: Option<Instant>,
    keyframe_wanted: bool,
    stats: Arc<Mutex<PublisherStats>>,
}

impl PublishState {
    pub fn new(
        n: &Negotiated,
        opts: &ClientOptions,
        stats: Arc<Mutex<PublisherStats>>,
    ) -> Result<Self, ClientError> {
        Self::for_rtc(&n.rtc, n.video_mid, n.audio_mid, opts, stats)
    }

    /// Publisher state for the send m-lines `video_mid` / `audio_mid` of a negotiated `rtc`.
    pub fn for_rtc(
        rtc: &Rtc,
        video_mid: Option<Mid>,
        audio_mid: Option<Mid>,
        opts: &ClientOptions,
        stats: Arc<Mutex<PublisherStats>>,
    ) -> Result<Self, ClientError> {
        let video = match (video_mid, opts.video) {
            (Some(mid), Some(codec)) => {
                let pt = negotiated_pt(rtc, mid, |p| match codec {
                    VideoCodec::Vp8 => p.spec().codec == Codec::Vp8,
                    VideoCodec::H264 => {
                        p.spec().codec == Codec::H264
                            && p.spec().format.packetization_mode == Some(1)
                    }
                })
                .ok_or_else(|| {
                    ClientError::Protocol(format!("answer accepted no {codec:?} payload type"))
                })?;
                let frames = match opts.video_source {
                    VideoSource::Synthetic => VideoFrames::Synthetic(VideoGenerator::new(
                        codec,
                        opts.video_bitrate_bps,
                        opts.fps,
                    )),
                    VideoSource::Clip if codec == VideoCodec::Vp8 => VideoFrames::Clip(
                        ClipPlayer::embedded()
                            .map_err(|e| ClientError::Options(format!("VP8 clip: {e}")))?,
                    ),
                    VideoSource::Clip => {
                        return Err(ClientError::Options(format!(
                            "VideoSource::Clip is VP8 only, not {codec:?}"
                        )));
                    }
                };
                Some((TxStream::new(mid, pt), frames))
            }
            _ => None,
        };
        let audio = match audio_mid {
            Some(mid) => {
                let pt = negotiated_pt(rtc, mid, |p| p.spec().codec == Codec::Opus)
                    .ok_or_else(|| ClientError::Protocol("answer accepted no Opus".into()))?;
                Some((TxStream::new(mid, pt), AudioGenerator::new()))
            }
            None => None,
        };
        // str0m keeps RED on the Opus parameters only when the answer agreed to it.
        let audio_red = audio.as_ref().and_then(|(tx, _)| {
            let params = rtc.codec_config().params();
            let red = params.iter().find(|p| p.pt() == tx.pt)?.red()?;
            Some((red, None))
        });
        let clip = opts.video_source == VideoSource::Clip;
        let layers = match (&video, clip) {
            (Some(_), false) => opts
                .simulcast
                .iter()
                .map(|l| LayerTx {
                    rid: Rid::from(l.rid),
                    rtx_tuned: false,
                    seq: rand::random_range(1..30_000),
                    generator: VideoGenerator::new(
                        opts.video.unwrap_or(VideoCodec::Vp8),
                        l.bitrate_bps,
                        opts.fps,
                    ),
                })
                .collect(),
            _ => Vec::new(),
        };
        Ok(PublishState {
            video,
            layers,
            audio,
            audio_red: audio_red.filter(|_| opts.red),
            audio_level: opts.audio_level.clone(),
            opus_silence: clip,
            fps: if clip { CLIP_FPS } else { opts.fps.max(1) },
            keyframe_interval: opts.keyframe_interval,
            ignore_keyframe_requests: opts.ignore_keyframe_requests,
            last_keyframe: None,
            keyframe_wanted: true,
            stats,
        })
    }
}

/// Viewer-side shared state (the trackers hold more than the snapshot).
#[derive(Debug, Default)]
pub(crate) struct ViewerShared {
    pub connected: bool,
    pub connected_at: Option<Instant>,
    pub audio: StreamTracker,
    pub video: StreamTracker,
    pub keyframe_requests_sent: u64,
}

impl ViewerShared {
    /// Trackers whose latency samples are taken, not snapshotted.
    pub fn with_latency_taken() -> Self {
        ViewerShared {
            audio: StreamTracker::with_latency_taken(),
            video: StreamTracker::with_latency_taken(),
            ..ViewerShared::default()
        }
    }

    pub fn snapshot(&self) -> ViewerStats {
        ViewerStats {
            connected: self.connected,
            connected_at: self.connected_at,
            audio: self.audio.stats.clone(),
            video: self.video.stats.clone(),
            keyframe_requests_sent: self.keyframe_requests_sent,
        }
    }
}

/// Viewer-side state of the drive loop.
#[derive(Debug)]
pub(crate) struct ViewState {
    request_keyframes: bool,
    last_pli: Option<Instant>,
    shared: Arc<Mutex<ViewerShared>>,
    /// Lean viewers: header counting and sampling ([`crate::LeanReceive`]).
    lean: Option<LeanCounter>,
    /// Lean viewers: read the socket on this tick once media flows (zero: never).
    read_interval: Duration,
}

impl ViewState {
    pub fn new(opts: &ClientOptions, shared: Arc<Mutex<ViewerShared>>) -> Self {
        let lean = opts.lean.map(|l| {
            let mut s = lock(&shared);
            s.audio.set_lean();
            s.video.set_lean();
            LeanCounter::new(l.sample_one_in)
        });
        ViewState {
            request_keyframes: opts.request_keyframes,
            last_pli: None,
            shared,
            lean,
            read_interval: opts.lean.map(|l| l.read_interval).unwrap_or_default(),
        }
    }
}

/// Room-member state of the drive loop: publishes, and receives every other participant.
#[derive(Debug)]
pub(crate) struct MemberState {
    pub publish: PublishState,
    pub request_keyframes: bool,
    /// Last PLI sent, per remote participant.
    pub last_pli: HashMap<String, Instant>,
    /// The `chat` data channel, once open.
    pub chat: Option<ChannelId>,
    pub shared: Arc<Mutex<MemberShared>>,
}

/// What the drive loop does with media.
#[derive(Debug)]
pub(crate) enum Role {
    Publish(PublishState),
    View(ViewState),
    Member(MemberState),
}

impl Role {
    fn publish_mut(&mut self) -> Option<&mut PublishState> {
        match self {
            Role::Publish(p) => Some(p),
            Role::Member(m) => Some(&mut m.publish),
            Role::View(_) => None,
        }
    }
}

/// Asks a room member's drive loop to do something with its `Rtc`.
#[derive(Debug)]
pub(crate) enum Control {
    /// Accept a server offer; the answer SDP (or why not) goes back on `reply`.
    Offer {
        sdp: String,
        reply: oneshot::Sender<Result<String, String>>,
    },
    /// Send `{"text": …}` on the chat data channel.
    Chat(String),
}

/// The next instant on a process-wide grid of `period`: every polled viewer of a process
/// reads on the same ticks, so the runtime wakes up once for all of them.
fn aligned_start(period: Duration) -> tokio::time::Instant {
    static BASE: std::sync::OnceLock<tokio::time::Instant> = std::sync::OnceLock::new();
    let base = *BASE.get_or_init(tokio::time::Instant::now);
    let now = tokio::time::Instant::now();
    let period_ns = period.as_nanos().max(1);
    let ticks = now.duration_since(base).as_nanos() / period_ns + 1;
    let offset = u64::try_from(ticks * period_ns).unwrap_or(u64::MAX);
    base + Duration::from_nanos(offset)
}

/// The next tick, or never without an interval.
async fn next_tick(tick: &mut Option<tokio::time::Interval>) {
    match tick {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// The next control message, or never if there is no channel.
async fn next_control(rx: &mut Option<mpsc::UnboundedReceiver<Control>>) -> Option<Control> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Handle on a running drive task.
#[derive(Debug)]
pub(crate) struct PeerHandle {
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    connected: watch::Receiver<bool>,
}

impl PeerHandle {
    /// Starts the drive task for a negotiated peer, with the ICE-TCP connection it talks
    /// over (if any).
    pub fn spawn_with_tcp(
        rtc: Rtc,
        socket: UdpSocket,
        tcp: Option<TcpLink>,
        role: Role,
    ) -> Result<Self, ClientError> {
        Self::spawn_inner(rtc, socket, tcp, role, None)
    }

    /// Like `spawn_with_tcp` over UDP, with a channel of [`Control`] requests (room members).
    pub fn spawn_with_control(
        rtc: Rtc,
        socket: UdpSocket,
        role: Role,
        control: Option<mpsc::UnboundedReceiver<Control>>,
    ) -> Result<Self, ClientError> {
        Self::spawn_inner(rtc, socket, None, role, control)
    }

    fn spawn_inner(
        rtc: Rtc,
        socket: UdpSocket,
        tcp: Option<TcpLink>,
        role: Role,
        control: Option<mpsc::UnboundedReceiver<Control>>,
    ) -> Result<Self, ClientError> {
        let local = socket.local_addr()?;
        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        let (connected_tx, connected_rx) = watch::channel(false);
        let driver = Driver {
            rtc,
            socket: PeerSocket::Woken(socket),
            tcp,
            local,
            role,
            connected_at: None,
            batch: None,
            arrival: None,
            timeout: Instant::now(),
            connected: false,
            connected_tx,
            buf: vec![0; 2048],
            control,
        };
        let task = tokio::spawn(driver.run(shutdown_rx));
        Ok(PeerHandle {
            shutdown: Some(shutdown_tx),
            task: Some(task),
            connected: connected_rx,
        })
    }

    /// Waits for str0m's `Event::Connected` (ICE + DTLS up).
    pub async fn wait_connected(&self, timeout: Duration) -> Result<(), ClientError> {
        let mut rx = self.connected.clone();
        match tokio::time::timeout(timeout, rx.wait_for(|c| *c)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(ClientError::Closed(
                "drive task ended before connecting".into(),
            )),
            Err(_) => Err(ClientError::Timeout(format!(
                "not connected within {timeout:?}"
            ))),
        }
    }

    /// Stops media, sends RTCP BYE / DTLS close_notify and ends the task.
    pub async fn shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

impl Drop for PeerHandle {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Whose `keyframe_requests_sent` a PLI counts towards.
enum PliTarget {
    View(Arc<Mutex<ViewerShared>>),
    Member(Arc<Mutex<MemberShared>>, String),
}

/// Key of `MemberShared::received` for packets whose m-line has no msid stream id.
const UNKNOWN_PARTICIPANT: &str = "?";

/// Video packets arriving but no frame decoded for this long: ask for a keyframe.
const STALLED: Duration = Duration::from_millis(300);

/// Records a received packet (`checked_only`: a lean sample, already counted from its
/// header); whether a PLI should be sent: video before any keyframe, or — as a browser's
/// decoder does when loss went beyond repair — video whose frames have stopped decoding
/// for [`STALLED`] while packets keep arriving.
fn record(
    s: &mut ViewerShared,
    received: Received,
    is_audio: bool,
    request_keyframes: bool,
    last_pli: Option<Instant>,
    checked_only: bool,
) -> bool {
    let tracker = if is_audio { &mut s.audio } else { &mut s.video };
    if checked_only {
        tracker.record_check(received);
    } else {
        tracker.record(received);
    }
    !is_audio
        && request_keyframes
        && (s.video.stats.first_keyframe_at.is_none() || s.video.stalled(received.at, STALLED))
        && last_pli.is_none_or(|t| received.at - t >= PLI_INTERVAL)
}

/// A chat message as the SFU relays it: `{"from","name","text","at"}`.
fn parse_chat(data: &[u8]) -> Result<ChatMessage, String> {
    let v: serde_json::Value =
        serde_json::from_slice(data).map_err(|e| format!("chat message not JSON: {e}"))?;
    let field = |k: &str| {
        v.get(k)
            .and_then(|x| x.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    Ok(ChatMessage {
        from: field("from"),
        name: field("name"),
        text: field("text"),
        at: v.get("at").and_then(|x| x.as_f64()),
    })
}

/// Buffers of a polled socket.
struct Batch {
    bufs: Box<Buffers>,
    datagrams: Vec<Datagram>,
}

struct Driver {
    rtc: Rtc,
    socket: PeerSocket,
    /// [`ClientOptions::ice_tcp_only`]: everything goes over this connection instead.
    tcp: Option<TcpLink>,
    local: SocketAddr,
    role: Role,
    /// When ICE and DTLS came up.
    connected_at: Option<Instant>,
    /// Set once the socket is polled.
    batch: Option<Batch>,
    /// Kernel arrival time (as `Instant` and µs since the epoch) of the datagram str0m is
    /// handling, for the packet it yields; `None`: now.
    arrival: Option<(Instant, u64)>,
    /// str0m's next timeout, from the last drain.
    timeout: Instant,
    connected: bool,
    connected_tx: watch::Sender<bool>,
    buf: Vec<u8>,
    control: Option<mpsc::UnboundedReceiver<Control>>,
}

impl Driver {
    async fn run(mut self, mut shutdown: oneshot::Receiver<()>) {
        let (fps, has_video, has_audio) = match self.role.publish_mut() {
            Some(p) => (p.fps, p.video.is_some(), p.audio.is_some()),
            None => (1, false, false),
        };
        let mut video_tick = interval(Duration::from_secs(1) / fps);
        video_tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut audio_tick = interval(Duration::from_millis(20));
        audio_tick.set_missed_tick_behavior(MissedTickBehavior::Skip);

        // One timer, moved only when str0m's timeout changes (a lean viewer skips most
        // packets without touching str0m, so the timeout rarely moves).
        let sleep = sleep_until(tokio::time::Instant::now());
        tokio::pin!(sleep);
        let mut armed: Option<Instant> = None;
        // Lean viewers' batched reads, once media flows.
        let mut read_tick: Option<tokio::time::Interval> = None;
        // Whether str0m was mutated since the last drain.
        let mut dirty = true;
        loop {
            if read_tick.is_none()
                && let Some(every) = self.ready_to_poll()
            {
                match self.start_polling() {
                    Ok(()) => {
                        let mut t = tokio::time::interval_at(aligned_start(every), every);
                        t.set_missed_tick_behavior(MissedTickBehavior::Delay);
                        read_tick = Some(t);
                    }
                    Err(e) => {
                        tracing::warn!("cannot poll the socket, stopping peer: {e}");
                        break;
                    }
                }
            }
            if dirty {
                if let Err(e) = self.drain().await {
                    tracing::warn!("rtc poll failed, stopping peer: {e}");
                    break;
                }
                if !self.rtc.is_alive() {
                    break;
                }
            }
            if armed != Some(self.timeout) {
                armed = Some(self.timeout);
                sleep
                    .as_mut()
                    .reset(tokio::time::Instant::from_std(self.timeout));
            }
            dirty = true;
            let sending = self.connected;
            tokio::select! {
                biased;
                _ = &mut shutdown => {
                    self.close().await;
                    break;
                }
                frame = next_frame(&mut self.tcp) => self.receive_tcp(&frame),
                r = self.socket.recv_from(&mut self.buf) => match r {
                    Ok((n, source)) => {
                        dirty = self.receive(n, source);
                        match self.receive_queued(dirty).await {
                            Ok(d) => dirty = d,
                            Err(e) => {
                                tracing::warn!("rtc poll failed, stopping peer: {e}");
                                break;
                            }
                        }
                    }
                    // E.g. ICMP port unreachable surfacing as ConnectionRefused.
                    Err(e) => {
                        tracing::debug!("udp recv: {e}");
                        dirty = false;
                    }
                },
                _ = next_tick(&mut read_tick) => match self.receive_polled().await {
                    Ok(d) => dirty = d,
                    Err(e) => {
                        tracing::warn!("rtc poll failed, stopping peer: {e}");
                        break;
                    }
                },
                // A polled viewer handles str0m's timeouts on its read ticks instead.
                () = &mut sleep, if !self.socket.is_polled() => {
                    self.mutate(Input::Timeout(Instant::now()));
                }
                _ = video_tick.tick(), if sending && has_video => {
                    self.send_video_frame().await;
                }
                _ = audio_tick.tick(), if sending && has_audio => {
                    self.send_audio_packet().await;
                }
                Some(c) = next_control(&mut self.control) => self.on_control(c),
            }
        }
        self.set_connected(false);
    }

    /// A control request; every branch is one mutation (drained by the loop afterwards).
    fn on_control(&mut self, c: Control) {
        match c {
            Control::Offer { sdp, reply } => {
                let answer = SdpOffer::from_sdp_string(&sdp)
                    .map_err(|e| format!("unparsable server offer: {e}"))
                    .and_then(|offer| {
                        self.rtc
                            .sdp_api()
                            .accept_offer(offer)
                            .map_err(|e| format!("server offer refused: {e}"))
                    })
                    .map(|answer| answer.to_sdp_string());
                let _ = reply.send(answer);
            }
            Control::Chat(text) => {
                let Role::Member(m) = &mut self.role else {
                    return;
                };
                let body = serde_json::json!({ "text": text }).to_string();
                match m.chat.and_then(|id| self.rtc.channel(id)) {
                    Some(mut ch) => {
                        if let Err(e) = ch.write(false, body.as_bytes()) {
                            lock(&m.shared).errors.push(format!("chat write: {e}"));
                        }
                    }
                    None => lock(&m.shared)
                        .errors
                        .push("chat: data channel not open".into()),
                }
            }
        }
    }

    fn mutate(&mut self, input: Input) {
        if let Err(e) = self.rtc.handle_input(input) {
            tracing::debug!("rtc rejected input: {e}");
        }
    }

    /// Datagrams already queued on the socket, at most [`RECV_BATCH`], without waiting;
    /// str0m is drained before each one that follows a mutation. Returns whether str0m was
    /// mutated by the last one.
    async fn receive_queued(&mut self, mut dirty: bool) -> Result<bool, RtcError> {
        for _ in 0..RECV_BATCH {
            // WouldBlock ends the batch; another error shows again on the next `recv_from`.
            let Ok((n, source)) = self.socket.try_recv_from(&mut self.buf) else {
                break;
            };
            if dirty {
                self.drain().await?;
            }
            dirty = self.receive(n, source);
        }
        Ok(dirty)
    }

    /// A lean viewer whose media flows, not yet polled: its read interval.
    fn ready_to_poll(&self) -> Option<Duration> {
        let Role::View(view) = &self.role else {
            return None;
        };
        let lean = view.lean.as_ref()?;
        let since = self.connected_at?;
        (!view.read_interval.is_zero()
            && lean.keyframe_seen()
            && !self.socket.is_polled()
            && since.elapsed() >= LEAN_SETTLE)
            .then_some(view.read_interval)
    }

    /// Takes the socket out of tokio for batched reads.
    fn start_polling(&mut self) -> std::io::Result<()> {
        self.socket.make_polled()?;
        self.batch = Some(Batch {
            bufs: Box::new([[0; DATAGRAM_MAX]; BATCH]),
            datagrams: Vec::with_capacity(BATCH),
        });
        Ok(())
    }

    /// A read tick of a polled socket: str0m's timeout if it is due (at most a tick late,
    /// harmless for a receiver), then whatever is queued, a batch at a time, draining str0m
    /// before each datagram that follows a mutation. Returns whether str0m was mutated last.
    async fn receive_polled(&mut self) -> Result<bool, RtcError> {
        let Some(mut batch) = self.batch.take() else {
            return Ok(false);
        };
        let now = Instant::now();
        let timed_out = self.timeout <= now;
        if timed_out {
            self.mutate(Input::Timeout(now));
        }
        let r = self.receive_batches(&mut batch, timed_out).await;
        self.batch = Some(batch);
        r
    }

    async fn receive_batches(
        &mut self,
        batch: &mut Batch,
        mut dirty: bool,
    ) -> Result<bool, RtcError> {
        for _ in 0..MAX_BATCHES_PER_TICK {
            let n = match self
                .socket
                .recv_batch(&mut batch.bufs, &mut batch.datagrams)
            {
                Ok(n) => n,
                Err(e) => {
                    tracing::debug!("udp recvmmsg: {e}");
                    break;
                }
            };
            let (mono, wall) = (Instant::now(), now_us());
            for (i, d) in batch.datagrams.iter().enumerate() {
                if d.len == 0 {
                    continue; // truncated: not ours
                }
                if dirty {
                    self.drain().await?;
                }
                let arrival = d.at_us.map(|us| {
                    let ago = Duration::from_micros(wall.saturating_sub(us));
                    (mono.checked_sub(ago).unwrap_or(mono), us)
                });
                let Some(bytes) = batch.bufs.get(i).and_then(|b| b.get(..d.len)) else {
                    continue;
                };
                dirty = self.receive_bytes(bytes, d.source, arrival);
            }
            if n < BATCH {
                break;
            }
        }
        Ok(dirty)
    }

    /// A frame from the ICE-TCP connection.
    fn receive_tcp(&mut self, frame: &[u8]) {
        let Some(link) = &self.tcp else {
            return;
        };
        let Ok(contents) = frame.try_into() else {
            return; // not STUN/DTLS/RTP/RTCP
        };
        let input = Input::Receive(
            Instant::now(),
            Receive {
                proto: Protocol::Tcp,
                source: link.peer,
                destination: link.local,
                contents,
            },
        );
        if let Err(e) = self.rtc.handle_input(input) {
            tracing::debug!("rtc rejected a TCP frame: {e}");
        }
    }

    /// A datagram from a woken socket (in `self.buf`): [`Driver::receive_bytes`].
    fn receive(&mut self, n: usize, source: SocketAddr) -> bool {
        let buf = std::mem::take(&mut self.buf);
        let mutated = self.receive_bytes(buf.get(..n).unwrap_or_default(), source, None);
        self.buf = buf;
        mutated
    }

    /// Hands a datagram to str0m — unless this is a lean viewer and the datagram is an
    /// RTP packet it only counts. `arrival`: the kernel's receive time, if known. Returns
    /// whether str0m got it (a mutation).
    fn receive_bytes(
        &mut self,
        data: &[u8],
        source: SocketAddr,
        arrival: Option<(Instant, u64)>,
    ) -> bool {
        if self.connected
            && let Role::View(view) = &mut self.role
            && let Some(lean) = &mut view.lean
            && let Verdict::Counted {
                kind,
                ext_seq,
                ssrc,
                payload_len,
                sample,
            } = lean.classify(data, &self.rtc)
        {
            let mut s = lock(&view.shared);
            let tracker = match kind {
                Kind::Audio => &mut s.audio,
                Kind::Video => &mut s.video,
            };
            let at = arrival.map_or_else(Instant::now, |(at, _)| at);
            tracker.record_header(ext_seq, ssrc, payload_len, at);
            if !sample {
                return false;
            }
        }
        let Ok(contents) = data.try_into() else {
            return false; // not STUN/DTLS/RTP/RTCP
        };
        self.arrival = arrival;
        let input = Input::Receive(
            Instant::now(),
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.local,
                contents,
            },
        );
        if let Err(e) = self.rtc.handle_input(input) {
            tracing::debug!("rtc rejected datagram from {source}: {e}");
        }
        true
    }

    /// Polls `Rtc` until `Output::Timeout` (kept in `self.timeout`), sending and
    /// dispatching along the way.
    async fn drain(&mut self) -> Result<(), RtcError> {
        loop {
            match self.rtc.poll_output()? {
                Output::Timeout(t) => {
                    self.timeout = t;
                    self.arrival = None;
                    return Ok(());
                }
                Output::Transmit(t) => self.transmit(t).await,
                Output::Event(e) => self.on_event(e),
            }
        }
    }

    /// Sends over UDP, or (ICE-TCP) as a frame on the TCP connection.
    async fn transmit(&mut self, t: str0m::net::Transmit) {
        if t.proto == Protocol::Udp {
            if let Err(e) = self.socket.send_to(&t.contents, t.destination).await {
                tracing::debug!("udp send to {}: {e}", t.destination);
            }
            return;
        }
        let Some(link) = &mut self.tcp else {
            return;
        };
        if link.peer != t.destination {
            return; // only the server's passive candidate is connected
        }
        if let Err(e) = link.send(t.contents.into()).await {
            tracing::debug!("tcp send to {}: {e}", t.destination);
            self.tcp = None;
        }
    }

    fn set_connected(&mut self, c: bool) {
        self.connected = c;
        if c && self.connected_at.is_none() {
            self.connected_at = Some(Instant::now());
        }
        self.connected_tx.send_replace(c);
        match &self.role {
            Role::Publish(p) => lock(&p.stats).connected = c,
            Role::Member(m) => {
                lock(&m.publish.stats).connected = c;
                lock(&m.shared).connected = c;
            }
            Role::View(v) => {
                let mut s = lock(&v.shared);
                s.connected = c;
                if c && s.connected_at.is_none() {
                    s.connected_at = Some(Instant::now());
                }
            }
        }
    }

    fn on_event(&mut self, e: Event) {
        match e {
            Event::Connected => self.set_connected(true),
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                self.set_connected(false)
            }
            Event::IceConnectionStateChange(
                IceConnectionState::Connected | IceConnectionState::Completed,
            ) if !self.connected && self.rtc.is_connected() => self.set_connected(true),
            Event::KeyframeRequest(req) => {
                if let Some(p) = self.role.publish_mut() {
                    lock(&p.stats).keyframe_requests += 1;
                    if !p.ignore_keyframe_requests {
                        p.keyframe_wanted = true;
                    }
                    tracing::debug!("keyframe request {:?} for {}", req.kind, req.mid);
                }
            }
            Event::RtpPacket(pkt) => self.on_rtp(pkt),
            Event::ChannelOpen(id, label) => {
                if let Role::Member(m) = &mut self.role
                    && label == "chat"
                {
                    m.chat = Some(id);
                }
            }
            Event::ChannelData(d) => {
                if let Role::Member(m) = &mut self.role {
                    let mut s = lock(&m.shared);
                    match parse_chat(&d.data) {
                        Ok(c) => s.chat.push(c),
                        Err(e) => s.errors.push(e),
                    }
                }
            }
            _ => {}
        }
    }

    fn on_rtp(&mut self, pkt: RtpPacket) {
        if matches!(self.role, Role::Publish(_)) {
            return;
        }
        let m = Incoming {
            pt: pkt.header.payload_type,
            seq: *pkt.seq_no,
            seq16: pkt.header.sequence_number,
            ssrc: pkt.header.ssrc,
            rtp_time: pkt.header.timestamp,
            marker: pkt.header.marker,
            mid: pkt.header.ext_vals.mid,
            payload: &pkt.payload,
        };
        let Some(opus) = red_primary_pt(&self.rtc, m.pt) else {
            return self.on_media(m);
        };
        // Opus RED: each frame it carries, oldest first, as a packet of its own; an earlier
        // frame only when its packet was lost (a jitter buffer takes it from here).
        let Some(blocks) = crate::red::decode(m.payload) else {
            tracing::debug!("malformed RED payload");
            return;
        };
        if let Role::View(view) = &self.role {
            let stats = &mut lock(&view.shared).audio.stats;
            stats.red_packets += 1;
            stats.red_block_mismatches +=
                blocks.iter().filter(|(pt, _, _)| *pt != *opus).count() as u64;
        }
        for (_, offset, payload) in blocks {
            let back = u64::from(offset / crate::red::FRAME_TICKS);
            let Some(seq) = m.seq.checked_sub(back) else {
                continue;
            };
            if back > 0 && (back > 2 || self.audio_seen(seq)) {
                continue;
            }
            self.on_media(Incoming {
                pt: opus,
                seq,
                seq16: m.seq16.wrapping_sub(back as u16),
                rtp_time: m.rtp_time.wrapping_sub(offset),
                // Only the newest frame keeps the packet's header extensions.
                mid: if back == 0 { m.mid } else { None },
                payload,
                ..m
            });
        }
    }

    /// A viewer already has audio packet `seq`.
    fn audio_seen(&self, seq: u64) -> bool {
        match &self.role {
            Role::View(view) => lock(&view.shared).audio.has_seen(seq),
            // A member's streams are kept per publisher: recovery is not counted there.
            _ => true,
        }
    }

    fn on_media(&mut self, inc: Incoming<'_>) {
        let codec = codec_of(&self.rtc, inc.pt);
        let is_audio = codec.map(|c| c.is_audio()).unwrap_or(false);
        let video_codec = match codec {
            Some(Codec::Vp8) => Some(VideoCodec::Vp8),
            Some(Codec::H264) => Some(VideoCodec::H264),
            _ => None,
        };
        let verified = if is_audio {
            (codec == Some(Codec::Opus))
                .then(|| verify_payload(None, inc.payload).ok())
                .flatten()
        } else {
            video_codec.and_then(|c| verify_payload(Some(c), inc.payload).ok())
        };
        let keyframe_start = if is_audio {
            None
        } else {
            Some(video_codec.is_some_and(|c| is_keyframe_start(c, inc.payload)))
        };
        let (now, at_us) = self
            .arrival
            .take()
            .unwrap_or_else(|| (Instant::now(), now_us()));
        let received = Received {
            seq: inc.seq,
            ssrc: *inc.ssrc,
            payload_len: inc.payload.len(),
            at: now,
            now_us: at_us,
            verified: verified.map(|h| (h.counter, h.send_time_us)),
            keyframe_start,
            rtp_time: inc.rtp_time,
            marker: inc.marker,
        };
        let want_pli = match &mut self.role {
            Role::Publish(_) => return,
            Role::View(view) => {
                let lean = view.lean.is_some();
                if let Some(l) = &mut view.lean {
                    l.on_sample(
                        *inc.ssrc,
                        inc.seq16,
                        inc.payload.len(),
                        keyframe_start == Some(true),
                    );
                    // Before str0m sees a gap: it must not NACK what it never got.
                    let ssrcs: Vec<u32> = l.unsuppressed().collect();
                    for ssrc in ssrcs {
                        if let Some(rx) = self.rtc.direct_api().stream_rx(&ssrc.into()) {
                            rx.suppress_nack(true);
                            l.mark_suppressed(ssrc);
                        }
                    }
                }
                let mut s = lock(&view.shared);
                let want = record(
                    &mut s,
                    received,
                    is_audio,
                    view.request_keyframes,
                    view.last_pli,
                    lean,
                );
                drop(s);
                if want {
                    view.last_pli = Some(now);
                }
                want.then(|| PliTarget::View(view.shared.clone()))
            }
            Role::Member(m) => {
                // The m-line's msid stream id is the publishing participant's id.
                let mid = inc.mid.or_else(|| {
                    self.rtc
                        .direct_api()
                        .stream_rx(&inc.ssrc)
                        .map(|rx| rx.mid())
                });
                let from = mid
                    .and_then(|mid| self.rtc.media(mid))
                    .map(|media| media.stream_id().to_owned())
                    .unwrap_or_else(|| UNKNOWN_PARTICIPANT.to_owned());
                let mut s = lock(&m.shared);
                let remote = s.received.entry(from.clone()).or_insert_with(|| {
                    let mut v = ViewerShared::with_latency_taken();
                    v.connected = true;
                    v.connected_at = Some(now);
                    v
                });
                let want = record(
                    remote,
                    received,
                    is_audio,
                    m.request_keyframes,
                    m.last_pli.get(&from).copied(),
                    false,
                );
                drop(s);
                if want {
                    m.last_pli.insert(from.clone(), now);
                }
                want.then(|| PliTarget::Member(m.shared.clone(), from))
            }
        };
        if let Some(target) = want_pli {
            // A mutation from inside the drain loop: the loop keeps polling afterwards.
            let mut api = self.rtc.direct_api();
            if let Some(rx) = api.stream_rx(&inc.ssrc) {
                rx.request_keyframe(KeyframeRequestKind::Pli);
                match target {
                    PliTarget::View(shared) => lock(&shared).keyframe_requests_sent += 1,
                    PliTarget::Member(shared, from) => {
                        if let Some(r) = lock(&shared).received.get_mut(&from) {
                            r.keyframe_requests_sent += 1;
                        }
                    }
                }
            }
        }
    }

    async fn send_video_frame(&mut self) {
        let Some(p) = self.role.publish_mut() else {
            return;
        };
        let now = Instant::now();
        let periodic = p
            .last_keyframe
            .is_none_or(|t| now.duration_since(t) >= p.keyframe_interval);
        let fps = p.fps;
        let Some((tx, frames)) = &mut p.video else {
            return;
        };
        if !p.layers.is_empty() {
            let keyframe = p.keyframe_wanted || periodic;
            let (mid, pt, rtp_time) = (tx.mid, tx.pt, tx.rtp_time);
            tx.rtp_time = tx.rtp_time.wrapping_add(90_000 / fps);
            if keyframe {
                p.keyframe_wanted = false;
                p.last_keyframe = Some(now);
            }
            let mut writes = Vec::new();
            let mut untuned = Vec::new();
            for l in &mut p.layers {
                let frame = l.generator.next_frame(keyframe, now_us());
                for packet in frame.packets {
                    writes.push((l.rid, l.seq, packet));
                    l.seq += 1;
                }
                if !l.rtx_tuned {
                    l.rtx_tuned = true;
                    untuned.push(l.rid);
                }
            }
            for rid in untuned {
                if let Some(stream) = self.rtc.direct_api().stream_tx_by_mid(mid, Some(rid)) {
                    tune_rtx(stream);
                }
            }
            {
                let mut s = lock(&p.stats);
                s.video_packets_sent += writes.len() as u64;
                s.video_bytes_sent += writes
                    .iter()
                    .map(|(_, _, x)| x.payload.len() as u64)
                    .sum::<u64>();
                if keyframe {
                    s.keyframes_sent += 1;
                }
            }
            for (rid, seq, packet) in writes {
                let mut api = self.rtc.direct_api();
                let Some(stream) = api.stream_tx_by_mid(mid, Some(rid)) else {
                    tracing::warn!("no send stream for video mid {mid} rid {rid}");
                    return;
                };
                stream.write_rtp(
                    RtpWrite::new(pt, seq.into(), rtp_time, Instant::now(), packet.payload)
                        .marker(packet.marker)
                        .nackable(true),
                );
                if let Err(e) = self.drain_after_write().await {
                    tracing::warn!("rtc poll failed after write: {e}");
                    return;
                }
            }
            return;
        }
        let frame: VideoFrame = match frames {
            VideoFrames::Synthetic(generator) => {
                generator.next_frame(p.keyframe_wanted || periodic, now_us())
            }
            // The clip has its own GOP; a request jumps ahead to its next keyframe.
            VideoFrames::Clip(player) => {
                if p.keyframe_wanted {
                    let skipped = player.skip_to_keyframe();
                    if skipped > 0 {
                        tracing::debug!("keyframe wanted: skipped {skipped} clip frames");
                    }
                }
                player.next_frame()
            }
        };
        let keyframe = frame.keyframe;
        let (mid, pt, rtp_time) = (tx.mid, tx.pt, tx.rtp_time);
        let first_seq = tx.seq;
        tx.seq += frame.packets.len() as u64;
        // 3000 per frame for the clip (30 fps); continues across clip loops.
        tx.rtp_time = tx.rtp_time.wrapping_add(90_000 / fps);
        if keyframe {
            p.keyframe_wanted = false;
            p.last_keyframe = Some(now);
        }
        {
            let mut s = lock(&p.stats);
            s.video_packets_sent += frame.packets.len() as u64;
            s.video_bytes_sent += frame
                .packets
                .iter()
                .map(|x| x.payload.len() as u64)
                .sum::<u64>();
            if keyframe {
                s.keyframes_sent += 1;
            }
        }
        let tune = !std::mem::replace(&mut tx.rtx_tuned, true);
        for (i, packet) in frame.packets.into_iter().enumerate() {
            let mut api = self.rtc.direct_api();
            let Some(stream) = api.stream_tx_by_mid(mid, None) else {
                tracing::warn!("no send stream for video mid {mid}");
                return;
            };
            if tune && i == 0 {
                tune_rtx(stream);
            }
            let seq: SeqNo = (first_seq + i as u64).into();
            stream.write_rtp(
                RtpWrite::new(pt, seq, rtp_time, Instant::now(), packet.payload)
                    .marker(packet.marker)
                    .nackable(true),
            );
            if let Err(e) = self.drain_after_write().await {
                tracing::warn!("rtc poll failed after write: {e}");
                return;
            }
        }
    }

    async fn send_audio_packet(&mut self) {
        let Some(p) = self.role.publish_mut() else {
            return;
        };
        let Some((tx, generator)) = &mut p.audio else {
            return;
        };
        let mut packet = generator.next_packet(now_us());
        if p.opus_silence {
            packet.payload = OPUS_SILENCE.to_vec();
        }
        let (mid, mut pt, rtp_time, seq) = (tx.mid, tx.pt, tx.rtp_time, tx.seq);
        tx.seq += 1;
        tx.rtp_time = tx.rtp_time.wrapping_add(crate::red::FRAME_TICKS);
        if let Some((red_pt, previous)) = &mut p.audio_red {
            let frame = std::mem::take(&mut packet.payload);
            packet.payload = crate::red::encode(*pt, previous.as_deref(), &frame);
            *previous = Some(frame);
            pt = *red_pt;
        }
        lock(&p.stats).audio_packets_sent += 1;
        let mut ext = ExtensionValues::default();
        if let Some(level) = &p.audio_level {
            let dbov = level.get();
            ext.audio_level = Some(dbov);
            ext.voice_activity = Some(dbov > AudioLevel::VOICE_ABOVE);
        }
        let mut api = self.rtc.direct_api();
        let Some(stream) = api.stream_tx_by_mid(mid, None) else {
            tracing::warn!("no send stream for audio mid {mid}");
            return;
        };
        stream.write_rtp(
            RtpWrite::new(pt, seq.into(), rtp_time, Instant::now(), packet.payload).ext_vals(ext),
        );
        // The loop drains right after this returns.
    }

    /// Drain between two writes of one frame (each write is a mutation).
    async fn drain_after_write(&mut self) -> Result<(), RtcError> {
        self.drain().await
    }

    async fn close(&mut self) {
        if let Err(e) = self.rtc.close() {
            tracing::debug!("rtc close: {e}");
        }
        // Send what closing queued (RTCP BYE, DTLS close_notify).
        for _ in 0..64 {
            match self.rtc.poll_output() {
                Ok(Output::Transmit(t)) => self.transmit(t).await,
                Ok(Output::Event(_)) => {}
                Ok(Output::Timeout(_)) | Err(_) => break,
            }
        }
    }
}
