//! The thread that fetches K-lines for `--heal`, beside the live stream's
//! reader and writer: requests from the writer's healer come in on a
//! channel, are sent at the plan's pace (one [`Pacer`] for every code),
//! and their answers go back on another. A bar whose interval the server
//! has not yet closed is asked again once it has; refusals for rate are
//! waited out; failures are tried again with a backoff, then given up on;
//! a refused token stops healing (said once), never the stream.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, unbounded};

use super::check::check;
use super::fetch::{Client, Reply};
use super::pace::{Backoff, Pacer};
use crate::bars::heal::{Answer, KlineBar, Outcome, Request};
use crate::report::say;
use crate::stats::Stats;
use crate::wire::kline::KlineInterval;
use crate::wire::plan::Plan;
use crate::wire::symbol::Market;

/// Failures in a row (no answer, HTTP 5xx, not JSON) before a request is
/// given up on.
const TRIES: u32 = 6;

/// A request waiting its turn.
struct Job {
    request: Request,
    /// Not before this time (ms): a retry's backoff, or the server's clock
    /// not yet past the last bar's end.
    not_before: u64,
    failures: Backoff,
    refusals: Backoff,
    /// A forex, metal or crypto code's pages so far, by start; and the
    /// last start the next page asks back from (None: the request's).
    got: BTreeMap<u64, KlineBar>,
    until: Option<u64>,
}

/// Start the thread: requests for it, answers from it. It ends when the
/// requests' sender is dropped or `stop` is set.
pub fn start(
    client: Client,
    plan: &'static Plan,
    stop: Arc<AtomicBool>,
) -> (Sender<Request>, Receiver<Answer>) {
    let (req_tx, req_rx) = unbounded::<Request>();
    let (ans_tx, ans_rx) = unbounded::<Answer>();
    let spawned = thread::Builder::new().name("heal".into()).spawn(move || {
        Fetcher {
            client,
            pacer: Pacer::new(&plan.http),
            jobs: VecDeque::new(),
            answers: ans_tx,
            refused: false,
        }
        .run(&req_rx, &stop)
    });
    if let Err(e) = spawned {
        say(format!(
            "heal: cannot start the thread that fetches K-lines: {e}"
        ));
    }
    (req_tx, ans_rx)
}

/// The plan's pace, ms per request, for the healer's default wait.
pub fn ms_per_request(plan: &Plan) -> u64 {
    Pacer::new(&plan.http).ms_per_request()
}

struct Fetcher {
    client: Client,
    pacer: Pacer,
    jobs: VecDeque<Job>,
    answers: Sender<Answer>,
    /// The token was refused: every request is given up on.
    refused: bool,
}

