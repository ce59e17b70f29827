//! A column's values of one row group, kept until the group is written
//! ([`Buffer`]): integers as they are, volumes and turnovers as `i128`,
//! strings as numbers into the group's own list of its distinct strings
//! (a day of trades has few codes: four bytes a row). Written, they go to
//! the parquet crate's column writer a few thousand at a time, so that
//! nothing but the buffer grows with the group. The buffers of a full
//! group go to the encoding thread ([`super::encoder`]), and come back
//! empty for another.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use bytes::Bytes;
use parquet::column::writer::{ColumnWriter, get_typed_column_writer_mut as typed};
use parquet::data_type::{
    ByteArray, ByteArrayType, FixedLenByteArray, FixedLenByteArrayType, Int64Type,
};

use crate::form::parquet::error::ParquetError;
use crate::form::parquet::row::Cell;
use crate::form::parquet::schema::{Column, Kind};

/// Values handed to the parquet crate in one call, at most.
const BATCH: usize = 4096;

/// A column's values of the row group being made.
#[derive(Debug)]
pub struct Buffer {
    /// The column.
    pub column: Column,
    /// Per row, 1 for a value and 0 for `null` (an `OPTIONAL` column's
    /// definition levels; empty for a `REQUIRED` one).
    def: Vec<i16>,
    /// The values, nulls left out.
    values: Values,
}

/// The values of a [`Buffer`], by what the column holds.
#[derive(Debug)]
enum Values {
    /// Strings, as their place in `distinct`.
    Text {
        /// Per value, its string's place in `distinct`.
        ids: Vec<u32>,
        /// The group's distinct strings.
        distinct: Distinct,
    },
    /// `INT64` values.
    Int(Vec<i64>),
    /// Unscaled `DECIMAL(38,s)` values.
    Wide(Vec<i128>),
}

/// The distinct strings of a row group, each once, numbered in the order
/// first seen.
#[derive(Debug, Default)]
struct Distinct {
    /// Each string of at most 16 bytes by its [`short_key`], and its
    /// number: found without comparing bytes.
    short: HashMap<(u128, u8), u32, BuildHasherDefault<Fx>>,
    /// Each longer string's number.
    ids: HashMap<Box<[u8]>, u32, BuildHasherDefault<Fx>>,
    /// The strings by number, as the parquet crate takes them: each the
    /// process's one copy ([`interned`]), so a copy of one, made for every
    /// row, counts no references.
    strings: Vec<ByteArray>,
    /// The key and number of the short string seen last: a column of
    /// one value (`type`, `interval`) looks nothing up.
    last: Option<((u128, u8), u32)>,
    /// The bytes its strings take, twice (the key and the copy), and
    /// what each costs besides.
    size: usize,
}

impl Distinct {
    /// Empty it for the next row group, keeping its table's memory.
    fn clear(&mut self) {
        self.short.clear();
        self.ids.clear();
        self.strings.clear();
        self.last = None;
        self.size = 0;
    }

    /// The number of `s`, given it if new.
    fn id(&mut self, s: &[u8]) -> u32 {
        let Some(key) = short_key(s) else {
            return match self.ids.get(s) {
                Some(&id) => id,
                None => {
                    let id = self.add(s);
                    self.ids.insert(s.into(), id);
                    id
                }
            };
        };
        if let Some((k, id)) = self.last
            && k == key
        {
            return id;
        }
        let id = match self.short.get(&key) {
            Some(&id) => id,
            None => {
                let id = self.add(s);
                self.short.insert(key, id);
                id
            }
        };
        self.last = Some((key, id));
        id
    }

    /// A new string's number.
    fn add(&mut self, s: &[u8]) -> u32 {
        let id = self.strings.len() as u32;
        self.strings
            .push(ByteArray::from(Bytes::from_static(interned(s))));
        self.size += 2 * s.len() + 64;
        id
    }
}

