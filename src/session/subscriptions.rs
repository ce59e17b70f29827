//! The desired trade subscription set, kept locally.
//!
//! AllTick's 22004 replaces the whole set, so the tool keeps the set the user
//! wants and sends all of it after every change and every reconnect. Codes
//! are the identity (`NASDAQ:AAPL` and `AAPL.US` are one subscription); the
//! spelling the user subscribed with is remembered for the output's `symbol`.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use crate::wire::symbol::{Code, Fnv, Symbol};

/// The set the user wants, in the order symbols were added.
#[derive(Debug, Default)]
pub struct Subscriptions {
    codes: Vec<Code>,
    /// code → what we know of it.
    known: HashMap<Code, Known, BuildHasherDefault<Fnv>>,
}

#[derive(Debug)]
struct Known {
    /// The spelling used when it was subscribed.
    name: Arc<str>,
    /// Whether it is in the set now.
    wanted: bool,
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
                change.unchanged.push(s.spelling.to_string());
                continue;
            }
            self.codes.push(s.code.clone());
            let name = Arc::clone(&s.spelling);
            self.known
                .entry(s.code.clone())
                .and_modify(|k| {
                    k.name = Arc::clone(&name);
                    k.wanted = true;
                })
                .or_insert(Known { name, wanted: true });
            change.applied.push(s.spelling.to_string());
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
                    if let Some(k) = self.known.get_mut(&s.code) {
                        k.wanted = false;
                    }
                    change.applied.push(s.spelling.to_string());
                }
                None => change.unchanged.push(s.spelling.to_string()),
            }
        }
        change
    }

    /// Remove one code (refused by the server); true if it was in the set.
    pub fn drop_code(&mut self, code: &str) -> bool {
        match self.codes.iter().position(|c| **c == *code) {
            Some(i) => {
                self.codes.remove(i);
                if let Some(k) = self.known.get_mut(code) {
                    k.wanted = false;
                }
                true
            }
            None => false,
        }
    }

    /// Whether `code` is in the set.
    pub fn contains(&self, code: &str) -> bool {
        self.known.get(code).is_some_and(|k| k.wanted)
    }

    /// The codes, in the order they were added.
    pub fn codes(&self) -> &[Code] {
        &self.codes
    }

    /// The user's spelling of `code`, shared (the code itself if it is
    /// not in the set).
    pub fn name_of(&self, code: &str) -> Code {
        self.known
            .get(code)
            .map_or_else(|| Arc::from(code), |k| Arc::clone(&k.name))
    }

    /// The spelling for `code` as a plain string, for messages.
    pub fn display(&self, code: &str) -> String {
        self.name_of(code).to_string()
    }
}

/// What to send for one feed's set, decided only after something changed:
/// AllTick replaces the set with every request, so a new set goes out only
/// when it differs from the one last sent on this connection.
#[derive(Debug)]
pub struct Outbox<T> {
    /// The set last sent on this connection; `None` forces a resend.
    sent: Option<T>,
    /// Something changed that may change the set to send.
    dirty: bool,
    /// The set waiting to be sent, when it differs from `sent`.
    pending: Option<T>,
}

impl<T> Default for Outbox<T> {
    fn default() -> Self {
        Outbox {
            sent: None,
            dirty: true,
            pending: None,
        }
    }
}

impl<T: PartialEq + Clone> Outbox<T> {
    /// The wanted set may have changed.
    pub fn changed(&mut self) {
        self.dirty = true;
    }

    /// Whether [`Outbox::offer`] needs the current target.
    pub fn needs_target(&self) -> bool {
        self.dirty
    }

    /// The set that should be on the server now.
    pub fn offer(&mut self, target: T) {
        self.dirty = false;
        self.pending = (self.sent.as_ref() != Some(&target)).then_some(target);
    }

    /// A set is waiting to be sent.
    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Take the waiting set to send it; it counts as sent.
    pub fn take(&mut self) -> Option<T> {
        let t = self.pending.take()?;
        self.sent = Some(t.clone());
        Some(t)
    }

    /// Record what the server holds (`None`: unknown, send again).
    pub fn assume_sent(&mut self, set: Option<T>) {
        self.sent = set;
        self.dirty = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(s: &str) -> Symbol {
        Symbol::parse(s).unwrap()
    }

    fn names(s: &Subscriptions) -> Vec<&str> {
        s.codes().iter().map(|c| &**c).collect()
    }

    #[test]
    fn both_spellings_are_one_subscription_and_the_first_name_sticks() {
        let mut s = Subscriptions::new();
        let c = s.add(&[sym("NASDAQ:AAPL"), sym("AAPL.US"), sym("NYSE:IBM")]);
        assert_eq!(c.applied, vec!["NASDAQ:AAPL", "NYSE:IBM"]);
        assert_eq!(c.unchanged, vec!["AAPL.US"]);
        assert_eq!(names(&s), ["AAPL.US", "IBM.US"]);
        assert_eq!(s.display("AAPL.US"), "NASDAQ:AAPL");
    }

    #[test]
    fn remove_by_either_spelling() {
        let mut s = Subscriptions::new();
        s.add(&[sym("NASDAQ:AAPL"), sym("NASDAQ:TSLA")]);
        let c = s.remove(&[sym("AAPL.US"), sym("NYSE:IBM")]);
        assert_eq!(c.applied, vec!["AAPL.US"]);
        assert_eq!(c.unchanged, vec!["NYSE:IBM"]);
        assert_eq!(names(&s), ["TSLA.US"]);
        s.remove(&[sym("NYSE:IBM")]);
        s.add(&[sym("TSLA.US")]);
        assert_eq!(names(&s), ["TSLA.US"]);
        // In-flight ticks of a removed code keep their label.
        assert_eq!(s.display("AAPL.US"), "NASDAQ:AAPL");
    }

    #[test]
    fn outbox_sends_only_what_differs_from_the_last_sent_set() {
        let mut o: Outbox<Vec<u8>> = Outbox::default();
        o.assume_sent(Some(vec![]));
        assert!(o.needs_target());
        o.offer(vec![]);
        assert!(!o.is_pending());
        o.changed();
        o.offer(vec![1]);
        assert_eq!(o.take(), Some(vec![1]));
        o.changed();
        o.offer(vec![1]);
        assert!(!o.is_pending(), "the same set again is not resent");
        o.assume_sent(None);
        o.offer(vec![1]);
        assert!(o.is_pending(), "an unknown server set forces a resend");
    }
}
