//! Deterministic hashing and sortable base62 ids: every generated value is a
//! pure function of (seed, salt, index), so nothing needs to be stored.

/// SplitMix64 finaliser.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A well-mixed 64-bit value for (seed, salt, index).
pub(crate) fn h(seed: u64, salt: u64, index: u64) -> u64 {
    mix(seed ^ mix(salt.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ mix(index)))
}

/// Picks an element of `items` for (seed, salt, index).
pub(crate) fn pick<T: Copy>(items: &[T], seed: u64, salt: u64, index: u64) -> T {
    // `items` is always a non-empty constant table.
    items[(h(seed, salt, index) % items.len() as u64) as usize]
}

/// Base62 digits in ASCII order, so fixed-width encodings sort like numbers.
const B62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Appends `v` in base62, zero-padded to `width` digits.
pub(crate) fn push_base62(out: &mut String, mut v: u64, width: usize) {
    let mut buf = [b'0'; 11];
    let width = width.min(buf.len());
    for slot in buf[..width].iter_mut().rev() {
        *slot = B62[(v % 62) as usize];
        v /= 62;
    }
    for &b in &buf[..width] {
        out.push(char::from(b));
    }
}

/// Decodes a base62 string written by [`push_base62`].
pub(crate) fn parse_base62(s: &str) -> Option<u64> {
    let mut v: u64 = 0;
    for b in s.bytes() {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'A'..=b'Z' => b - b'A' + 10,
            b'a'..=b'z' => b - b'a' + 36,
            _ => return None,
        };
        v = v.checked_mul(62)?.checked_add(u64::from(d))?;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base62_round_trips_and_sorts() {
        let mut a = String::new();
        push_base62(&mut a, 61, 10);
        let mut b = String::new();
        push_base62(&mut b, 62, 10);
        assert_eq!(a, "000000000z");
        assert_eq!(b, "0000000010");
        assert!(a < b);
        assert_eq!(parse_base62(&b), Some(62));
        assert_eq!(parse_base62("0-"), None);
    }
}
