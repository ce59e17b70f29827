//! When a connection's data is known to be incomplete (`--gaps`): from the
//! last message received before an outage to the acknowledgement of the
//! resubscription; and, after a restart, from the last line a capture
//! holds to the first acknowledgement. Pure: times are passed in.

use std::sync::Arc;

use crate::queue::Gap;

/// An outage not yet closed by an acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Open {
    from: u64,
    reason: String,
    /// The codes subscribed when it began; `None`: those acknowledged at
    /// its end (the process was not running, so nothing was subscribed).
    codes: Option<Vec<String>>,
}

/// One connection's outages.
#[derive(Debug, Clone)]
pub struct GapWatch {
    name: Arc<str>,
    open: Option<Open>,
}

impl GapWatch {
    /// For connection `name`; `resumed_at`: the time of the capture's last
    /// line, when the tool restarts into an existing capture.
    pub fn new(name: &str, resumed_at: Option<u64>) -> GapWatch {
        GapWatch {
            name: Arc::from(name),
            open: resumed_at.map(|from| Open {
                from,
                reason: "not running (from the capture's last line to the first acknowledgement)"
                    .into(),
                codes: None,
            }),
        }
    }

    /// The connection was lost: the last message came at `last_ms`, and
    /// `codes` were subscribed. An outage already open (the reconnect
    /// failed again) keeps its start and reason. The outage's codes when
    /// it opens one.
    pub fn lost(&mut self, last_ms: u64, reason: &str, codes: Vec<String>) -> Option<Vec<String>> {
        if self.open.is_some() || codes.is_empty() {
            return None;
        }
        self.open = Some(Open {
            from: last_ms,
            reason: format!("connection lost: {reason}"),
            codes: Some(codes.clone()),
        });
        Some(codes)
    }

    /// The connection's name.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// A subscription was acknowledged at `now_ms`, carrying `acked`: the
    /// open outage, if any, ends here.
    pub fn acknowledged(&mut self, now_ms: u64, acked: &[String]) -> Option<Gap> {
        let open = self.open.take()?;
        let mut codes = open.codes.unwrap_or_else(|| acked.to_vec());
        codes.sort();
        codes.dedup();
        Some(Gap {
            connection: Some(Arc::clone(&self.name)),
            codes,
            from: open.from,
            to: now_ms.max(open.from),
            reason: open.reason,
            dropped: None,
            heal: None,
        })
    }

    /// The tool stops at `now_ms` with an outage still open: it ends here.
    pub fn stopped(&mut self, now_ms: u64) -> Option<Gap> {
        let open = self.open.as_ref()?;
        // A restart that never got an acknowledgement leaves its own hole
        // for the next start to mark.
        open.codes.as_ref()?;
        let mut gap = self.acknowledged(now_ms, &[])?;
        gap.reason
            .push_str("; stopped before the connection came back");
        Some(gap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(c: &[&str]) -> Vec<String> {
        c.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn an_outage_runs_from_the_last_message_to_the_resubscription() {
        let mut g = GapWatch::new("stock#1", None);
        assert_eq!(g.acknowledged(1_000, &codes(&["A.US"])), None);
        g.lost(5_000, "reset", codes(&["TSLA.US", "AAPL.US"]));
        // A failed reconnect keeps the first start and reason.
        g.lost(9_000, "refused", codes(&["X.US"]));
        let gap = g.acknowledged(12_000, &codes(&["AAPL.US"])).unwrap();
        assert_eq!(gap.connection.as_deref(), Some("stock#1"));
        assert_eq!(gap.codes, codes(&["AAPL.US", "TSLA.US"]));
        assert_eq!((gap.from, gap.to), (5_000, 12_000));
        assert_eq!(gap.reason, "connection lost: reset");
        assert_eq!(g.acknowledged(13_000, &[]), None, "closed once");
        // Nothing subscribed, nothing missing.
        g.lost(20_000, "reset", vec![]);
        assert_eq!(g.acknowledged(21_000, &codes(&["A.US"])), None);
    }

    #[test]
    fn a_restart_marks_the_time_it_was_not_running() {
        let mut g = GapWatch::new("stock#1", Some(3_000));
        let gap = g.acknowledged(10_000, &codes(&["B.US", "A.US"])).unwrap();
        assert_eq!(gap.codes, codes(&["A.US", "B.US"]));
        assert_eq!((gap.from, gap.to), (3_000, 10_000));
        assert!(gap.reason.starts_with("not running"));
        // Stopping before the first acknowledgement leaves it to the next
        // start, which reads the same last line.
        let mut g = GapWatch::new("stock#1", Some(3_000));
        assert_eq!(g.stopped(4_000), None);
    }

    #[test]
    fn a_stop_during_an_outage_ends_it() {
        let mut g = GapWatch::new("forex#1", None);
        assert_eq!(g.stopped(1), None);
        g.lost(100, "silence", codes(&["EURUSD"]));
        let gap = g.stopped(400).unwrap();
        assert_eq!((gap.from, gap.to), (100, 400));
        assert!(
            gap.reason
                .ends_with("stopped before the connection came back")
        );
    }
}
