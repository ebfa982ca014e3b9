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
    let mut i = 1;
    if first & 0x80 != 0 {
        // X: extension byte with I, L, T, K flags.
        let Some(&x) = p.get(i) else { return false };
        i += 1;
        if x & 0x80 != 0 {
            // I: picture id, one or two bytes.
            let Some(&pid) = p.get(i) else { return false };
            i += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            i += 1; // L: TL0PICIDX
        }
        if x & 0x30 != 0 {
            i += 1; // T or K: TID/Y/KEYIDX
        }
    }
    p.get(i).is_some_and(|tag| tag & 0x01 == 0)
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
    fn av1_new_sequence() {
        assert!(is_keyframe_start(Codec::Av1, &[0x18]));
        assert!(!is_keyframe_start(Codec::Av1, &[0x10]));
        assert!(!is_keyframe_start(Codec::Av1, &[0x88]));
        assert!(!is_keyframe_start(Codec::Opus, &[0x18]));
    }
}
