//! Client configuration: which media to send or receive and how.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicI8, Ordering};
use std::time::Duration;

/// Video codec used by a publisher (and recognised by a viewer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    /// VP8 (RFC 7741).
    Vp8,
    /// H.264 (RFC 6184), packetization-mode 1, profile 42e01f.
    H264,
}

/// What a publisher sends as video.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum VideoSource {
    /// Synthetic payloads carrying a huddle header ([`crate::media`]): checkable byte
    /// for byte by a [`crate::Viewer`], but not decodable.
    #[default]
    Synthetic,
    /// The embedded real VP8 clip ([`crate::clip`], 320x240), looped at 30 fps with RTP
    /// timestamps advancing 3000 per frame; audio becomes valid Opus silence. VP8
    /// only. `fps`, `video_bitrate_bps` and `keyframe_interval` are ignored (the clip
    /// has a keyframe every 30 frames); a PLI/FIR makes the next frame sent the
    /// clip's next keyframe (unless `ignore_keyframe_requests`). A [`crate::Viewer`]
    /// counts such payloads as mismatches: this is for browsers and other decoders.
    Clip,
}

/// Options for [`crate::Publisher`] and [`crate::Viewer`].
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Sent as `Authorization: Bearer <token>` on every HTTP request.
    pub token: Option<String>,
    /// Video m-line: `None` means no video.
    pub video: Option<VideoCodec>,
    /// Opus m-line.
    pub audio: bool,
    /// Publisher: synthetic payloads or the real VP8 clip.
    pub video_source: VideoSource,
    /// Publisher: target video bitrate (bits per second).
    pub video_bitrate_bps: u64,
    /// Publisher: video frames per second.
    pub fps: u32,
    /// Publisher: a keyframe is sent on this period (and on every PLI/FIR unless
    /// `ignore_keyframe_requests`).
    pub keyframe_interval: Duration,
    /// Publisher: ignore PLI/FIR like OBS does.
    pub ignore_keyframe_requests: bool,
    /// Strip every `a=candidate` / `a=end-of-candidates` line from the offer and never
    /// trickle, so the server must learn our address as peer-reflexive (OBS-shaped).
    pub obs_like: bool,
    /// Connect over ICE-TCP only (RFC 6544): the offer carries no candidates, the server's
    /// UDP candidates are removed from its answer before it is applied, and all traffic goes
    /// over one TCP connection to the server's passive TCP candidate (RFC 4571 framing).
    /// As a client behind a UDP-blocking firewall would. Publisher and viewer (WHIP/WHEP).
    pub ice_tcp_only: bool,
    /// Local address the UDP socket binds to (port 0).
    pub bind_ip: IpAddr,
    /// Viewer: like a browser, send a PLI when video arrives before any keyframe
    /// (at most every 500 ms, until a keyframe start is seen).
    pub request_keyframes: bool,
    /// Timeout for each HTTP request (POST/DELETE).
    pub http_timeout: Duration,
    /// Publisher, synthetic VP8/H.264: send these simulcast layers (RFC 8853, one `rid`
    /// each, every frame in every layer, keyframes together) instead of one encoding;
    /// `video_bitrate_bps` is then unused. Empty: one encoding.
    pub simulcast: Vec<SendLayer>,
    /// Offer Opus RED (RFC 2198, `audio/red`, as Chromium does): a publisher sends each Opus
    /// frame with the previous one as a redundant block; a viewer takes a lost frame from the
    /// packet after it.
    pub red: bool,
    /// Offer Opus and its RED at these payload types (`opus`, `red`) instead of str0m's 111
    /// and 63, as another stack might; `None`: str0m's. `red` counts only with
    /// [`ClientOptions::red`].
    pub audio_payload_types: Option<AudioPayloadTypes>,
    /// Publisher: send the RFC 6464 audio level (and voice activity, above
    /// [`AudioLevel::VOICE_ABOVE`]) on every audio packet, read from this handle when the
    /// packet is sent, so a test can make a publisher talk and fall silent; `None`: no level.
    pub audio_level: Option<AudioLevel>,
    /// Viewer: count packets from their cleartext RTP headers and decrypt and check only a
    /// sample ([`LeanReceive`]); `None` decrypts and checks every packet.
    pub lean: Option<LeanReceive>,
}

