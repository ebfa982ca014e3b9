//! Client configuration: which media to send or receive and how.

use std::net::{IpAddr, Ipv4Addr};
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
    /// Local address the UDP socket binds to (port 0).
    pub bind_ip: IpAddr,
    /// Viewer: like a browser, send a PLI when video arrives before any keyframe
    /// (at most every 500 ms, until a keyframe start is seen).
    pub request_keyframes: bool,
    /// Timeout for each HTTP request (POST/DELETE).
    pub http_timeout: Duration,
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
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            request_keyframes: true,
            http_timeout: Duration::from_secs(10),
        }
    }
}
