//! AllTick's plans and what each allows: WebSocket connections and symbols
//! (the WebSocket docs' limits a correct client respects) and HTTP
//! requests (the HTTP docs' `interface_limitation` page, revised
//! 2026-04). One table, read by `--plan` for the live stream and for
//! `history`, and by the simulator.

/// A limit on requests: at most `count` in any `window_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Requests allowed in one window.
    pub count: u32,
    /// The window's length, in ms.
    pub window_ms: u64,
}

impl Window {
    /// `1 / 10 s`, `600 / min`, `1000 / day`.
    pub fn describe(self) -> String {
        let per = match self.window_ms {
            60_000 => "min".to_string(),
            86_400_000 => "day".to_string(),
            ms if ms.is_multiple_of(1000) && ms > 1000 => format!("{} s", ms / 1000),
            1000 => "s".to_string(),
            ms => format!("{ms} ms"),
        };
        format!("{} / {per}", self.count)
    }
}

/// AllTick's HTTP limits of one plan, per token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// One interface (`/kline`): free 1 / 10 s, basic 1 / s, premium 10 / s,
    /// professional 20 / s.
    pub one_interface: Window,
    /// Every interface together, per minute.
    pub per_minute: Window,
    /// Requests per day.
    pub per_day: u32,
}

impl HttpLimits {
    /// The sliding windows a client keeps to (the day is counted apart).
    pub fn windows(&self) -> [Window; 2] {
        [self.one_interface, self.per_minute]
    }
}

/// One of AllTick's plans.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Its name for `--plan`: `free`, `basic` …
    pub name: &'static str,
    /// WebSocket connections per token.
    pub connections: usize,
    /// Symbols per WebSocket connection, per kind (trades, depth).
    pub symbols: usize,
    /// HTTP request limits.
    pub http: HttpLimits,
}

const fn w(count: u32, window_ms: u64) -> Window {
    Window { count, window_ms }
}

const fn http(one: Window, per_minute: u32, per_day: u32) -> HttpLimits {
    HttpLimits {
        one_interface: one,
        per_minute: w(per_minute, 60_000),
        per_day,
    }
}

const PRO_HTTP: HttpLimits = http(w(20, 1000), 1200, 1_728_000);

/// Every plan, cheapest first.
pub const PLANS: [Plan; 6] = [
    Plan {
        name: "free",
        connections: 1,
        symbols: 5,
        http: http(w(1, 10_000), 10, 1000),
    },
    Plan {
        name: "basic",
        connections: 1,
        symbols: 100,
        http: http(w(1, 1000), 60, 86_400),
    },
    Plan {
        name: "premium",
        connections: 3,
        symbols: 200,
        http: http(w(10, 1000), 600, 864_000),
    },
    Plan {
        name: "professional",
        connections: 10,
        symbols: 3000,
        http: PRO_HTTP,
    },
    Plan {
        name: "all-hk",
        connections: 10,
        symbols: 3000,
        http: PRO_HTTP,
    },
    Plan {
        name: "all-cn",
        connections: 10,
        symbols: 3000,
        http: PRO_HTTP,
    },
];

/// The plans' names, in the table's order.
pub const PLAN_NAMES: [&str; PLANS.len()] = {
    let mut names = [""; PLANS.len()];
    let mut i = 0;
    while i < PLANS.len() {
        names[i] = PLANS[i].name;
        i += 1;
    }
    names
};

/// The plan called `name`.
pub fn find(name: &str) -> Option<&'static Plan> {
    PLANS.iter().find(|p| p.name == name)
}

/// The free plan: what `history` keeps to when `--plan` is not given.
pub fn free() -> &'static Plan {
    &PLANS[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_keep_to_the_documented_http_table() {
        let table: Vec<(&str, String, String, u32)> = PLANS
            .iter()
            .map(|p| {
                (
                    p.name,
                    p.http.one_interface.describe(),
                    p.http.per_minute.describe(),
                    p.http.per_day,
                )
            })
            .collect();
        assert_eq!(
            table[0],
            ("free", "1 / 10 s".into(), "10 / min".into(), 1000)
        );
        assert_eq!(
            table[1],
            ("basic", "1 / s".into(), "60 / min".into(), 86_400)
        );
        assert_eq!(
            table[2],
            ("premium", "10 / s".into(), "600 / min".into(), 864_000)
        );
        for pro in &table[3..] {
            assert_eq!(pro.1, "20 / s");
            assert_eq!(pro.3, 1_728_000);
        }
        assert_eq!(find("basic").unwrap().symbols, 100);
        assert!(find("gold").is_none());
        assert_eq!(free().name, "free");
    }
}
