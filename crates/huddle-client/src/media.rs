//! Synthetic media: RTP payloads shaped like VP8 / H.264 / Opus, each carrying a
//! 24-byte huddle header and deterministic filler so a receiver can check every byte.
//!
//! Huddle header (big-endian): magic `b"HDL1"`, `u32` kind (0 audio, 1 video),
//! `u64` per-stream packet counter, `u64` send time in µs since the UNIX epoch.
//! Filler byte `i` after the header is `(counter as u8).wrapping_add(i as u8)`.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::bytes::{array, be_u16};
use crate::options::VideoCodec;

/// Magic at the start of the huddle header.
pub const MAGIC: [u8; 4] = *b"HDL1";
/// Length of the huddle header.
pub const HEADER_LEN: usize = 24;
/// Kind value for audio packets.
pub const KIND_AUDIO: u32 = 0;
/// Kind value for video packets.
pub const KIND_VIDEO: u32 = 1;
/// Largest RTP payload the generator produces.
pub const MAX_PACKET_PAYLOAD: usize = 1200;
/// Opus packet payload size.
pub const AUDIO_PAYLOAD_LEN: usize = 100;
/// Width written in VP8 keyframe headers.
pub const VIDEO_WIDTH: u16 = 1280;
/// Height written in VP8 keyframe headers.
pub const VIDEO_HEIGHT: u16 = 720;

/// VP8 frame tag of a keyframe: P = 0, version 0, show_frame = 1.
const VP8_KEY_TAG: [u8; 3] = [0x10, 0x02, 0x00];
/// VP8 frame tag of a delta frame: P = 1.
const VP8_DELTA_TAG: [u8; 3] = [0x11, 0x02, 0x00];
const VP8_START_CODE: [u8; 3] = [0x9d, 0x01, 0x2a];

/// A small constrained-baseline SPS (NAL type 7, profile 42e01f).
const H264_SPS: [u8; 12] = [
    0x67, 0x42, 0xe0, 0x1f, 0x8c, 0x8d, 0x40, 0x50, 0x1e, 0xd0, 0x0f, 0x08,
];
/// A small PPS (NAL type 8).
const H264_PPS: [u8; 4] = [0x68, 0xce, 0x3c, 0x80];
/// NAL header of the SEI unit that carries the huddle header inside a STAP-A.
const H264_SEI: u8 = 0x06;
/// STAP-A indicator, NRI = 3.
const H264_STAP_A: u8 = 0x78;
/// FU-A indicator for IDR slices (NRI = 3) and non-IDR slices (NRI = 2).
const H264_FU_A_IDR: u8 = 0x7c;
const H264_FU_A_NON_IDR: u8 = 0x5c;
/// Single NAL unit headers.
const H264_NAL_IDR: u8 = 0x65;
const H264_NAL_NON_IDR: u8 = 0x41;

/// Microseconds since the UNIX epoch now (0 if the clock is before it).
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Filler byte `i` (counted from the end of the huddle header) for a packet counter.
pub fn filler_byte(counter: u64, i: usize) -> u8 {
    (counter as u8).wrapping_add(i as u8)
}

/// The 24-byte header every synthetic packet carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HuddleHeader {
    /// [`KIND_AUDIO`] or [`KIND_VIDEO`].
    pub kind: u32,
    /// Per-stream packet counter, 0, 1, 2, …
    pub counter: u64,
    /// Send time, µs since the UNIX epoch.
    pub send_time_us: u64,
}

impl HuddleHeader {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&self.kind.to_be_bytes());
        out.extend_from_slice(&self.counter.to_be_bytes());
        out.extend_from_slice(&self.send_time_us.to_be_bytes());
    }

    fn parse(b: &[u8]) -> Result<Self, VerifyError> {
        if b.len() < HEADER_LEN {
            return Err(VerifyError::TooShort);
        }
        if b.get(0..4) != Some(&MAGIC[..]) {
            return Err(VerifyError::BadMagic);
        }
        let (Some(kind), Some(counter), Some(send)) = (array(b, 4), array(b, 8), array(b, 16))
        else {
            return Err(VerifyError::TooShort);
        };
        Ok(HuddleHeader {
            kind: u32::from_be_bytes(kind),
            counter: u64::from_be_bytes(counter),
            send_time_us: u64::from_be_bytes(send),
        })
    }
}

