//! Which connection carries which symbol.
//!
//! Codes route by their form: stock codes (`.US`, `.HK`, `.SH`, `.SZ`) to
//! the stock endpoint, the rest to the forex/crypto endpoint (unless one
//! endpoint serves everything: `--url`, `--market`). On each endpoint up to
//! `--connections` connections ("shards") carry at most `--max-symbols`
//! codes of each kind. A symbol stays on its shard; a new one goes to the
//! first shard with room; beyond every shard's room it is *held back*,
//! named, and admitted as soon as a removal frees room, first come first
//! served. Pure: commands in, per-shard commands and notes out.

pub mod command;

use std::collections::HashSet;

use crate::router::command::Command;
use crate::wire::symbol::{self, Code, Market, Symbol};

/// One connection: its endpoint and its number there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardId {
    /// Index into the endpoints.
    pub endpoint: usize,
    /// 0-based number of the connection on its endpoint.
    pub index: usize,
}

/// An endpoint the router can send to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Short name for messages (`stock`, `forex`).
    pub name: String,
    /// The market it serves; `None` serves every code.
    pub market: Option<Market>,
}

/// How much one endpoint may carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most connections per endpoint.
    pub connections: usize,
    /// Most codes per connection, per kind; `None`: no limit (one
    /// connection per endpoint carries everything).
    pub max_symbols: Option<usize>,
}

/// What a command turned into.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Routed {
    /// Commands for shards, one per shard at most.
    pub sends: Vec<(ShardId, Command)>,
    /// Lines for stderr.
    pub notes: Vec<String>,
}

impl Routed {
    fn push(&mut self, shard: ShardId, adding: bool, s: Symbol) {
        let slot = self.sends.iter_mut().find(|(id, c)| {
            *id == shard
                && matches!(
                    (c, adding),
                    (Command::Add(_), true) | (Command::Remove(_), false)
                )
        });
        match slot {
            Some((_, Command::Add(v) | Command::Remove(v))) => v.push(s),
            _ => self.sends.push((
                shard,
                if adding {
                    Command::Add(vec![s])
                } else {
                    Command::Remove(vec![s])
                },
            )),
        }
    }
}

/// The codes one shard carries, per kind.
#[derive(Debug, Default)]
struct Load {
    trades: HashSet<Code>,
    depth: HashSet<Code>,
}

impl Load {
    fn of(&mut self, s: &Symbol) -> &mut HashSet<Code> {
        match s.feed {
            symbol::Feed::Trades => &mut self.trades,
            symbol::Feed::Depth(_) => &mut self.depth,
        }
    }

    fn carries(&self, s: &Symbol) -> bool {
        match s.feed {
            symbol::Feed::Trades => self.trades.contains(&s.code),
            symbol::Feed::Depth(_) => self.depth.contains(&s.code),
        }
    }

    fn count(&self, s: &Symbol) -> usize {
        match s.feed {
            symbol::Feed::Trades => self.trades.len(),
            symbol::Feed::Depth(_) => self.depth.len(),
        }
    }
}

/// The assignment of symbols to shards.
#[derive(Debug)]
pub struct Router {
    endpoints: Vec<Endpoint>,
    limits: Limits,
    /// Per endpoint, per shard.
    loads: Vec<Vec<Load>>,
    /// Symbols waiting for room, in the order they were added.
    held: Vec<Symbol>,
}

fn same(a: &Symbol, b: &Symbol) -> bool {
    a.code == b.code
        && matches!(a.feed, symbol::Feed::Trades) == matches!(b.feed, symbol::Feed::Trades)
}

fn label(s: &Symbol) -> String {
    match s.feed {
        symbol::Feed::Trades => s.spelling.to_string(),
        symbol::Feed::Depth(_) => format!("{}@depth", s.spelling),
    }
}