/// One simulcast layer a publisher sends ([`ClientOptions::simulcast`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SendLayer {
    /// Its `rid`.
    pub rid: &'static str,
    /// Its video bitrate, bits per second.
    pub bitrate_bps: u64,
}

impl SendLayer {
    /// The three layers a browser sends: `q`, `h` and `f` at an eighth, a third and all of
    /// `full_bps`.
    pub fn three(full_bps: u64) -> Vec<SendLayer> {
        vec![
            SendLayer {
                rid: "q",
                bitrate_bps: full_bps / 8,
            },
            SendLayer {
                rid: "h",
                bitrate_bps: full_bps / 3,
            },
            SendLayer {
                rid: "f",
                bitrate_bps: full_bps,
            },
        ]
    }
}

/// The payload types of [`ClientOptions::audio_payload_types`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AudioPayloadTypes {
    pub opus: u8,
    pub red: u8,
}

/// The audio level a publisher announces ([`ClientOptions::audio_level`]), in dBov from
/// −127 (silence) to 0 (loudest). Clones share one level: the test keeps one and changes it
/// while the publisher sends.
#[derive(Clone, Debug)]
pub struct AudioLevel(Arc<AtomicI8>);

impl AudioLevel {
    /// Louder than this (dBov) is flagged as voice.
    pub const VOICE_ABOVE: i8 = -50;
    /// Silence.
    pub const SILENT: i8 = -127;

    /// A level of `dbov` (clamped to −127..=0).
    pub fn new(dbov: i8) -> Self {
        AudioLevel(Arc::new(AtomicI8::new(dbov.clamp(Self::SILENT, 0))))
    }

    /// Changes the level (clamped to −127..=0); the next audio packet carries it.
    pub fn set(&self, dbov: i8) {
        self.0.store(dbov.clamp(Self::SILENT, 0), Ordering::Relaxed);
    }

    pub fn get(&self) -> i8 {
        self.0.load(Ordering::Relaxed)
    }
}

/// How a lean viewer samples and reads: see [`ClientOptions::lean`].
///
/// ICE, DTLS and RTCP go through str0m as usual. Every incoming RTP packet is counted from
/// its header (SSRC, sequence number: received packets, gaps, duplicates) without being
/// decrypted; one in `sample_one_in` per SSRC — and every video packet until a keyframe
/// start has been decrypted — goes to str0m to be decrypted and checked byte for byte, and
/// gives the latency samples. The viewer offers neither NACK nor RTX, so the server does not
/// retransmit what it skipped, nor transport-wide congestion feedback, which would report
/// the skipped packets lost; its receiver reports describe the sample only.
///
/// Once media flows (connected for [`LEAN_SETTLE`] and a keyframe seen), the viewer stops
/// waking up for every datagram: it reads its socket every `read_interval` with `recvmmsg`,
/// and takes arrival times from the kernel's receive timestamps, so latency and join times
/// do not include that wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LeanReceive {
    /// Decrypt one packet in this many per SSRC (at least 1).
    pub sample_one_in: u32,
    /// How often the socket is read once media flows; zero reads on every wake-up.
    pub read_interval: Duration,
}

/// How long a lean viewer reads on every wake-up after connecting (a server's GOP replay
/// arrives in that time) before it reads every `read_interval`.
pub const LEAN_SETTLE: Duration = Duration::from_secs(1);

impl Default for LeanReceive {
    fn default() -> Self {
        LeanReceive {
            sample_one_in: 16,
            read_interval: Duration::from_millis(50),
        }
    }
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            token: None,
            video: Some(VideoCodec::Vp8),
            audio: true,
            video_source: VideoSource::Synthetic,
            video_bitrate_bps: 1_500_000,
            fps: 30,
            keyframe_interval: Duration::from_secs(2),
            ignore_keyframe_requests: false,
            obs_like: false,
            ice_tcp_only: false,
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            request_keyframes: true,
            http_timeout: Duration::from_secs(10),
            lean: None,
            simulcast: Vec::new(),
            red: false,
            audio_payload_types: None,
            audio_level: None,
        }
    }
}
