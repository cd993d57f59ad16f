//! Records ordered by modification time, for incremental exports and
//! `updated_at` searches over lazily generated data.
//!
//! Generated record `i` (of `n`) was last modified at `gen(i)`, which never
//! decreases with `i`; so "(time, index) order" over generated records is
//! index order and needs no storage. Mutations move a record to a later time
//! (and records created at run time, with indexes `>= n`, only exist as
//! moved records); those are kept in a sorted set and merged in.

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;

/// A position in time order: (modification time, index).
pub(crate) type Key = (i64, u64);

/// The modification times of records that mutations moved.
#[derive(Debug, Default)]
pub(crate) struct Timeline {
    moved: HashMap<u64, i64>,
    order: BTreeSet<Key>,
}

impl Timeline {
    /// Records that record `i` was modified at `t`.
    pub(crate) fn touch(&mut self, i: u64, t: i64) {
        if let Some(old) = self.moved.insert(i, t) {
            self.order.remove(&(old, i));
        }
        self.order.insert((t, i));
    }

    /// Modification time of record `i` (`gen` gives generated records' times).
    pub(crate) fn time(&self, i: u64, generated: impl Fn(u64) -> i64) -> i64 {
        self.moved.get(&i).copied().unwrap_or_else(|| generated(i))
    }

    /// First generated index whose key is after `after` and whose time is at least `from`.
    fn first_generated(
        n: u64,
        generated: &dyn Fn(u64) -> i64,
        after: Option<Key>,
        from: i64,
    ) -> u64 {
        let (mut lo, mut hi) = (0u64, n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let t = generated(mid);
            let before = t < from || after.is_some_and(|a| (t, mid) <= a);
            if before {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Up to `limit` keys after `after` (exclusive) with a time in
    /// `from..=to`, in order, and whether more follow.
    pub(crate) fn page(
        &self,
        n: u64,
        generated: &dyn Fn(u64) -> i64,
        after: Option<Key>,
        (from, to): (i64, i64),
        limit: usize,
    ) -> (Vec<Key>, bool) {
        let mut out = Vec::with_capacity(limit.min(4_096));
        let mut g = Self::first_generated(n, generated, after, from);
        let lower = match after {
            Some(a) if a >= (from, 0) => Bound::Excluded(a),
            _ => Bound::Included((from, 0)),
        };
        let mut moved = self
            .order
            .range((lower, Bound::Unbounded))
            .copied()
            .peekable();
        loop {
            while g < n && self.moved.contains_key(&g) {
                g += 1;
            }
            let next_gen = (g < n).then(|| (generated(g), g));
            let next = match (next_gen, moved.peek().copied()) {
                (Some(a), Some(b)) if b < a => {
                    moved.next();
                    b
                }
                (Some(a), _) => {
                    g += 1;
                    a
                }
                (None, Some(b)) => {
                    moved.next();
                    b
                }
                (None, None) => return (out, false),
            };
            if next.0 > to {
                return (out, false);
            }
            if out.len() == limit {
                return (out, true);
            }
            out.push(next);
        }
    }

    /// Number of records with a time in `from..=to`.
    pub(crate) fn count(
        &self,
        n: u64,
        generated: &dyn Fn(u64) -> i64,
        (from, to): (i64, i64),
    ) -> u64 {
        if from > to {
            return 0;
        }
        let lo = Self::first_generated(n, generated, None, from);
        let hi = to
            .checked_add(1)
            .map_or(n, |end| Self::first_generated(n, generated, None, end));
        let moved_out = self
            .moved
            .keys()
            .filter(|&&i| i < n && (lo..hi).contains(&i))
            .count() as u64;
        let moved_in = self.order.range((from, 0)..=(to, u64::MAX)).count() as u64;
        hi.saturating_sub(lo) - moved_out + moved_in
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_generated_and_moved_records_in_time_order() {
        let generated = |i: u64| 100 + (i as i64) * 10;
        let mut t = Timeline::default();
        t.touch(2, 1_000);
        t.touch(7, 1_000);
        t.touch(3, 135);
        let (all, more) = t.page(5, &generated, None, (0, i64::MAX), 100);
        assert!(!more);
        assert_eq!(
            all,
            vec![
                (100, 0),
                (110, 1),
                (135, 3),
                (140, 4),
                (1_000, 2),
                (1_000, 7)
            ]
        );
        let (page, more) = t.page(5, &generated, Some((135, 3)), (0, i64::MAX), 2);
        assert_eq!(page, vec![(140, 4), (1_000, 2)]);
        assert!(more);
        let (page, _) = t.page(5, &generated, None, (111, 999), 10);
        assert_eq!(page, vec![(135, 3), (140, 4)]);
        assert_eq!(t.count(5, &generated, (111, 999)), 2);
        assert_eq!(t.count(5, &generated, (0, i64::MAX)), 6);
        assert_eq!(t.time(2, generated), 1_000);
        assert_eq!(t.time(1, generated), 110);
    }
}
