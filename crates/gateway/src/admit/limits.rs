//! A client's limits and budgets: requests per minute (`governor`'s GCRA), input and output tokens per minute (a GCRA
//! of our own that can be reconciled: an estimate is taken up front and corrected, up or down, when the usage is
//! known — `governor` can neither refund nor go into debt), concurrent requests, and spend per UTC day and month
//! from the price table.
//!
//! An [`Account`] belongs to a key (or a team) by its stable id and lives outside the configuration snapshot: a
//! reload keeps its counts. Time only through `tokio::time` (the wall clock for days and months included).

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use arc_swap::ArcSwap;
use governor::clock::Clock;
use governor::middleware::StateInformationMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::time::Instant;

use crate::config::protect::{Budget, Limits};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `governor`'s clock, read through `tokio::time` (so paused-time tests drive it): time since a base instant.
#[derive(Clone, Debug)]
pub struct TokioClock(Instant);

impl Clock for TokioClock {
    type Instant = Duration;
    fn now(&self) -> Duration {
        Instant::now().saturating_duration_since(self.0)
    }
}

type Rpm = RateLimiter<NotKeyed, InMemoryState, TokioClock, StateInformationMiddleware>;

/// Which limit refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    Requests,
    InputTokens,
    OutputTokens,
    Concurrency,
    DailyBudget,
    MonthlyBudget,
}

impl Which {
    pub fn label(self) -> &'static str {
        match self {
            Which::Requests => "requests per minute",
            Which::InputTokens => "input tokens per minute",
            Which::OutputTokens => "output tokens per minute",
            Which::Concurrency => "concurrent requests",
            Which::DailyBudget => "daily budget",
            Which::MonthlyBudget => "monthly budget",
        }
    }
}

/// A limit that refused: which, its figure, what is left, and when to come back.
#[derive(Clone, Debug, PartialEq)]
pub struct Over {
    pub which: Which,
    /// The limit (requests, tokens, requests at once; dollars for budgets).
    pub limit: f64,
    pub remaining: f64,
    pub retry_after: Duration,
    /// Whether waiting helps (a request larger than a whole minute's tokens never passes).
    pub retry: bool,
    /// "team NAME" or "key NAME".
    pub whose: String,
}

/// The state of a token-per-minute limit: a GCRA whose theoretical arrival time may run ahead of now (a debt, when
/// usage exceeded the estimate) and be moved back (a refund).
#[derive(Debug)]
struct TokenRate {
    per_minute: u64,
    /// The theoretical arrival time, as time since the account's base.
    tat: Mutex<Duration>,
}

const MINUTE: Duration = Duration::from_secs(60);

impl TokenRate {
    fn new(per_minute: u64) -> TokenRate {
        TokenRate { per_minute, tat: Mutex::new(Duration::ZERO) }
    }

    fn cost(&self, tokens: u64) -> Duration {
        let nanos = u128::from(tokens) * MINUTE.as_nanos() / u128::from(self.per_minute.max(1));
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// Take `tokens` now, or say how long until they fit.
    fn take(&self, tokens: u64, now: Duration) -> Result<(), Duration> {
        let mut tat = lock(&self.tat);
        let next = (*tat).max(now) + self.cost(tokens);
        let ahead = next.saturating_sub(now);
        if ahead > MINUTE {
            return Err(ahead - MINUTE);
        }
        *tat = next;
        Ok(())
    }

    /// Correct an earlier take by `delta` tokens (more used: a debt; fewer: a refund, never below now).
    fn adjust(&self, delta: i64, now: Duration) {
        let mut tat = lock(&self.tat);
        let cost = self.cost(delta.unsigned_abs());
        *tat = if delta >= 0 { (*tat).max(now) + cost } else { tat.saturating_sub(cost).max(now) };
    }

    /// Tokens that could be taken now, and the time until the whole minute's worth is back.
    fn remaining(&self, now: Duration) -> (u64, Duration) {
        let tat = *lock(&self.tat);
        let used = tat.max(now).saturating_sub(now);
        let free = MINUTE.saturating_sub(used);
        let tokens = u128::from(self.per_minute) * free.as_nanos() / MINUTE.as_nanos();
        (u64::try_from(tokens).unwrap_or(u64::MAX), used)
    }
}

/// The limiters of one set of limits (replaced whole when the limits change; the concurrency count and the spend
/// are kept).
struct Limiters {
    limits: Limits,
    rpm: Option<Rpm>,
    input: Option<TokenRate>,
    output: Option<TokenRate>,
}

impl std::fmt::Debug for Limiters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiters").field("limits", &self.limits).finish_non_exhaustive()
    }
}

