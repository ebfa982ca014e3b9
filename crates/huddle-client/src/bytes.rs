//! Reading fixed-size integers out of byte strings that came off the network or a file:
//! `None` past the end, never a panic.

/// `N` bytes at `at`.
pub(crate) fn array<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at.checked_add(N)?)?.try_into().ok()
}

pub(crate) fn be_u16(b: &[u8], at: usize) -> Option<u16> {
    array(b, at).map(u16::from_be_bytes)
}

pub(crate) fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    array(b, at).map(u32::from_be_bytes)
}

pub(crate) fn le_u16(b: &[u8], at: usize) -> Option<u16> {
    array(b, at).map(u16::from_le_bytes)
}

pub(crate) fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    array(b, at).map(u32::from_le_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_within_and_refuses_past_the_end() {
        let b = [1, 2, 3, 4, 5];
        assert_eq!(be_u16(&b, 0), Some(0x0102));
        assert_eq!(le_u16(&b, 3), Some(0x0504));
        assert_eq!(be_u32(&b, 1), Some(0x0203_0405));
        assert_eq!(le_u32(&b, 2), None);
        assert_eq!(array::<2>(&b, usize::MAX), None);
    }
}
