//! The forms a line can take: which values it carries and in which format
//! ([`columns`]: `--fields`, `--format`) and CSV rows read back ([`csv`]),
//! the JSON text of the tool's own lines ([`json`]) and the reading of it
//! by position ([`line`]), and the conversion of full lines into bars,
//! lean lines or CSV ([`convert`]).

pub mod columns;
pub mod convert;
pub mod csv;
pub mod json;
pub mod line;
