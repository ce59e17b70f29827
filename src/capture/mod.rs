//! The capture files: lines written to files named by their own time
//! ([`mod@write`], named by [`pattern`]), read back on start so a restart
//! writes nothing twice ([`resume`], with the [`memory`] file for captures
//! whose lines do not say it, and bars [`takeback`] to go on with, both
//! reading a file's ends with [`tail`]), read again for `replay` and
//! `serve` ([`read`]), and made into Parquet files ([`parquet`]; a live capture's as its
//! lines are written, [`live`]).

pub mod heal_file;
pub mod live;
pub mod memory;
pub mod parquet;
pub mod pattern;
pub mod read;
pub mod resume;
pub mod tail;
pub mod takeback;
pub mod write;
