//! A byte queue: append at the back, consume from the front, compact lazily.

/// Bytes received on a connection and not yet consumed by its owner (also used for queued
/// output).
///
/// The owner's `on_read` looks at [`Buffer::data`] and calls [`Buffer::consume`] for every whole
/// unit (a PDU, an HTTP request) it has handled; whatever is left stays for the next read.
#[derive(Debug, Default)]
pub struct Buffer {
    data: Vec<u8>,
    start: usize,
}

/// Capacity above which an emptied buffer gives its memory back.
const SHRINK_ABOVE: usize = 64 * 1024;

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
        self.append(|v| v.extend_from_slice(bytes));
    }

    /// Lets `fill` append to the underlying vector in place (e.g. encoding a PDU straight into
    /// an output buffer); whatever it appends becomes part of the data. The consumed prefix is
    /// reclaimed first once it is at least half the vector, so memory stays proportional to
    /// the unconsumed bytes even when the buffer never drains completely.
    #[inline]
    pub(crate) fn append(&mut self, fill: impl FnOnce(&mut Vec<u8>)) {
        if self.start > 0 && self.start >= self.data.len() / 2 {
            self.compact();
        }
        fill(&mut self.data);
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
        b.append(|v| v.extend_from_slice(b"!!"));
        assert_eq!(b.data(), b"world!!");
        b.compact();
        assert_eq!(b.data(), b"world!!");
        b.consume(100);
        assert!(b.is_empty());
        assert_eq!(b.len(), 0);
    }

    #[test]
    fn a_buffer_that_never_drains_does_not_grow() {
        let mut b = Buffer::new();
        // `append` is how netlib queues output (Net::send_with).
        for _ in 0..10_000 {
            b.append(|v| v.extend_from_slice(&[7u8; 100]));
            b.consume(100);
            b.append(|v| v.extend_from_slice(&[7u8; 100]));
            b.consume(50);
            // Half-consumed every round: at most a few hundred unconsumed bytes…
            assert!(b.len() < 1_000_000);
        }
        // …and the vector holds little more than them.
        assert!(
            b.data.len() <= 2 * b.len() + 200,
            "{} vs {}",
            b.data.len(),
            b.len()
        );
    }
}
