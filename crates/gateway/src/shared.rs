//! State shared by a fleet of replicas through Redis (`[state] redis_url`), never on a request's path for longer
//! than `[state] budget`: past it, or with Redis down, every replica falls back to its own local state at once and
//! says so (`degraded`), and reconnects in the background.
//!
//! Shared so far: per-key (and per-team) requests per minute, as a GCRA in one Lua script that reads Redis's own
//! clock (`TIME`), so replicas with skewed clocks agree and no read-then-write race exists.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use redis::aio::ConnectionManager;

/// `[state]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateConfig {
    /// `redis://…`, `rediss://…` or `redis+unix:///path`; `None`: everything stays local (embedded).
    pub redis_url: Option<String>,
    /// The longest a request waits for Redis before it uses local state.
    pub budget: Duration,
    /// Prefix of every key nines writes (several fleets may share one Redis).
    pub prefix: String,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig { redis_url: None, budget: Duration::from_millis(50), prefix: "nines".to_owned() }
    }
}

/// GCRA over Redis's clock: `KEYS[1]` the limit's key; `ARGV[1]` the emission interval and `ARGV[2]` the burst
/// tolerance, both in microseconds. Returns `{1, 0}` when admitted, `{0, µs to wait}` when not.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
if tat - now > tolerance then
  return {0, tat - now - tolerance}
end
local new = tat + interval
redis.call('SET', KEYS[1], new, 'PX', math.floor((new - now) / 1000) + 1000)
return {1, 0}
";

/// How often Redis is pinged once connected.
const PING_EVERY: Duration = Duration::from_secs(1);

/// The shared state's handle: a connection (when there is one) and whether the fleet view is degraded.
pub struct Shared {
    url: String,
    budget: Duration,
    prefix: String,
    conn: ArcSwapOption<ConnectionManager>,
    degraded: AtomicBool,
    /// The same, for whoever waits for a change (tests, the status page).
    up: tokio::sync::watch::Sender<bool>,
    gcra: redis::Script,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("degraded", &self.degraded()).finish_non_exhaustive()
    }
}

/// What Redis said of a request against a per-minute limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Admitted,
    /// Refused: this long until it would fit.
    Wait(Duration),
}

impl Shared {
    /// A handle for `cfg` (`None` without a Redis URL), not yet connected ([`Shared::connect`], in the
    /// background: a Redis that is down at start delays nothing).
    pub fn new(cfg: &StateConfig) -> Option<Arc<Shared>> {
        let url = cfg.redis_url.clone()?;
        Some(Arc::new(Shared {
            url,
            budget: cfg.budget,
            prefix: cfg.prefix.clone(),
            conn: ArcSwapOption::empty(),
            degraded: AtomicBool::new(true),
            up: tokio::sync::watch::Sender::new(false),
            gcra: redis::Script::new(GCRA),
        }))
    }

    /// Connect, waiting a little longer after each failure, until connected or `stop`. (Once connected, the
    /// connection manager reconnects by itself.)
    pub async fn connect(self: Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        let mut wait = Duration::from_millis(100);
        loop {
            let attempt = tokio::select! {
                () = stop.cancelled() => return,
                r = self.try_connect() => r,
            };
            match attempt {
                Ok(conn) => {
                    self.conn.store(Some(Arc::new(conn)));
                    self.set_degraded(false);
                    break;
                }
                Err(e) => {
                    tracing::warn!(target: "nines::shared", "cannot reach Redis ({e}); state stays local meanwhile");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(wait) => {}
                    }
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
            }
        }
        // A ping every second keeps the degraded flag true to Redis even without traffic that asks it.
        let mut every = tokio::time::interval(PING_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = every.tick() => {}
            }
            let Some(conn) = self.conn.load_full() else { continue };
            let mut conn = (*conn).clone();
            let pong =
                tokio::time::timeout(self.budget, redis::cmd("PING").query_async::<String>(&mut conn)).await;
            self.set_degraded(!matches!(pong, Ok(Ok(_))));
        }
    }

    async fn try_connect(&self) -> Result<ConnectionManager, redis::RedisError> {
        let client = redis::Client::open(self.url.as_str())?;
        let cfg = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.budget.max(Duration::from_millis(200))))
            .set_response_timeout(Some(self.budget))
            .set_number_of_retries(1);
        client.get_connection_manager_with_config(cfg).await
    }

    fn set_degraded(&self, degraded: bool) {
        if self.degraded.swap(degraded, Ordering::AcqRel) != degraded {
            self.up.send_replace(!degraded);
            if degraded {
                tracing::warn!(target: "nines::shared", "Redis unreachable: limits are per replica until it returns");
            } else {
                tracing::info!(target: "nines::shared", "Redis reachable: limits are shared across the fleet");
            }
        }
    }

    /// Wait until Redis answers (or has answered).
    pub async fn reachable(&self) {
        let mut rx = self.up.subscribe();
        let _ = rx.wait_for(|up| *up).await;
    }

    /// Whether the fleet view is degraded (each replica on its own state).
    pub fn degraded(&self) -> bool {
        self.degraded.load(Ordering::Acquire)
    }

    /// A request against `name`'s limit of `per_minute` (burst: a minute's worth), decided by Redis; `None` when
    /// Redis cannot answer within the budget (the caller uses its local state).
    pub async fn per_minute(&self, name: &str, per_minute: u32) -> Option<Verdict> {
        let conn = self.conn.load_full()?;
        let mut conn = (*conn).clone();
        let interval = 60_000_000 / u64::from(per_minute.max(1));
        let tolerance = interval * u64::from(per_minute.max(1) - 1);
        let key = format!("{}:rpm:{name}:{per_minute}", self.prefix);
        let mut call = self.gcra.key(key);
        call.arg(interval).arg(tolerance);
        let answer = tokio::time::timeout(self.budget, call.invoke_async::<(u8, u64)>(&mut conn)).await;
        match answer {
            Ok(Ok((1, _))) => {
                self.set_degraded(false);
                Some(Verdict::Admitted)
            }
            Ok(Ok((_, wait_us))) => {
                self.set_degraded(false);
                Some(Verdict::Wait(Duration::from_micros(wait_us)))
            }
            Ok(Err(e)) => {
                tracing::debug!(target: "nines::shared", "Redis: {e}");
                self.set_degraded(true);
                None
            }
            Err(_) => {
                self.set_degraded(true);
                None
            }
        }
    }
}
