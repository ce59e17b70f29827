//! Without the `testing` feature the fault switches do not exist: these
//! stand-ins for `faults` report "no fault" so that the connection code
//! needs no conditional compilation (and the optimizer drops what they
//! would have guarded).

use std::time::Duration;

use serde_json::Value;

use super::CloseCause;
use super::conn::Conn;
use super::http::Reply;
use super::http_answer::KlineReadings;
use super::server::{Inner, Shared};

impl Shared {
    /// Never silent.
    pub(super) fn silent(&self) -> bool {
        false
    }

    /// No connection commands to enable.
    pub(super) fn open_for_commands(&self, _id: u64) {}

    /// No connections-per-token limit.
    pub(super) fn limit_exceeded(&self, _inner: &mut Inner, _id: u64) -> bool {
        false
    }

    /// No injected failures.
    pub(super) fn take_failure(&self, _cmd_id: u64) -> Option<(u32, &'static str)> {
        None
    }

    /// No refused codes, no symbol limit.
    pub(super) fn refusal(&self, _list: &mut Vec<(String, usize)>) -> Option<(u32, &'static str)> {
        None
    }

    /// Each endpoint serves only its own market's codes.
    pub(super) fn market_check(&self) -> bool {
        true
    }

    /// Never drop after the first acknowledgement.
    pub(super) fn drop_after_ack(&self) -> Option<Duration> {
        None
    }

    /// Never cut.
    pub(super) fn cut_every(&self) -> Option<Duration> {
        None
    }

    /// Always upgrade.
    pub(super) fn handshake_status(&self) -> Option<u16> {
        None
    }

    /// K-line answers in the default reading.
    pub(super) fn kline_readings(&self) -> KlineReadings {
        KlineReadings::default()
    }

    /// No refused K-line codes.
    pub(super) fn kline_refusal(&self, _code: &str) -> Option<(u32, &'static str)> {
        None
    }

    /// No injected HTTP faults.
    pub(super) fn http_fault(&self, _trace: &Value) -> Option<Reply> {
        None
    }

    /// Nothing hangs, so nothing releases hangs.
    pub(super) fn hang_generation(&self) -> u64 {
        0
    }
}

impl Conn<'_> {
    /// Never silent: nothing to wait for.
    pub(super) fn pause_while_silent(&mut self) -> Result<(), CloseCause> {
        Ok(())
    }

    /// Never called: nothing cuts without the feature.
    pub(super) fn cut(&mut self) -> CloseCause {
        CloseCause::Cut
    }

    /// Nobody sends commands.
    pub(super) fn remote_commands(&mut self) -> Option<CloseCause> {
        None
    }
}