impl Router {
    /// A router over `endpoints` (at least one).
    pub fn new(endpoints: Vec<Endpoint>, limits: Limits) -> Router {
        let loads = endpoints.iter().map(|_| Vec::new()).collect();
        Router {
            endpoints,
            limits: Limits {
                connections: limits.connections.max(1),
                ..limits
            },
            loads,
            held: Vec::new(),
        }
    }

    /// A shard's name for messages: `stock#1`.
    pub fn shard_name(&self, id: ShardId) -> String {
        format!("{}#{}", self.endpoints[id.endpoint].name, id.index + 1)
    }

    /// The first connection of the first endpoint, opened even with
    /// nothing to carry when the tool starts without symbols.
    pub fn first_shard(&mut self) -> ShardId {
        if self.loads[0].is_empty() {
            self.loads[0].push(Load::default());
        }
        ShardId {
            endpoint: 0,
            index: 0,
        }
    }

    /// The endpoint a code goes to.
    pub fn endpoint_of(&self, code: &str) -> usize {
        let market = Market::of_code(code);
        self.endpoints
            .iter()
            .position(|e| e.market.is_none_or(|m| m == market))
            .unwrap_or(0)
    }

    /// Route one command; `place` names its source for notes (`stdin:3`).
    pub fn route(&mut self, command: &Command, place: &str) -> Routed {
        let mut out = Routed::default();
        match command {
            Command::Add(symbols) => {
                for s in symbols {
                    self.add(s, place, &mut out);
                }
                self.note_held_now(symbols, place, &mut out);
            }
            Command::Remove(symbols) => {
                for s in symbols {
                    self.remove(s, place, &mut out);
                }
                self.admit(&mut out);
            }
            Command::Query => {
                for id in self.shards() {
                    out.sends.push((id, Command::Query));
                }
                out.notes.push(format!(
                    "{place}: held back (over --max-symbols × --connections) {}: {}",
                    self.held.len(),
                    if self.held.is_empty() {
                        "(none)".to_string()
                    } else {
                        self.held.iter().map(label).collect::<Vec<_>>().join(" ")
                    }
                ));
            }
        }
        out
    }

    /// Every shard that carries something or has carried something.
    pub fn shards(&self) -> Vec<ShardId> {
        self.loads
            .iter()
            .enumerate()
            .flat_map(|(endpoint, shards)| {
                (0..shards.len()).map(move |index| ShardId { endpoint, index })
            })
            .collect()
    }

    fn carrier(&self, s: &Symbol) -> Option<ShardId> {
        let endpoint = self.endpoint_of(&s.code);
        self.loads[endpoint]
            .iter()
            .position(|l| l.carries(s))
            .map(|index| ShardId { endpoint, index })
    }

    /// The first shard of `s`'s endpoint with room for it, opening a new
    /// one if the limit allows.
    fn room_for(&mut self, s: &Symbol) -> Option<ShardId> {
        let endpoint = self.endpoint_of(&s.code);
        let max = self.limits.max_symbols.unwrap_or(usize::MAX);
        let shards = &mut self.loads[endpoint];
        let index = match shards.iter().position(|l| l.count(s) < max) {
            Some(i) => i,
            None if shards.len() < self.limits.connections => {
                shards.push(Load::default());
                shards.len() - 1
            }
            None => return None,
        };
        Some(ShardId { endpoint, index })
    }

    fn add(&mut self, s: &Symbol, place: &str, out: &mut Routed) {
        if let Some(shard) = self.carrier(s) {
            // Already carried: the shard says so (or takes a new level).
            out.push(shard, true, s.clone());
            return;
        }
        if self.held.iter().any(|h| same(h, s)) {
            out.notes.push(format!(
                "{place}: note: {} is already held back, waiting for room",
                label(s)
            ));
            return;
        }
        match self.room_for(s) {
            Some(shard) => {
                self.loads[shard.endpoint][shard.index]
                    .of(s)
                    .insert(s.code.clone());
                out.push(shard, true, s.clone());
            }
            None => self.held.push(s.clone()),
        }
    }

