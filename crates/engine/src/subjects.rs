//! Subject sets: the values LookupSubjects computes with. A set holds concrete subject ids
//! and at most one wildcard (`type:*`) with its excluded ids; every element carries a
//! three-valued condition ([`Tri`]: `True`, or `Partial` when it depends on caveat parameters
//! the request did not supply). Elements whose condition is `False` are dropped at once.
//!
//! The operations follow SpiceDB's `internal/datasets/basesubjectset.go` case by case, so
//! results have SpiceDB's shape: a union keeps a concrete subject next to a wildcard that
//! covers it, a wildcard minus concrete subjects lists them as exclusions, a conditional
//! exclusion stays an exclusion with its own condition. SpiceDB carries symbolic caveat
//! expressions and evaluates them at the end; Kleene logic is compositional, so combining
//! the already-evaluated conditions gives the same answers (the same reasoning as in
//! [`crate::caveat`]).
//!
//! The membership of a concrete id `s` in a set is `concrete(s) ∨ (wildcard ∧ ¬excluded(s))`.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use ostiary_types::ObjectId;

use crate::caveat::Tri;

/// A wildcard element: every subject of the type except the excluded ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Wildcard {
    /// When the wildcard applies (never `False`).
    pub(crate) cond: Tri,
    /// Excluded ids, each with the condition under which it is excluded (never `False`).
    pub(crate) excluded: BTreeMap<ObjectId, Tri>,
}

/// A set of subjects of one type (and subject relation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SubjectSet {
    /// Concrete ids with their conditions (never `False`).
    pub(crate) concrete: BTreeMap<ObjectId, Tri>,
    /// The wildcard, if any.
    pub(crate) wildcard: Option<Wildcard>,
}

/// Kleene OR of an optional condition with another (`None` is `False`).
fn or_opt(existing: Option<Tri>, adding: Tri) -> Tri {
    match existing {
        Some(existing) => existing.or(adding),
        None => adding,
    }
}

impl SubjectSet {
    /// The empty set.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Whether the set has no element.
    pub(crate) fn is_empty(&self) -> bool {
        self.concrete.is_empty() && self.wildcard.is_none()
    }

    /// Adds a concrete subject (a union with `{id[cond]}`).
    pub(crate) fn add_concrete(&mut self, id: ObjectId, cond: Tri) {
        if cond.is_false() {
            return;
        }
        if let Some(wildcard) = &mut self.wildcard {
            union_wildcard_with_concrete(wildcard, &id, &cond);
        }
        let merged = or_opt(self.concrete.remove(&id), cond);
        self.concrete.insert(id, merged);
    }

    /// Adds a wildcard (a union with `{* - excluded}[cond]`).
    pub(crate) fn add_wildcard(&mut self, adding: Wildcard) {
        if adding.cond.is_false() {
            return;
        }
        let mut updated = match self.wildcard.take() {
            None => adding,
            Some(existing) => union_wildcards(existing, adding),
        };
        for (id, cond) in &self.concrete {
            union_wildcard_with_concrete(&mut updated, id, cond);
        }
        self.wildcard = Some(updated);
    }

    /// Union with `other`, in place.
    pub(crate) fn union_with(&mut self, other: &SubjectSet) {
        for (id, cond) in &other.concrete {
            self.add_concrete(id.clone(), cond.clone());
        }
        if let Some(wildcard) = &other.wildcard {
            self.add_wildcard(wildcard.clone());
        }
    }

    /// The set with every element further conditioned on `cond` (a caveated relationship
    /// leading to it). Exclusions keep their own conditions.
    pub(crate) fn with_parent(mut self, cond: &Tri) -> SubjectSet {
        match cond {
            Tri::True => self,
            Tri::False => SubjectSet::new(),
            Tri::Partial(_) => {
                for value in self.concrete.values_mut() {
                    *value = value.clone().and(cond.clone());
                }
                if let Some(wildcard) = &mut self.wildcard {
                    wildcard.cond = wildcard.cond.clone().and(cond.clone());
                }
                self
            }
        }
    }

