//! alltick-stream: AllTick real-time trades to stdout as JSON lines.
//!
//! Threads and channels, no async runtime. The folders are the threads:
//! - [`session`]: one thread per connection keeps its endpoint connected:
//!   dialling (`connect`), the open socket with its pacing, requests in
//!   flight and liveness clock (`connection`), the subscription feeds
//!   (`feed`, `subscriptions`), the pure rules (`policy`, `schedule`,
//!   `stagger`), typed errors (`error`), outages for gap lines (`gaps`),
//!   and the intake that hands pushes over unparsed (`intake`);
//! - [`writer`]: the writer thread drains the queue ([`writer::queue`], the
//!   one module both sides import), turns frames into lines (`lines`,
//!   [`writer::format`], de-duplication in `dedupe`) to stdout or to the
//!   files of `--output` (`capture`, named by `pattern`, read back on start
//!   by `resume`, with `memory` and `reopen` for bar captures), makes them
//!   into bars, lean lines or CSV (`reshape`, `shape`), and keeps the
//!   counters (`stats`);
//! - [`router`]: the stdin command grammar ([`router::command`]) and the
//!   spreading of symbols over connections;
//! - [`wire`]: the AllTick wire format, no I/O: messages
//!   ([`wire::protocol`]), the zero-copy scanner and the one-pass reader
//!   ([`wire::scan`], [`wire::fast`]), exact decimals, symbols;
//! - [`sim`]: the simulated AllTick server behind `--demo` and the tests,
//!   its pushes from the random walk or from a [`sim::Feed`];
//! - [`replay`] and [`serve`]: a capture to stdout again, or as an AllTick
//!   server (the simulator's protocol over each connection's own replay);
//! - [`bars`]: trades into OHLCV bars with exact decimals, no I/O;
//! - [`app`] wires them up from the command line ([`cli`]); [`report`]
//!   writes stderr with the token scrubbed.
//!
//! Imports run one way: `app` → `cli`, `serve`, `replay`, `router`,
//! `session`, `writer` → `bars` → `wire`; `replay` → `writer`; `serve` →
//! `sim`.

#![warn(clippy::too_many_lines)]

// What the tests and benchmark programs use is public; the rest is the
// binary's own.
pub mod app;
pub mod bars;
pub mod cli;
pub mod replay;
pub mod report;
pub mod router;
pub mod serve;
pub mod session;
pub mod sim;
pub mod wire;
pub mod writer;
