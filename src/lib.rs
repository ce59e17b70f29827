//! alltick-stream: AllTick real-time trades to stdout as JSON lines.
//!
//! Threads and channels, no async runtime:
//! - the session thread ([`session`]) owns the WebSocket ([`connect`]), paces
//!   requests ([`schedule`]), keeps the subscription set ([`subscriptions`])
//!   and speaks the AllTick protocol ([`protocol`], with [`scan`] as the
//!   zero-copy path for trade pushes);
//! - the writer thread ([`output`]) drains a bounded queue to stdout;
//! - a stdin thread parses commands ([`command`], [`symbol`]);
//! - [`app`] wires them up; [`sim`] is the simulated server behind `--demo`
//!   and the tests.

pub mod app;
pub mod cli;
pub mod command;
pub mod connect;
pub mod connection;
pub mod decimal;
pub mod error;
pub mod feed;
pub mod intake;
pub mod output;
pub mod policy;
pub mod protocol;
pub mod report;
pub mod scan;
pub mod schedule;
pub mod session;
pub mod sim;
pub mod stats;
pub mod subscriptions;
pub mod symbol;
