//! The thread that encodes and compresses row groups ([`Encoder`]), so
//! that reading the next lines and encoding the last group take a core
//! each. A full group's buffers go to it; each column comes back as its
//! finished chunk's bytes, for the caller's thread to append to the file
//! (the file's writer never leaves that thread, so it need not live
//! forever), with the buffers, emptied, for another group.
//!
//! Two groups' buffers are held: the one being filled and the one being
//! encoded; a full group is handed over once the thread has given back
//! the one before.

use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};
use parquet::column::writer::{ColumnCloseResult, get_column_writer};
use parquet::data_type::FixedLenByteArray;
use parquet::file::properties::WriterProperties;
use parquet::file::statistics::{Statistics, ValueStatistics};
use parquet::file::writer::{SerializedPageWriter, TrackedWrite};
use parquet::schema::types::ColumnDescPtr;

use crate::form::parquet::column::Buffer;
use crate::form::parquet::error::ParquetError;

/// A row group, encoded: per column its chunk's bytes and what the file's
/// footer says of it; and the group's buffers, emptied.
pub struct Encoded {
    /// Per column, in order.
    pub chunks: Vec<(Bytes, ColumnCloseResult)>,
    /// The buffers the group came in, for another.
    pub buffers: Vec<Buffer>,
}

/// The encoding thread, and the channels to and from it.
pub struct Encoder {
    /// Full groups to it; `None` once closed.
    to: Option<Sender<Vec<Buffer>>>,
    /// Encoded groups from it, in order; an error ends them.
    from: Receiver<Result<Encoded, ParquetError>>,
    /// The thread, to wait for at the end.
    thread: Option<JoinHandle<()>>,
}

impl Encoder {
    /// Start the thread for columns `columns` written with `props`.
    pub fn start(
        columns: Vec<ColumnDescPtr>,
        props: Arc<WriterProperties>,
    ) -> Result<Encoder, ParquetError> {
        let (to, groups) = crossbeam_channel::bounded::<Vec<Buffer>>(0);
        let (done, from) = crossbeam_channel::unbounded();
        let thread = std::thread::Builder::new()
            .name("parquet".into())
            .spawn(move || {
                for mut group in groups {
                    let encoded = encode(&mut group, &columns, &props).map(|chunks| Encoded {
                        chunks,
                        buffers: group,
                    });
                    let failed = encoded.is_err();
                    if done.send(encoded).is_err() || failed {
                        return;
                    }
                }
            })?;
        Ok(Encoder {
            to: Some(to),
            from,
            thread: Some(thread),
        })
    }

    /// Hand it a full group: at once when it has finished the one before
    /// (see [`Encoder::next`]). An error when the thread has stopped.
    pub fn send(&self, group: Vec<Buffer>) -> Result<(), ParquetError> {
        let stopped = || ParquetError::refused("the encoding thread stopped");
        self.to
            .as_ref()
            .ok_or_else(stopped)?
            .send(group)
            .map_err(|_| stopped())
    }

    /// The group handed over last, once encoded (waiting for it); `None`
    /// when the thread stopped without a word (it panicked).
    pub fn next(&self) -> Option<Result<Encoded, ParquetError>> {
        self.from.recv().ok()
    }

    /// No more groups: the thread ends, and is waited for.
    pub fn close(&mut self) -> Result<(), ParquetError> {
        self.to = None;
        match self.thread.take().map(JoinHandle::join) {
            Some(Err(_)) => Err(ParquetError::refused("the encoding thread failed")),
            _ => Ok(()),
        }
    }
}

/// Encode and compress each buffer as its column's chunk, in memory.
fn encode(
    group: &mut [Buffer],
    columns: &[ColumnDescPtr],
    props: &Arc<WriterProperties>,
) -> Result<Vec<(Bytes, ColumnCloseResult)>, ParquetError> {
    let mut chunks = Vec::with_capacity(group.len());
    for (buffer, descr) in group.iter_mut().zip(columns) {
        let mut sink = TrackedWrite::new(Vec::new());
        let close = {
            let pages = Box::new(SerializedPageWriter::new(&mut sink));
            let mut w = get_column_writer(descr.clone(), props.clone(), pages);
            buffer.write(&mut w)?;
            w.close()?
        };
        chunks.push((Bytes::from(sink.into_inner()?), unpin(close)?));
    }
    Ok(chunks)
}

/// A chunk's statistics with their own copies of its least and greatest
/// sixteen-byte decimals: as the column writer took them, they are
/// slices of a batch of the group's values, which the footer, kept to
/// the end of the file, would keep alive (64 KiB a chunk).
fn unpin(mut close: ColumnCloseResult) -> Result<ColumnCloseResult, ParquetError> {
    let Some(stats @ Statistics::FixedLenByteArray(s)) = close.metadata.statistics() else {
        return Ok(close);
    };
    let copy = |v: &FixedLenByteArray| FixedLenByteArray::from(v.data().to_vec());
    let own = ValueStatistics::new(
        s.min_opt().map(copy),
        s.max_opt().map(copy),
        s.distinct_count(),
        s.null_count_opt(),
        stats.is_min_max_deprecated(),
    )
    .with_min_is_exact(s.min_is_exact())
    .with_max_is_exact(s.max_is_exact())
    .with_backwards_compatible_min_max(s.is_min_max_backwards_compatible());
    let metadata = close.metadata;
    close.metadata = metadata
        .into_builder()
        .set_statistics(Statistics::FixedLenByteArray(own))
        .build()?;
    Ok(close)
}
