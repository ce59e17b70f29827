//! The integration tests, built as one binary: the real `alltick-stream`
//! against the simulated AllTick server, the simulator itself, and property
//! tests over the parsers. Filter by module, e.g. `cargo test faults::`.

#[macro_use]
mod util;

mod bars;
mod capture;
mod connections;
mod depth;
mod faults;
mod generate;
mod house;
mod lean;
mod props;
mod readings;
mod recipes;
mod replay;
mod serve;
mod sim_smoke;
mod stream;
