//! Real, decodable VP8 video: an embedded IVF clip, an IVF reader, an RFC 7741 VP8
//! RTP packetizer and a looping clip player (used by [`crate::VideoSource::Clip`]).
//!
//! The embedded clip `assets/testsrc-320x240.ivf` (151,646 bytes: 120 frames of
//! 320x240 at 30 fps, keyframes at frames 0, 30, 60 and 90, no alt-ref frames) was
//! generated once, from the workspace root, with ffmpeg 5.1 / libvpx:
//!
//! ```text
//! ffmpeg -f lavfi -i testsrc2=size=320x240:rate=30 -t 4 -c:v libvpx -b:v 300k -g 30 \
//!     -keyint_min 30 -auto-alt-ref 0 -lag-in-frames 0 -deadline realtime \
//!     -f ivf crates/huddle-client/assets/testsrc-320x240.ivf
//! ```
//!
//! The clip loops, so what matters is that frame 0 is a keyframe and the length is a
//! whole number of GOPs.
//!
//! IVF layout (all little-endian): a 32-byte file header — `b"DKIF"`, `u16` version,
//! `u16` header length, fourcc (`b"VP80"`), `u16` width, `u16` height, `u32` time
//! base denominator (rate), `u32` numerator (scale), `u32` frame count, `u32` unused —
//! then per frame a 12-byte header (`u32` frame size, `u64` timestamp) and the frame.

use crate::bytes::{array, le_u16, le_u32};
use crate::media::{MAX_PACKET_PAYLOAD, MediaPacket, VideoFrame, split_sizes};

/// The embedded VP8 clip (IVF), see the module docs for how it was made.
pub static CLIP_IVF: &[u8] = include_bytes!("../assets/testsrc-320x240.ivf");

/// Frame rate the clip is played at (the clip's own rate).
pub const CLIP_FPS: u32 = 30;

/// RTP timestamp increment per clip frame (90 kHz clock / [`CLIP_FPS`]).
pub const CLIP_RTP_TICKS_PER_FRAME: u32 = 90_000 / CLIP_FPS;

/// A valid 20 ms Opus packet of silence (TOC `0xf8`: CELT fullband 20 ms, mono, one
/// frame), sent instead of synthetic audio alongside the clip.
pub const OPUS_SILENCE: [u8; 3] = [0xf8, 0xff, 0xfe];

/// Length of the IVF file header.
pub const IVF_HEADER_LEN: usize = 32;
/// Length of each IVF frame header.
pub const IVF_FRAME_HEADER_LEN: usize = 12;
/// The IVF signature.
pub const IVF_SIGNATURE: [u8; 4] = *b"DKIF";
/// The IVF fourcc of VP8.
pub const FOURCC_VP8: [u8; 4] = *b"VP80";

/// VP8 payload descriptor (RFC 7741 §4.2) of a frame's first packet: S = 1, PID 0.
pub const VP8_DESCRIPTOR_START: u8 = 0x10;
/// VP8 payload descriptor of a frame's following packets: S = 0, PID 0.
pub const VP8_DESCRIPTOR_CONT: u8 = 0x00;

/// Why IVF data could not be read or played.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IvfError {
    /// Shorter than the 32-byte file header.
    #[error("IVF data shorter than its file header")]
    TooShort,
    /// Does not start with `DKIF`.
    #[error("not IVF: bad signature")]
    BadSignature,
    /// The header-length field is below 32 or beyond the data.
    #[error("bad IVF header length {0}")]
    BadHeaderLen(u16),
    /// A frame header or frame runs past the end of the data.
    #[error("IVF frame {index} at byte {offset} is truncated")]
    Truncated {
        /// Index of the truncated frame.
        index: usize,
        /// Offset of its frame header.
        offset: usize,
    },
    /// The clip is not VP8 (fourcc shown).
    #[error("IVF fourcc {0:?} is not VP80")]
    NotVp8([u8; 4]),
    /// The clip has no frames.
    #[error("IVF clip has no frames")]
    Empty,
    /// The clip's first frame is not a keyframe, so it cannot loop.
    #[error("IVF clip does not start with a keyframe")]
    FirstFrameNotKey,
}