/// Append the huddle header and filler so that `out` ends up `total_len` long
/// (or just the header, if `total_len` is too small).
fn push_body(out: &mut Vec<u8>, header: HuddleHeader, total_len: usize) {
    header.write(out);
    let mut i = 0;
    while out.len() < total_len {
        out.push(filler_byte(header.counter, i));
        i += 1;
    }
}

/// One generated RTP payload.
#[derive(Clone, Debug)]
pub struct MediaPacket {
    /// RTP payload (codec header + huddle header + filler).
    pub payload: Vec<u8>,
    /// RTP marker bit (last packet of a video frame).
    pub marker: bool,
    /// The huddle counter in this packet.
    pub counter: u64,
}

/// One generated video frame.
#[derive(Clone, Debug)]
pub struct VideoFrame {
    /// Whether this is a keyframe.
    pub keyframe: bool,
    /// Its packets, in order; the last one has the marker bit.
    pub packets: Vec<MediaPacket>,
}

/// Where a packet sits in a frame, which decides its codec header.
#[derive(Clone, Copy, Debug)]
enum Slot {
    Vp8 { first: bool, key: bool },
    H264StapA,
    H264FuA { idr: bool, start: bool, end: bool },
    H264Single { idr: bool },
}

/// Codec header for a slot; `total_len` is the packet's intended payload length
/// (a STAP-A's last unit length depends on it).
fn codec_prefix(slot: Slot, total_len: usize) -> Vec<u8> {
    let mut p = Vec::with_capacity(32);
    match slot {
        Slot::Vp8 { first, key } => {
            if first {
                p.push(0x10);
                if key {
                    p.extend_from_slice(&VP8_KEY_TAG);
                    p.extend_from_slice(&VP8_START_CODE);
                    p.extend_from_slice(&VIDEO_WIDTH.to_le_bytes());
                    p.extend_from_slice(&VIDEO_HEIGHT.to_le_bytes());
                } else {
                    p.extend_from_slice(&VP8_DELTA_TAG);
                }
            } else {
                p.push(0x00);
            }
        }
        Slot::H264StapA => {
            p.push(H264_STAP_A);
            p.extend_from_slice(&(H264_SPS.len() as u16).to_be_bytes());
            p.extend_from_slice(&H264_SPS);
            p.extend_from_slice(&(H264_PPS.len() as u16).to_be_bytes());
            p.extend_from_slice(&H264_PPS);
            // SEI unit: its length covers NAL header + huddle header + filler.
            let unit_len = total_len.saturating_sub(p.len() + 2).max(1 + HEADER_LEN);
            p.extend_from_slice(&(unit_len as u16).to_be_bytes());
            p.push(H264_SEI);
        }
        Slot::H264FuA { idr, start, end } => {
            let (ind, nal) = if idr {
                (H264_FU_A_IDR, 5)
            } else {
                (H264_FU_A_NON_IDR, 1)
            };
            p.push(ind);
            p.push(((start as u8) << 7) | ((end as u8) << 6) | nal);
        }
        Slot::H264Single { idr } => {
            p.push(if idr { H264_NAL_IDR } else { H264_NAL_NON_IDR });
        }
    }
    p
}

/// Splits `total` bytes into `n` near-equal sizes.
pub(crate) fn split_sizes(total: usize, n: usize) -> Vec<usize> {
    let n = n.max(1);
    let base = total / n;
    let rem = total % n;
    (0..n).map(|i| base + usize::from(i < rem)).collect()
}

/// Produces video frames of a given codec, bitrate and frame rate.
#[derive(Debug, Clone)]
pub struct VideoGenerator {
    codec: VideoCodec,
    bitrate_bps: u64,
    fps: u32,
    next_counter: u64,
}