    fn note_held_now(&self, added: &[Symbol], place: &str, out: &mut Routed) {
        let newly: Vec<String> = added
            .iter()
            .filter(|s| {
                self.held
                    .iter()
                    .any(|h| same(h, s) && h.spelling == s.spelling)
            })
            .map(label)
            .collect();
        if newly.is_empty() {
            return;
        }
        let max = self.limits.max_symbols.unwrap_or(usize::MAX);
        out.notes.push(format!(
            "{place}: holding back {} (every connection has its {}, --connections {}): {}; they are subscribed as soon as a removal frees room",
            newly.len(),
            crate::report::count(max, "symbol"),
            self.limits.connections,
            crate::report::list(&newly)
        ));
    }

    fn remove(&mut self, s: &Symbol, place: &str, out: &mut Routed) {
        if let Some(shard) = self.carrier(s) {
            self.loads[shard.endpoint][shard.index]
                .of(s)
                .remove(&s.code);
            out.push(shard, false, s.clone());
        } else if let Some(i) = self.held.iter().position(|h| same(h, s)) {
            self.held.remove(i);
            out.notes
                .push(format!("{place}: removed {} (it was held back)", label(s)));
        } else {
            out.notes
                .push(format!("{place}: note: {} is not subscribed", label(s)));
        }
    }