    /// Intersection with `other`, in place.
    pub(crate) fn intersect_with(&mut self, other: &SubjectSet) {
        let wildcard = match (&self.wildcard, &other.wildcard) {
            (Some(first), Some(second)) => {
                // Exclusions are united (an id excluded by either is excluded).
                let mut excluded = first.excluded.clone();
                for (id, cond) in &second.excluded {
                    let merged = or_opt(excluded.remove(id), cond.clone());
                    excluded.insert(id.clone(), merged);
                }
                let cond = first.cond.clone().and(second.cond.clone());
                (!cond.is_false()).then_some(Wildcard { cond, excluded })
            }
            _ => None,
        };
        let mut concrete: BTreeMap<ObjectId, Tri> = BTreeMap::new();
        for (id, cond) in &self.concrete {
            let both = other
                .concrete
                .get(id)
                .map(|other_cond| cond.clone().and(other_cond.clone()));
            let via_wildcard = intersect_concrete_with_wildcard(id, cond, other.wildcard.as_ref());
            let res = match (both, via_wildcard) {
                (Some(left), Some(right)) => left.or(right),
                (Some(value), None) | (None, Some(value)) => value,
                (None, None) => continue,
            };
            if !res.is_false() {
                concrete.insert(id.clone(), res);
            }
        }
        if let Some(own_wildcard) = &self.wildcard {
            for (id, cond) in &other.concrete {
                let Some(res) = intersect_concrete_with_wildcard(id, cond, Some(own_wildcard))
                else {
                    continue;
                };
                let merged = or_opt(concrete.remove(id), res);
                if !merged.is_false() {
                    concrete.insert(id.clone(), merged);
                }
            }
        }
        self.concrete = concrete;
        self.wildcard = wildcard;
    }

    /// Subtracts `other` from this set, in place: its concrete subjects first, then its
    /// wildcard (SpiceDB's order).
    pub(crate) fn subtract(&mut self, other: &SubjectSet) {
        for (id, cond) in &other.concrete {
            self.subtract_concrete(id, cond);
        }
        if let Some(wildcard) = &other.wildcard {
            self.subtract_wildcard(wildcard);
        }
    }

    fn subtract_concrete(&mut self, id: &ObjectId, cond: &Tri) {
        if let Entry::Occupied(mut entry) = self.concrete.entry(id.clone()) {
            let kept = entry.get().clone().and(cond.clone().not());
            if kept.is_false() {
                entry.remove();
            } else {
                entry.insert(kept);
            }
        }
        if let Some(wildcard) = &mut self.wildcard {
            let merged = or_opt(wildcard.excluded.remove(id), cond.clone());
            wildcard.excluded.insert(id.clone(), merged);
        }
    }

    fn subtract_wildcard(&mut self, removing: &Wildcard) {
        // Concrete subjects survive where the removed wildcard does not apply to them.
        let concrete = std::mem::take(&mut self.concrete);
        for (id, cond) in concrete {
            let kept = match removing.excluded.get(&id) {
                None => cond.and(removing.cond.clone().not()),
                Some(Tri::True) => cond,
                Some(exclusion) => cond.and(removing.cond.clone().not().or(exclusion.clone())),
            };
            if !kept.is_false() {
                self.concrete.insert(id, kept);
            }
        }
        let Some(existing) = self.wildcard.take() else {
            return;
        };
        // Ids the removed wildcard excludes stay members of this one: they become concrete.
        // SpiceDB also conditions them on the removed wildcard's caveat, which makes them
        // conditional where they are not (when that caveat does not hold, the remaining
        // wildcard below still holds them, but a conditional wildcard and a conditional id
        // do not add up to a certain one in three-valued logic); the condition here is the
        // exact `c1 ∧ ¬e1 ∧ e2`.
        for (id, exclusion) in &removing.excluded {
            let cond = match existing.excluded.get(id) {
                Some(Tri::True) => continue,
                Some(own) => existing
                    .cond
                    .clone()
                    .and(own.clone().not())
                    .and(exclusion.clone()),
                None => existing.cond.clone().and(exclusion.clone()),
            };
            if !cond.is_false() {
                let merged = or_opt(self.concrete.remove(id), cond);
                self.concrete.insert(id.clone(), merged);
            }
        }
        let cond = existing.cond.clone().and(removing.cond.clone().not());
        if !cond.is_false() {
            self.wildcard = Some(Wildcard {
                cond,
                excluded: existing.excluded,
            });
        }
    }

