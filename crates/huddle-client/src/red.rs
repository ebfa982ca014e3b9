//! Opus RED (RFC 2198) at the ends of a call: a publisher packs each Opus frame with the one
//! before it, as Chromium does; a viewer takes the primary frame and, when the packet before
//! was lost, the copy of it.

/// One Opus frame of 20 ms at 48 kHz, in RTP timestamp units.
pub(crate) const FRAME_TICKS: u32 = 960;
/// The F bit of a block header: another header follows.
const FOLLOWS: u8 = 0x80;
/// Largest redundant block RFC 2198's 10-bit length carries.
const MAX_BLOCK: usize = 0x3ff;

/// A RED payload: `previous` (one frame earlier) as the redundant block, when it fits, then
/// `primary`; both blocks of payload type `pt`.
pub(crate) fn encode(pt: u8, previous: Option<&[u8]>, primary: &[u8]) -> Vec<u8> {
    let pt = pt & 0x7f;
    let mut out = Vec::with_capacity(5 + previous.map_or(0, <[u8]>::len) + primary.len());
    let previous = previous.filter(|p| p.len() <= MAX_BLOCK);
    if let Some(prev) = previous {
        let len = prev.len();
        out.push(FOLLOWS | pt);
        out.push((FRAME_TICKS >> 6) as u8);
        out.push((((FRAME_TICKS & 0x3f) << 2) as u8) | ((len >> 8) as u8 & 0x03));
        out.push((len & 0xff) as u8);
    }
    out.push(pt);
    if let Some(prev) = previous {
        out.extend_from_slice(prev);
    }
    out.extend_from_slice(primary);
    out
}

/// The blocks of a RED payload as (payload type, timestamp offset, data), oldest first, the
/// primary last (offset 0); `None` when the headers do not add up.
pub(crate) fn decode(payload: &[u8]) -> Option<Vec<(u8, u32, &[u8])>> {
    let mut headers = Vec::new();
    let mut at = 0;
    loop {
        let first = *payload.get(at)?;
        if first & FOLLOWS == 0 {
            at += 1;
            break;
        }
        let pt = first & 0x7f;
        let h = payload.get(at..at + 4)?;
        let (b1, b2, b3) = (*h.get(1)?, *h.get(2)?, *h.get(3)?);
        let offset = (u32::from(b1) << 6) | u32::from(b2 >> 2);
        let len = (usize::from(b2 & 0x03) << 8) | usize::from(b3);
        headers.push((pt, offset, len));
        at += 4;
        if headers.len() > 16 {
            return None;
        }
    }
    let mut blocks = Vec::with_capacity(headers.len() + 1);
    let primary_pt = payload.get(at - 1)? & 0x7f;
    for (pt, offset, len) in headers {
        blocks.push((pt, offset, payload.get(at..at + len)?));
        at += len;
    }
    blocks.push((primary_pt, 0, payload.get(at..)?));
    Some(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packed_frame_and_its_predecessor_come_back_out() {
        let p = encode(111, Some(b"before"), b"now");
        assert_eq!(
            decode(&p).unwrap(),
            vec![(111, FRAME_TICKS, &b"before"[..]), (111, 0, &b"now"[..])]
        );
        let first = encode(109, None, b"first");
        assert_eq!(decode(&first).unwrap(), vec![(109, 0, &b"first"[..])]);
        assert!(decode(&p[..3]).is_none());
        assert!(decode(&p[..8]).is_none());
    }
}