/// The process's one copy of `s`, kept to its end. The strings of
/// columns are the codes, symbols and sides of the lines written, and the
/// few words of `type` and `interval`: as many as the codes a process
/// ever sees, a few dozen bytes each. A copy of a [`Bytes`] of its own
/// counts references with an atomic operation, one more to drop it: for
/// every value of every string column, a tenth of the cost of encoding
/// the file; a copy of a `'static` one is a copy of its address.
fn interned(s: &[u8]) -> &'static [u8] {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static ALL: OnceLock<Mutex<HashSet<&'static [u8]>>> = OnceLock::new();
    let mut all = ALL
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    match all.get(s) {
        Some(&kept) => kept,
        None => {
            let kept: &'static [u8] = Box::leak(s.into());
            all.insert(kept);
            kept
        }
    }
}

/// A string of at most 16 bytes as a number and its length: two strings
/// are equal when their keys are.
/// Read as its first and last eight bytes (or four, or each byte), which
/// with the length say every byte.
#[inline]
fn short_key(s: &[u8]) -> Option<(u128, u8)> {
    let n = s.len();
    let eight = |at: usize| u64::from_le_bytes(s[at..at + 8].try_into().expect("eight bytes"));
    let four = |at: usize| {
        u64::from(u32::from_le_bytes(
            s[at..at + 4].try_into().expect("four bytes"),
        ))
    };
    let (lo, hi) = match n {
        17.. => return None,
        8.. => (eight(0), eight(n - 8)),
        4.. => (four(0), four(n - 4)),
        _ => (
            s.iter().rev().fold(0u64, |v, &b| (v << 8) | u64::from(b)),
            0,
        ),
    };
    Some((u128::from(lo) | (u128::from(hi) << 64), n as u8))
}

/// A hash of a few bytes in a few multiplications (the rustc compiler's
/// "Fx" hash): codes and symbols are short and not chosen by an attacker,
/// and the standard hash costs more than the rest of a string's row.
#[derive(Clone, Copy, Debug, Default)]
struct Fx(u64);