    /// The membership of concrete id `id`: `concrete(id) ∨ (wildcard ∧ ¬excluded(id))`.
    #[cfg(test)]
    pub(crate) fn membership(&self, id: &ObjectId) -> Tri {
        let concrete = self.concrete.get(id).cloned().unwrap_or(Tri::False);
        let via_wildcard = match &self.wildcard {
            None => Tri::False,
            Some(wildcard) => wildcard.cond.clone().and(
                wildcard
                    .excluded
                    .get(id)
                    .cloned()
                    .unwrap_or(Tri::False)
                    .not(),
            ),
        };
        concrete.or(via_wildcard)
    }
}

/// The union of two wildcards. With unconditional wildcards the exclusions are intersected,
/// as SpiceDB does: an id excluded by one wildcard only is, by definition, in the other.
/// SpiceDB intersects them whatever the conditions, which loses information when exactly
/// one side is conditional (`{* - {a}} ∪ {*}[c]` would grant `a` unconditionally); here each
/// id's exclusion is chosen so that its membership is exactly
/// `(c1 ∧ ¬e1) ∨ (c2 ∧ ¬e2)`, which Check computes.
fn union_wildcards(existing: Wildcard, adding: Wildcard) -> Wildcard {
    let cond = existing.cond.clone().or(adding.cond.clone());
    let mut excluded = BTreeMap::new();
    let ids: Vec<&ObjectId> = existing
        .excluded
        .keys()
        .chain(adding.excluded.keys())
        .collect();
    for id in ids {
        if excluded.contains_key(id) {
            continue;
        }
        let part = |wildcard: &Wildcard| {
            let exclusion = wildcard.excluded.get(id).cloned().unwrap_or(Tri::False);
            wildcard.cond.clone().and(exclusion.not())
        };
        let member = part(&existing).or(part(&adding));
        let exclusion = match (&cond, &member) {
            (Tri::True, member) => member.clone().not(),
            (_, Tri::False) => Tri::True,
            _ => Tri::False,
        };
        if !exclusion.is_false() {
            excluded.insert(id.clone(), exclusion);
        }
    }
    Wildcard { cond, excluded }
}

/// A concrete subject joins a set that has a wildcard: an exclusion of that subject is
/// dropped (unconditional subject) or holds only when the subject's condition does not.
fn union_wildcard_with_concrete(wildcard: &mut Wildcard, id: &ObjectId, cond: &Tri) {
    if let Entry::Occupied(mut entry) = wildcard.excluded.entry(id.clone()) {
        let remaining = entry.get().clone().and(cond.clone().not());
        if remaining.is_false() {
            entry.remove();
        } else {
            entry.insert(remaining);
        }
    }
}

