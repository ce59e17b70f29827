//! The subscription channel of one feed (trades or depth) on a connection,
//! and the rules that keep it in step with the server.
//!
//! AllTick has two feeds with the same replace-the-set rules: trades (22004,
//! cancelled with 22006 `cancel_type` 2) and order-book depth (22002,
//! `cancel_type` 1). A [`Channel`] owns what the user wants, what the server
//! holds on this connection, what is waiting to be sent, the narrowing of a
//! refused request down to its bad codes, and de-duplication; [`Channels`]
//! holds a connection's two. What differs between the two feeds is data
//! ([`FeedKind`]), not code.
//!
//! Everything here is pure: answers from the server come in as values, and
//! what to do comes back as a [`Reaction`] with the lines to say, so every
//! rule is unit-tested without sockets or sleeps.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use crate::report::count;
use crate::session::subscriptions::{Change, Outbox, Subscriptions};
use crate::wire::protocol::{self, FeedKind, Handling, Ret};
use crate::wire::symbol::{self, Code, Symbol};

/// How a symbol of `kind` is written in messages (`700.HK@depth`).
fn label(kind: FeedKind, name: &str) -> String {
    match kind {
        FeedKind::Trades => name.to_string(),
        FeedKind::Depth => format!("{name}@depth"),
    }
}

/// A set as sent to the server: codes with their depth level, if any.
pub type Set = Vec<(Code, Option<u8>)>;

/// What the caller must do after an answer to one of this feed's requests.
#[derive(Debug, PartialEq, Eq)]
pub enum Act {
    /// Nothing beyond saying the notes.
    Nothing,
    /// Send this feed's set again, not before this long from now.
    ResendAfter(Duration),
    /// The connection is over; reconnect no sooner than `min_wait`.
    Reconnect {
        /// Why, for the user.
        reason: String,
        /// Least wait.
        min_wait: Duration,
    },
    /// Retrying cannot help (the token was refused).
    Fatal(String),
}

/// The lines to say and what to do.
#[derive(Debug, PartialEq, Eq)]
pub struct Reaction {
    /// Lines for stderr, in order.
    pub notes: Vec<String>,
    /// What to do.
    pub act: Act,
}

impl Reaction {
    fn say(note: String) -> Reaction {
        Reaction {
            notes: vec![note],
            act: Act::Nothing,
        }
    }
}

/// The fatal message for a refused token.
pub const TOKEN_REFUSED: &str =
    "the server refused the token (ret 401 token invalid); check ALLTICK_TOKEN or --token-file";

/// One feed's channel: the wanted set, the server's set, and what to send.
#[derive(Debug)]
pub struct Channel {
    kind: FeedKind,
    subs: Subscriptions,
    /// Levels asked for, per code (`None`: the server's default; always
    /// `None` for trades).
    levels: HashMap<Code, Option<u8>>,
    /// The set the server holds on this connection (last acknowledged).
    server_set: Vec<Code>,
    /// Every code the server ever acknowledged: known to be valid.
    known_good: HashSet<Code>,
    /// Codes suspected of a 600/604 refusal, tried one at a time.
    probe: VecDeque<Code>,
    out: Outbox<Set>,
}

impl Channel {
    /// An empty channel for the feed of `kind`.
    pub fn new(kind: FeedKind) -> Channel {
        Channel {
            kind,
            subs: Subscriptions::new(),
            levels: HashMap::new(),
            server_set: Vec::new(),
            known_good: HashSet::new(),
            probe: VecDeque::new(),
            out: Outbox::default(),
        }
    }

    /// The wanted codes, in the order they were added.
    pub fn codes(&self) -> &[Code] {
        self.subs.codes()
    }

    /// The set the server acknowledged on this connection.
    pub fn server_set(&self) -> &[Code] {
        &self.server_set
    }

    /// The user's spelling of `code`, for messages.
    pub fn display(&self, code: &str) -> String {
        self.subs.display(code)
    }