impl Limiters {
    fn new(limits: Limits, clock: &TokioClock) -> Limiters {
        let rpm = limits
            .requests_per_minute
            .and_then(NonZeroU32::new)
            .map(|n| RateLimiter::direct_with_clock(Quota::per_minute(n), clock.clone()).with_middleware());
        Limiters {
            limits,
            rpm,
            input: limits.input_tokens_per_minute.map(TokenRate::new),
            output: limits.output_tokens_per_minute.map(TokenRate::new),
        }
    }
}

/// Spend in the current UTC day and month, and what requests in flight are expected to spend.
#[derive(Debug, Default, Clone, Copy)]
pub struct Spend {
    pub day: i64,
    pub day_usd: f64,
    pub month: i64,
    pub month_usd: f64,
    pub reserved: f64,
    /// Spent by this process (since it started) this day and this month: what it tells the fleet (Redis), whose
    /// totals `day_usd` and `month_usd` then are.
    pub here_day_usd: f64,
    pub here_month_usd: f64,
}

/// An account's spend as the fleet is told it: what this replica spent this day and this month.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpendPush {
    pub day: i64,
    pub month: i64,
    pub day_usd: f64,
    pub month_usd: f64,
}

/// One key's (or team's) limits and their state.
#[derive(Debug)]
pub struct Account {
    pub whose: String,
    clock: TokioClock,
    limiters: ArcSwap<Limiters>,
    budget: ArcSwap<Budget>,
    in_flight: AtomicU32,
    spend: Mutex<Spend>,
    wall: crate::record::history::Wall,
}

/// What a request was admitted with, per account: settled when its usage is known, released when it ends. One
/// that ends unsettled gives its estimates back if no answer had started; once one had (a stream without usage, a
/// client gone mid-answer), the estimates stand as what it used.
#[derive(Debug)]
pub struct Held {
    account: Arc<Account>,
    input: u64,
    output: u64,
    cost: f64,
    concurrency: bool,
    committed: bool,
    /// The fleet-wide place this request holds (given back when it ends).
    lease: Option<crate::shared::Lease>,
}

impl Account {
    pub fn new(whose: String, limits: Limits, budget: Budget) -> Account {
        let clock = TokioClock(Instant::now());
        Account {
            whose,
            limiters: ArcSwap::from_pointee(Limiters::new(limits, &clock)),
            clock,
            budget: ArcSwap::from_pointee(budget),
            in_flight: AtomicU32::new(0),
            spend: Mutex::new(Spend::default()),
            wall: crate::record::history::Wall::new(),
        }
    }

    /// New limits (from a reload or the admin API): their rate state starts afresh only if they changed.
    pub fn configure(&self, limits: Limits, budget: Budget) {
        if self.limiters.load().limits != limits {
            self.limiters.store(Arc::new(Limiters::new(limits, &self.clock)));
        }
        if **self.budget.load() != budget {
            self.budget.store(Arc::new(budget));
        }
    }

    pub fn limits(&self) -> Limits {
        self.limiters.load().limits
    }