/// The part of concrete `id[cond]` that a wildcard also holds.
fn intersect_concrete_with_wildcard(
    id: &ObjectId,
    cond: &Tri,
    wildcard: Option<&Wildcard>,
) -> Option<Tri> {
    let wildcard = wildcard?;
    let res = match wildcard.excluded.get(id) {
        None => cond.clone().and(wildcard.cond.clone()),
        Some(Tri::True) => return None,
        Some(exclusion) => cond
            .clone()
            .and(wildcard.cond.clone())
            .and(exclusion.clone().not()),
    };
    (!res.is_false()).then_some(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(text: &str) -> ObjectId {
        ObjectId::new(text).unwrap()
    }

    fn partial(name: &str) -> Tri {
        Tri::Partial(vec![name.to_owned()])
    }

    /// Parses `a b? *-{c d?}`: ids, `?` marks a condition on parameter `x`, `*[?]-{..}` a
    /// wildcard with exclusions.
    fn set(text: &str) -> SubjectSet {
        let mut res = SubjectSet::new();
        let (concrete, wildcard) = match text.split_once('*') {
            Some((left, right)) => (left, Some(right)),
            None => (text, None),
        };
        for word in concrete.split_whitespace() {
            match word.strip_suffix('?') {
                Some(name) => res.add_concrete(id(name), partial("x")),
                None => res.add_concrete(id(word), Tri::True),
            }
        }
        if let Some(rest) = wildcard {
            let (cond, rest) = match rest.strip_prefix('?') {
                Some(rest) => (partial("w"), rest),
                None => (Tri::True, rest),
            };
            let mut excluded = BTreeMap::new();
            let inner = rest.trim().trim_start_matches('-').trim();
            let inner = inner.trim_start_matches('{').trim_end_matches('}');
            for word in inner.split_whitespace() {
                match word.strip_suffix('?') {
                    Some(name) => excluded.insert(id(name), partial("e")),
                    None => excluded.insert(id(word), Tri::True),
                };
            }
            res.add_wildcard(Wildcard { cond, excluded });
        }
        res
    }

    fn show(set: &SubjectSet) -> String {
        let mark = |cond: &Tri| match cond {
            Tri::True => String::new(),
            Tri::Partial(names) => format!("?{}", names.join(",")),
            Tri::False => "!".to_owned(),
        };
        let mut parts: Vec<String> = set
            .concrete
            .iter()
            .map(|(id, cond)| format!("{id}{}", mark(cond)))
            .collect();
        if let Some(wildcard) = &set.wildcard {
            let excluded: Vec<String> = wildcard
                .excluded
                .iter()
                .map(|(id, cond)| format!("{id}{}", mark(cond)))
                .collect();
            parts.push(format!(
                "*{} - {{{}}}",
                mark(&wildcard.cond),
                excluded.join(" ")
            ));
        }
        parts.join(" ")
    }

    #[test]
    fn union() {
        let cases = [
            ("a b", "b c", "a b c"),
            ("a?", "a", "a"),
            ("a?", "b", "a?x b"),
            ("* - {a}", "a", "a * - {}"),
            ("* - {a}", "a?", "a?x * - {a?x}"),
            ("* - {a b}", "* - {b c}", "* - {b}"),
            ("* - {a}", "*", "* - {}"),
            ("*? - {}", "*", "* - {}"),
        ];
        for (left, right, want) in cases {
            let mut res = set(left);
            res.union_with(&set(right));
            assert_eq!(show(&res), want, "{left} + {right}");
        }
    }

    #[test]
    fn intersection() {
        let cases = [
            ("a b", "b c", "b"),
            ("a b", "* - {a}", "b"),
            ("a b", "* - {a?}", "a?e b"),
            ("* - {a}", "* - {b}", "* - {a b}"),
            ("* - {a}", "b c", "b c"),
            ("a?", "*", "a?x"),
            ("a", "*?", "a?w"),
            ("a", "", ""),
        ];
        for (left, right, want) in cases {
            let mut res = set(left);
            res.intersect_with(&set(right));
            assert_eq!(show(&res), want, "{left} & {right}");
        }
    }

    #[test]
    fn exclusion() {
        let cases = [
            ("a b", "b", "a"),
            ("a b", "b?", "a b?x"),
            ("a b", "*", ""),
            ("a b", "* - {b}", "b"),
            ("a b", "*?", "a?w b?w"),
            ("*", "a b", "* - {a b}"),
            ("*", "a?", "* - {a?x}"),
            ("* - {a}", "* - {a b}", "b"),
            ("*", "*", ""),
            ("a *", "* - {a}", "a"),
        ];
        for (left, right, want) in cases {
            let mut res = set(left);
            res.subtract(&set(right));
            assert_eq!(show(&res), want, "{left} - {right}");
        }
    }

    #[test]
    fn membership_follows_the_algebra() {
        let universe = ["a", "b", "c", "z"];
        let sets = [
            "a b",
            "a? c",
            "* - {a}",
            "* - {b?}",
            "*? - {c}",
            "b *",
            "",
            "c? * - {c}",
        ];
        for left in sets {
            for right in sets {
                let (left_set, right_set) = (set(left), set(right));
                let mut union = left_set.clone();
                union.union_with(&right_set);
                let mut inter = left_set.clone();
                inter.intersect_with(&right_set);
                let mut diff = left_set.clone();
                diff.subtract(&right_set);
                for name in universe {
                    let subject = id(name);
                    let (l, r) = (
                        left_set.membership(&subject),
                        right_set.membership(&subject),
                    );
                    let class = |tri: Tri| match tri {
                        Tri::True => 2,
                        Tri::Partial(_) => 1,
                        Tri::False => 0,
                    };
                    assert_eq!(
                        class(union.membership(&subject)),
                        class(l.clone().or(r.clone())),
                        "{name} in {left} + {right}"
                    );
                    assert_eq!(
                        class(inter.membership(&subject)),
                        class(l.clone().and(r.clone())),
                        "{name} in {left} & {right}"
                    );
                    assert_eq!(
                        class(diff.membership(&subject)),
                        class(l.and(r.not())),
                        "{name} in {left} - {right}"
                    );
                }
            }
        }
    }
}