    /// The user's spelling of `code`, shared with the set's own record.
    pub fn name_of(&self, code: &str) -> Code {
        self.subs.name_of(code)
    }

    /// The user's spellings of `codes`, for messages (`(none)` if empty).
    pub fn names(&self, codes: &[Code]) -> String {
        if codes.is_empty() {
            return "(none)".into();
        }
        codes
            .iter()
            .map(|c| self.display(c))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Add symbols (those of this feed's kind).
    pub fn add(&mut self, symbols: &[Symbol]) -> Change {
        let mut change = self.subs.add(symbols);
        if self.kind == FeedKind::Depth {
            for s in symbols {
                let symbol::Feed::Depth(level) = s.feed else {
                    continue;
                };
                let old = self.levels.insert(s.code.clone(), level);
                // A new level for a code already subscribed is a change too.
                let spelling = &*s.spelling;
                if old.is_some_and(|o| o != level) && !change.applied.iter().any(|a| a == spelling)
                {
                    change.unchanged.retain(|u| u != spelling);
                    change.applied.push(spelling.to_string());
                }
            }
        }
        self.out.changed();
        change
    }

    /// Remove symbols.
    pub fn remove(&mut self, symbols: &[Symbol]) -> Change {
        self.out.changed();
        self.subs.remove(symbols)
    }

    /// A new connection holds nothing.
    pub fn on_connect(&mut self) {
        self.out.assume_sent(Some(Vec::new()));
        self.server_set.clear();
    }

    /// The connection ended: the server holds nothing of ours.
    pub fn on_disconnect(&mut self) {
        self.server_set.clear();
    }

    /// The set to have on the server now: the wanted set, or while suspects
    /// are being tried, the known-good part of it plus the next suspect.
    fn target(&mut self) -> Set {
        let level = |c: &Code| (Code::clone(c), self.levels.get(c).copied().flatten());
        while let Some(front) = self.probe.front() {
            if self.subs.contains(front) {
                let mut t: Set = self
                    .subs
                    .codes()
                    .iter()
                    .filter(|c| self.known_good.contains(*c))
                    .map(level)
                    .collect();
                t.push(level(front));
                return t;
            }
            self.probe.pop_front();
        }
        self.subs.codes().iter().map(level).collect()
    }

    /// Whether a set differing from the last one sent is waiting. Recomputed
    /// only after something changed, so the hot path costs a flag check.
    pub fn pending(&mut self) -> bool {
        if self.out.needs_target() {
            let target = self.target();
            self.out.offer(target);
        }
        self.out.is_pending()
    }

    /// Take the waiting set and encode its request with `seq_id`: the full
    /// set, or a cancel when it is empty (an empty list is undocumented).
    /// Returns the request text and the codes it carries.
    pub fn take_request(&mut self, seq_id: u32) -> Option<(String, Vec<Code>)> {
        let set = self.out.take()?;
        let text = if set.is_empty() {
            protocol::cancel(seq_id, &format!("cancel-{seq_id}"), self.kind.cancel_type())
        } else {
            match self.kind {
                FeedKind::Trades => protocol::subscribe_trades(
                    seq_id,
                    &format!("sub-{seq_id}"),
                    set.iter().map(|(c, _)| &**c),
                ),
                FeedKind::Depth => protocol::subscribe_depth(
                    seq_id,
                    &format!("depth-{seq_id}"),
                    set.iter().map(|(c, l)| (&**c, *l)),
                ),
            }
        };
        Some((text, set.into_iter().map(|(c, _)| c).collect()))
    }

    /// The server's set is unknown (a request got no answer, or a rate
    /// limit could not be matched to a request): send the set again.
    pub fn resend(&mut self) {
        self.out.assume_sent(None);
    }

    /// The answer `ret` (with the server's `msg`) to a request of this feed
    /// that carried `codes`. `max_symbols` is the user's `--max-symbols`.
    /// What each `ret` asks for is decided by [`Ret::handling`].
    pub fn on_answer(
        &mut self,
        ret: Ret,
        msg: &str,
        codes: Vec<Code>,
        max_symbols: Option<usize>,
    ) -> Reaction {
        let what = format!("{} subscription", self.kind.name());
        let server_msg = if msg.is_empty() {
            String::new()
        } else {
            format!(" (server: {msg:?})")
        };
        match ret.handling() {
            Handling::Done => self.acknowledged(codes),
            Handling::Fatal => Reaction {
                notes: Vec::new(),
                act: Act::Fatal(TOKEN_REFUSED.into()),
            },
            Handling::ResendAfter(wait) => Reaction {
                notes: vec![format!(
                    "{what} refused: ret {ret}{server_msg}; resending the full set in {} s",
                    wait.as_secs()
                )],
                act: Act::ResendAfter(wait),
            },
            Handling::Reconnect(min_wait) => Reaction {
                notes: Vec::new(),
                act: Act::Reconnect {
                    reason: format!("{}{server_msg}", ret.meaning()),
                    min_wait,
                },
            },
            Handling::OverPlan => {
                // Resending the same set would be refused again: wait for
                // the user to change it.
                let n = count(codes.len(), "code");
                self.out.assume_sent(Some(self.with_levels(codes)));
                let limit = max_symbols
                    .map(|m| format!(" (--max-symbols says {m})"))
                    .unwrap_or_default();
                Reaction::say(format!(
                    "{what} refused: ret {ret}{server_msg}: {n} sent{limit}; AllTick serves only the first N codes of a set (N: the plan's limit) and ignores the rest; the server keeps the previous set; remove symbols to go on"
                ))
            }
            Handling::BadCodes => self.refused_codes(ret, &codes),
            Handling::Report => {
                self.out.assume_sent(Some(self.with_levels(codes)));
                Reaction::say(format!(
                    "{what} refused: ret {ret}{server_msg}; keeping the set until it changes"
                ))
            }
        }
    }

    fn with_levels(&self, codes: Vec<Code>) -> Set {
        codes
            .into_iter()
            .map(|c| {
                let l = self.levels.get(&c).copied().flatten();
                (c, l)
            })
            .collect()
    }

    fn acknowledged(&mut self, codes: Vec<Code>) -> Reaction {
        let note = self.ack_note(&codes);
        if self.probe.front().is_some_and(|p| codes.contains(p)) {
            self.probe.pop_front();
            self.out.changed();
        }
        self.known_good.extend(codes.iter().cloned());
        self.server_set = codes;
        Reaction::say(note)
    }

    fn ack_note(&self, codes: &[Code]) -> String {
        let kind = self.kind;
        let before: HashSet<&str> = self.server_set.iter().map(|c| &**c).collect();
        let after: HashSet<&str> = codes.iter().map(|c| &**c).collect();
        let mut changes: Vec<String> = codes
            .iter()
            .filter(|c| !before.contains(&***c))
            .map(|c| format!("+{}", label(kind, &self.subs.display(c))))
            .collect();
        changes.extend(
            self.server_set
                .iter()
                .filter(|c| !after.contains(&***c))
                .map(|c| format!("-{}", label(kind, &self.subs.display(c)))),
        );
        let prefix = match kind {
            FeedKind::Trades => "",
            FeedKind::Depth => "depth: ",
        };
        if codes.is_empty() {
            format!("{} subscriptions cancelled (no symbols)", kind.name())
        } else if changes.is_empty() {
            format!("{prefix}subscribed to {}", count(codes.len(), "symbol"))
        } else {
            format!(
                "{prefix}subscribed to {} ({})",
                count(codes.len(), "symbol"),
                crate::report::list(&changes)
            )
        }
    }

    /// A request was refused for a bad code (600/604) without saying which.
    /// The codes it added over the known-good ones are the suspects: one is
    /// dropped at once; several are tried one at a time.
    fn refused_codes(&mut self, ret: Ret, codes: &[Code]) -> Reaction {
        let kind = self.kind;
        // The server keeps the set it had.
        self.out
            .assume_sent(Some(self.with_levels(self.server_set.clone())));
        // While probing, the request carried exactly one suspect.
        let probed = self.probe.front().filter(|p| codes.contains(p)).cloned();
        let suspects: Vec<Code> = match probed {
            Some(p) => {
                self.probe.pop_front();
                vec![p]
            }
            None => codes
                .iter()
                .filter(|c| !self.known_good.contains(*c))
                .cloned()
                .collect(),
        };
        match suspects.as_slice() {
            [] => {
                // Resending it would be refused again: wait for a change.
                self.out.assume_sent(Some(self.with_levels(codes.to_vec())));
                Reaction::say(format!(
                    "{} subscription refused: ret {ret}, though every code in it was accepted before; keeping the set until it changes",
                    kind.name()
                ))
            }
            [bad] => {
                let name = label(kind, &self.subs.display(bad));
                self.subs.drop_code(bad);
                self.levels.remove(bad);
                Reaction::say(format!(
                    "{name} refused by the server (ret {ret}); dropped it from the {} set, {} remain",
                    kind.name(),
                    count(self.subs.codes().len(), "symbol")
                ))
            }
            many => {
                self.probe = many.iter().cloned().collect();
                Reaction::say(format!(
                    "{} subscription refused: ret {ret}; trying the {} new codes one at a time to find the bad ones",
                    kind.name(),
                    many.len()
                ))
            }
        }
    }
}

/// Both channels of a connection.
#[derive(Debug)]
pub struct Channels {
    /// The trade feed's.
    pub trades: Channel,
    /// The depth feed's.
    pub depth: Channel,
}

impl Channels {
    /// Both channels, holding `initial`.
    pub fn new(initial: &[Symbol]) -> Channels {
        let mut channels = Channels {
            trades: Channel::new(FeedKind::Trades),
            depth: Channel::new(FeedKind::Depth),
        };
        channels.change(true, initial);
        channels
    }

    /// The channel of `kind`.
    pub fn get_mut(&mut self, kind: FeedKind) -> &mut Channel {
        match kind {
            FeedKind::Trades => &mut self.trades,
            FeedKind::Depth => &mut self.depth,
        }
    }

    /// Add (or remove) symbols, each to its feed's channel. Depth symbols are named
    /// `SYMBOL@depth` in the result.
    pub fn change(&mut self, adding: bool, symbols: &[Symbol]) -> Change {
        let (trades, depth): (Vec<Symbol>, Vec<Symbol>) = symbols
            .iter()
            .cloned()
            .partition(|s| s.feed.kind() == FeedKind::Trades);
        let apply = |channel: &mut Channel, list: &[Symbol]| {
            if adding {
                channel.add(list)
            } else {
                channel.remove(list)
            }
        };
        let mut change = apply(&mut self.trades, &trades);
        if !depth.is_empty() {
            let d = apply(&mut self.depth, &depth);
            let tag = |v: Vec<String>| v.into_iter().map(|s| format!("{s}@depth"));
            change.applied.extend(tag(d.applied));
            change.unchanged.extend(tag(d.unchanged));
        }
        change
    }

    /// A new connection holds nothing.
    pub fn on_connect(&mut self) {
        self.trades.on_connect();
        self.depth.on_connect();
    }

    /// The connection ended.
    pub fn on_disconnect(&mut self) {
        self.trades.on_disconnect();
        self.depth.on_disconnect();
    }

    /// Which channel has a set waiting, trades first.
    pub fn next_pending(&mut self) -> Option<FeedKind> {
        if self.trades.pending() {
            Some(FeedKind::Trades)
        } else if self.depth.pending() {
            Some(FeedKind::Depth)
        } else {
            None
        }
    }

    /// Send both sets again.
    pub fn resend_all(&mut self) {
        self.trades.resend();
        self.depth.resend();
    }
}

#[cfg(test)]
mod tests;
