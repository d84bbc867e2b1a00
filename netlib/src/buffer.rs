//! A byte queue: append at the back, consume from the front, compact lazily.

/// Bytes received on a connection and not yet consumed by its owner.
///
/// The owner's `on_read` looks at [`Buffer::data`] and calls [`Buffer::consume`] for every whole
/// unit (a PDU, an HTTP request) it has handled; whatever is left stays for the next read.
#[derive(Debug, Default)]
pub struct Buffer {
    data: Vec<u8>,
    start: usize,
}

/// Capacity above which an emptied buffer gives its memory back.
const SHRINK_ABOVE: usize = 256 * 1024;

impl Buffer {
    pub fn new() -> Self {
        Buffer::default()
    }

    /// The unconsumed bytes.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.data[self.start..]
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.data.len() - self.start
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops `n` bytes from the front (clamped to what is there).
    #[inline]
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.data.len());
        if self.start == self.data.len() {
            self.data.clear();
            self.start = 0;
        }
    }

    #[inline]
    pub fn extend(&mut self, bytes: &[u8]) {
        self.data.extend_from_slice(bytes);
    }

    /// The underlying vector, for appending in place (e.g. encoding a PDU straight into an
    /// output buffer). Bytes already consumed are moved out first only when that is cheap.
    #[inline]
    pub(crate) fn tail(&mut self) -> &mut Vec<u8> {
        &mut self.data
    }

    /// Moves the unconsumed bytes to the front, and frees a large allocation once drained.
    pub(crate) fn compact(&mut self) {
        if self.start > 0 {
            self.data.drain(..self.start);
            self.start = 0;
        }
        if self.data.is_empty() && self.data.capacity() > SHRINK_ABOVE {
            self.data = Vec::new();
        }
    }

    /// Makes room for `n` more bytes and returns the spare region, zero-filled, for a `read`.
    /// Call [`Buffer::commit`] with how many bytes were actually written.
    pub(crate) fn spare(&mut self, n: usize) -> &mut [u8] {
        if self.start > 0 && self.start >= self.data.len() / 2 {
            self.compact();
        }
        let len = self.data.len();
        self.data.resize(len + n, 0);
        &mut self.data[len..]
    }

    /// Keeps `written` of the `n` bytes handed out by the last [`Buffer::spare`] call.
    pub(crate) fn commit(&mut self, n: usize, written: usize) {
        let len = self.data.len() - n + written.min(n);
        self.data.truncate(len);
    }
}

#[cfg(test)]
mod tests {
    use super::Buffer;

    #[test]
    fn append_consume_compact() {
        let mut b = Buffer::new();
        b.extend(b"hello world");
        b.consume(6);
        assert_eq!(b.data(), b"world");
        let spare = b.spare(4);
        spare[..2].copy_from_slice(b"!!");
        b.commit(4, 2);
        assert_eq!(b.data(), b"world!!");
        b.consume(100);
        assert!(b.is_empty());
        assert_eq!(b.len(), 0);
    }
}
