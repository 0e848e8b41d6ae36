//! The bounded memo tables behind the SQL the library derives from statements SeaORM
//! builds. SeaORM sends the same few texts again and again (one per entity and set of
//! columns), so what is derived from a text is worked out once and looked up after.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;

/// Values kept per group (an entity and a purpose, say) and key (usually a statement's
/// text), looked up with a borrowed key so a hit allocates nothing. Past `keep` keys in
/// one group that group starts over, so raw SQL with literals in it cannot grow a table
/// without bound.
pub(crate) struct Memo<G, K, V> {
    keep: usize,
    groups: RwLock<HashMap<G, HashMap<K, V>>>,
}

impl<G: Eq + Hash, K: Eq + Hash, V: Clone> Memo<G, K, V> {
    pub(crate) fn new(keep: usize) -> Self {
        Memo {
            keep,
            groups: RwLock::default(),
        }
    }

    pub(crate) fn get<Q>(&self, group: &G, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let groups = self.groups.read().ok()?;
        groups.get(group)?.get(key).cloned()
    }

    pub(crate) fn insert(&self, group: G, key: K, value: V) {
        if let Ok(mut groups) = self.groups.write() {
            let m = groups.entry(group).or_default();
            if m.len() >= self.keep {
                m.clear();
            }
            m.insert(key, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Memo;

    #[test]
    fn a_full_group_starts_over_and_others_keep_theirs() {
        let memo: Memo<&str, String, usize> = Memo::new(2);
        memo.insert("a", "x".into(), 1);
        memo.insert("a", "y".into(), 2);
        memo.insert("b", "x".into(), 9);
        assert_eq!(memo.get(&"a", "x"), Some(1));
        memo.insert("a", "z".into(), 3);
        assert_eq!((memo.get(&"a", "x"), memo.get(&"a", "z")), (None, Some(3)));
        assert_eq!(memo.get(&"b", "x"), Some(9));
    }
}