/// One frame of an IVF file, borrowed from the file's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IvfFrame<'a> {
    /// Presentation timestamp, in the file's time base.
    pub timestamp: u64,
    /// The compressed frame.
    pub data: &'a [u8],
}

impl IvfFrame<'_> {
    /// Whether this (VP8) frame is a keyframe.
    pub fn is_vp8_keyframe(&self) -> bool {
        is_vp8_keyframe(self.data)
    }
}

/// A parsed IVF file.
#[derive(Clone, Debug)]
pub struct Ivf<'a> {
    /// Codec fourcc, e.g. `b"VP80"`.
    pub fourcc: [u8; 4],
    /// Width in pixels.
    pub width: u16,
    /// Height in pixels.
    pub height: u16,
    /// Time base denominator (frame rate numerator), e.g. 30.
    pub rate: u32,
    /// Time base numerator, e.g. 1.
    pub scale: u32,
    /// The frames, in file order.
    pub frames: Vec<IvfFrame<'a>>,
}

impl<'a> Ivf<'a> {
    /// Parses IVF data; the frames borrow from `data`. The frame-count field of the
    /// header is ignored (writers often leave it stale): frames are read to the end.
    pub fn parse(data: &'a [u8]) -> Result<Self, IvfError> {
        let field16 = |at| le_u16(data, at).ok_or(IvfError::TooShort);
        let field32 = |at| le_u32(data, at).ok_or(IvfError::TooShort);
        if data.len() < IVF_HEADER_LEN {
            return Err(IvfError::TooShort);
        }
        if data.get(0..4) != Some(&IVF_SIGNATURE[..]) {
            return Err(IvfError::BadSignature);
        }
        let header_len = field16(6)?;
        if usize::from(header_len) < IVF_HEADER_LEN || usize::from(header_len) > data.len() {
            return Err(IvfError::BadHeaderLen(header_len));
        }
        let fourcc = array::<4>(data, 8).ok_or(IvfError::TooShort)?;
        let mut frames = Vec::new();
        let mut off = usize::from(header_len);
        while off < data.len() {
            let truncated = IvfError::Truncated {
                index: frames.len(),
                offset: off,
            };
            let body = off + IVF_FRAME_HEADER_LEN;
            let (Some(size), Some(ts)) = (le_u32(data, off), array::<8>(data, off + 4)) else {
                return Err(truncated);
            };
            let size = size as usize;
            let end = body.checked_add(size).ok_or(truncated.clone())?;
            let frame = data.get(body..end).ok_or(truncated)?;
            frames.push(IvfFrame {
                timestamp: u64::from_le_bytes(ts),
                data: frame,
            });
            off = end;
        }
        Ok(Ivf {
            fourcc,
            width: field16(12)?,
            height: field16(14)?,
            rate: field32(16)?,
            scale: field32(20)?,
            frames,
        })
    }
}

/// Whether a VP8 frame (not an RTP payload) is a keyframe: frame tag bit 0 (P) is 0.
pub fn is_vp8_keyframe(frame: &[u8]) -> bool {
    frame.first().is_some_and(|b| b & 0x01 == 0)
}

/// Splits one VP8 frame into RTP payloads per RFC 7741: each is a one-byte payload
/// descriptor ([`VP8_DESCRIPTOR_START`] on the first, [`VP8_DESCRIPTOR_CONT`] on the
/// rest; no X/N bits, PID 0) followed by a chunk of the frame, at most `max_payload`
/// bytes in all, in near-equal sizes. The caller sets the marker on the last one.
///
/// `max_payload` below 2 is treated as 2. An empty frame yields one descriptor-only
/// payload.
pub fn packetize_vp8(frame: &[u8], max_payload: usize) -> Vec<Vec<u8>> {
    let chunk_max = max_payload.max(2) - 1;
    let n = frame.len().div_ceil(chunk_max).max(1);
    let mut out = Vec::with_capacity(n);
    let mut off = 0;
    for (i, size) in split_sizes(frame.len(), n).into_iter().enumerate() {
        let mut p = Vec::with_capacity(size + 1);
        p.push(if i == 0 {
            VP8_DESCRIPTOR_START
        } else {
            VP8_DESCRIPTOR_CONT
        });
        p.extend_from_slice(frame.get(off..off + size).unwrap_or_default());
        off += size;
        out.push(p);
    }
    out
}

