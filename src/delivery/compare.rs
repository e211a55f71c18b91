//! Comparing what arrived with what was sent, as multisets of line hashes: matched, missing, duplicated (Firehose
//! is at-least-once) and extra (lines of another run or producer in the same window). Memory is proportional to
//! the distinct expected lines (a 64-bit hash and two counters each), never to the delivered volume.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// The keys are already uniformly distributed hashes: use them as they are.
#[derive(Default)]
pub struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ *b as u64;
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

type Map = HashMap<u64, Counts, BuildHasherDefault<IdentityHasher>>;

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Counts {
    expected: u32,
    seen: u32,
}

/// The expected multiset and what has been seen of it.
#[derive(Default)]
pub struct Expected {
    map: Map,
    extra: u64,
}

/// The outcome of a comparison.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Tally {
    pub expected: u64,
    pub matched: u64,
    pub missing: u64,
    pub duplicated: u64,
    pub extra: u64,
}

impl Expected {
    pub fn with_capacity(n: usize) -> Self {
        Expected { map: Map::with_capacity_and_hasher(n, Default::default()), extra: 0 }
    }

    /// Adds lines sent independently of those already added (another producer): counts add up.
    pub fn add_independent(&mut self, hashes: impl IntoIterator<Item = u64>) {
        for h in hashes {
            self.map.entry(h).or_default().expected += 1;
        }
    }

    /// Adds a run that resumed an earlier one already added: the same source line sent by both runs is one
    /// line, so per line the larger count wins (re-sent lines that both runs acknowledged count once, and a
    /// second copy in S3 is reported as a duplicate).
    pub fn add_resumed(&mut self, hashes: &[u64]) {
        let mut counts: HashMap<u64, u32, BuildHasherDefault<IdentityHasher>> = HashMap::default();
        for h in hashes {
            *counts.entry(*h).or_default() += 1;
        }
        for (h, n) in counts {
            let e = self.map.entry(h).or_default();
            e.expected = e.expected.max(n);
        }
    }

    /// Records one delivered line; `true` when it is one of the expected lines.
    pub fn observe(&mut self, hash: u64) -> bool {
        match self.map.get_mut(&hash) {
            Some(c) => {
                c.seen = c.seen.saturating_add(1);
                true
            }
            None => {
                self.extra += 1;
                false
            }
        }
    }

    /// Adds another expectation's counts to this one (independent producers).
    pub fn absorb(&mut self, other: Expected) {
        self.map.reserve(other.map.len());
        for (h, c) in other.map {
            self.map.entry(h).or_default().expected += c.expected;
        }
    }

    /// How many more times this line is expected than seen (for printing missing lines).
    pub fn missing_count(&self, hash: u64) -> u32 {
        self.map.get(&hash).map(|c| c.expected.saturating_sub(c.seen)).unwrap_or(0)
    }

    /// Marks one missing occurrence as reported.
    pub fn take_missing(&mut self, hash: u64) -> bool {
        match self.map.get_mut(&hash) {
            Some(c) if c.seen < c.expected => {
                c.seen += 1;
                true
            }
            _ => false,
        }
    }

    pub fn tally(&self) -> Tally {
        let mut t = Tally { extra: self.extra, ..Default::default() };
        for c in self.map.values() {
            let (e, s) = (c.expected as u64, c.seen as u64);
            t.expected += e;
            t.matched += e.min(s);
            t.missing += e.saturating_sub(s);
            t.duplicated += s.saturating_sub(e);
        }
        t
    }

    pub fn distinct(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiset_comparison_reports_each_kind() {
        let mut e = Expected::default();
        e.add_independent([1, 2, 2, 3]);
        for h in [1, 2, 3, 3, 9] {
            e.observe(h);
        }
        assert_eq!(e.tally(), Tally { expected: 4, matched: 3, missing: 1, duplicated: 1, extra: 1 });
        assert_eq!(e.missing_count(2), 1);
        assert!(e.take_missing(2));
        assert!(!e.take_missing(2));
    }

    #[test]
    fn independent_producers_add_up_but_a_resumed_run_does_not_double_count() {
        let mut e = Expected::default();
        e.add_independent([7]);
        e.add_independent([7]);
        assert_eq!(e.tally().expected, 2, "two hosts each sent the line");
        let mut chain = Expected::default();
        chain.add_independent([1, 2, 3]); // killed run acknowledged 1, 2, 3
        chain.add_resumed(&[3, 4]); // resumed run re-sent 3 (in flight at the kill), then 4
        assert_eq!(chain.tally().expected, 4);
        for h in [1, 2, 3, 3, 4] {
            chain.observe(h);
        }
        let t = chain.tally();
        assert_eq!((t.missing, t.duplicated), (0, 1), "the re-sent line is a duplicate in S3");
    }
}