impl VideoGenerator {
    /// A generator whose packet counter starts at 0.
    pub fn new(codec: VideoCodec, bitrate_bps: u64, fps: u32) -> Self {
        VideoGenerator {
            codec,
            bitrate_bps,
            fps: fps.max(1),
            next_counter: 0,
        }
    }

    /// The codec generated.
    pub fn codec(&self) -> VideoCodec {
        self.codec
    }

    /// Packets generated so far (= the next counter).
    pub fn packets_generated(&self) -> u64 {
        self.next_counter
    }

    /// Bytes of payload in one frame: bitrate/8/fps, four times that for a keyframe.
    pub fn frame_bytes(&self, keyframe: bool) -> usize {
        let base = (self.bitrate_bps / 8 / u64::from(self.fps)).max(64) as usize;
        if keyframe { base * 4 } else { base }
    }

    /// Generates the next frame, stamping every packet with `send_time_us`.
    pub fn next_frame(&mut self, keyframe: bool, send_time_us: u64) -> VideoFrame {
        let total = self.frame_bytes(keyframe);
        let n = total.div_ceil(MAX_PACKET_PAYLOAD);
        let slots: Vec<Slot> = match self.codec {
            VideoCodec::Vp8 => (0..n)
                .map(|i| Slot::Vp8 {
                    first: i == 0,
                    key: keyframe,
                })
                .collect(),
            VideoCodec::H264 if keyframe => {
                let n = n.max(2);
                let idr = n - 1;
                let mut v = vec![Slot::H264StapA];
                if idr == 1 {
                    v.push(Slot::H264Single { idr: true });
                } else {
                    v.extend((0..idr).map(|i| Slot::H264FuA {
                        idr: true,
                        start: i == 0,
                        end: i == idr - 1,
                    }));
                }
                v
            }
            VideoCodec::H264 => {
                if n == 1 {
                    vec![Slot::H264Single { idr: false }]
                } else {
                    (0..n)
                        .map(|i| Slot::H264FuA {
                            idr: false,
                            start: i == 0,
                            end: i == n - 1,
                        })
                        .collect()
                }
            }
        };
        let sizes = split_sizes(total, slots.len());
        let last = slots.len() - 1;
        let packets = slots
            .into_iter()
            .zip(sizes)
            .enumerate()
            .map(|(i, (slot, size))| {
                let size = size.min(MAX_PACKET_PAYLOAD);
                let counter = self.next_counter;
                self.next_counter += 1;
                let mut payload = codec_prefix(slot, size);
                push_body(
                    &mut payload,
                    HuddleHeader {
                        kind: KIND_VIDEO,
                        counter,
                        send_time_us,
                    },
                    size,
                );
                MediaPacket {
                    payload,
                    marker: i == last,
                    counter,
                }
            })
            .collect();
        VideoFrame { keyframe, packets }
    }
}

/// Produces Opus-shaped audio packets (one per 20 ms).
#[derive(Debug, Clone, Default)]
pub struct AudioGenerator {
    next_counter: u64,
}

impl AudioGenerator {
    /// A generator whose packet counter starts at 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Packets generated so far.
    pub fn packets_generated(&self) -> u64 {
        self.next_counter
    }

    /// The next ≈100-byte packet.
    pub fn next_packet(&mut self, send_time_us: u64) -> MediaPacket {
        let counter = self.next_counter;
        self.next_counter += 1;
        let mut payload = Vec::with_capacity(AUDIO_PAYLOAD_LEN);
        push_body(
            &mut payload,
            HuddleHeader {
                kind: KIND_AUDIO,
                counter,
                send_time_us,
            },
            AUDIO_PAYLOAD_LEN,
        );
        MediaPacket {
            payload,
            marker: false,
            counter,
        }
    }
}