/// Plays a VP8 clip in a loop, one packetized frame at a time.
#[derive(Clone, Debug)]
pub struct ClipPlayer {
    frames: Vec<IvfFrame<'static>>,
    next: usize,
    next_counter: u64,
    frames_played: u64,
}

impl ClipPlayer {
    /// A player for a VP8 clip that has frames and starts with a keyframe.
    pub fn new(ivf: Ivf<'static>) -> Result<Self, IvfError> {
        if ivf.fourcc != FOURCC_VP8 {
            return Err(IvfError::NotVp8(ivf.fourcc));
        }
        let first = ivf.frames.first().ok_or(IvfError::Empty)?;
        if !first.is_vp8_keyframe() {
            return Err(IvfError::FirstFrameNotKey);
        }
        Ok(ClipPlayer {
            frames: ivf.frames,
            next: 0,
            next_counter: 0,
            frames_played: 0,
        })
    }

    /// A player for the embedded clip ([`CLIP_IVF`]).
    pub fn embedded() -> Result<Self, IvfError> {
        Self::new(Ivf::parse(CLIP_IVF)?)
    }

    /// Frames in the clip.
    pub fn frame_count(&self) -> usize {
        self.frames.len()
    }

    /// Index of the clip frame the next [`ClipPlayer::next_frame`] returns.
    pub fn position(&self) -> usize {
        self.next
    }

    /// Frames returned so far (across loops).
    pub fn frames_played(&self) -> u64 {
        self.frames_played
    }

    /// Packets produced so far (= the next packet counter).
    pub fn packets_generated(&self) -> u64 {
        self.next_counter
    }

    /// Moves forward (wrapping to frame 0) to the next keyframe, unless the next
    /// frame already is one; returns how many frames were skipped. This is how a
    /// keyframe request is served: with a 30-frame GOP the skip is under a second of
    /// clip, and the keyframe goes out on the very next frame tick.
    pub fn skip_to_keyframe(&mut self) -> usize {
        let n = self.frames.len();
        let skip = (0..n)
            .find(|k| {
                self.frames
                    .get((self.next + k) % n)
                    .is_some_and(|f| f.is_vp8_keyframe())
            })
            .unwrap_or(0);
        self.next = (self.next + skip) % n.max(1);
        skip
    }