    pub fn budget(&self) -> Budget {
        **self.budget.load()
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Spend so far, rolled to the current day and month.
    pub fn spend(&self) -> Spend {
        let (day, month) = self.today();
        let mut s = lock(&self.spend);
        roll(&mut s, day, month);
        *s
    }

    /// Restore spend read back from the store (after a restart).
    pub fn restore(&self, saved: Spend) {
        let mut s = lock(&self.spend);
        s.day = saved.day;
        s.day_usd = saved.day_usd;
        s.month = saved.month;
        s.month_usd = saved.month_usd;
    }

    /// What to tell the fleet of this account's spend (`None` without a budget).
    pub fn spent_here(&self) -> Option<SpendPush> {
        if self.budget().is_empty() {
            return None;
        }
        let (day, month) = self.today();
        let mut s = lock(&self.spend);
        roll(&mut s, day, month);
        Some(SpendPush { day, month, day_usd: s.here_day_usd, month_usd: s.here_month_usd })
    }

    /// The fleet's totals once told `push`: this replica's view becomes them, plus what it spent since.
    pub fn fleet_spend(&self, push: &SpendPush, day_usd: f64, month_usd: f64) {
        let mut s = lock(&self.spend);
        if s.day == push.day {
            s.day_usd = day_usd + (s.here_day_usd - push.day_usd).max(0.0);
        }
        if s.month == push.month {
            s.month_usd = month_usd + (s.here_month_usd - push.month_usd).max(0.0);
        }
    }

    fn today(&self) -> (i64, i64) {
        let days = i64::try_from(self.wall.unix_ms(Instant::now()) / 86_400_000).unwrap_or(0);
        let (y, m, _) = civil_from_days(days);
        (days, y * 12 + i64::from(m) - 1)
    }

    fn over(&self, which: Which, limit: f64, remaining: f64, retry_after: Duration) -> Over {
        Over { which, limit, remaining, retry_after, retry: true, whose: self.whose.clone() }
    }

    /// Admit a request of `input` (estimated) input tokens asking for up to `output`, expected to cost `cost`:
    /// every limit is checked, and what was taken is given back if a later one refuses.
    pub fn admit(self: &Arc<Self>, input: u64, output: u64, cost: f64) -> Result<Held, Over> {
        self.admit_with(input, output, cost, None, None)
    }

    /// [`Account::admit`], with the fleet's verdict on its requests per minute when Redis gave one (`None`: this
    /// replica's own limiter decides).
    pub fn admit_with(
        self: &Arc<Self>,
        input: u64,
        output: u64,
        cost: f64,
        shared: Option<crate::shared::Verdict>,
        fleet_place: Option<Option<crate::shared::Lease>>,
    ) -> Result<Held, Over> {
        let lim = self.limiters.load();
        let budget = self.budget();
        let mut held = Held {
            account: self.clone(),
            input: 0,
            output: 0,
            cost: 0.0,
            concurrency: false,
            committed: false,
            lease: None,
        };
        match (lim.limits.concurrency, fleet_place) {
            // The fleet decided: a place held fleet-wide, or none free.
            (_, Some(Some(lease))) => held.lease = Some(lease),
            (Some(max), Some(None)) => {
                return Err(self.over(Which::Concurrency, f64::from(max), 0.0, Duration::from_secs(1)));
            }
            _ => {}
        }
        // Counted here whoever decides (so that this replica still knows its own if Redis goes away); refused here
        // only when the fleet did not decide.
        if let Some(max) = lim.limits.concurrency {
            let before = self.in_flight.fetch_add(1, Ordering::AcqRel);
            held.concurrency = true;
            if before >= max && held.lease.is_none() {
                return Err(self.over(Which::Concurrency, f64::from(max), 0.0, Duration::from_secs(1)));
            }
        }
        if !budget.is_empty() {
            let (day, month) = self.today();
            let mut s = lock(&self.spend);
            roll(&mut s, day, month);
            if let Some(b) = budget.daily
                && s.day_usd + s.reserved >= b
            {
                let left = Duration::from_millis(86_400_000 - self.wall.unix_ms(Instant::now()) % 86_400_000);
                return Err(self.over(Which::DailyBudget, b, (b - s.day_usd).max(0.0), left));
            }
            if let Some(b) = budget.monthly
                && s.month_usd + s.reserved >= b
            {
                let left = Duration::from_secs(86_400);
                return Err(self.over(Which::MonthlyBudget, b, (b - s.month_usd).max(0.0), left));
            }
            s.reserved += cost;
            held.cost = cost;
        }
        let now = self.clock.now();
        for (which, rate, tokens) in
            [(Which::InputTokens, &lim.input, input), (Which::OutputTokens, &lim.output, output)]
        {
            let Some(rate) = rate else { continue };
            if let Err(wait) = rate.take(tokens, now) {
                let (left, _) = rate.remaining(now);
                let mut over = self.over(which, rate.per_minute as f64, left as f64, wait);
                over.retry = tokens <= rate.per_minute;
                return Err(over);
            }
            match which {
                Which::InputTokens => held.input = tokens,
                _ => held.output = tokens,
            }
        }
        // Last: the one check whose quota cannot be given back (`governor` has no refund), so a request another
        // limit refuses does not spend it.
        let limit = f64::from(lim.limits.requests_per_minute.unwrap_or(0));
        match shared {
            Some(crate::shared::Verdict::Admitted) => return Ok(held),
            Some(crate::shared::Verdict::Wait(wait)) => {
                return Err(self.over(Which::Requests, limit, 0.0, wait));
            }
            None => {}
        }
        if let Some(rpm) = &lim.rpm {
            match rpm.check() {
                Ok(_) => {}
                Err(not_until) => {
                    let wait = not_until.wait_time_from(self.clock.now());
                    return Err(self.over(Which::Requests, limit, 0.0, wait));
                }
            }
        }
        Ok(held)
    }
}

impl Held {
    /// An answer has started: from now on, what it was expected to use counts even if its usage never comes.
    pub fn commit(&mut self) {
        self.committed = true;
    }