impl Fx {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("eight bytes")));
        }
        let mut last = [0u8; 8];
        last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        self.add(u64::from_le_bytes(last));
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u128(&mut self, n: u128) {
        self.add(n as u64);
        self.add((n >> 64) as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl Buffer {
    /// An empty buffer for `column`.
    pub fn new(column: Column) -> Buffer {
        let values = match column.kind {
            Kind::Text => Values::Text {
                ids: Vec::new(),
                distinct: Distinct::default(),
            },
            Kind::Amount => Values::Wide(Vec::new()),
            Kind::Seq | Kind::Count | Kind::Millis | Kind::Price => Values::Int(Vec::new()),
        };
        Buffer {
            column,
            def: Vec::new(),
            values,
        }
    }

    /// Add a row's value: one of the column's kind, or `null` when it is
    /// `OPTIONAL` (which [`cell`](crate::form::parquet::row::cell) made
    /// sure of).
    pub fn push(&mut self, cell: Cell) {
        if self.column.nullable {
            self.def.push(i16::from(!matches!(cell, Cell::Null)));
        }
        match (&mut self.values, cell) {
            (_, Cell::Null) => {}
            (Values::Text { ids, distinct }, Cell::Text(s)) => ids.push(distinct.id(&s)),
            (Values::Int(v), Cell::Int(x)) => v.push(x),
            (Values::Wide(v), Cell::Wide(x)) => v.push(x),
            (_, cell) => unreachable!("{cell:?} in a column of {:?}", self.column.kind),
        }
    }

    /// Take back the last row's value (of a row refused by a later column).
    pub fn pop(&mut self) {
        if self.column.nullable && self.def.pop() == Some(0) {
            return;
        }
        match &mut self.values {
            Values::Text { ids, .. } => drop(ids.pop()),
            Values::Int(v) => drop(v.pop()),
            Values::Wide(v) => drop(v.pop()),
        }
    }

    /// The bytes its values hold now (for the row group's size).
    pub fn bytes(&self) -> usize {
        let values = match &self.values {
            Values::Text { ids, distinct } => ids.capacity() * 4 + distinct.size,
            Values::Int(v) => v.capacity() * 8,
            Values::Wide(v) => v.capacity() * 16,
        };
        values + self.def.capacity() * 2
    }

    /// Write its values as the column's chunk of a row group, and empty
    /// it for the next.
    pub fn write(&mut self, w: &mut ColumnWriter) -> Result<(), ParquetError> {
        let rows = match &self.values {
            _ if self.column.nullable => self.def.len(),
            Values::Text { ids, .. } => ids.len(),
            Values::Int(v) => v.len(),
            Values::Wide(v) => v.len(),
        };
        let mut taken = 0;
        for from in (0..rows).step_by(BATCH) {
            let to = (from + BATCH).min(rows);
            let def = self.column.nullable.then(|| &self.def[from..to]);
            // Values in this batch: as many as rows not null.
            let n = def.map_or(to - from, |d| d.iter().filter(|&&d| d == 1).count());
            let range = taken..taken + n;
            taken += n;
            match &self.values {
                Values::Text { ids, distinct } => {
                    let batch: Vec<ByteArray> = ids[range]
                        .iter()
                        .map(|&id| distinct.strings[id as usize].clone())
                        .collect();
                    typed::<ByteArrayType>(w).write_batch(&batch, def, None)?;
                }
                Values::Int(v) => {
                    typed::<Int64Type>(w).write_batch(&v[range], def, None)?;
                }
                Values::Wide(v) => {
                    let batch = sixteen_bytes(&v[range]);
                    typed::<FixedLenByteArrayType>(w).write_batch(&batch, def, None)?;
                }
            }
        }
        self.clear();
        Ok(())
    }

    /// Empty it, keeping its memory for the next group (the distinct
    /// strings too are the group's own).
    fn clear(&mut self) {
        self.def.clear();
        match &mut self.values {
            Values::Text { ids, distinct } => {
                ids.clear();
                distinct.clear();
            }
            Values::Int(v) => v.clear(),
            Values::Wide(v) => v.clear(),
        }
    }
}

/// Unscaled decimals as Parquet's `FIXED_LEN_BYTE_ARRAY(16)`: each its
/// sixteen bytes of two's complement, big-endian, slices of one buffer.
fn sixteen_bytes(values: &[i128]) -> Vec<FixedLenByteArray> {
    let mut all = Vec::with_capacity(values.len() * 16);
    for v in values {
        all.extend_from_slice(&v.to_be_bytes());
    }
    let all = Bytes::from(all);
    (0..values.len())
        .map(|i| FixedLenByteArray::from(ByteArray::from(all.slice(i * 16..i * 16 + 16))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_have_the_same_number_exactly_when_they_are_equal() {
        let mut strings: Vec<Vec<u8>> = Vec::new();
        for n in 0..=20u8 {
            strings.push((0..n).map(|i| b'a' + i).collect());
            strings.push(
                (0..n)
                    .map(|i| if i == n / 2 { b'#' } else { b'a' + i })
                    .collect(),
            );
            strings.push(vec![0; n as usize]);
        }
        let mut d = Distinct::default();
        let ids: Vec<u32> = strings.iter().map(|s| d.id(s)).collect();
        for (i, a) in strings.iter().enumerate() {
            for (j, b) in strings.iter().enumerate() {
                assert_eq!(ids[i] == ids[j], a == b, "{a:?} {b:?}");
            }
            assert_eq!(d.id(a), ids[i]);
            assert_eq!(d.strings[ids[i] as usize].data(), &a[..]);
        }
    }

    #[test]
    fn a_string_is_kept_once_for_the_whole_process() {
        let (a, b) = (b"NASDAQ:AAPL".to_vec(), b"NASDAQ:AAPL".to_vec());
        let (a, b) = (interned(&a), interned(&b));
        assert_eq!(a, b"NASDAQ:AAPL");
        assert_eq!(a.as_ptr(), b.as_ptr());
        assert_ne!(interned(b"NASDAQ:TSLA").as_ptr(), a.as_ptr());
    }
}
