//! VP8 picture numbering kept continuous per subscription across source switches.
//!
//! Each simulcast layer (and each publisher) numbers its pictures on its own: PictureID,
//! TL0PICIDX and KEYIDX of the RFC 7741 payload descriptor. A subscriber switched from one
//! layer to another would see them jump backwards or repeat, and a decoder that keys its
//! reference tracking on them (Chromium's `RtpVp8RefFinder`) drops the new layer's frames as
//! "already received". So the first source keeps the publisher's numbers, and every later
//! one is shifted to continue right after the last picture forwarded; str0m patches the
//! descriptor while it serializes the packet (retransmissions included), without a copy.

use str0m::rtp::{Vp8Descriptor, Vp8Patch};

/// PictureID wraps at 15 bits (or 7 bits for the short form); KEYIDX at 5.
const PICTURE_ID_MOD: u16 = 0x8000;
const SHORT_PICTURE_ID_MOD: u16 = 0x80;
const KEY_IDX_MOD: u8 = 0x20;

/// A VP8 packet's payload descriptor, parsed once when it arrives.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Vp8Numbering {
    descriptor: Vp8Descriptor,
    /// Where its PictureID wraps: 2^15, or 2^7 for the short form.
    modulus: u16,
}

impl Vp8Numbering {
    /// `None` for a payload too short for its own descriptor.
    pub(crate) fn parse(payload: &[u8]) -> Option<Self> {
        let descriptor = Vp8Descriptor::parse(payload).ok()?;
        // X, then I in the extension byte, then M (the 15-bit form) in the PictureID's first.
        let short =
            descriptor.picture_id().is_some() && payload.get(2).is_some_and(|b| b & 0x80 == 0);
        Some(Vp8Numbering {
            descriptor,
            modulus: if short {
                SHORT_PICTURE_ID_MOD
            } else {
                PICTURE_ID_MOD
            },
        })
    }
}

/// One subscription's VP8 numbering: what is added to the source's numbers, and the newest
/// numbers written.
#[derive(Debug, Default)]
pub(crate) struct PictureIds {
    /// The rewriter generation (one per source start) the offsets were chosen for.
    generation: Option<u32>,
    offsets: Numbers,
    /// The numbers of the newest picture written (after the offsets).
    last: Option<Numbers>,
}

/// PictureID, TL0PICIDX, KEYIDX; each 0 when the descriptor lacks it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Numbers {
    picture: u16,
    tl0: u8,
    key: u8,
}

impl PictureIds {
    /// The patch for one packet about to be written, `generation` being the rewriter's
    /// current source; `None` when the numbers go out as they came in.
    pub(crate) fn patch(&mut self, generation: u32, vp8: &Vp8Numbering) -> Option<Vp8Patch> {
        let (d, modulus) = (&vp8.descriptor, vp8.modulus);
        let input = Numbers {
            picture: d.picture_id().unwrap_or(0),
            tl0: d.tl0_pic_idx().unwrap_or(0),
            key: d.key_idx().unwrap_or(0),
        };
        if self.generation != Some(generation) {
            self.generation = Some(generation);
            // The first source keeps its numbers; a later one continues the last.
            self.offsets = self.last.map_or(Numbers::default(), |last| Numbers {
                picture: last
                    .picture
                    .wrapping_add(1)
                    .wrapping_sub(input.picture)
                    .rem_euclid(modulus),
                tl0: last.tl0.wrapping_add(1).wrapping_sub(input.tl0),
                key: last.key.wrapping_add(1).wrapping_sub(input.key) % KEY_IDX_MOD,
            });
        }
        let out = Numbers {
            picture: input.picture.wrapping_add(self.offsets.picture) % modulus,
            tl0: input.tl0.wrapping_add(self.offsets.tl0),
            key: input.key.wrapping_add(self.offsets.key) % KEY_IDX_MOD,
        };
        if self
            .last
            .is_none_or(|last| is_newer(out.picture, last.picture, modulus))
        {
            self.last = Some(out);
        }
        if self.offsets == Numbers::default() {
            return None;
        }
        let mut patch = d.patch();
        if d.picture_id().is_some() {
            patch = patch.picture_id(out.picture);
        }
        if d.tl0_pic_idx().is_some() {
            patch = patch.tl0_pic_idx(out.tl0);
        }
        if d.key_idx().is_some() {
            patch = patch.key_idx(out.key);
        }
        patch.build().ok()
    }
}