/// Why a received payload failed verification.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Shorter than its headers.
    #[error("payload too short")]
    TooShort,
    /// The codec payload header is not one the generator makes.
    #[error("bad codec header: {0}")]
    BadCodecHeader(&'static str),
    /// No `HDL1` where the huddle header should start.
    #[error("bad magic")]
    BadMagic,
    /// Audio header in a video payload or vice versa.
    #[error("wrong kind {0}")]
    WrongKind(u32),
    /// A filler byte differs from the regenerated one.
    #[error("filler mismatch at byte {0}")]
    FillerMismatch(usize),
}

/// Offset of the first byte after the VP8 payload descriptor, and the descriptor's S/PID.
fn vp8_descriptor(p: &[u8]) -> Result<(usize, bool, u8), VerifyError> {
    let d0 = *p.first().ok_or(VerifyError::TooShort)?;
    if d0 & 0x40 != 0 {
        return Err(VerifyError::BadCodecHeader("vp8 reserved bit"));
    }
    let mut off = 1;
    if d0 & 0x80 != 0 {
        let x = *p.get(1).ok_or(VerifyError::TooShort)?;
        off = 2;
        if x & 0x80 != 0 {
            let pid = *p.get(off).ok_or(VerifyError::TooShort)?;
            off += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            off += 1;
        }
        if x & 0x30 != 0 {
            off += 1;
        }
    }
    if p.len() < off {
        return Err(VerifyError::TooShort);
    }
    Ok((off, d0 & 0x10 != 0, d0 & 0x07))
}

/// Offset of the huddle header in a video payload, checking the codec header bytes
/// against what the generator writes.
fn video_body_offset(codec: VideoCodec, p: &[u8]) -> Result<usize, VerifyError> {
    match codec {
        VideoCodec::Vp8 => {
            let (off, start, pid) = vp8_descriptor(p)?;
            if pid != 0 {
                return Err(VerifyError::BadCodecHeader("vp8 partition id"));
            }
            if !start {
                return Ok(off);
            }
            let tag = p.get(off..off + 3).ok_or(VerifyError::TooShort)?;
            if tag == VP8_DELTA_TAG {
                return Ok(off + 3);
            }
            if tag != VP8_KEY_TAG {
                return Err(VerifyError::BadCodecHeader("vp8 frame tag"));
            }
            let rest = p.get(off + 3..off + 10).ok_or(VerifyError::TooShort)?;
            if rest.get(0..3) != Some(&VP8_START_CODE[..])
                || rest.get(3..5) != Some(&VIDEO_WIDTH.to_le_bytes()[..])
                || rest.get(5..7) != Some(&VIDEO_HEIGHT.to_le_bytes()[..])
            {
                return Err(VerifyError::BadCodecHeader("vp8 keyframe header"));
            }
            Ok(off + 10)
        }
        VideoCodec::H264 => {
            let b0 = *p.first().ok_or(VerifyError::TooShort)?;
            match b0 {
                H264_STAP_A => {
                    let expect = codec_prefix(Slot::H264StapA, p.len());
                    let Some(got) = p.get(..expect.len()) else {
                        return Err(VerifyError::TooShort);
                    };
                    if got != &expect[..] {
                        return Err(VerifyError::BadCodecHeader("h264 stap-a"));
                    }
                    Ok(expect.len())
                }
                H264_FU_A_IDR | H264_FU_A_NON_IDR => {
                    let fu = *p.get(1).ok_or(VerifyError::TooShort)?;
                    let want = if b0 == H264_FU_A_IDR { 5 } else { 1 };
                    if fu & 0x1f != want || fu & 0x20 != 0 || fu & 0xc0 == 0xc0 {
                        return Err(VerifyError::BadCodecHeader("h264 fu-a header"));
                    }
                    Ok(2)
                }
                H264_NAL_IDR | H264_NAL_NON_IDR => Ok(1),
                _ => Err(VerifyError::BadCodecHeader("h264 nal type")),
            }
        }
    }
}

