//! Opus RED (RFC 2198, `audio/red`): audio packets that carry, besides their own (primary)
//! Opus frame, copies of earlier ones, so that a receiver recovers a lost packet from the
//! next. Chromium offers it as `a=rtpmap:63 red/48000/2` with `a=fmtp:63 111/111`.
//!
//! huddle forwards RED as it came when both ends negotiated it, rewriting the payload type
//! inside the block headers when the subscriber's Opus payload type differs from the
//! publisher's; to a subscriber that did not negotiate RED it forwards the primary block
//! alone, as plain Opus. A payload whose headers do not add up is dropped, with the reason.
//!
//! The layout: one 4-byte header per redundant block (F=1, 7-bit payload type, 14-bit
//! timestamp offset, 10-bit length), then the primary's 1-byte header (F=0, 7-bit payload
//! type), then the blocks' data in the same order, the primary's last.

use std::fmt;

use str0m::media::Pt;

/// The F bit: another header follows.
const FOLLOWS: u8 = 0x80;
/// Redundant blocks accepted in one payload (senders use one or two; the bound caps the work
/// a hostile payload can cause).
const MAX_REDUNDANT: usize = 16;

/// What to do with a RED packet for one subscriber.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RedAction {
    /// Forward it as RED, with block payload types `from` rewritten to `to` (the same: as is).
    Forward { from: Pt, to: Pt },
    /// Forward the primary block alone (the subscriber takes plain Opus).
    Primary,
}

/// Why a RED payload was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RedError {
    /// It ends inside the block headers.
    TruncatedHeaders,
    /// Its redundant blocks' lengths add up to more than the payload holds.
    TruncatedBlocks,
    /// More redundant blocks than huddle accepts.
    TooManyBlocks,
}

impl fmt::Display for RedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RedError::TruncatedHeaders => "RED payload ends inside its block headers",
            RedError::TruncatedBlocks => "RED block lengths exceed the payload",
            RedError::TooManyBlocks => "RED payload has too many redundant blocks",
        })
    }
}

/// Where the headers end, and each redundant block's length (the primary takes the rest).
struct Layout {
    /// Offsets of the payload-type bytes of every header, the primary's last.
    pt_at: Vec<usize>,
    /// Offset of the first block's data.
    data_at: usize,
    /// Total length of the redundant blocks' data.
    redundant_len: usize,
}

fn layout(payload: &[u8]) -> Result<Layout, RedError> {
    let mut pt_at = Vec::new();
    let mut at = 0;
    let mut redundant_len = 0;
    loop {
        let first = *payload.get(at).ok_or(RedError::TruncatedHeaders)?;
        pt_at.push(at);
        if first & FOLLOWS == 0 {
            at += 1;
            break;
        }
        if pt_at.len() > MAX_REDUNDANT {
            return Err(RedError::TooManyBlocks);
        }
        let header = payload.get(at..at + 4).ok_or(RedError::TruncatedHeaders)?;
        let (hi, lo) = match header {
            [_, _, hi, lo] => (*hi, *lo),
            _ => return Err(RedError::TruncatedHeaders),
        };
        redundant_len += (usize::from(hi & 0x03) << 8) | usize::from(lo);
        at += 4;
    }
    if at + redundant_len > payload.len() {
        return Err(RedError::TruncatedBlocks);
    }
    Ok(Layout {
        pt_at,
        data_at: at,
        redundant_len,
    })
}

/// The RED payload with every block's payload type `from` changed to `to`.
pub(crate) fn rewrite(payload: &[u8], from: Pt, to: Pt) -> Result<Vec<u8>, RedError> {
    let l = layout(payload)?;
    let mut out = payload.to_vec();
    for at in l.pt_at {
        if let Some(b) = out.get_mut(at)
            && *b & 0x7f == *from
        {
            *b = (*b & FOLLOWS) | (*to & 0x7f);
        }
    }
    Ok(out)
}

