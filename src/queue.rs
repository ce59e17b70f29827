//! What travels from the connections' threads to the writer, in order:
//! push frames in batches, one per burst (a burst costs one queue
//! operation; a quiet feed still gets each tick out at once), and the
//! [`Label`]s that name codes in the output. Both sides import this module
//! and nothing else of each other.

use std::sync::Arc;

/// A batch is handed to the writer at this size even mid-burst.
pub const BATCH_BYTES: usize = 64 * 1024;

/// Push frames on their way to the writer, their text kept as received.
#[derive(Debug, Default)]
pub struct Frames {
    text: String,
    ends: Vec<usize>,
}

impl Frames {
    /// Append one frame.
    pub fn push(&mut self, frame: &str) {
        self.text.push_str(frame);
        self.ends.push(self.text.len());
    }

    /// Empty it, keeping its room for the next batch.
    pub fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
    }

    /// Bytes it has room for.
    pub fn capacity(&self) -> usize {
        self.text.capacity()
    }

    /// Make room for `bytes` more without growing step by step.
    pub fn reserve(&mut self, bytes: usize) {
        self.text.reserve(bytes);
    }

    /// Give back room a small batch does not use, so that what waits in
    /// the queue takes about what it holds.
    pub fn fit(&mut self) {
        if self.text.capacity() > 2 * self.text.len() {
            self.text.shrink_to_fit();
            self.ends.shrink_to_fit();
        }
    }

    /// How many frames.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// No frame.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.text.len()
    }

    /// The frames, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let f = &self.text[start..end];
            start = end;
            f
        })
    }
}

/// From now on, lines of `code` carry `name` as their `symbol`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// A depth code (else a trade code).
    pub depth: bool,
    /// The AllTick code.
    pub code: crate::wire::symbol::Code,
    /// The user's spelling.
    pub name: Arc<str>,
}

/// A stretch of time in which the data is known to be incomplete, for a
/// `{"type":"gap",…}` line (`--gaps`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    /// The connection it happened on (`stock#1`); `None` for the writer's
    /// own losses (a disk that refused lines).
    pub connection: Option<Arc<str>>,
    /// The codes whose data is missing.
    pub codes: Vec<String>,
    /// From: ms since the epoch.
    pub from: u64,
    /// To: ms since the epoch.
    pub to: u64,
    /// Why, in words.
    pub reason: String,
    /// Ticks known to be dropped, where they were counted.
    pub dropped: Option<u64>,
    /// With `--heal`: whether its bars were healed.
    pub heal: Option<HealNote>,
}

/// Whether a gap's bars were healed from K-lines (`--heal`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealNote {
    /// Every bar it touched was settled by the server's K-lines.
    pub healed: bool,
    /// How many bars, and why any were not.
    pub note: String,
}

/// What travels to the writer, in order.
#[derive(Debug)]
pub enum Item {
    /// Push frames.
    Frames(Frames),
    /// Labels for codes.
    Labels(Vec<Label>),
    /// A gap to mark in the output.
    Gap(Gap),
    /// An outage began (`--heal`): the connection's codes are incomplete
    /// from `from` (ms, the wall clock) until its [`Item::Gap`] comes.
    Outage {
        /// The connection.
        connection: Arc<str>,
        /// The codes subscribed on it.
        codes: Vec<String>,
        /// The last message before it, ms.
        from: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_keep_their_text_and_order() {
        let mut f = Frames::default();
        assert!(f.is_empty());
        f.push("{\"a\":1}");
        f.push("é");
        f.push("");
        assert_eq!(f.len(), 3);
        assert_eq!(f.iter().collect::<Vec<_>>(), ["{\"a\":1}", "é", ""]);
        assert_eq!(f.bytes(), 9);
    }
}
