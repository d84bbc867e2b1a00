//! A slab of sockets addressed by mio token, with a generation per slot so that an id handed to
//! the owner is never confused with a later socket that reuses the slot (the original used raw
//! file descriptors, which the kernel reuses at once; db_proxy had to add a uuid map for that).

/// Packs a slot index and its generation into one `u64` id.
#[inline]
pub(crate) fn pack(index: usize, generation: u32) -> u64 {
    ((generation as u64) << 32) | index as u64
}

#[inline]
pub(crate) fn unpack(id: u64) -> (usize, u32) {
    ((id & 0xffff_ffff) as usize, (id >> 32) as u32)
}

struct Slot<T> {
    generation: u32,
    item: Option<T>,
}

pub(crate) struct Slab<T> {
    slots: Vec<Slot<T>>,
    free: Vec<usize>,
    len: usize,
}

impl<T> Slab<T> {
    pub(crate) fn new() -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Stores `item`, returning its packed id (index + generation).
    pub(crate) fn insert(&mut self, item: T) -> u64 {
        self.len += 1;
        if let Some(index) = self.free.pop() {
            let slot = &mut self.slots[index];
            slot.item = Some(item);
            pack(index, slot.generation)
        } else {
            self.slots.push(Slot {
                generation: 0,
                item: Some(item),
            });
            pack(self.slots.len() - 1, 0)
        }
    }

    /// The item at `id`, if the slot is occupied by that very generation.
    #[inline]
    pub(crate) fn get_mut(&mut self, id: u64) -> Option<&mut T> {
        let (index, generation) = unpack(id);
        match self.slots.get_mut(index) {
            Some(slot) if slot.generation == generation => slot.item.as_mut(),
            _ => None,
        }
    }

    #[inline]
    pub(crate) fn get(&self, id: u64) -> Option<&T> {
        let (index, generation) = unpack(id);
        match self.slots.get(index) {
            Some(slot) if slot.generation == generation => slot.item.as_ref(),
            _ => None,
        }
    }

    /// The current id of the occupied slot `index` (how a mio token maps back to an id).
    #[inline]
    pub(crate) fn id_at(&self, index: usize) -> Option<u64> {
        match self.slots.get(index) {
            Some(slot) if slot.item.is_some() => Some(pack(index, slot.generation)),
            _ => None,
        }
    }

    /// Empties the slot and bumps its generation so that the old id never matches again.
    pub(crate) fn remove(&mut self, id: u64) -> Option<T> {
        let (index, generation) = unpack(id);
        let slot = self.slots.get_mut(index)?;
        if slot.generation != generation {
            return None;
        }
        let item = slot.item.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(index);
        self.len -= 1;
        Some(item)
    }

    /// Every occupied id (used on shutdown).
    pub(crate) fn ids(&self) -> Vec<u64> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.item.is_some())
            .map(|(i, s)| pack(i, s.generation))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_ids_never_match_a_reused_slot() {
        let mut slab = Slab::new();
        let a = slab.insert("a");
        assert_eq!(slab.remove(a), Some("a"));
        let b = slab.insert("b");
        assert_eq!(unpack(a).0, unpack(b).0, "slot is reused");
        assert_ne!(a, b);
        assert!(slab.get(a).is_none());
        assert_eq!(slab.remove(a), None);
        assert_eq!(slab.get(b), Some(&"b"));
        assert_eq!(slab.id_at(unpack(b).0), Some(b));
        assert_eq!(slab.len(), 1);
    }
}