/// The primary block's data (plain Opus, the RTP header's timestamp is its own).
pub(crate) fn primary(payload: &[u8]) -> Result<&[u8], RedError> {
    let l = layout(payload)?;
    payload
        .get(l.data_at + l.redundant_len..)
        .ok_or(RedError::TruncatedBlocks)
}

/// Applies `action` to a RED payload.
pub(crate) fn apply(action: RedAction, payload: &[u8]) -> Result<Vec<u8>, RedError> {
    match action {
        RedAction::Forward { from, to } if from == to => layout(payload).map(|_| payload.to_vec()),
        RedAction::Forward { from, to } => rewrite(payload, from, to),
        RedAction::Primary => primary(payload).map(<[u8]>::to_vec),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A RED payload: redundant blocks (pt, ts offset, data), then the primary (pt, data).
    fn red(redundant: &[(u8, u16, &[u8])], primary: (u8, &[u8])) -> Vec<u8> {
        let mut out = Vec::new();
        for (pt, offset, data) in redundant {
            let len = data.len() as u16;
            out.push(FOLLOWS | pt);
            out.push((offset >> 6) as u8);
            out.push((((offset & 0x3f) << 2) as u8) | (len >> 8) as u8);
            out.push(len as u8);
        }
        out.push(primary.0);
        for (_, _, data) in redundant {
            out.extend_from_slice(data);
        }
        out.extend_from_slice(primary.1);
        out
    }

    #[test]
    fn block_payload_types_are_rewritten_and_nothing_else() {
        let p = red(&[(111, 960, b"older")], (111, b"newest"));
        let out = rewrite(&p, 111.into(), 109.into()).unwrap();
        assert_eq!(out, red(&[(109, 960, b"older")], (109, b"newest")));
        // Offsets and lengths survive; another codec's block is left alone.
        let p = red(&[(0, 160, b"pcmu"), (111, 960, b"x")], (111, b"y"));
        let out = rewrite(&p, 111.into(), 96.into()).unwrap();
        assert_eq!(out, red(&[(0, 160, b"pcmu"), (96, 960, b"x")], (96, b"y")));
    }

    #[test]
    fn the_primary_block_is_what_follows_the_redundant_data() {
        let p = red(
            &[(111, 960, b"one"), (111, 1920, b"two")],
            (111, b"primary"),
        );
        assert_eq!(primary(&p).unwrap(), b"primary");
        // No redundancy at all (a sender's first packet): just the primary.
        let p = red(&[], (111, b"only"));
        assert_eq!(primary(&p).unwrap(), b"only");
        assert_eq!(
            apply(RedAction::Primary, &p).unwrap(),
            b"only".to_vec(),
            "plain Opus for a subscriber without RED"
        );
        assert_eq!(
            apply(
                RedAction::Forward {
                    from: 111.into(),
                    to: 111.into()
                },
                &p
            )
            .unwrap(),
            p
        );
    }

    #[test]
    fn malformed_payloads_are_refused_with_a_reason() {
        let good = red(&[(111, 960, b"older")], (111, b"newest"));
        assert_eq!(primary(&[]), Err(RedError::TruncatedHeaders), "empty");
        // Cut inside the redundant header, and right after it (no primary header).
        assert_eq!(primary(&good[..3]), Err(RedError::TruncatedHeaders));
        assert_eq!(primary(&good[..4]), Err(RedError::TruncatedHeaders));
        // Cut inside the redundant block's data.
        assert_eq!(primary(&good[..7]), Err(RedError::TruncatedBlocks));
        assert_eq!(
            rewrite(&good[..7], 111.into(), 96.into()),
            Err(RedError::TruncatedBlocks)
        );
        // A redundant length beyond the payload.
        let mut long = good.clone();
        long[2] |= 0x03;
        assert_eq!(primary(&long), Err(RedError::TruncatedBlocks));
        // Headers that never end.
        let endless = [FOLLOWS | 111, 0, 0, 0].repeat(40);
        assert_eq!(primary(&endless), Err(RedError::TooManyBlocks));
        // Every prefix of a good payload is refused or parsed, never a panic.
        for n in 0..good.len() {
            let _ = apply(RedAction::Primary, &good[..n]);
        }
    }
}