/// `a` comes after `b` in a sequence that wraps at `modulus` (less than half the range ahead).
fn is_newer(a: u16, b: u16, modulus: u16) -> bool {
    let ahead = a.wrapping_sub(b).rem_euclid(modulus);
    ahead != 0 && ahead < modulus / 2
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A VP8 payload: descriptor with a 15-bit PictureID, TL0PICIDX and KEYIDX, then a byte.
    fn payload(picture: u16, tl0: u8, key: u8) -> Vec<u8> {
        vec![
            0x90,
            0xf0,
            0x80 | (picture >> 8) as u8,
            picture as u8,
            tl0,
            key & 0x1f,
            0x00,
        ]
    }

    /// The patch `ids` gives the packet numbered (picture, tl0, key) of `generation`.
    fn patch(ids: &mut PictureIds, generation: u32, input: (u16, u8, u8)) -> Option<Vp8Patch> {
        let p = payload(input.0, input.1, input.2);
        ids.patch(generation, &Vp8Numbering::parse(&p).unwrap())
    }

    /// The patch that writes (picture, tl0, key) over that packet's numbers.
    fn writes(input: (u16, u8, u8), out: (u16, u8, u8)) -> Option<Vp8Patch> {
        let p = payload(input.0, input.1, input.2);
        let d = Vp8Descriptor::parse(&p).unwrap();
        Some(
            d.patch()
                .picture_id(out.0)
                .tl0_pic_idx(out.1)
                .key_idx(out.2)
                .build()
                .unwrap(),
        )
    }

    #[test]
    fn the_first_source_keeps_its_numbers() {
        let mut ids = PictureIds::default();
        assert_eq!(patch(&mut ids, 0, (1234, 7, 3)), None);
        assert_eq!(patch(&mut ids, 0, (1235, 8, 3)), None);
    }

    #[test]
    fn a_new_source_continues_after_the_last_picture() {
        let mut ids = PictureIds::default();
        patch(&mut ids, 0, (27_374, 200, 4));
        patch(&mut ids, 0, (27_375, 201, 4));
        // Another layer, numbered from far behind: continues at 27,376.
        let new = (100, 9, 30);
        assert_eq!(patch(&mut ids, 1, new), writes(new, (27_376, 202, 5)));
        let next = (101, 10, 30);
        assert_eq!(patch(&mut ids, 1, next), writes(next, (27_377, 203, 5)));
        // A reordered packet of the same source keeps its place.
        assert_eq!(patch(&mut ids, 1, new), writes(new, (27_376, 202, 5)));
        // Back to the first layer, which moved on meanwhile.
        let back = (32_767, 250, 31);
        assert_eq!(patch(&mut ids, 2, back), writes(back, (27_378, 204, 6)));
    }

    #[test]
    fn numbers_wrap() {
        let mut ids = PictureIds::default();
        patch(&mut ids, 0, (32_767, 255, 31));
        let new = (5, 0, 0);
        assert_eq!(patch(&mut ids, 1, new), writes(new, (0, 0, 0)));
    }

    #[test]
    fn the_short_form_wraps_at_128() {
        let short = |picture: u8| vec![0x90, 0x80, picture & 0x7f, 0x00];
        let mut ids = PictureIds::default();
        ids.patch(0, &Vp8Numbering::parse(&short(127)).unwrap());
        let p = short(40);
        let d = Vp8Descriptor::parse(&p).unwrap();
        let expected = d.patch().picture_id(0).build().ok();
        assert_eq!(ids.patch(1, &Vp8Numbering::parse(&p).unwrap()), expected);
    }
}
