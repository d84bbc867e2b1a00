//! Task ids: random (version 4) UUIDs in the lowercase 36-character form the original's
//! libuuid writes, e.g. `0b7c9a52-3f1e-4c2d-9a8b-5e6f7a8b9c0d`.
//!
//! Every id a peer sends is checked with [`is_task_id`] before it is used to find a file, so a
//! path can only ever be built from 32 hex digits and four hyphens.

use std::fs::File;
use std::io::Read;

/// Length of a task id.
pub const LEN: usize = 36;

/// Byte positions of the hyphens.
const HYPHENS: [usize; 4] = [8, 13, 18, 23];

/// True for a well-formed id: 36 characters, lowercase hex digits, hyphens at 8, 13, 18, 23.
pub fn is_task_id(s: &str) -> bool {
    s.len() == LEN
        && s.bytes().enumerate().all(|(i, b)| {
            if HYPHENS.contains(&i) {
                b == b'-'
            } else {
                b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
            }
        })
}

/// The id of 16 random bytes (version and variant bits set as in RFC 4122 version 4).
pub fn format(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let mut out = String::with_capacity(LEN);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// The system's random source (`/dev/urandom`), opened once.
pub struct Random {
    source: File,
}

impl Random {
    pub fn open() -> std::io::Result<Random> {
        Ok(Random {
            source: File::open("/dev/urandom")?,
        })
    }

    /// A fresh random id.
    pub fn task_id(&mut self) -> std::io::Result<String> {
        let mut bytes = [0u8; 16];
        self.source.read_exact(&mut bytes)?;
        Ok(format(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_well_formed_and_differ() {
        let mut r = Random::open().unwrap();
        let a = r.task_id().unwrap();
        let b = r.task_id().unwrap();
        assert!(is_task_id(&a) && is_task_id(&b), "{a} {b}");
        assert_ne!(a, b);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
    }

    #[test]
    fn malformed_ids_are_refused() {
        assert!(is_task_id("0b7c9a52-3f1e-4c2d-9a8b-5e6f7a8b9c0d"));
        for bad in [
            "",
            "../../etc",
            "0b7c9a52-3f1e-4c2d-9a8b-5e6f7a8b9c0",
            "0b7c9a52-3f1e-4c2d-9a8b-5e6f7a8b9c0dd",
            "0B7C9A52-3F1E-4C2D-9A8B-5E6F7A8B9C0D",
            "0b7c9a52/3f1e-4c2d-9a8b-5e6f7a8b9c0d",
            "0b7c9a52-3f1e-4c2d-9a8b-5e6f7a8b9c/.",
            "0b7c9a523f1e-4c2d-9a8b-5e6f7a8b9c0d-",
        ] {
            assert!(!is_task_id(bad), "{bad:?}");
        }
    }
}
