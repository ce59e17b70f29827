//! alltick-stream: AllTick real-time trades to stdout as JSON lines, and
//! a dataset a backtest can trust.
//!
//! Threads and channels, no async runtime. Each folder is one job:
//! - [`session`]: the reader threads, one per connection: dialling, the
//!   open socket with its pacing and liveness clock, the subscription
//!   channels (trades, depth) and their pure rules, outages for gap lines,
//!   and the intake that hands pushes to the queue unparsed;
//! - [`history`]: `alltick-stream history`, AllTick's K-lines over HTTP,
//!   paced to the plan, into the same files, never fetched twice;
//! - [`writer`]: the writer thread: drains the [`queue`], turns frames into
//!   lines (de-duplicated across connections) and hands them on to stdout
//!   or to a capture; it does no file I/O of its own;
//! - [`capture`]: the capture files: written by pattern, read back on
//!   start, the memory file, bars taken back, and read again by `replay`
//!   and `serve`;
//! - [`form`]: the forms of a line: fields, CSV, the JSON text of the
//!   tool's lines and its reading by position, bars wired in;
//! - [`router`]: the stdin command grammar and the spreading of symbols
//!   over connections;
//! - [`wire`]: AllTick's format, no I/O: the one JSON grammar (numbers,
//!   values skipped in place), messages, the scanner and the one-pass
//!   reader of pushes, exact decimals, symbols, repeats by `seq`, the UTC
//!   calendar, the HTTP API's K-lines and the plans' limits;
//! - [`bars`]: trades into OHLCV bars with exact decimals, no I/O;
//! - [`replay`] and [`serve`]: a capture to stdout again, or as an AllTick
//!   server;
//! - [`sim`]: the simulated AllTick server behind `--demo` and the tests;
//! - [`cli`]: the flags, `--help`, the man page and completions;
//! - [`app`] wires them up; [`queue`] is what travels from the readers to
//!   the writer, [`stats`] the counters both keep, [`report`] stderr with
//!   the token scrubbed.
//!
//! Imports run one way, down this list of layers, never up or across
//! (`tests/house.rs` holds every file to it):
//!
//! ```text
//! app | cli | serve | replay | session, writer, history | capture | form | bars, router, sim | queue, stats | report | wire
//! ```

#![warn(clippy::too_many_lines)]
// The docs are for those who work on the tool, read with `cargo doc
// --document-private-items`: links to the crate's own modules resolve there.
#![allow(rustdoc::private_intra_doc_links)]

// What the binary, the tests and the benchmark programs use is public;
// the rest is the library's own. `bars` is public only until its
// functions that only its unit tests call are marked `#[cfg(test)]`.
pub mod app;
pub(crate) mod bars;
pub(crate) mod capture;
pub mod cli;
pub mod form;
pub(crate) mod history;
pub(crate) mod queue;
pub(crate) mod replay;
pub(crate) mod report;
pub mod router;
pub(crate) mod serve;
pub(crate) mod session;
pub mod sim;
pub(crate) mod stats;
pub mod wire;
pub(crate) mod writer;
