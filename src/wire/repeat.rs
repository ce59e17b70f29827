//! What was written per code, so that a push is written once.

/// How a push relates to what was written before for its code.
///
/// AllTick documents no meaning for `seq`: it may be time-like or a counter,
/// and nothing says it survives a reconnect or a fail-over. So a push is a
/// repeat only when that is provable: its `seq` is not above the last one
/// written **and** its time is not after the last one written. A lower `seq`
/// with a later time is the server's numbering starting again: written.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    /// New: write it.
    New,
    /// New, but its `seq` is not above the last one written while its time
    /// is later: the server's numbering restarted. `first` is true the
    /// first time this happens for the code (to say so once).
    Restarted {
        /// First restart seen for this code.
        first: bool,
    },
    /// Provably written already: `seq` and time both not above the last
    /// written (a duplicate or a replay after a reconnect).
    Repeat,
}

/// The last push written for a code: its de-duplication memory.
#[derive(Debug, Default, Clone, Copy)]
pub struct Last {
    /// Its `seq` (0: none yet).
    seq: u64,
    /// The latest `tick_time` written, ms (0: none yet).
    time: u64,
    /// The server's numbering for this code was seen to restart.
    restarted: bool,
}

impl Last {
    /// The memory of a code whose last line, read back from a capture, had
    /// `seq` and `time` (ms).
    pub fn resumed(seq: u64, time: u64) -> Last {
        Last {
            seq,
            time,
            restarted: false,
        }
    }

    /// Its `seq` and `time` (0, 0: nothing written yet).
    pub fn parts(&self) -> (u64, u64) {
        (self.seq, self.time)
    }

    /// Classify the code's next push, with `seq` and `time` (ms),
    /// remembering both when it is to be written. See [`Seen`].
    pub fn see(&mut self, seq: u64, time: u64) -> Seen {
        let fresh = self.seq == 0 && self.time == 0;
        if fresh || seq > self.seq {
            self.seq = seq;
            self.time = self.time.max(time);
            return Seen::New;
        }
        if time <= self.time {
            return Seen::Repeat;
        }
        self.seq = seq;
        self.time = time;
        let first = !std::mem::replace(&mut self.restarted, true);
        Seen::Restarted { first }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_or_replayed_seqs_are_recognised_per_code() {
        let (mut aapl, mut tsla) = (Last::default(), Last::default());
        assert_eq!(aapl.see(5, 1000), Seen::New);
        assert_eq!(tsla.see(3, 1000), Seen::New);
        assert_eq!(aapl.see(5, 1000), Seen::Repeat);
        assert_eq!(aapl.see(4, 900), Seen::Repeat);
        assert_eq!(aapl.see(6, 1000), Seen::New);
        assert_eq!(aapl.see(6, 1000), Seen::Repeat);
        assert_eq!(aapl.see(7, 1001), Seen::New);
        assert_eq!(tsla.see(3, 1000), Seen::Repeat);
    }

    #[test]
    fn a_lower_seq_with_a_later_time_is_a_restart_and_is_written() {
        let mut d = Last::default();
        assert_eq!(d.see(30_841_439, 5_000), Seen::New);
        // The numbering starts again on a new connection: written, said once.
        assert_eq!(d.see(1, 6_000), Seen::Restarted { first: true });
        assert_eq!(d.see(2, 6_000), Seen::New);
        // A replay of the new numbering is still caught.
        assert_eq!(d.see(2, 6_000), Seen::Repeat);
        assert_eq!(d.see(1, 6_000), Seen::Repeat);
        // A second restart is written and not said again.
        assert_eq!(d.see(1, 7_000), Seen::Restarted { first: false });
        // A higher seq is new whatever its time.
        assert_eq!(d.see(9, 10), Seen::New);
        assert_eq!(d.see(9, 6_500), Seen::Repeat);
    }
}
