//! Message-content encryption and password hashing as the original TeamTalk clients do them
//! (msg_server.md §12).
//!
//! * Text messages travel AES-256-ECB encrypted and base64-encoded in `IMMsgData.msg_data`:
//!   the plaintext is zero-padded to whole 16-byte blocks with at least 4 bytes left over, and its
//!   length is stored as a big-endian `u32` in the last 4 bytes of the last block. The key is the 32
//!   ASCII bytes of the key string, used as is ([`DEFAULT_AES_KEY`] in the original clients, the
//!   `aesKey` conf value in msg_server).
//! * The login password is sent as the lowercase hex MD5 of the password ([`password_md5`]).

use std::fmt;

use aes::Aes256;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit, generic_array::GenericArray};
use md5::{Digest, Md5};

/// The key the original client libraries hard-code, and msg_server's default `aesKey`.
pub const DEFAULT_AES_KEY: &str = "12345678901234567890123456789012";

const BLOCK: usize = 16;

/// Why a message could not be encrypted or decrypted. The numbers of the original's error
/// returns are given by [`CryptoError::code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CryptoError {
    /// Nothing to encrypt or decrypt (original: failure / −1).
    Empty,
    /// The base64 text decodes to nothing (original −2).
    NoData,
    /// The decoded data is not a whole number of 16-byte blocks (original −3).
    NotBlockAligned(usize),
    /// The length trailer is larger than the data (original −4): wrong key or not encrypted.
    BadLength {
        /// The length the trailer states.
        stated: u32,
        /// The decoded length.
        decoded: usize,
    },
}

impl CryptoError {
    /// The original library's return code for this failure.
    pub fn code(&self) -> i32 {
        match self {
            CryptoError::Empty => -1,
            CryptoError::NoData => -2,
            CryptoError::NotBlockAligned(_) => -3,
            CryptoError::BadLength { .. } => -4,
        }
    }
}

impl fmt::Display for CryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CryptoError::Empty => f.write_str("empty message"),
            CryptoError::NoData => f.write_str("message text is not base64 or decodes to nothing"),
            CryptoError::NotBlockAligned(n) => {
                write!(f, "decoded message is {n} bytes, not a multiple of 16")
            }
            CryptoError::BadLength { stated, decoded } => write!(
                f,
                "length trailer says {stated} bytes but only {decoded} were decoded \
                 (wrong key, or not an encrypted message)"
            ),
        }
    }
}

impl std::error::Error for CryptoError {}

/// Why a key was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLengthError(pub usize);

impl fmt::Display for KeyLengthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the AES key must be exactly 32 bytes (AES-256), got {}",
            self.0
        )
    }
}

impl std::error::Error for KeyLengthError {}

/// The message cipher: AES-256-ECB with the TeamTalk padding and base64 (msg_server.md §12.2).
#[derive(Clone)]
pub struct MsgCipher {
    aes: Aes256,
}

impl fmt::Debug for MsgCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MsgCipher(..)")
    }
}

impl Default for MsgCipher {
    /// The cipher with [`DEFAULT_AES_KEY`].
    fn default() -> Self {
        MsgCipher::new(DEFAULT_AES_KEY.as_bytes()).expect("the default key has 32 bytes")
    }
}

impl MsgCipher {
    /// A cipher for `key`, which must be exactly 32 bytes (the conf's `aesKey` string).
    pub fn new(key: &[u8]) -> Result<MsgCipher, KeyLengthError> {
        let aes = Aes256::new_from_slice(key).map_err(|_| KeyLengthError(key.len()))?;
        Ok(MsgCipher { aes })
    }

    /// Encrypts `plain` into the base64 text that goes into `msg_data`.
    pub fn encrypt(&self, plain: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if plain.is_empty() {
            return Err(CryptoError::Empty);
        }
        let n = plain.len();
        // Room for the plaintext plus a 4-byte trailer, rounded up to whole blocks.
        let blocks = (n + 4).div_ceil(BLOCK);
        let mut buf = vec![0u8; blocks * BLOCK];
        buf[..n].copy_from_slice(plain);
        let len = buf.len();
        // The original stores the length as 32 bits; longer texts cannot be represented.
        buf[len - 4..].copy_from_slice(&(n as u32).to_be_bytes());
        for chunk in buf.chunks_exact_mut(BLOCK) {
            self.aes.encrypt_block(GenericArray::from_mut_slice(chunk));
        }
        Ok(base64_encode(&buf))
    }

    /// Decrypts the base64 text of a received `msg_data` into the plaintext bytes.
    pub fn decrypt(&self, text: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if text.is_empty() {
            return Err(CryptoError::Empty);
        }
        let mut buf = base64_decode_lenient(text);
        if buf.is_empty() {
            return Err(CryptoError::NoData);
        }
        if !buf.len().is_multiple_of(BLOCK) {
            return Err(CryptoError::NotBlockAligned(buf.len()));
        }
        for chunk in buf.chunks_exact_mut(BLOCK) {
            self.aes.decrypt_block(GenericArray::from_mut_slice(chunk));
        }
        let len = buf.len();
        let stated = u32::from_be_bytes([buf[len - 4], buf[len - 3], buf[len - 2], buf[len - 1]]);
        if stated as usize > len {
            return Err(CryptoError::BadLength {
                stated,
                decoded: len,
            });
        }
        buf.truncate(stated as usize);
        Ok(buf)
    }
}

/// The password as the original clients send it: lowercase hex MD5 of its bytes.
pub fn password_md5(password: &str) -> String {
    let digest = Md5::digest(password.as_bytes());
    let mut out = String::with_capacity(32);
    for b in digest {
        out.push(hex_digit(b >> 4));
        out.push(hex_digit(b & 0x0f));
    }
    out
}