impl Fetcher {
    fn run(&mut self, requests: &Receiver<Request>, stop: &AtomicBool) {
        while !stop.load(Ordering::SeqCst) {
            let now = Stats::now_ms();
            let due = self.next_due(now);
            // Wake at least every 250 ms to see a stop.
            let wait = due.map_or(250, |at| at.saturating_sub(now).min(250));
            match requests.recv_timeout(Duration::from_millis(wait)) {
                Ok(r) => self.take(r),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            while let Ok(r) = requests.try_recv() {
                self.take(r);
            }
            if self
                .next_due(Stats::now_ms())
                .is_some_and(|at| at <= Stats::now_ms())
            {
                self.one();
            }
        }
    }

    fn take(&mut self, request: Request) {
        if self.refused {
            self.give_up(request.id, "the token was refused (HTTP 401)");
            return;
        }
        self.jobs.push_back(Job {
            request,
            not_before: 0,
            failures: Backoff::new(250, 8_000),
            refusals: Backoff::new(2_000, 60_000),
            got: BTreeMap::new(),
            until: None,
        });
    }

    /// When the next job may be sent: its own time and the pace's.
    fn next_due(&self, now: u64) -> Option<u64> {
        let earliest = self.jobs.iter().map(|j| j.not_before).min()?;
        let pace = self.pacer.next_at(now.max(earliest))?;
        Some(pace.max(earliest))
    }

    fn give_up(&self, id: u64, why: &str) {
        let _ = self.answers.send(Answer {
            id,
            outcome: Outcome::GaveUp(why.to_string()),
        });
    }

    /// Send the first job that is due.
    fn one(&mut self) {
        let now = Stats::now_ms();
        let Some(i) = self.jobs.iter().position(|j| j.not_before <= now) else {
            return;
        };
        let mut job = self.jobs.remove(i).expect("a job");
        let r = &job.request;
        let Ok(interval) = KlineInterval::parse(r.interval.name()) else {
            return self.give_up(r.id, "no K-lines of this interval");
        };
        let stock = Market::of_code(&r.code) == Market::Stock;
        if stock && !interval.for_stocks() {
            let why = format!("AllTick has no {} K-lines for stocks", interval.name());
            say(format!(
                "heal: {}: {why}: its bars are written as built from trades",
                r.code
            ));
            return self.give_up(r.id, &why);
        }
        let ms = r.interval.ms();
        let (end_secs, num) = if stock {
            // Stocks: always the latest bars, back to the first wanted (on
            // the feed's clock when it runs ahead of ours).
            let back = r.clock.max(r.last + ms).saturating_sub(r.first) / ms + 2;
            (0, back.min(500) as u32)
        } else {
            // A second past the last start wanted: its bar comes whether
            // the end is read as inclusive or not.
            let until = job.until.unwrap_or(r.last);
            ((until / 1000) + 1, ((until - r.first) / ms + 2) as u32)
        };
        self.pacer.sent(now);
        let reply = self.client.get(stock, &r.code, interval, end_secs, num);
        self.reply(job_answer(&mut job, reply, stock, interval), job);
    }

    fn reply(&mut self, next: Next, mut job: Job) {
        let id = job.request.id;
        match next {
            Next::Answer(outcome) => {
                let _ = self.answers.send(Answer { id, outcome });
            }
            Next::Again(at, why) => {
                if let Some(why) = why {
                    say(format!("heal: {}: {why}; asking again", job.request.code));
                }
                job.not_before = at;
                self.jobs.push_back(job);
            }
            Next::TokenRefused => {
                say(
                    "heal: the HTTP API refused the token (401): healing stops, the stream goes on; held bars are written as built from trades",
                );
                self.refused = true;
                self.give_up(id, "the token was refused (HTTP 401)");
                for j in std::mem::take(&mut self.jobs) {
                    self.give_up(j.request.id, "the token was refused (HTTP 401)");
                }
            }
        }
    }
}

/// What to do after a reply.
enum Next {
    Answer(Outcome),
    /// Ask again at this time (ms), saying why if anything is worth it.
    Again(u64, Option<String>),
    TokenRefused,
}

/// A reply, for `job`, read.
fn job_answer(job: &mut Job, reply: Reply, stock: bool, interval: KlineInterval) -> Next {
    let r = &job.request;
    let now = Stats::now_ms();
    match reply {
        Reply::Bars { answer, server_now } => {
            let server_now = server_now.unwrap_or(now);
            let last_end = r.last + r.interval.ms();
            if last_end > server_now {
                // The server has not closed the last bar yet.
                return Next::Again(now + (last_end - server_now).max(1_000), None);
            }
            let mut bars: Vec<KlineBar> = Vec::new();
            for raw in answer.bars.into_iter().flatten() {
                match check(raw, interval) {
                    Ok(k) if k.end <= server_now => bars.push(KlineBar {
                        start: k.start,
                        end: k.end,
                        values: [k.open, k.high, k.low, k.close, k.volume, k.turnover],
                    }),
                    Ok(_) => {}
                    Err(e) => say(format!("heal: {}: a K-line dropped: {e}", r.code)),
                }
            }
            let oldest = bars.iter().map(|k| k.start).min();
            if !stock {
                // A page is not the end because it is short (a server may
                // cut pages short): only a page with nothing older than the
                // one before is, as with `history`.
                let before = job.got.keys().next().copied();
                for k in bars {
                    if (r.first..=r.last).contains(&k.start) {
                        job.got.entry(k.start).or_insert(k);
                    }
                }
                if let Some(o) = oldest.filter(|&o| o > r.first && before.is_none_or(|b| o < b)) {
                    job.until = Some(o - r.interval.ms());
                    return Next::Again(now, None);
                }
                let bars = std::mem::take(&mut job.got).into_values().collect();
                return Next::Answer(Outcome::Klines {
                    bars,
                    from: r.first,
                });
            }
            // A stock's latest bars, one request: whatever it asked for
            // before the oldest of them the server no longer has (as with
            // `history`, whatever the size of the answer).
            let from = match oldest {
                Some(o) if o > r.first => o,
                _ => r.first,
            };
            if from > r.first {
                say(format!(
                    "heal: {}: the server no longer has its bars from {} to {}: they stay as built from trades",
                    r.code,
                    crate::wire::calendar::iso(r.first),
                    crate::wire::calendar::iso(from)
                ));
            }
            Next::Answer(Outcome::Klines { bars, from })
        }
        Reply::Refused(ret, msg) => {
            say(format!(
                "heal: {}: the server answered ret {ret} ({msg}): its bars are written as built from trades",
                r.code
            ));
            Next::Answer(Outcome::GaveUp(format!("ret {ret}")))
        }
        Reply::RateLimited(why) => Next::Again(now + job.refusals.fail(), Some(why)),
        Reply::TokenRefused => Next::TokenRefused,
        Reply::Failed(why) => {
            if job.failures.tries + 1 >= TRIES {
                say(format!(
                    "heal: {}: {why}; given up after {TRIES} tries",
                    r.code
                ));
                return Next::Answer(Outcome::GaveUp(why));
            }
            Next::Again(now + job.failures.fail(), Some(why))
        }
    }
}
