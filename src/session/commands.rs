//! How a session applies what reaches it from the other threads ([`Control`]):
//! stdin commands (already routed to this connection) and `?`.

use super::{Control, Session, warn_market};
use crate::router::command::Command;

impl Session {
    pub(super) fn apply(&mut self, control: Control) {
        let Control::Command { line, command } = control else {
            return;
        };
        let (adding, symbols) = match &command {
            Command::Add(symbols) => (true, symbols),
            Command::Remove(symbols) => (false, symbols),
            Command::Query => {
                self.report_state(line);
                return;
            }
        };
        if adding {
            warn_market(self.cfg.market, symbols, &format!("stdin:{line}"));
        }
        self.idle.reset();
        let change = self.channels.change(adding, symbols);
        if adding {
            self.label(symbols);
        }
        let (verb, state) = if adding {
            ("added", "already subscribed")
        } else {
            ("removed", "not subscribed")
        };
        for s in &change.unchanged {
            self.say(format!("stdin:{line}: note: {s} is {state}"));
        }
        if !change.applied.is_empty() {
            self.say(format!(
                "stdin:{line}: {verb} {}; {} trade and {} depth symbols wanted",
                crate::report::list(&change.applied),
                self.channels.trades.codes().len(),
                self.channels.depth.codes().len()
            ));
        }
    }

    /// Answer `?`: the wanted sets and the sets the server acknowledged.
    fn report_state(&self, line: u64) {
        let link = if self.connected {
            "connected"
        } else {
            "not connected"
        };
        let (t, d) = (&self.channels.trades, &self.channels.depth);
        let since = self.figures.since();
        self.say(format!(
            "stdin:{line}: {link} to {} ({since}); wanted {} trade symbols: {}; acknowledged by the server {}: {}; wanted {} depth symbols: {}; acknowledged {}: {}",
            self.cfg.url,
            t.codes().len(),
            t.names(t.codes()),
            t.server_set().len(),
            t.names(t.server_set()),
            d.codes().len(),
            d.names(d.codes()),
            d.server_set().len(),
            d.names(d.server_set())
        ));
    }

    pub(super) fn drain_controls(&mut self) {
        while let Ok(c) = self.controls.try_recv() {
            self.apply(c);
        }
    }
}
