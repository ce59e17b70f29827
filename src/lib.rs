//! alltick-stream: AllTick real-time trades to stdout as JSON lines.
//!
//! Threads and channels, no async runtime:
//! - a session thread per connection ([`session`]) keeps its endpoint
//!   connected: the open socket with its pacing, requests in flight and
//!   liveness clock (`connection`, over `connect`), the subscription feeds
//!   (`feed`, `subscriptions`), the pure rules (`policy`, `schedule`), and
//!   the intake that hands pushes over unparsed (`intake`, telling them
//!   from answers with [`protocol`]); errors are typed (`error`);
//! - the writer thread ([`output`]) drains the queue, bounded by `--queue`
//!   ticks, and turns frames into lines (`lines`, with [`fast`], [`scan`],
//!   [`protocol`] and [`decimal`]);
//! - a stdin thread parses commands ([`command`], [`symbol`]), and the
//!   router (`router`, `stagger`) spreads symbols over connections;
//! - [`app`] wires them up; [`sim`] is the simulated server behind `--demo`
//!   and the tests.

#![warn(clippy::too_many_lines)]

// What the tests and benchmark programs use is public; the rest is the
// binary's own.
pub mod app;
pub mod command;
pub mod decimal;
pub mod fast;
pub mod output;
pub mod protocol;
pub mod scan;
pub mod sim;
pub mod symbol;

mod cli;
mod connect;
mod connection;
mod error;

mod feed;
mod intake;
mod lines;
mod policy;
mod report;
mod router;
mod schedule;
mod session;
mod stagger;
mod stats;
mod subscriptions;
