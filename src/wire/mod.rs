//! The AllTick wire format, without I/O: the messages and their encoding
//! ([`protocol`]), the zero-copy scanner for trade pushes ([`scan`]), the
//! one-pass reader of the documented push ([`fast`]), exact decimal text
//! ([`decimal`]) and the symbols users type ([`symbol`]).

pub mod decimal;
pub mod fast;
pub mod protocol;
pub mod scan;
pub mod symbol;
