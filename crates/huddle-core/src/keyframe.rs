//! Does this RTP packet start a keyframe? Codec by codec, from the payload's first bytes.
//!
//! The core needs the answer to start a new subscriber (or a subscriber whose source changed)
//! on a picture it can decode, and to know where the current group of pictures begins.

use crate::Codec;

/// True when `payload` is the first packet of a keyframe (an intra picture a decoder can
/// start from). Unknown codecs and malformed payloads are never keyframes.
pub fn is_keyframe_start(codec: Codec, payload: &[u8]) -> bool {
    match codec {
        Codec::Vp8 => vp8(payload),
        Codec::Vp9 => vp9(payload),
        Codec::H264 => h264(payload),
        Codec::Av1 => av1(payload),
        _ => false,
    }
}

/// The picture size a keyframe's first packet announces, for the codecs that carry it there
/// (VP8's key frame header, H.264's sequence parameter set); `None` otherwise.
pub fn keyframe_size(codec: Codec, payload: &[u8]) -> Option<(u32, u32)> {
    match codec {
        Codec::Vp8 => vp8_size(payload),
        Codec::H264 => h264_size(payload),
        _ => None,
    }
}

/// Where the VP8 payload starts after the RFC 7741 descriptor.
fn vp8_descriptor_len(p: &[u8]) -> Option<usize> {
    let first = *p.first()?;
    let mut i = 1;
    if first & 0x80 != 0 {
        let x = *p.get(i)?;
        i += 1;
        if x & 0x80 != 0 {
            let pid = *p.get(i)?;
            i += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            i += 1;
        }
        if x & 0x30 != 0 {
            i += 1;
        }
    }
    Some(i)
}

/// RFC 6386 §9.1: a key frame's 3-byte tag, the start code 9d 01 2a, then 14-bit width and
/// height (little endian, two scaling bits on top).
fn vp8_size(p: &[u8]) -> Option<(u32, u32)> {
    if !vp8(p) {
        return None;
    }
    let frame = p.get(vp8_descriptor_len(p)?..)?;
    if frame.get(3..6)? != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let w = u16::from_le_bytes([*frame.get(6)?, *frame.get(7)?]) & 0x3fff;
    let h = u16::from_le_bytes([*frame.get(8)?, *frame.get(9)?]) & 0x3fff;
    Some((u32::from(w), u32::from(h)))
}

/// The sequence parameter set in an H.264 payload (alone or in a STAP-A), if any.
fn h264_sps(p: &[u8]) -> Option<&[u8]> {
    let header = *p.first()?;
    match header & 0x1f {
        7 => Some(p),
        24 => {
            let mut rest = p.get(1..)?;
            while let (Some(&hi), Some(&lo)) = (rest.first(), rest.get(1)) {
                let size = usize::from(u16::from_be_bytes([hi, lo]));
                let nal = rest.get(2..2 + size)?;
                if nal.first().is_some_and(|n| n & 0x1f == 7) {
                    return Some(nal);
                }
                rest = rest.get(2 + size..)?;
            }
            None
        }
        _ => None,
    }
}