fn hex_digit(v: u8) -> char {
    char::from(b"0123456789abcdef"[usize::from(v & 0x0f)])
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with `=` padding and no line breaks.
pub fn base64_encode(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b0 = chunk[0];
        let b1 = chunk.get(1).copied().unwrap_or(0);
        let b2 = chunk.get(2).copied().unwrap_or(0);
        let triple = (u32::from(b0) << 16) | (u32::from(b1) << 8) | u32::from(b2);
        out.push(ALPHABET[(triple >> 18) as usize & 63]);
        out.push(ALPHABET[(triple >> 12) as usize & 63]);
        out.push(if chunk.len() > 1 {
            ALPHABET[(triple >> 6) as usize & 63]
        } else {
            b'='
        });
        out.push(if chunk.len() > 2 {
            ALPHABET[triple as usize & 63]
        } else {
            b'='
        });
    }
    out
}

/// The original's lenient base64 decoder: whitespace and `=` are skipped wherever they occur,
/// any other character outside the alphabet makes the result empty, and trailing bits that do not
/// fill a byte are dropped.
pub fn base64_decode_lenient(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 3);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &c in text {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' | b' ' | b'\t' | b'\r' | b'\n' | b'\x0b' | b'\x0c' => continue,
            _ => return Vec::new(),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// msg_server.md §12.2, verified against the original code.
    const VECTORS: &[(&str, &str)] = &[
        ("hello", "nnZSBwfPCz60q69ddmfIJA=="),
        ("123456789012", "qRbX2o2N6/0vxpOpQhCOOg=="),
        (
            "1234567890123",
            "ovYKzOY+0lEFsnZlqUWIQAr+GZ43+2mMfQMFqTsGBjY=",
        ),
        (
            "1234567890123456",
            "zyFIAqnq8fihaJFqgH9gVAfU6OB7fpsvZh6GP3dYB9g=",
        ),
        ("你好，世界", "q+vY6hOTiV5AW5y14dGU7FzIdZRUsFN9eOwYZegap80="),
        (
            "abcdefghijklmnopqrstuvwxyz0123456789",
            "yzvXf4tyKEoXZiGITj4GydlNmdbsHSaHZ+gtb45JNah5exSKkqbEE8DMb1muoy5e",
        ),
    ];

    #[test]
    fn encrypts_the_spec_vectors() {
        let c = MsgCipher::default();
        for (plain, cipher) in VECTORS {
            let got = c.encrypt(plain.as_bytes()).expect("encrypt");
            assert_eq!(String::from_utf8(got).expect("ascii"), *cipher, "{plain}");
        }
    }

    #[test]
    fn decrypts_the_spec_vectors() {
        let c = MsgCipher::default();
        for (plain, cipher) in VECTORS {
            let got = c.decrypt(cipher.as_bytes()).expect("decrypt");
            assert_eq!(got, plain.as_bytes(), "{cipher}");
        }
    }

    #[test]
    fn round_trips_every_length_up_to_three_blocks() {
        let c = MsgCipher::new(b"abcdefghijklmnopqrstuvwxyz012345").expect("key");
        for n in 1..=48usize {
            let plain: Vec<u8> = (0..n).map(|i| (i * 7 + 3) as u8).collect();
            let enc = c.encrypt(&plain).expect("encrypt");
            let raw = base64_decode_lenient(&enc);
            // At least 4 free bytes after the plaintext, in whole blocks.
            assert_eq!(raw.len(), (n + 4).div_ceil(16) * 16, "n={n}");
            assert_eq!(c.decrypt(&enc).expect("decrypt"), plain, "n={n}");
        }
    }

    #[test]
    fn decrypt_errors_carry_the_original_codes() {
        let c = MsgCipher::default();
        assert_eq!(c.encrypt(b"").unwrap_err().code(), -1);
        assert_eq!(c.decrypt(b"").unwrap_err().code(), -1);
        assert_eq!(c.decrypt(b"====").unwrap_err().code(), -2);
        assert_eq!(c.decrypt(b"not base64!").unwrap_err().code(), -2);
        assert_eq!(c.decrypt(b"aGVsbG8=").unwrap_err().code(), -3);
        // Plain text that happens to be valid base64 of 16 bytes: the trailer is garbage.
        let other = MsgCipher::new(b"00000000000000000000000000000000").expect("key");
        let enc = other.encrypt(b"secret").expect("encrypt");
        match c.decrypt(&enc) {
            Err(CryptoError::BadLength { .. }) => {}
            Ok(p) => assert_ne!(p, b"secret"),
            Err(e) => panic!("unexpected {e:?}"),
        }
    }

    #[test]
    fn lenient_base64_skips_whitespace_and_padding() {
        assert_eq!(
            base64_decode_lenient(b" nnZS Bwf\nPCz60q69ddmfIJA= ="),
            base64_decode_lenient(b"nnZSBwfPCz60q69ddmfIJA==")
        );
        assert_eq!(base64_decode_lenient(b"aGVsbG8"), b"hello");
        assert_eq!(base64_encode(b"hello"), b"aGVsbG8=");
        assert_eq!(base64_encode(b"hell"), b"aGVsbA==");
        assert_eq!(base64_encode(b"hel"), b"aGVs");
    }

    #[test]
    fn key_must_be_32_bytes() {
        assert_eq!(MsgCipher::new(b"short").unwrap_err(), KeyLengthError(5));
        assert!(MsgCipher::new(DEFAULT_AES_KEY.as_bytes()).is_ok());
    }

    #[test]
    fn password_hash_is_lowercase_hex_md5() {
        assert_eq!(password_md5("123456"), "e10adc3949ba59abbe56e057f20f883e");
        assert_eq!(password_md5(""), "d41d8cd98f00b204e9800998ecf8427e");
    }
}
