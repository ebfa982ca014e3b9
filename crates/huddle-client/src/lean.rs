//! Lean receiving: count SRTP-protected RTP from its cleartext header, decrypt only a sample.
//!
//! SRTP encrypts the RTP payload but leaves the 12-byte header, CSRCs and header extensions
//! in the clear (RFC 3711 §3.1). A lean viewer reads SSRC, payload type and sequence number
//! from there for every packet, and hands str0m only one packet in `sample_one_in` per SSRC
//! (plus every video packet until the first keyframe start has been seen), which str0m
//! authenticates, decrypts and the viewer checks byte for byte as usual. Skipped packets
//! leave gaps in what str0m's SRTP context sees; its index estimate copes as long as the
//! gaps stay far below 2^15 packets.
//!
//! str0m must therefore not ask for the packets it never saw: the lean viewer offers no
//! `nack` feedback and no RTX, and every receive stream has NACK suppressed. Nor does it
//! offer transport-wide congestion control (`transport-cc` and its header extension): that
//! feedback would report every skipped packet lost. It still sends receiver reports, but
//! they describe the sample (a fraction lost of about 1 − 1/`sample_one_in`).

use str0m::Rtc;

use crate::bytes::{be_u16, be_u32};
use str0m::format::Codec;
use str0m::media::Pt;

/// RTP header fields readable without decrypting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RtpHead {
    pub pt: u8,
    pub seq: u16,
    pub ssrc: u32,
    /// Bytes before the (encrypted) payload: fixed header, CSRCs, header extension.
    pub header_len: usize,
}

/// Parses the cleartext part of an (S)RTP packet; `None` for anything else (STUN, DTLS,
/// RTCP, truncated packets).
///
/// RFC 7983 demultiplexing: the first byte of RTP/RTCP is 128–191; of those, a second byte
/// of 192–223 is RTCP (RFC 5761: payload types 64–95 are not used for RTP).
pub(crate) fn parse_rtp_head(b: &[u8]) -> Option<RtpHead> {
    let (first, second) = (*b.first()?, *b.get(1)?);
    if b.len() < 12 || !(128..=191).contains(&first) || (192..=223).contains(&second) {
        return None;
    }
    let csrcs = usize::from(first & 0x0f);
    let mut header_len = 12 + 4 * csrcs;
    if first & 0x10 != 0 {
        let words = usize::from(be_u16(b, header_len + 2)?);
        header_len += 4 + 4 * words;
    }
    if header_len > b.len() {
        return None;
    }
    Some(RtpHead {
        pt: second & 0x7f,
        seq: be_u16(b, 2)?,
        ssrc: be_u32(b, 8)?,
        header_len,
    })
}

/// Media kind of a payload type, as negotiated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Audio,
    Video,
}

/// One incoming stream (SSRC) as the lean counter sees it.
#[derive(Debug)]
struct LeanStream {
    ssrc: u32,
    /// Packets seen so far.
    count: u64,
    /// Highest extended sequence number seen.
    max_ext: u64,
    /// NACK suppressed on str0m's receive stream for this SSRC.
    nack_suppressed: bool,
}

/// What to do with one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Not counted here (not RTP, unknown payload type, not yet connected): str0m's.
    NotCounted,
    /// An RTP packet of `kind`, counted; `sample` says whether str0m should decrypt it.
    Counted {
        kind: Kind,
        /// Extended sequence number (ROC × 65536 + seq).
        ext_seq: u64,
        ssrc: u32,
        /// Payload bytes, estimated: datagram − header − SRTP overhead learnt from samples.
        payload_len: usize,
        sample: bool,
    },
}

/// SRTP overhead assumed before any sample was decrypted: an AES-GCM tag.
const DEFAULT_SRTP_OVERHEAD: usize = 16;

/// Per-viewer lean counting state.
#[derive(Debug)]
pub(crate) struct LeanCounter {
    sample_one_in: u64,
    /// Payload type → kind, filled from the negotiated codecs on first use.
    kinds: Option<Box<[Option<Kind>; 128]>>,
    streams: Vec<LeanStream>,
    /// A video keyframe start was among the samples: from then on video is sampled too.
    keyframe_seen: bool,
    /// Bytes SRTP adds after the payload (auth tag), learnt from decrypted samples.
    srtp_overhead: usize,
    /// The last sample handed to str0m: (ssrc, seq, datagram bytes after the header).
    pending: Option<(u32, u16, usize)>,
}

impl LeanCounter {
    pub fn new(sample_one_in: u32) -> Self {
        LeanCounter {
            sample_one_in: u64::from(sample_one_in.max(1)),
            kinds: None,
            streams: Vec::new(),
            keyframe_seen: false,
            srtp_overhead: DEFAULT_SRTP_OVERHEAD,
            pending: None,
        }
    }

    /// Classifies a datagram received after ICE and DTLS are up.
    pub fn classify(&mut self, datagram: &[u8], rtc: &Rtc) -> Verdict {
        let Some(head) = parse_rtp_head(datagram) else {
            return Verdict::NotCounted;
        };
        let kinds = self.kinds.get_or_insert_with(|| kinds_of(rtc));
        let Some(kind) = kinds.get(usize::from(head.pt)).copied().flatten() else {
            return Verdict::NotCounted;
        };
        if !self.streams.iter().any(|s| s.ssrc == head.ssrc) {
            self.streams.push(LeanStream {
                ssrc: head.ssrc,
                count: 0,
                max_ext: u64::from(head.seq),
                nack_suppressed: false,
            });
        }
        let Some(s) = self.streams.iter_mut().find(|s| s.ssrc == head.ssrc) else {
            return Verdict::NotCounted;
        };
        let ext_seq = extend_seq(s.max_ext, head.seq);
        s.max_ext = s.max_ext.max(ext_seq);
        let sample = s.count.is_multiple_of(self.sample_one_in)
            || (kind == Kind::Video && !self.keyframe_seen);
        s.count += 1;
        let after_header = datagram.len() - head.header_len;
        if sample {
            self.pending = Some((head.ssrc, head.seq, after_header));
        }
        Verdict::Counted {
            kind,
            ext_seq,
            ssrc: head.ssrc,
            payload_len: after_header.saturating_sub(self.srtp_overhead),
            sample,
        }
    }