/// ITU-T H.264 §7.3.2.1.1: the picture size from a sequence parameter set.
fn h264_size(p: &[u8]) -> Option<(u32, u32)> {
    let sps = h264_sps(p)?;
    // Drop emulation prevention bytes (00 00 03 → 00 00).
    let mut rbsp = Vec::with_capacity(sps.len());
    let mut zeros = 0;
    for &b in sps.get(1..)? {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        rbsp.push(b);
    }
    let mut r = Bits::new(&rbsp);
    let profile_idc = r.bits(8)?;
    r.bits(16)?; // constraint flags, level_idc
    r.ue()?; // seq_parameter_set_id
    let mut chroma_format_idc = 1;
    if matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format_idc = r.ue()?;
        if chroma_format_idc == 3 {
            r.bits(1)?;
        }
        r.ue()?;
        r.ue()?;
        r.bits(1)?;
        if r.bits(1)? == 1 {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bits(1)? == 1 {
                    let size = if i < 6 { 16 } else { 64 };
                    let (mut last, mut next) = (8i64, 8i64);
                    for _ in 0..size {
                        if next != 0 {
                            next = (last + r.se()? + 256) % 256;
                        }
                        last = if next == 0 { last } else { next };
                    }
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?;
        }
        1 => {
            r.bits(1)?;
            r.se()?;
            r.se()?;
            for _ in 0..r.ue()?.min(255) {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.bits(1)?;
    let width_mbs = r.ue()? + 1;
    let height_units = r.ue()? + 1;
    let frame_mbs_only = r.bits(1)?;
    if frame_mbs_only == 0 {
        r.bits(1)?;
    }
    r.bits(1)?;
    let (mut crop_x, mut crop_y) = (0, 0);
    if r.bits(1)? == 1 {
        let (left, right, top, bottom) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
        // 4:2:0 crops in units of 2 luma samples (and twice that vertically for fields).
        let unit_x = if chroma_format_idc == 0 || chroma_format_idc == 3 {
            1
        } else {
            2
        };
        let unit_y = if chroma_format_idc == 1 { 2 } else { 1 } * (2 - frame_mbs_only);
        crop_x = (left + right) * unit_x;
        crop_y = (top + bottom) * unit_y;
    }
    let width = (width_mbs * 16).checked_sub(crop_x)?;
    let height = ((2 - frame_mbs_only) * height_units * 16).checked_sub(crop_y)?;
    Some((u32::try_from(width).ok()?, u32::try_from(height).ok()?))
}

/// A big-endian bit reader with Exp-Golomb codes, for parameter sets.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Self {
        Bits { data, pos: 0 }
    }

    fn bits(&mut self, n: usize) -> Option<u64> {
        let mut v = 0u64;
        for _ in 0..n {
            let byte = *self.data.get(self.pos / 8)?;
            v = (v << 1) | u64::from((byte >> (7 - self.pos % 8)) & 1);
            self.pos += 1;
        }
        Some(v)
    }

    fn ue(&mut self) -> Option<u64> {
        let mut zeros = 0;
        while self.bits(1)? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        Some((1u64 << zeros) - 1 + self.bits(zeros)?)
    }

    fn se(&mut self) -> Option<i64> {
        let k = i64::try_from(self.ue()?).ok()?;
        Some(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }
}

/// RFC 7741: payload descriptor, then on the frame's first packet the VP8 frame tag whose
/// lowest bit is 0 for a key frame.
fn vp8(p: &[u8]) -> bool {
    let Some(&first) = p.first() else {
        return false;
    };
    let start_of_partition = first & 0x10 != 0;
    let partition_id = first & 0x07;
    if !start_of_partition || partition_id != 0 {
        return false;
    }
    vp8_descriptor_len(p)
        .and_then(|i| p.get(i))
        .is_some_and(|tag| tag & 0x01 == 0)
}

/// draft-ietf-payload-vp9: flexible or not, a key frame is a packet with B (start of frame)
/// set and P (inter-picture predicted) clear, on the base spatial layer.
fn vp9(p: &[u8]) -> bool {
    let Some(&first) = p.first() else {
        return false;
    };
    let inter_predicted = first & 0x40 != 0;
    let begins_frame = first & 0x08 != 0;
    let layer_indices = first & 0x20 != 0;
    if inter_predicted || !begins_frame {
        return false;
    }
    if !layer_indices {
        return true;
    }
    // L: the layer byte follows the picture id; the spatial id must be 0.
    let mut i = 1;
    if first & 0x80 != 0 {
        let Some(&pid) = p.get(i) else { return false };
        i += if pid & 0x80 != 0 { 2 } else { 1 };
    }
    p.get(i).is_some_and(|layer| (layer >> 1) & 0x07 == 0)
}

/// RFC 6184: an IDR slice (5) or a sequence parameter set (7), alone, in a STAP-A, or at the
/// start of an FU-A.
fn h264(p: &[u8]) -> bool {
    let Some(&header) = p.first() else {
        return false;
    };
    let is_key = |nal_type: u8| nal_type == 5 || nal_type == 7;
    match header & 0x1f {
        24 => {
            // STAP-A: 16-bit size, NAL unit, repeated.
            let mut rest = p.get(1..).unwrap_or_default();
            while let (Some(&hi), Some(&lo)) = (rest.first(), rest.get(1)) {
                let size = usize::from(u16::from_be_bytes([hi, lo]));
                let Some(&nal) = rest.get(2) else {
                    return false;
                };
                if is_key(nal & 0x1f) {
                    return true;
                }
                rest = rest.get(2 + size..).unwrap_or_default();
            }
            false
        }
        28 => p
            .get(1)
            .is_some_and(|fu| fu & 0x80 != 0 && is_key(fu & 0x1f)),
        t => is_key(t),
    }
}

/// RFC 9066 (AV1 RTP): the aggregation header's N bit marks the first packet of a coded video
/// sequence, which starts with a key frame.
fn av1(p: &[u8]) -> bool {
    p.first()
        .is_some_and(|agg| agg & 0x08 != 0 && agg & 0x80 == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_key_and_delta() {
        assert!(is_keyframe_start(
            Codec::Vp8,
            &[0x10, 0x50, 0x01, 0x00, 0x9d]
        ));
        assert!(!is_keyframe_start(Codec::Vp8, &[0x10, 0x51, 0x01, 0x00]));
        // Not the start of the partition.
        assert!(!is_keyframe_start(Codec::Vp8, &[0x00, 0x50]));
        // Extended descriptor with a two-byte picture id.
        assert!(is_keyframe_start(
            Codec::Vp8,
            &[0x90, 0x80, 0x81, 0x23, 0x50]
        ));
        assert!(!is_keyframe_start(Codec::Vp8, &[0x90, 0x80, 0x81]));
        assert!(!is_keyframe_start(Codec::Vp8, &[]));
    }

    #[test]
    fn vp9_key_and_delta() {
        assert!(is_keyframe_start(Codec::Vp9, &[0x08]));
        assert!(!is_keyframe_start(Codec::Vp9, &[0x48]));
        assert!(!is_keyframe_start(Codec::Vp9, &[0x00]));
        // Layer indices, spatial id 1: not the base layer.
        assert!(!is_keyframe_start(Codec::Vp9, &[0x28, 0x02]));
        assert!(is_keyframe_start(Codec::Vp9, &[0x28, 0x00]));
    }

    #[test]
    fn h264_forms() {
        assert!(is_keyframe_start(Codec::H264, &[0x65, 0x88]));
        assert!(!is_keyframe_start(Codec::H264, &[0x41, 0x9a]));
        // STAP-A with SPS then PPS.
        assert!(is_keyframe_start(
            Codec::H264,
            &[0x18, 0, 2, 0x67, 0x42, 0, 1, 0x68]
        ));
        // STAP-A that lies about its sizes.
        assert!(!is_keyframe_start(Codec::H264, &[0x18, 0xff, 0xff, 0x61]));
        // FU-A start of an IDR, and a middle fragment.
        assert!(is_keyframe_start(Codec::H264, &[0x7c, 0x85, 0x00]));
        assert!(!is_keyframe_start(Codec::H264, &[0x7c, 0x05, 0x00]));
        assert!(!is_keyframe_start(Codec::H264, &[0x7c]));
    }

    #[test]
    fn keyframe_sizes() {
        // VP8: descriptor, key frame tag, start code, 640 x 360.
        let vp8 = [
            0x10, 0x50, 0x01, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01,
        ];
        assert_eq!(keyframe_size(Codec::Vp8, &vp8), Some((640, 360)));
        assert_eq!(keyframe_size(Codec::Vp8, &vp8[..8]), None);
        // H.264 SPS from x264 (constrained baseline, 320 x 240), alone and in a STAP-A.
        let sps = [
            0x67, 0x42, 0xc0, 0x0d, 0xda, 0x05, 0x07, 0xe8, 0x40, 0x00, 0x00, 0x03, 0x00, 0x40,
            0x00, 0x00, 0x0f, 0x23, 0xc5, 0x0a, 0xa8,
        ];
        assert_eq!(keyframe_size(Codec::H264, &sps), Some((320, 240)));
        let mut stap = vec![0x18, 0x00, sps.len() as u8];
        stap.extend_from_slice(&sps);
        stap.extend_from_slice(&[0x00, 0x02, 0x68, 0xce]);
        assert_eq!(keyframe_size(Codec::H264, &stap), Some((320, 240)));
        // An IDR slice alone carries no size; garbage is no size.
        assert_eq!(keyframe_size(Codec::H264, &[0x65, 0x88]), None);
        assert_eq!(keyframe_size(Codec::H264, &[0x67, 0x42]), None);
    }

    #[test]
    fn av1_new_sequence() {
        assert!(is_keyframe_start(Codec::Av1, &[0x18]));
        assert!(!is_keyframe_start(Codec::Av1, &[0x10]));
        assert!(!is_keyframe_start(Codec::Av1, &[0x88]));
        assert!(!is_keyframe_start(Codec::Opus, &[0x18]));
    }
}
