//! The audio placeholder (storage-file.md §4.10): a text encrypted the way clients encrypt
//! message text (AES-256-ECB over a length-trailed, zero-padded buffer, then base64). Only
//! encryption is needed here; the S-box is computed rather than tabulated.

/// AES-256 block encryption with an expanded key.
pub struct Aes256 {
    round_keys: [[u8; 16]; 15],
    sbox: [u8; 256],
}

fn gf_mul(mut a: u8, mut b: u8) -> u8 {
    let mut p = 0u8;
    while b != 0 {
        if b & 1 != 0 {
            p ^= a;
        }
        let hi = a & 0x80;
        a <<= 1;
        if hi != 0 {
            a ^= 0x1b;
        }
        b >>= 1;
    }
    p
}

fn make_sbox() -> [u8; 256] {
    let mut sbox = [0u8; 256];
    for (x, slot) in sbox.iter_mut().enumerate() {
        // Multiplicative inverse: x^254 in GF(2^8) (0 maps to 0).
        let x = x as u8;
        let mut inv = 1u8;
        let mut base = x;
        let mut e = 254u32;
        while e != 0 {
            if e & 1 != 0 {
                inv = gf_mul(inv, base);
            }
            base = gf_mul(base, base);
            e >>= 1;
        }
        if x == 0 {
            inv = 0;
        }
        *slot = inv
            ^ inv.rotate_left(1)
            ^ inv.rotate_left(2)
            ^ inv.rotate_left(3)
            ^ inv.rotate_left(4)
            ^ 0x63;
    }
    sbox
}

impl Aes256 {
    pub fn new(key: &[u8; 32]) -> Aes256 {
        let sbox = make_sbox();
        let mut w = [[0u8; 4]; 60];
        for (i, word) in w.iter_mut().take(8).enumerate() {
            word.copy_from_slice(&key[4 * i..4 * i + 4]);
        }
        let mut rcon = 1u8;
        for i in 8..60 {
            let mut t = w[i - 1];
            if i % 8 == 0 {
                t = [
                    sbox[t[1] as usize] ^ rcon,
                    sbox[t[2] as usize],
                    sbox[t[3] as usize],
                    sbox[t[0] as usize],
                ];
                rcon = gf_mul(rcon, 2);
            } else if i % 8 == 4 {
                t = t.map(|b| sbox[b as usize]);
            }
            for j in 0..4 {
                w[i][j] = w[i - 8][j] ^ t[j];
            }
        }
        let mut round_keys = [[0u8; 16]; 15];
        for (r, rk) in round_keys.iter_mut().enumerate() {
            for c in 0..4 {
                rk[4 * c..4 * c + 4].copy_from_slice(&w[4 * r + c]);
            }
        }
        Aes256 { round_keys, sbox }
    }

    pub fn encrypt_block(&self, block: &mut [u8; 16]) {
        let add = |s: &mut [u8; 16], k: &[u8; 16]| {
            for (a, b) in s.iter_mut().zip(k) {
                *a ^= b;
            }
        };
        add(block, &self.round_keys[0]);
        for round in 1..15 {
            for b in block.iter_mut() {
                *b = self.sbox[*b as usize];
            }
            let old = *block;
            for c in 0..4 {
                for r in 0..4 {
                    block[4 * c + r] = old[4 * ((c + r) % 4) + r];
                }
            }
            if round != 14 {
                for c in 0..4 {
                    let col = [
                        block[4 * c],
                        block[4 * c + 1],
                        block[4 * c + 2],
                        block[4 * c + 3],
                    ];
                    for r in 0..4 {
                        block[4 * c + r] = gf_mul(col[r], 2)
                            ^ gf_mul(col[(r + 1) % 4], 3)
                            ^ col[(r + 2) % 4]
                            ^ col[(r + 3) % 4];
                    }
                }
            }
            add(block, &self.round_keys[round]);
        }
    }
}

/// Encrypts `plain` as the original's `EncryptMsg` does and returns the base64 text.
pub fn encrypt_msg(key: &[u8; 32], plain: &[u8]) -> Vec<u8> {
    let len = plain.len();
    let mut blocks = len.div_ceil(16);
    let rem = len % 16;
    if rem == 0 || rem > 12 {
        blocks += 1;
    }
    let mut buf = vec![0u8; blocks * 16];
    buf[..len].copy_from_slice(plain);
    let n = buf.len();
    buf[n - 4..].copy_from_slice(&(len as u32).to_be_bytes());
    let aes = Aes256::new(key);
    for chunk in buf.chunks_exact_mut(16) {
        let mut block = [0u8; 16];
        block.copy_from_slice(chunk);
        aes.encrypt_block(&mut block);
        chunk.copy_from_slice(&block);
    }
    base64(&buf)
}

fn base64(data: &[u8]) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(ALPHABET[(v >> 18) as usize & 63]);
        out.push(ALPHABET[(v >> 12) as usize & 63]);
        out.push(if chunk.len() > 1 {
            ALPHABET[(v >> 6) as usize & 63]
        } else {
            b'='
        });
        out.push(if chunk.len() > 2 {
            ALPHABET[v as usize & 63]
        } else {
            b'='
        });
    }
    out
}

/// The text shown for audio messages in session and unread lists.
pub fn audio_placeholder(key: &[u8; 32]) -> Vec<u8> {
    encrypt_msg(key, "[语音]".as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fips197_aes256() {
        let key: [u8; 32] = std::array::from_fn(|i| i as u8);
        let mut block: [u8; 16] = std::array::from_fn(|i| (i as u8) * 0x11);
        Aes256::new(&key).encrypt_block(&mut block);
        let hex: String = block.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "8ea2b7ca516745bfeafc49904b496089");
    }

    #[test]
    fn placeholder_with_default_key() {
        let key = *b"12345678901234567890123456789012";
        assert_eq!(audio_placeholder(&key), b"QhGXlpFjvMFUNrtl1aaPzA==");
    }

    #[test]
    fn base64_padding() {
        assert_eq!(base64(b"f"), b"Zg==");
        assert_eq!(base64(b"fo"), b"Zm8=");
        assert_eq!(base64(b"foo"), b"Zm9v");
    }
}
