//! The desired trade subscription set, kept locally.
//!
//! AllTick's 22004 replaces the whole set, so the tool keeps the set the user
//! wants and sends all of it after every change and every reconnect. Codes
//! are the identity (`NASDAQ:AAPL` and `AAPL.US` are one subscription); the
//! spelling the user subscribed with is remembered for the output's `symbol`.

use std::collections::HashMap;
use std::sync::Arc;

use crate::symbol::Symbol;

/// The set the user wants, in the order symbols were added.
#[derive(Debug, Default)]
pub struct Subscriptions {
    codes: Vec<String>,
    /// code → spelling used when it was subscribed. Kept after removal so
    /// ticks still in flight are labelled the same way.
    names: HashMap<String, Arc<str>>,
    /// Bumped on every effective change.
    generation: u64,
}

/// The outcome of applying one command, for notes on stderr.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Change {
    /// Spellings that changed the set.
    pub applied: Vec<String>,
    /// Spellings that were already in (for adds) or not in (for removes) the set.
    pub unchanged: Vec<String>,
}

impl Subscriptions {
    /// An empty set.
    pub fn new() -> Subscriptions {
        Subscriptions::default()
    }

    /// Add symbols; those already present are reported as unchanged.
    pub fn add(&mut self, symbols: &[Symbol]) -> Change {
        let mut change = Change::default();
        for s in symbols {
            if self.contains(&s.code) {
                change.unchanged.push(s.spelling.clone());
            } else {
                self.codes.push(s.code.clone());
                self.names
                    .insert(s.code.clone(), Arc::from(s.spelling.as_str()));
                change.applied.push(s.spelling.clone());
            }
        }
        if !change.applied.is_empty() {
            self.generation += 1;
        }
        change
    }

    /// Remove symbols; those absent are reported as unchanged.
    pub fn remove(&mut self, symbols: &[Symbol]) -> Change {
        let mut change = Change::default();
        for s in symbols {
            match self.codes.iter().position(|c| *c == s.code) {
                Some(i) => {
                    self.codes.remove(i);
                    change.applied.push(s.spelling.clone());
                }
                None => change.unchanged.push(s.spelling.clone()),
            }
        }
        if !change.applied.is_empty() {
            self.generation += 1;
        }
        change
    }

    /// Whether `code` is in the set.
    pub fn contains(&self, code: &str) -> bool {
        self.codes.iter().any(|c| c == code)
    }

    /// The codes, in the order they were added.
    pub fn codes(&self) -> &[String] {
        &self.codes
    }

    /// A counter that changes whenever the set does.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The label for ticks of `code`: the user's spelling, or the code itself
    /// for a code the user never asked for.
    pub fn name_of(&self, code: &str) -> Option<Arc<str>> {
        self.names.get(code).cloned()
    }

    /// The spelling for `code` as a plain string, for messages.
    pub fn display(&self, code: &str) -> String {
        self.names
            .get(code)
            .map(|n| n.to_string())
            .unwrap_or_else(|| code.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(s: &str) -> Symbol {
        Symbol::parse(s).unwrap()
    }

    #[test]
    fn both_spellings_are_one_subscription_and_the_first_name_sticks() {
        let mut s = Subscriptions::new();
        let c = s.add(&[sym("NASDAQ:AAPL"), sym("AAPL.US"), sym("NYSE:IBM")]);
        assert_eq!(c.applied, vec!["NASDAQ:AAPL", "NYSE:IBM"]);
        assert_eq!(c.unchanged, vec!["AAPL.US"]);
        assert_eq!(s.codes(), ["AAPL.US", "IBM.US"]);
        assert_eq!(s.name_of("AAPL.US").as_deref(), Some("NASDAQ:AAPL"));
    }

    #[test]
    fn remove_by_either_spelling_and_generation_tracks_real_changes() {
        let mut s = Subscriptions::new();
        s.add(&[sym("NASDAQ:AAPL"), sym("NASDAQ:TSLA")]);
        let g = s.generation();
        let c = s.remove(&[sym("AAPL.US"), sym("NYSE:IBM")]);
        assert_eq!(c.applied, vec!["AAPL.US"]);
        assert_eq!(c.unchanged, vec!["NYSE:IBM"]);
        assert_eq!(s.codes(), ["TSLA.US"]);
        assert!(s.generation() > g);
        let g = s.generation();
        s.remove(&[sym("NYSE:IBM")]);
        s.add(&[sym("TSLA.US")]);
        assert_eq!(s.generation(), g);
        // In-flight ticks of a removed code keep their label.
        assert_eq!(s.name_of("AAPL.US").as_deref(), Some("NASDAQ:AAPL"));
    }
}
