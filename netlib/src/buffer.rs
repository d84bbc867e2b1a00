//! A byte queue: append at the back, consume from the front, compact lazily.

/// Bytes received on a connection and not yet consumed by its owner (also used for queued
/// output).
///
/// The owner's `on_read` looks at [`Buffer::data`] and calls [`Buffer::consume`] for every whole
/// unit (a PDU, an HTTP request) it has handled; whatever is left stays for the next read.
///
/// A buffer allocates nothing until bytes are put in it, and a connection's buffers give their
/// memory back once drained: an idle connection holds no buffer memory at all.
#[derive(Debug, Default)]
pub struct Buffer {
    /// None until bytes are put in, and again once released: an unused buffer is one word.
    inner: Option<Box<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    data: Vec<u8>,
    start: usize,
}

impl Buffer {
    pub fn new() -> Self {
        Buffer::default()
    }

    /// The unconsumed bytes.
    #[inline]
    pub fn data(&self) -> &[u8] {
        match &self.inner {
            Some(b) => &b.data[b.start..],
            None => &[],
        }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.inner.as_ref().map_or(0, |b| b.data.len() - b.start)
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops `n` bytes from the front (clamped to what is there).
    #[inline]
    pub fn consume(&mut self, n: usize) {
        if let Some(b) = self.inner.as_mut() {
            b.start = (b.start + n).min(b.data.len());
            if b.start == b.data.len() {
                b.data.clear();
                b.start = 0;
            }
        }
    }

    #[inline]
    pub fn extend(&mut self, bytes: &[u8]) {
        self.append(|v| v.extend_from_slice(bytes));
    }

    /// Bytes allocated for data (0 until the first bytes are put in, and again once
    /// released).
    pub fn capacity(&self) -> usize {
        self.inner.as_ref().map_or(0, |b| b.data.capacity())
    }

    /// Lets `fill` append to the underlying vector in place (e.g. encoding a PDU straight into
    /// an output buffer); whatever it appends becomes part of the data. The consumed prefix is
    /// reclaimed first once it is at least half the vector, so memory stays proportional to
    /// the unconsumed bytes even when the buffer never drains completely.
    #[inline]
    pub(crate) fn append(&mut self, fill: impl FnOnce(&mut Vec<u8>)) {
        let b = self.inner.get_or_insert_with(Box::default);
        if b.start > 0 && b.start >= b.data.len() / 2 {
            b.shift();
        }
        fill(&mut b.data);
    }

    /// Moves the unconsumed bytes to the front; a drained buffer gives all its memory back.
    pub(crate) fn compact(&mut self) {
        if let Some(b) = self.inner.as_mut() {
            b.shift();
            if b.data.is_empty() {
                self.inner = None;
            }
        }
    }

    /// A copy of the unconsumed bytes in an allocation of their size (what a connection keeps
    /// of a shared buffer); empties this one, keeping its allocation up to `keep` bytes.
    pub(crate) fn split_off_exact(&mut self, keep: usize) -> Buffer {
        let rest = Buffer {
            inner: (!self.is_empty()).then(|| {
                Box::new(Inner {
                    data: self.data().to_vec(),
                    start: 0,
                })
            }),
        };
        self.clear_keeping(keep);
        rest
    }

    /// Empties the buffer; keeps its allocation if that is at most `keep` bytes.
    #[inline]
    pub(crate) fn clear_keeping(&mut self, keep: usize) {
        if let Some(b) = self.inner.as_mut() {
            b.start = 0;
            if b.data.capacity() > keep {
                self.inner = None;
            } else {
                b.data.clear();
            }
        }
    }
}

impl Inner {
    /// Moves the unconsumed bytes to the front.
    fn shift(&mut self) {
        if self.start > 0 {
            self.data.drain(..self.start);
            self.start = 0;
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
    fn nothing_is_allocated_before_use_and_a_drained_buffer_releases_all() {
        let mut b = Buffer::new();
        assert_eq!(b.capacity(), 0);
        b.compact();
        assert_eq!(
            b.capacity(),
            0,
            "compacting an unused buffer allocates nothing"
        );
        b.extend(b"a partial PDU");
        assert!(b.capacity() >= 13);
        b.consume(2);
        b.compact();
        assert_eq!(
            b.data(),
            b"partial PDU",
            "compact keeps what is not consumed"
        );
        assert!(b.capacity() > 0);
        b.consume(b.len());
        assert!(b.is_empty());
        b.compact();
        assert_eq!(b.capacity(), 0, "drained: the memory is given back");
    }

    #[test]
    fn split_off_exact_copies_the_rest_and_keeps_a_bounded_allocation() {
        let mut shared = Buffer::new();
        shared.extend(&[1u8; 1000]);
        shared.consume(990);
        let rest = shared.split_off_exact(4096);
        assert_eq!(rest.data(), &[1u8; 10]);
        assert_eq!(rest.capacity(), 10, "the copy is the size of the rest");
        assert!(shared.is_empty());
        assert!(
            shared.capacity() >= 1000,
            "the shared buffer keeps its allocation"
        );
        shared.extend(&[2u8; 5000]);
        let rest = shared.split_off_exact(4096);
        assert_eq!(rest.len(), 5000);
        assert_eq!(shared.capacity(), 0, "over `keep`: released");
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
        let held = b.inner.as_ref().unwrap().data.len();
        assert!(held <= 2 * b.len() + 200, "{held} vs {}", b.len());
    }
}