    /// Admit held-back symbols that now fit, first come first served.
    fn admit(&mut self, out: &mut Routed) {
        let mut i = 0;
        while i < self.held.len() {
            let s = self.held[i].clone();
            match self.room_for(&s) {
                Some(shard) => {
                    self.held.remove(i);
                    self.loads[shard.endpoint][shard.index]
                        .of(&s)
                        .insert(s.code.clone());
                    out.notes.push(format!(
                        "admitting {} (held back until now) on connection {}",
                        label(&s),
                        self.shard_name(shard)
                    ));
                    out.push(shard, true, s);
                }
                None => i += 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(s: &str) -> Symbol {
        Symbol::parse(s).unwrap()
    }

    fn add(list: &[&str]) -> Command {
        Command::Add(list.iter().map(|s| sym(s)).collect())
    }

    fn remove(list: &[&str]) -> Command {
        Command::Remove(list.iter().map(|s| sym(s)).collect())
    }

    fn two_endpoints(connections: usize, max: Option<usize>) -> Router {
        Router::new(
            vec![
                Endpoint {
                    name: "stock".into(),
                    market: Some(Market::Stock),
                },
                Endpoint {
                    name: "forex".into(),
                    market: Some(Market::Forex),
                },
            ],
            Limits {
                connections,
                max_symbols: max,
            },
        )
    }

    fn codes(r: &Routed, shard: ShardId) -> Vec<String> {
        r.sends
            .iter()
            .filter(|(id, _)| *id == shard)
            .flat_map(|(_, c)| match c {
                Command::Add(v) | Command::Remove(v) => {
                    v.iter().map(|s| s.code.to_string()).collect()
                }
                Command::Query => Vec::new(),
            })
            .collect()
    }

    const S0: ShardId = ShardId {
        endpoint: 0,
        index: 0,
    };
    const S1: ShardId = ShardId {
        endpoint: 0,
        index: 1,
    };
    const F0: ShardId = ShardId {
        endpoint: 1,
        index: 0,
    };

    #[test]
    fn codes_route_by_their_form() {
        let mut r = two_endpoints(1, None);
        let out = r.route(
            &add(&["NASDAQ:AAPL", "BTCUSDT", "700.HK", "Silver"]),
            "argument",
        );
        assert_eq!(codes(&out, S0), vec!["AAPL.US", "700.HK"]);
        assert_eq!(codes(&out, F0), vec!["BTCUSDT", "Silver"]);
        assert!(out.notes.is_empty());
    }

    #[test]
    fn one_endpoint_serves_everything_when_forced() {
        let mut r = Router::new(
            vec![Endpoint {
                name: "stock".into(),
                market: None,
            }],
            Limits {
                connections: 1,
                max_symbols: None,
            },
        );
        let out = r.route(&add(&["NASDAQ:AAPL", "BTCUSDT"]), "argument");
        assert_eq!(codes(&out, S0), vec!["AAPL.US", "BTCUSDT"]);
    }

    #[test]
    fn without_max_symbols_one_connection_carries_everything() {
        let mut r = two_endpoints(3, None);
        let many: Vec<String> = (0..500).map(|i| format!("S{i}.US")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        let out = r.route(&add(&refs), "argument");
        assert_eq!(codes(&out, S0).len(), 500);
        assert_eq!(r.shards(), vec![S0]);
    }

    #[test]
    fn symbols_shard_over_connections_then_are_held_back_and_admitted() {
        let mut r = two_endpoints(2, Some(2));
        let out = r.route(&add(&["A.US", "B.US", "C.US", "D.US", "E.US"]), "stdin:1");
        assert_eq!(codes(&out, S0), vec!["A.US", "B.US"]);
        assert_eq!(codes(&out, S1), vec!["C.US", "D.US"]);
        assert_eq!(r.held.len(), 1);
        assert!(out.notes[0].contains("holding back 1") && out.notes[0].contains("E.US"));
        // Depth counts separately.
        let out = r.route(&add(&["A.US@depth"]), "stdin:2");
        assert_eq!(codes(&out, S0), vec!["A.US"]);
        // A removal frees room: the held symbol goes where the room is.
        let out = r.route(&remove(&["C.US"]), "stdin:3");
        assert_eq!(out.sends[0], (S1, remove(&["C.US"])));
        assert_eq!(out.sends[1], (S1, add(&["E.US"])));
        assert!(out.notes[0].contains("admitting E.US") && out.notes[0].contains("stock#2"));
        assert!(r.held.is_empty());
    }

    #[test]
    fn a_symbol_stays_on_its_connection_and_new_ones_take_the_first_room() {
        let mut r = two_endpoints(2, Some(2));
        r.route(&add(&["A.US", "B.US", "C.US"]), "argument");
        r.route(&remove(&["A.US"]), "stdin:1");
        let out = r.route(&add(&["D.US", "C.US"]), "stdin:2");
        // D takes the room on shard 1; C stays where it is (shard 2).
        assert_eq!(codes(&out, S0), vec!["D.US"]);
        assert_eq!(codes(&out, S1), vec!["C.US"]);
    }

    #[test]
    fn held_symbols_are_admitted_first_come_first_served() {
        let mut r = two_endpoints(1, Some(1));
        r.route(&add(&["A.US", "B.US", "C.US"]), "argument");
        assert_eq!(
            r.held.iter().map(|s| &*s.code).collect::<Vec<_>>(),
            vec!["B.US", "C.US"]
        );
        let out = r.route(&remove(&["A.US"]), "stdin:1");
        assert_eq!(codes(&out, S0), vec!["A.US", "B.US"]);
        // Removing a held symbol just forgets it.
        let out = r.route(&remove(&["C.US"]), "stdin:2");
        assert!(out.sends.is_empty());
        assert!(out.notes[0].contains("was held back"));
        let out = r.route(&remove(&["Z.US"]), "stdin:3");
        assert!(out.notes[0].contains("Z.US is not subscribed"));
    }

    #[test]
    fn query_goes_to_every_shard_and_names_the_held() {
        let mut r = two_endpoints(1, Some(1));
        r.route(&add(&["A.US", "B.US", "BTCUSDT"]), "argument");
        let out = r.route(&Command::Query, "stdin:4");
        assert_eq!(out.sends.len(), 2);
        assert!(out.notes[0].contains("held back") && out.notes[0].contains("B.US"));
        assert_eq!(r.shard_name(F0), "forex#1");
    }
}