/// Checks a received payload byte for byte against what the generator would have made.
/// `codec` is `None` for audio.
pub fn verify_payload(codec: Option<VideoCodec>, p: &[u8]) -> Result<HuddleHeader, VerifyError> {
    let (off, kind) = match codec {
        None => (0, KIND_AUDIO),
        Some(c) => (video_body_offset(c, p)?, KIND_VIDEO),
    };
    let body = p.get(off..).ok_or(VerifyError::TooShort)?;
    let h = HuddleHeader::parse(body)?;
    if h.kind != kind {
        return Err(VerifyError::WrongKind(h.kind));
    }
    for (i, b) in body.iter().skip(HEADER_LEN).enumerate() {
        if *b != filler_byte(h.counter, i) {
            return Err(VerifyError::FillerMismatch(off + HEADER_LEN + i));
        }
    }
    Ok(h)
}

/// Whether an RTP payload starts a keyframe.
///
/// VP8: descriptor S = 1, PID = 0 and frame tag P = 0. H.264: a STAP-A holding an SPS
/// (7) or IDR (5), an FU-A start fragment of an IDR, or a single SPS/IDR NAL.
pub fn is_keyframe_start(codec: VideoCodec, payload: &[u8]) -> bool {
    match codec {
        VideoCodec::Vp8 => match vp8_descriptor(payload) {
            Ok((off, true, 0)) => payload.get(off).is_some_and(|t| t & 0x01 == 0),
            _ => false,
        },
        VideoCodec::H264 => {
            let Some(&b0) = payload.first() else {
                return false;
            };
            match b0 & 0x1f {
                24 => {
                    let mut off = 1;
                    while off + 2 < payload.len() {
                        let Some(len) = be_u16(payload, off).map(usize::from) else {
                            return false;
                        };
                        let Some(&nal) = payload.get(off + 2) else {
                            return false;
                        };
                        if matches!(nal & 0x1f, 5 | 7) {
                            return true;
                        }
                        off += 2 + len;
                    }
                    false
                }
                28 => payload
                    .get(1)
                    .is_some_and(|fu| fu & 0x80 != 0 && fu & 0x1f == 5),
                5 | 7 => true,
                _ => false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_frame(codec: VideoCodec, frame: &VideoFrame, expect_bytes: usize) {
        let total: usize = frame.packets.iter().map(|p| p.payload.len()).sum();
        // Codec headers may add a few bytes beyond the nominal frame size.
        assert!(
            total >= expect_bytes && total < expect_bytes + 64,
            "{codec:?} total {total} vs {expect_bytes}"
        );
        for (i, p) in frame.packets.iter().enumerate() {
            assert!(
                p.payload.len() <= MAX_PACKET_PAYLOAD + 32,
                "{}",
                p.payload.len()
            );
            assert_eq!(p.marker, i == frame.packets.len() - 1);
            let h = verify_payload(Some(codec), &p.payload).expect("verifies");
            assert_eq!(h.counter, p.counter);
            assert_eq!(h.kind, KIND_VIDEO);
            assert_eq!(h.send_time_us, 42);
            assert_eq!(
                is_keyframe_start(codec, &p.payload),
                // H264: the STAP-A (SPS/PPS) and the IDR's first FU-A both start a keyframe.
                frame.keyframe && (i == 0 || (codec == VideoCodec::H264 && i == 1)),
                "{codec:?} packet {i}"
            );
        }
        // All but the last packet are close to the target size.
        for p in &frame.packets[..frame.packets.len() - 1] {
            assert!(p.payload.len() >= 1000, "{}", p.payload.len());
        }
    }

    #[test]
    fn vp8_and_h264_frames() {
        for codec in [VideoCodec::Vp8, VideoCodec::H264] {
            let mut g = VideoGenerator::new(codec, 1_500_000, 30);
            let key = g.next_frame(true, 42);
            assert_eq!(key.packets.len(), 21);
            check_frame(codec, &key, 25_000);
            let delta = g.next_frame(false, 42);
            assert_eq!(delta.packets.len(), 6);
            check_frame(codec, &delta, 6_250);
            assert_eq!(delta.packets[0].counter, 21);
            assert_eq!(g.packets_generated(), 27);
        }
    }

    #[test]
    fn codec_headers_are_shaped_right() {
        let mut g = VideoGenerator::new(VideoCodec::Vp8, 1_500_000, 30);
        let key = g.next_frame(true, 1);
        assert_eq!(
            &key.packets[0].payload[..7],
            &[0x10, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a]
        );
        assert_eq!(key.packets[1].payload[0], 0x00);
        let delta = g.next_frame(false, 1);
        assert_eq!(delta.packets[0].payload[1] & 1, 1);

        let mut g = VideoGenerator::new(VideoCodec::H264, 1_500_000, 30);
        let key = g.next_frame(true, 1);
        let p = &key.packets;
        assert_eq!(p[0].payload[0] & 0x1f, 24);
        assert_eq!(p[0].payload[3] & 0x1f, 7);
        assert_eq!(p[1].payload[0] & 0x1f, 28);
        assert_eq!(p[1].payload[1], 0x80 | 5);
        assert_eq!(p[2].payload[1], 5);
        assert_eq!(p[p.len() - 1].payload[1], 0x40 | 5);
        let delta = g.next_frame(false, 1);
        assert_eq!(delta.packets[0].payload[1], 0x80 | 1);
        assert_eq!(delta.packets[5].payload[1], 0x40 | 1);
    }

    #[test]
    fn small_frames() {
        // Low bitrate: single-packet delta frames, two-packet H264 keyframes.
        let mut g = VideoGenerator::new(VideoCodec::H264, 100_000, 30);
        let key = g.next_frame(true, 7);
        assert_eq!(key.packets.len(), 2);
        assert!(is_keyframe_start(VideoCodec::H264, &key.packets[0].payload));
        assert!(is_keyframe_start(VideoCodec::H264, &key.packets[1].payload));
        for p in &key.packets {
            verify_payload(Some(VideoCodec::H264), &p.payload).unwrap();
        }
        let delta = g.next_frame(false, 7);
        assert_eq!(delta.packets.len(), 1);
        assert!(delta.packets[0].marker);
        assert!(!is_keyframe_start(
            VideoCodec::H264,
            &delta.packets[0].payload
        ));
        verify_payload(Some(VideoCodec::H264), &delta.packets[0].payload).unwrap();

        let mut g = VideoGenerator::new(VideoCodec::Vp8, 100_000, 30);
        let delta = g.next_frame(false, 7);
        assert_eq!(delta.packets.len(), 1);
        verify_payload(Some(VideoCodec::Vp8), &delta.packets[0].payload).unwrap();
    }

    #[test]
    fn audio_packets() {
        let mut g = AudioGenerator::new();
        for i in 0..3 {
            let p = g.next_packet(99);
            assert_eq!(p.payload.len(), AUDIO_PAYLOAD_LEN);
            let h = verify_payload(None, &p.payload).unwrap();
            assert_eq!(h.counter, i);
            assert_eq!(h.kind, KIND_AUDIO);
        }
        // An audio payload is not a video payload.
        let p = g.next_packet(1);
        assert!(verify_payload(Some(VideoCodec::H264), &p.payload).is_err());
    }

    #[test]
    fn corruption_is_detected() {
        for codec in [VideoCodec::Vp8, VideoCodec::H264] {
            let mut g = VideoGenerator::new(codec, 1_500_000, 30);
            let key = g.next_frame(true, 5);
            for pkt in [&key.packets[0], &key.packets[1], &key.packets[20]] {
                let len = pkt.payload.len();
                for at in [0usize, 1, 3, len / 2, len - 2, len - 1] {
                    let mut bad = pkt.payload.clone();
                    bad[at] ^= 0x04;
                    assert!(
                        verify_payload(Some(codec), &bad).is_err(),
                        "{codec:?} corruption at {at} undetected"
                    );
                }
                let mut short = pkt.payload.clone();
                short.truncate(10);
                assert!(verify_payload(Some(codec), &short).is_err());
            }
        }
        let mut a = AudioGenerator::new().next_packet(1).payload;
        a[60] = a[60].wrapping_add(1);
        assert_eq!(
            verify_payload(None, &a),
            Err(VerifyError::FillerMismatch(60))
        );
    }
}