    /// The next clip frame as RTP payloads (≤ [`MAX_PACKET_PAYLOAD`] bytes each, marker
    /// on the last), looping at the end of the clip. Packet counters count up from 0.
    pub fn next_frame(&mut self) -> VideoFrame {
        // `new` refuses a clip without frames.
        let frame = self.frames.get(self.next).copied().unwrap_or(IvfFrame {
            timestamp: 0,
            data: &[],
        });
        self.next = (self.next + 1) % self.frames.len().max(1);
        self.frames_played += 1;
        let payloads = packetize_vp8(frame.data, MAX_PACKET_PAYLOAD);
        let last = payloads.len() - 1;
        let packets = payloads
            .into_iter()
            .enumerate()
            .map(|(i, payload)| {
                let counter = self.next_counter;
                self.next_counter += 1;
                MediaPacket {
                    payload,
                    marker: i == last,
                    counter,
                }
            })
            .collect();
        VideoFrame {
            keyframe: frame.is_vp8_keyframe(),
            packets,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{VideoCodec, is_keyframe_start};

    #[test]
    fn embedded_clip_parses() {
        assert!(CLIP_IVF.len() < 200_000, "{}", CLIP_IVF.len());
        let ivf = Ivf::parse(CLIP_IVF).unwrap();
        assert_eq!(ivf.fourcc, FOURCC_VP8);
        assert_eq!((ivf.width, ivf.height), (320, 240));
        assert_eq!(ivf.rate / ivf.scale, CLIP_FPS);
        assert_eq!(ivf.frames.len(), 120);
        assert!(ivf.frames[0].is_vp8_keyframe());
        let keys: Vec<usize> = (0..ivf.frames.len())
            .filter(|&i| ivf.frames[i].is_vp8_keyframe())
            .collect();
        assert_eq!(keys, [0, 30, 60, 90]);
        for (i, f) in ivf.frames.iter().enumerate() {
            assert_eq!(f.timestamp, i as u64);
            assert!(!f.data.is_empty());
        }
        // Every byte is accounted for.
        let total: usize = ivf
            .frames
            .iter()
            .map(|f| IVF_FRAME_HEADER_LEN + f.data.len())
            .sum();
        assert_eq!(IVF_HEADER_LEN + total, CLIP_IVF.len());
        // A VP8 keyframe carries the start code and the clip's dimensions.
        let k = ivf.frames[0].data;
        assert_eq!(&k[3..6], &[0x9d, 0x01, 0x2a]);
        assert_eq!(le_u16(k, 6).unwrap() & 0x3fff, 320);
        assert_eq!(le_u16(k, 8).unwrap() & 0x3fff, 240);
    }

    #[test]
    fn ivf_errors() {
        assert_eq!(Ivf::parse(b"DKIF").unwrap_err(), IvfError::TooShort);
        let mut bad = CLIP_IVF[..64].to_vec();
        bad[0] = b'X';
        assert_eq!(Ivf::parse(&bad).unwrap_err(), IvfError::BadSignature);
        let mut bad = CLIP_IVF[..64].to_vec();
        bad[6] = 8;
        assert_eq!(Ivf::parse(&bad).unwrap_err(), IvfError::BadHeaderLen(8));
        // Cut in the middle of the first frame, then of the second frame header.
        let first = le_u32(CLIP_IVF, 32).unwrap() as usize;
        assert_eq!(
            Ivf::parse(&CLIP_IVF[..100]).unwrap_err(),
            IvfError::Truncated {
                index: 0,
                offset: 32
            }
        );
        let second = 32 + 12 + first;
        assert_eq!(
            Ivf::parse(&CLIP_IVF[..second + 5]).unwrap_err(),
            IvfError::Truncated {
                index: 1,
                offset: second
            }
        );
        // Header only: no frames, which parses but cannot be played.
        let ivf = Ivf::parse(&CLIP_IVF[..32]).unwrap();
        assert!(ivf.frames.is_empty());
        assert_eq!(
            ClipPlayer::new(Ivf::parse(&CLIP_IVF[..32]).unwrap()).unwrap_err(),
            IvfError::Empty
        );
        // Starting from frame 1 (a delta frame) cannot loop.
        let mut ivf = Ivf::parse(CLIP_IVF).unwrap();
        ivf.frames.remove(0);
        assert_eq!(
            ClipPlayer::new(ivf).unwrap_err(),
            IvfError::FirstFrameNotKey
        );
    }

    #[test]
    fn packetizer_descriptor_sizes_marker() {
        let frame: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        let p = packetize_vp8(&frame, 1200);
        // 3000 bytes in chunks of ≤ 1199: 3 packets of 1000 (+ 1 descriptor byte).
        assert_eq!(p.len(), 3);
        assert_eq!(p[0][0], 0x10);
        assert_eq!(p[1][0], 0x00);
        assert_eq!(p[2][0], 0x00);
        for x in &p {
            assert_eq!(x.len(), 1001);
        }
        let joined: Vec<u8> = p.iter().flat_map(|x| x[1..].iter().copied()).collect();
        assert_eq!(joined, frame);

        // Boundaries: exactly 1199 bytes fit one packet, 1200 need two.
        assert_eq!(packetize_vp8(&frame[..1199], 1200).len(), 1);
        assert_eq!(packetize_vp8(&frame[..1199], 1200)[0].len(), 1200);
        let two = packetize_vp8(&frame[..1200], 1200);
        assert_eq!(two.len(), 2);
        assert_eq!((two[0].len(), two[1].len()), (601, 601));
        // Tiny frames and degenerate limits.
        assert_eq!(packetize_vp8(&[0xab], 1200), vec![vec![0x10, 0xab]]);
        assert_eq!(packetize_vp8(&[], 1200), vec![vec![0x10]]);
        assert_eq!(
            packetize_vp8(&[1, 2], 0),
            vec![vec![0x10, 1], vec![0x00, 2]]
        );

        // The player: marker on the last packet only, sizes within the limit.
        let mut player = ClipPlayer::embedded().unwrap();
        let ivf = Ivf::parse(CLIP_IVF).unwrap();
        for (i, f) in ivf.frames.iter().enumerate() {
            let vf = player.next_frame();
            assert_eq!(vf.keyframe, f.is_vp8_keyframe(), "frame {i}");
            let n = vf.packets.len();
            assert_eq!(n, f.data.len().div_ceil(MAX_PACKET_PAYLOAD - 1));
            let mut data = Vec::new();
            for (j, pkt) in vf.packets.iter().enumerate() {
                assert!(pkt.payload.len() <= MAX_PACKET_PAYLOAD);
                assert_eq!(pkt.marker, j == n - 1);
                assert_eq!(pkt.payload[0], if j == 0 { 0x10 } else { 0x00 });
                data.extend_from_slice(&pkt.payload[1..]);
            }
            assert_eq!(data, f.data, "frame {i} reassembles");
        }
    }

    #[test]
    fn clip_first_packet_is_keyframe_start() {
        let mut player = ClipPlayer::embedded().unwrap();
        let key = player.next_frame();
        assert!(key.keyframe);
        assert!(is_keyframe_start(VideoCodec::Vp8, &key.packets[0].payload));
        for p in &key.packets[1..] {
            assert!(!is_keyframe_start(VideoCodec::Vp8, &p.payload));
        }
        let delta = player.next_frame();
        assert!(!delta.keyframe);
        assert!(!is_keyframe_start(
            VideoCodec::Vp8,
            &delta.packets[0].payload
        ));
    }

    #[test]
    fn player_loops_and_skips_to_keyframes() {
        let mut player = ClipPlayer::embedded().unwrap();
        assert_eq!(player.frame_count(), 120);
        // At a keyframe already: no skip.
        assert_eq!(player.skip_to_keyframe(), 0);
        for _ in 0..10 {
            player.next_frame();
        }
        assert_eq!(player.skip_to_keyframe(), 20);
        assert_eq!(player.position(), 30);
        assert!(player.next_frame().keyframe);
        // From frame 95 the next keyframe is frame 0 of the next loop.
        while player.position() != 95 {
            player.next_frame();
        }
        assert_eq!(player.skip_to_keyframe(), 25);
        assert_eq!(player.position(), 0);
        assert!(player.next_frame().keyframe);
        // Plain looping: frame 119 is followed by frame 0.
        while player.position() != 119 {
            player.next_frame();
        }
        assert!(!player.next_frame().keyframe);
        assert_eq!(player.position(), 0);
        assert!(player.next_frame().keyframe);
        assert!(player.frames_played() > 120);
        // Counters are contiguous across frames and loops.
        let before = player.packets_generated();
        let f = player.next_frame();
        assert_eq!(f.packets[0].counter, before);
        assert_eq!(player.packets_generated(), before + f.packets.len() as u64);
    }

    #[test]
    fn opus_silence_toc() {
        // config 31 (CELT FB 20 ms), mono, code 0 (one frame).
        assert_eq!(OPUS_SILENCE[0] >> 3, 31);
        assert_eq!(OPUS_SILENCE[0] & 0x07, 0);
    }
}
