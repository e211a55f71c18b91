//! Comparing what arrived with what was sent, as multisets of line hashes: matched, missing, duplicated (Firehose
//! is at-least-once) and extra (lines of another run or producer in the same window).
//!
//! Memory is proportional to the distinct expected lines and never to the delivered volume: a sorted array of
//! 64-bit hashes plus two 32-bit counters, 16 bytes per distinct line with no hash-table slack, and a directory
//! of where each run of leading bits starts (half a byte per line). The hashes are uniform, so the directory
//! narrows a lookup to about eight neighbouring keys.

use std::cmp::Ordering;

/// The expected multiset and what has been seen of it.
#[derive(Debug, Default, Clone)]
pub struct Expected {
    keys: Vec<u64>,
    expected: Vec<u32>,
    seen: Vec<u32>,
    /// Copies other runs sent of each line (empty when none): see [`Expected::allow_other_runs`].
    others: Vec<u32>,
    extra: u64,
    /// `directory[b]` is the first key whose top `bits` bits are at least `b`.
    directory: Vec<u32>,
    bits: u32,
}

/// Builds the directory over sorted keys: about eight keys per entry.
fn directory(keys: &[u64]) -> (Vec<u32>, u32) {
    if keys.is_empty() {
        return (Vec::new(), 0);
    }
    let bits = (keys.len() / 8).max(1).ilog2().max(1);
    let mut dir = Vec::with_capacity((1usize << bits) + 1);
    let mut i = 0usize;
    for b in 0..(1u64 << bits) {
        while i < keys.len() && (keys[i] >> (64 - bits)) < b {
            i += 1;
        }
        dir.push(i as u32);
    }
    dir.push(keys.len() as u32);
    (dir, bits)
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
    /// The multiset of `hashes` (sorted in place, then collapsed to distinct keys with counts).
    pub fn from_hashes(mut hashes: Vec<u64>) -> Self {
        hashes.sort_unstable();
        let mut expected: Vec<u32> = Vec::new();
        let mut write = 0usize;
        for read in 0..hashes.len() {
            if write > 0 && hashes[write - 1] == hashes[read] {
                let last = expected.last_mut().expect("a key was written");
                *last = last.saturating_add(1);
            } else {
                hashes[write] = hashes[read];
                write += 1;
                expected.push(1);
            }
        }
        hashes.truncate(write);
        hashes.shrink_to_fit();
        expected.shrink_to_fit();
        let seen = vec![0; hashes.len()];
        let (directory, bits) = directory(&hashes);
        Expected { keys: hashes, expected, seen, others: Vec::new(), extra: 0, directory, bits }
    }

    /// Merges two expectations key by key with `combine` on the counts (nothing seen yet).
    fn merge(a: Expected, b: Expected, combine: impl Fn(u32, u32) -> u32) -> Expected {
        let n = a.keys.len() + b.keys.len();
        let (mut keys, mut expected) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let (mut i, mut j) = (0, 0);
        while i < a.keys.len() || j < b.keys.len() {
            let order = match (a.keys.get(i), b.keys.get(j)) {
                (Some(x), Some(y)) => x.cmp(y),
                (Some(_), None) => Ordering::Less,
                _ => Ordering::Greater,
            };
            match order {
                Ordering::Less => {
                    keys.push(a.keys[i]);
                    expected.push(combine(a.expected[i], 0));
                    i += 1;
                }
                Ordering::Greater => {
                    keys.push(b.keys[j]);
                    expected.push(combine(0, b.expected[j]));
                    j += 1;
                }
                Ordering::Equal => {
                    keys.push(a.keys[i]);
                    expected.push(combine(a.expected[i], b.expected[j]));
                    i += 1;
                    j += 1;
                }
            }
        }
        let seen = vec![0; keys.len()];
        let (directory, bits) = directory(&keys);
        Expected { keys, expected, seen, others: Vec::new(), extra: 0, directory, bits }
    }

    /// Lines sent independently (another producer): counts add up.
    pub fn sum(a: Expected, b: Expected) -> Expected {
        Self::merge(a, b, u32::saturating_add)
    }

    /// A run that resumed `earlier`: the same source line sent by both runs is one line, so per line the larger
    /// count wins (lines both runs acknowledged count once; a second copy in S3 is a duplicate).
    pub fn resumed(earlier: Expected, later: Expected) -> Expected {
        Self::merge(earlier, later, u32::max)
    }

    fn find(&self, hash: u64) -> Option<usize> {
        if self.keys.is_empty() {
            return None;
        }
        let b = (hash >> (64 - self.bits)) as usize;
        let (lo, hi) = (self.directory[b] as usize, self.directory[b + 1] as usize);
        self.keys[lo..hi].binary_search(&hash).ok().map(|i| lo + i)
    }

    /// Records one delivered line; `true` when it is one of the expected lines.
    pub fn observe(&mut self, hash: u64) -> bool {
        match self.find(hash) {
            Some(i) => {
                self.seen[i] = self.seen[i].saturating_add(1);
                true
            }
            None => {
                self.extra += 1;
                false
            }
        }
    }

    /// Marks one missing occurrence of a line as reported; `false` when it is not missing.
    pub fn take_missing(&mut self, hash: u64) -> bool {
        match self.find(hash) {
            Some(i) if self.seen[i] < self.expected[i] => {
                self.seen[i] += 1;
                true
            }
            _ => false,
        }
    }

    /// How often a line is expected and how often it was seen; `None` when it is not expected.
    pub fn counts(&self, hash: u64) -> Option<(u32, u32)> {
        self.find(hash).map(|i| (self.expected[i], self.seen[i]))
    }

    /// Lines other runs sent (runs outside the comparison whose objects can be in the same window): a line
    /// delivered once per run that sent it is not a duplicate, and those copies count as extra (another run's).
    pub fn allow_other_runs(&mut self, hashes: impl IntoIterator<Item = u64>) {
        for hash in hashes {
            if let Some(i) = self.find(hash) {
                if self.others.is_empty() {
                    self.others = vec![0; self.keys.len()];
                }
                self.others[i] = self.others[i].saturating_add(1);
            }
        }
    }

    pub fn tally(&self) -> Tally {
        let mut t = Tally { extra: self.extra, ..Default::default() };
        for (i, (e, s)) in self.expected.iter().zip(&self.seen).enumerate() {
            let (e, s) = (*e as u64, *s as u64);
            let over = s.saturating_sub(e);
            let other_runs = over.min(self.others.get(i).copied().unwrap_or(0) as u64);
            t.expected += e;
            t.matched += e.min(s);
            t.missing += e.saturating_sub(s);
            t.duplicated += over - other_runs;
            t.extra += other_runs;
        }
        t
    }

    pub fn distinct(&self) -> usize {
        self.keys.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiset_comparison_reports_each_kind() {
        let mut e = Expected::from_hashes(vec![2, 1, 3, 2]);
        for h in [1, 2, 3, 3, 9] {
            e.observe(h);
        }
        assert_eq!(e.tally(), Tally { expected: 4, matched: 3, missing: 1, duplicated: 1, extra: 1 });
        assert!(e.take_missing(2));
        assert!(!e.take_missing(2));
        assert_eq!(e.distinct(), 3);
    }

    #[test]
    fn a_line_another_run_sent_too_is_that_runs_copy_not_a_duplicate() {
        let mut e = Expected::from_hashes(vec![1, 2, 3]);
        e.allow_other_runs([1, 2, 9]);
        for h in [1, 1, 2, 2, 2, 3, 3] {
            e.observe(h);
        }
        // 1: one copy each run; 2: one more than the runs sent; 3: a duplicate (no other run sent it).
        assert_eq!(e.tally(), Tally { expected: 3, matched: 3, missing: 0, duplicated: 2, extra: 2 });
    }

    #[test]
    fn independent_producers_add_up_but_a_resumed_run_does_not_double_count() {
        let e = Expected::sum(Expected::from_hashes(vec![7]), Expected::from_hashes(vec![7]));
        assert_eq!(e.tally().expected, 2, "two hosts each sent the line");
        // The killed run acknowledged 1, 2, 3; the resumed run re-sent 3 (in flight at the kill), then 4.
        let mut chain = Expected::resumed(Expected::from_hashes(vec![1, 2, 3]), Expected::from_hashes(vec![3, 4]));
        assert_eq!(chain.tally().expected, 4);
        for h in [1, 2, 3, 3, 4] {
            chain.observe(h);
        }
        let t = chain.tally();
        assert_eq!((t.missing, t.duplicated), (0, 1), "the re-sent line is a duplicate in S3");
    }

    #[test]
    fn lookups_find_every_key_among_many_uniform_hashes_and_nothing_else() {
        let keys: Vec<u64> = (0..200_000u64).map(|i| xxhash_rust::xxh3::xxh3_64(&i.to_le_bytes())).collect();
        let mut e = Expected::from_hashes(keys.clone());
        assert!(keys.iter().all(|k| e.observe(*k)));
        for probe in [0u64, 1, u64::MAX, u64::MAX / 2] {
            assert!(!e.observe(probe) || keys.contains(&probe));
        }
        assert_eq!(e.tally().matched, 200_000);
        let mut edges = Expected::from_hashes(vec![0, u64::MAX, 1 << 63, (1 << 63) - 1]);
        assert!([0, u64::MAX, 1 << 63, (1 << 63) - 1].iter().all(|k| edges.observe(*k)));
        assert!(!edges.observe(5));
        assert!(!Expected::default().observe(1));
    }
}