    /// The usage is known: correct the token estimates and count the spend.
    pub fn settle(&mut self, input: u64, output: u64, cost: f64) {
        let a = &self.account;
        let lim = a.limiters.load();
        let now = a.clock.now();
        let delta = |actual: u64, estimated: u64| {
            i64::try_from(actual).unwrap_or(i64::MAX) - i64::try_from(estimated).unwrap_or(i64::MAX)
        };
        if let Some(r) = &lim.input {
            r.adjust(delta(input, self.input), now);
        }
        if let Some(r) = &lim.output {
            r.adjust(delta(output, self.output), now);
        }
        self.input = 0;
        self.output = 0;
        if !a.budget().is_empty() || cost > 0.0 {
            let (day, month) = a.today();
            let mut s = lock(&a.spend);
            roll(&mut s, day, month);
            s.reserved = (s.reserved - self.cost).max(0.0);
            spent(&mut s, cost);
        }
        self.cost = 0.0;
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let a = &self.account;
        if self.concurrency {
            a.in_flight.fetch_sub(1, Ordering::AcqRel);
        }
        if self.committed {
            // An answer started but no usage came: the estimates stand, the reserved cost is spent.
            if self.cost > 0.0 {
                let (day, month) = a.today();
                let mut s = lock(&a.spend);
                roll(&mut s, day, month);
                s.reserved = (s.reserved - self.cost).max(0.0);
                spent(&mut s, self.cost);
            }
            return;
        }
        // Never started: nothing was used; the estimates go back.
        if self.input > 0 || self.output > 0 {
            let lim = a.limiters.load();
            let now = a.clock.now();
            if let Some(r) = &lim.input {
                r.adjust(-i64::try_from(self.input).unwrap_or(i64::MAX), now);
            }
            if let Some(r) = &lim.output {
                r.adjust(-i64::try_from(self.output).unwrap_or(i64::MAX), now);
            }
        }
        if self.cost > 0.0 {
            let mut s = lock(&a.spend);
            s.reserved = (s.reserved - self.cost).max(0.0);
        }
    }
}

fn roll(s: &mut Spend, day: i64, month: i64) {
    if s.day != day {
        s.day = day;
        s.day_usd = 0.0;
        s.here_day_usd = 0.0;
    }
    if s.month != month {
        s.month = month;
        s.month_usd = 0.0;
        s.here_month_usd = 0.0;
    }
}

/// `cost` spent (rolled to the current day and month already).
fn spent(s: &mut Spend, cost: f64) {
    s.day_usd += cost;
    s.month_usd += cost;
    s.here_day_usd += cost;
    s.here_month_usd += cost;
}

/// (year, month 1-12, day 1-31) of a count of days since 1970-01-01 (Howard Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rpm: Option<u32>, input: Option<u64>, concurrency: Option<u32>) -> Limits {
        Limits {
            requests_per_minute: rpm,
            input_tokens_per_minute: input,
            output_tokens_per_minute: None,
            concurrency,
        }
    }

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }

    #[tokio::test(start_paused = true)]
    async fn requests_per_minute_admit_exactly_the_limit_then_one_per_interval() {
        let a = Arc::new(Account::new("key k".into(), limits(Some(6), None, None), Budget::default()));
        let held: Vec<_> = (0..10).map(|_| a.admit(0, 0, 0.0)).collect();
        assert_eq!(held.iter().filter(|h| h.is_ok()).count(), 6);
        let Err(over) = &held[9] else { panic!() };
        assert_eq!(over.which, Which::Requests);
        assert!(over.retry_after <= Duration::from_secs(10) && over.retry_after > Duration::ZERO);
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(a.admit(0, 0, 0.0).is_ok());
        assert!(a.admit(0, 0, 0.0).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_are_estimated_then_reconciled() {
        let a = Arc::new(Account::new("key k".into(), limits(None, Some(1000), None), Budget::default()));
        let mut h = a.admit(600, 0, 0.0).unwrap();
        assert_eq!(a.admit(600, 0, 0.0).unwrap_err().which, Which::InputTokens);
        // It used only 100: 500 come back.
        h.settle(100, 0, 0.0);
        let h2 = a.admit(600, 0, 0.0).unwrap();
        // A failed request (never settled) gives its estimate back.
        drop(h2);
        let _h3 = a.admit(800, 0, 0.0).unwrap();
        let over = a.admit(200, 0, 0.0).unwrap_err();
        assert!(over.remaining < 200.0);
        // Larger than a minute's worth: never.
        assert!(!a.admit(5000, 0, 0.0).unwrap_err().retry);
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_that_started_keeps_its_estimate_when_no_usage_settles_it() {
        let budget = Budget { daily: Some(1.0), monthly: None };
        let a = Arc::new(Account::new("key k".into(), limits(None, Some(1000), None), budget));
        // Not started (every target failed): all of it comes back.
        drop(a.admit(600, 0, 0.5).unwrap());
        assert_eq!(a.spend().day_usd, 0.0);
        // Started, then the client went away before any usage: the estimate and the reserved cost stand.
        let mut h = a.admit(600, 0, 0.5).unwrap();
        h.commit();
        drop(h);
        assert_eq!(a.spend().day_usd, 0.5);
        assert_eq!(a.admit(600, 0, 0.0).unwrap_err().which, Which::InputTokens);
    }

    #[tokio::test(start_paused = true)]
    async fn usage_above_the_estimate_is_a_debt() {
        let a = Arc::new(Account::new("key k".into(), limits(None, Some(1000), None), Budget::default()));
        let mut h = a.admit(10, 0, 0.0).unwrap();
        h.settle(1500, 0, 0.0);
        let over = a.admit(10, 0, 0.0).unwrap_err();
        // 500 over a minute's worth: back after 30 s.
        assert!(over.retry_after >= Duration::from_secs(30), "{over:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_and_budgets() {
        let budget = Budget { daily: Some(1.0), monthly: None };
        let a = Arc::new(Account::new("key k".into(), limits(None, None, Some(2)), budget));
        let h1 = a.admit(0, 0, 0.1).unwrap();
        let mut h2 = a.admit(0, 0, 0.1).unwrap();
        assert_eq!(a.admit(0, 0, 0.0).unwrap_err().which, Which::Concurrency);
        drop(h1);
        h2.settle(0, 0, 0.95);
        drop(h2);
        let h = a.admit(0, 0, 0.01).unwrap();
        drop(h);
        let mut h = a.admit(0, 0, 0.01).unwrap();
        h.settle(0, 0, 0.1);
        drop(h);
        assert_eq!(a.admit(0, 0, 0.0).unwrap_err().which, Which::DailyBudget);
        assert_eq!(a.in_flight(), 0);
        tokio::time::advance(Duration::from_secs(86_400)).await;
        assert!(a.admit(0, 0, 0.0).is_ok(), "a new day");
    }
}