    /// A sample came out of str0m decrypted: learn the SRTP overhead, note keyframes.
    pub fn on_sample(&mut self, ssrc: u32, seq: u16, payload_len: usize, keyframe_start: bool) {
        if let Some((p_ssrc, p_seq, after_header)) = self.pending.take()
            && p_ssrc == ssrc
            && p_seq == seq
            && after_header >= payload_len
        {
            self.srtp_overhead = after_header - payload_len;
        }
        if keyframe_start {
            self.keyframe_seen = true;
        }
    }

    /// Whether a keyframe start was among the samples (video is then sampled too).
    pub fn keyframe_seen(&self) -> bool {
        self.keyframe_seen
    }

    /// SSRCs whose str0m receive stream still needs NACK suppressed.
    pub fn unsuppressed(&self) -> impl Iterator<Item = u32> + '_ {
        self.streams
            .iter()
            .filter(|s| !s.nack_suppressed)
            .map(|s| s.ssrc)
    }

    /// Records that NACK is now suppressed for `ssrc`.
    pub fn mark_suppressed(&mut self, ssrc: u32) {
        if let Some(s) = self.streams.iter_mut().find(|s| s.ssrc == ssrc) {
            s.nack_suppressed = true;
        }
    }
}

/// Extends a 16-bit sequence number to the one nearest `max_ext` (RFC 3550 A.1 style).
pub(crate) fn extend_seq(max_ext: u64, seq: u16) -> u64 {
    let roc = max_ext >> 16;
    let candidate = (roc << 16) | u64::from(seq);
    if candidate + 0x8000 < max_ext {
        // Wrapped forwards (e.g. max 65530, seq 3).
        candidate + 0x1_0000
    } else if candidate > max_ext + 0x8000 && roc > 0 {
        // A late packet from before the wrap.
        candidate - 0x1_0000
    } else {
        candidate
    }
}

/// The kind of every payload type the negotiation left in `rtc`'s codec config.
fn kinds_of(rtc: &Rtc) -> Box<[Option<Kind>; 128]> {
    let mut kinds = Box::new([None; 128]);
    for p in rtc.codec_config().params() {
        let codec: Codec = p.spec().codec;
        let kind = if codec.is_audio() {
            Kind::Audio
        } else if codec.is_video() {
            Kind::Video
        } else {
            continue;
        };
        let pt: Pt = p.pt();
        if let Some(slot) = kinds.get_mut(usize::from(*pt)) {
            *slot = Some(kind);
        }
    }
    kinds
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(pt: u8, marker: bool, seq: u16, ssrc: u32) -> Vec<u8> {
        let mut b = vec![0x80, pt | if marker { 0x80 } else { 0 }];
        b.extend_from_slice(&seq.to_be_bytes());
        b.extend_from_slice(&1234u32.to_be_bytes());
        b.extend_from_slice(&ssrc.to_be_bytes());
        b.extend_from_slice(&[0xaa; 40]);
        b
    }

    #[test]
    fn parses_rtp_and_skips_the_rest() {
        let h = parse_rtp_head(&rtp(96, true, 513, 0xdead_beef)).unwrap();
        assert_eq!(
            (h.pt, h.seq, h.ssrc, h.header_len),
            (96, 513, 0xdead_beef, 12)
        );
        // RTCP sender report (PT 200), STUN (first byte 0), DTLS (22), truncated.
        let mut sr = rtp(96, false, 1, 1);
        sr[1] = 200;
        assert_eq!(parse_rtp_head(&sr), None);
        assert_eq!(
            parse_rtp_head(&[0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 0, 0, 0, 0]),
            None
        );
        assert_eq!(parse_rtp_head(&[22; 40]), None);
        assert_eq!(parse_rtp_head(&[0x80, 96, 0, 1]), None);
    }

    #[test]
    fn header_extension_and_csrcs_are_skipped() {
        // X bit, one CSRC, a 2-word one-byte-header extension.
        let mut b = vec![0x91, 111, 0, 7, 0, 0, 0, 0, 0, 0, 0, 9];
        b.extend_from_slice(&[0, 0, 0, 1]); // CSRC
        b.extend_from_slice(&[0xbe, 0xde, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8]);
        b.extend_from_slice(&[0xcc; 20]);
        let h = parse_rtp_head(&b).unwrap();
        assert_eq!(h.header_len, 12 + 4 + 4 + 8);
        // An extension longer than the packet.
        b[16 + 3] = 200;
        assert_eq!(parse_rtp_head(&b), None);
    }

    #[test]
    fn extends_across_wraps() {
        assert_eq!(extend_seq(100, 101), 101);
        assert_eq!(extend_seq(65_530, 3), 65_539);
        assert_eq!(extend_seq(65_539, 65_534), 65_534);
        assert_eq!(extend_seq(65_539, 10), 65_546);
        assert_eq!(extend_seq(100, 90), 90);
        assert_eq!(extend_seq(3, 65_534), 65_534); // no ROC below 0: taken as ahead
    }
}
