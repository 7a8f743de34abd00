//! State shared by a fleet of replicas through Redis (`[state] redis_url`), never on a request's path for longer
//! than `[state] budget`: past it, or with Redis down, every replica falls back to its own local state at once and
//! says so (`degraded`), and reconnects in the background.
//!
//! Shared so far:
//! - per-key (and per-team) requests per minute (a GCRA) and concurrency (leased places, given back in batches), both
//!   in one Lua script per request that reads Redis's own clock (`TIME`), so replicas with skewed clocks agree and
//!   no read-then-write race exists;
//! - the Responses store (a conversation continues on any replica);
//! - open breakers: a replica whose breaker opens writes until when (Redis's clock) into one hash; every replica
//!   reads the hash every second and keeps those targets aside until then; a breaker that closes (its trial
//!   succeeded) removes its entry.

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

/// Opening: `KEYS[1]` the hash of open breakers, `ARGV[1]` the target, `ARGV[2]` its cooldown in ms (kept if a
/// later one is already there).
const OPEN: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local untill = now + tonumber(ARGV[2])
local had = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or 0)
if untill > had then redis.call('HSET', KEYS[1], ARGV[1], untill) end
return now
";

/// Reading: Redis's time in ms and every `target, until` of the hash `KEYS[1]` (expired ones removed).
const OPEN_NOW: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local all = redis.call('HGETALL', KEYS[1])
local out = {now}
for i = 1, #all, 2 do
  local untill = tonumber(all[i + 1])
  if untill > now then
    table.insert(out, all[i]); table.insert(out, untill - now)
  else
    redis.call('HDEL', KEYS[1], all[i])
  end
end
return out
";

/// Admission of one request against one key's (or team's) fleet-wide limits, in one round trip: its concurrency
/// (`KEYS[2]`, a sorted set of places by expiry; `ARGV[3]` the limit or 0, `ARGV[4]` the place's token, `ARGV[5]` its
/// lease in ms) and its requests per minute (`KEYS[1]`, a GCRA; `ARGV[1]` the emission interval and `ARGV[2]` the
/// burst tolerance in µs, or 0). Returns `{1, 0}` admitted (the place taken), `{2, µs}` over the rate, `{3, 0}` no
/// place free. On Redis's clock.
const ADMIT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now_ms = math.floor(now / 1000)
local places = tonumber(ARGV[3])
if places > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now_ms)
  if redis.call('ZCARD', KEYS[2]) >= places then return {3, 0} end
end
local interval = tonumber(ARGV[1])
if interval > 0 then
  local tolerance = tonumber(ARGV[2])
  local tat = tonumber(redis.call('GET', KEYS[1]) or now)
  if tat < now then tat = now end
  if tat - now > tolerance then return {2, tat - now - tolerance} end
  local new = tat + interval
  redis.call('SET', KEYS[1], new, 'PX', math.floor((new - now) / 1000) + 1000)
end
if places > 0 then
  local lease = tonumber(ARGV[5])
  redis.call('ZADD', KEYS[2], now_ms + lease, ARGV[4])
  redis.call('PEXPIRE', KEYS[2], lease)
end
return {1, 0}
";

/// How long a fleet-wide place lasts if its replica never gives it back (the longest a request may run).
const LEASE: Duration = Duration::from_secs(15 * 60);

/// A fleet-wide place among a key's concurrent requests; given back when dropped (by the background task: a drop
/// cannot wait for Redis).
#[derive(Debug)]
pub struct Lease {
    key: String,
    token: u64,
    give_back: tokio::sync::mpsc::UnboundedSender<(String, u64)>,
}

impl Lease {
    /// A lease for a place never taken: dropped without a word to Redis.
    fn disarm(mut self) {
        self.key.clear();
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.key.is_empty() {
            let _ = self.give_back.send((std::mem::take(&mut self.key), self.token));
        }
    }
}

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
    /// Fleet reads done so far (each second's pull of open breakers).
    synced: tokio::sync::watch::Sender<u64>,
    open: redis::Script,
    open_now: redis::Script,
    admit: redis::Script,
    give_back: tokio::sync::mpsc::UnboundedSender<(String, u64)>,
    given_back: std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<(String, u64)>>>,
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
        let (give_back, given_back) = tokio::sync::mpsc::unbounded_channel();
        Some(Arc::new(Shared {
            url,
            budget: cfg.budget,
            prefix: cfg.prefix.clone(),
            conn: ArcSwapOption::empty(),
            degraded: AtomicBool::new(true),
            up: tokio::sync::watch::Sender::new(false),
            synced: tokio::sync::watch::Sender::new(0),
            open: redis::Script::new(OPEN),
            open_now: redis::Script::new(OPEN_NOW),
            admit: redis::Script::new(ADMIT),
            give_back,
            given_back: std::sync::Mutex::new(Some(given_back)),
        }))
    }

    /// Connect, waiting a little longer after each failure, until connected or `stop`. (Once connected, the
    /// connection manager reconnects by itself.)
    pub async fn connect(
        self: Arc<Self>,
        stop: tokio_util::sync::CancellationToken,
        health: Arc<crate::health::Health>,
        mut changes: tokio::sync::broadcast::Receiver<crate::record::HealthChange>,
    ) {
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
        // Every second: read the fleet's open breakers (which also tells whether Redis answers); and at once,
        // tell the fleet of this replica's breaker changes.
        let mut every = tokio::time::interval(PING_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let taken = self.given_back.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(mut given_back) = taken else { return };
        loop {
            tokio::select! {
                () = stop.cancelled() => {
                    // Requests still draining give their places back after this: `give_back_all` at the end.
                    *self.given_back.lock().unwrap_or_else(|p| p.into_inner()) = Some(given_back);
                    return;
                }
                _ = every.tick() => self.pull(&health).await,
                Some(first) = given_back.recv() => {
                    // All that are waiting, in one round trip: requests end far faster than one at a time.
                    let mut batch = vec![first];
                    while batch.len() < 4096 {
                        match given_back.try_recv() {
                            Ok(x) => batch.push(x),
                            Err(_) => break,
                        }
                    }
                    self.unplace(batch).await;
                }
                change = changes.recv() => match change {
                    Ok(c) => self.push(&c).await,
                    // Changes were missed: read the fleet's view now rather than at the next tick.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => self.pull(&health).await,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    }

    fn conn(&self) -> Option<ConnectionManager> {
        self.conn.load_full().map(|c| (*c).clone())
    }

    /// The connection for a client request's call: none while degraded (requests then use local state at once
    /// rather than each waiting its budget; the background read each second finds Redis again).
    fn request_conn(&self) -> Option<ConnectionManager> {
        if self.degraded() {
            return None;
        }
        self.conn()
    }

    fn open_key(&self) -> String {
        format!("{}:open", self.prefix)
    }

    /// Read the fleet's open breakers and keep those targets aside here.
    async fn pull(&self, health: &crate::health::Health) {
        let Some(mut conn) = self.conn() else { return };
        let call = self.open_now.key(self.open_key());
        let answer =
            tokio::time::timeout(self.budget, call.invoke_async::<Vec<redis::Value>>(&mut conn)).await;
        let Ok(Ok(values)) = answer else {
            self.set_degraded(true);
            return;
        };
        self.set_degraded(false);
        let now = tokio::time::Instant::now();
        let mut open = std::collections::HashSet::new();
        for pair in values.get(1..).unwrap_or_default().chunks(2) {
            let (Some(redis::Value::BulkString(target)), Some(redis::Value::Int(left))) =
                (pair.first(), pair.get(1))
            else {
                continue;
            };
            let Ok(target) = std::str::from_utf8(target) else { continue };
            let Some((provider, model)) = target.split_once('/') else { continue };
            let left = Duration::from_millis(u64::try_from(*left).unwrap_or(0));
            // Only targets this replica knows (a client-named one it never saw is not remembered for the fleet).
            let id = crate::health::TargetId::new(provider, model);
            if let Some(t) = health.known(&id) {
                t.open_in_fleet(now + left);
            }
            open.insert(id);
        }
        // A breaker closed elsewhere (its entry gone): its target is no longer kept aside here.
        for t in health.all() {
            if !open.contains(&t.id) {
                t.closed_in_fleet();
            }
        }
        self.synced.send_modify(|n| *n += 1);
    }

    /// Tell the fleet a breaker of this replica opened (until when) or closed.
    async fn push(&self, change: &crate::record::HealthChange) {
        use crate::health::breaker::Transition;
        let Some(mut conn) = self.conn() else { return };
        let target = change.target.as_str().to_owned();
        let done = match change.transition {
            Transition::Opened { cooldown, .. } | Transition::Reopened { cooldown } => {
                let mut call = self.open.key(self.open_key());
                call.arg(target).arg(u64::try_from(cooldown.as_millis()).unwrap_or(u64::MAX));
                tokio::time::timeout(self.budget, call.invoke_async::<i64>(&mut conn))
                    .await
                    .map(|r| r.map(|_| ()))
            }
            Transition::Closed => {
                let mut del = redis::cmd("HDEL");
                del.arg(self.open_key()).arg(target);
                tokio::time::timeout(self.budget, del.query_async::<i64>(&mut conn))
                    .await
                    .map(|r| r.map(|_| ()))
            }
        };
        self.set_degraded(!matches!(done, Ok(Ok(()))));
    }

    /// At shutdown, once every request has ended: give back the places still waiting to be.
    pub async fn give_back_all(&self) {
        let taken = self.given_back.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(mut given_back) = taken else { return };
        let mut batch = Vec::new();
        while let Ok(x) = given_back.try_recv() {
            batch.push(x);
        }
        if !batch.is_empty() {
            self.unplace(batch).await;
        }
    }

    /// Give fleet-wide places back, in one pipeline (a place Redis cannot take back now expires with its lease).
    async fn unplace(&self, mut places: Vec<(String, u64)>) {
        let Some(mut conn) = self.conn() else { return };
        places.sort_unstable();
        let mut pipe = redis::pipe();
        for group in places.chunk_by(|a, b| a.0 == b.0) {
            let Some((key, _)) = group.first() else { continue };
            pipe.zrem(key, group.iter().map(|(_, t)| *t).collect::<Vec<_>>()).ignore();
        }
        let _ = tokio::time::timeout(self.budget, pipe.query_async::<()>(&mut conn)).await;
    }

    fn response_key(&self, id: &str) -> String {
        format!("{}:resp:{id}", self.prefix)
    }

    /// Keep a stored response for the fleet, for `ttl`; `None` when Redis did not take it in time.
    pub async fn put_response(
        &self,
        id: &str,
        owner: &str,
        stored: &crate::store::Stored,
        ttl: Duration,
    ) -> Option<()> {
        let mut conn = self.request_conn()?;
        let key = self.response_key(id);
        let ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .del(&key)
            .ignore()
            .hset_multiple(
                &key,
                &[
                    ("owner", owner.as_bytes()),
                    ("response", &stored.response),
                    ("conversation", &stored.conversation),
                ],
            )
            .ignore()
            .pexpire(&key, ms)
            .ignore();
        let done = tokio::time::timeout(self.budget, pipe.query_async::<()>(&mut conn)).await;
        let ok = matches!(done, Ok(Ok(())));
        self.set_degraded(!ok);
        ok.then_some(())
    }

    /// A stored response and its owner: `Some(None)` when Redis has none, `None` when Redis did not answer.
    pub async fn get_response(&self, id: &str) -> Option<Option<(String, crate::store::Stored)>> {
        let mut conn = self.request_conn()?;
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(self.response_key(id)).arg("owner").arg("response").arg("conversation");
        let got = tokio::time::timeout(self.budget, cmd.query_async::<Vec<Option<Vec<u8>>>>(&mut conn)).await;
        let Ok(Ok(fields)) = got else {
            self.set_degraded(true);
            return None;
        };
        self.set_degraded(false);
        let mut it = fields.into_iter();
        let (Some(Some(owner)), Some(Some(response)), Some(Some(conversation))) =
            (it.next(), it.next(), it.next())
        else {
            return Some(None);
        };
        let owner = String::from_utf8(owner).ok()?;
        Some(Some((owner, crate::store::Stored { response, conversation })))
    }

    /// Forget a stored response; `None` when Redis did not answer.
    pub async fn delete_response(&self, id: &str) -> Option<bool> {
        let mut conn = self.request_conn()?;
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.response_key(id));
        let done = tokio::time::timeout(self.budget, cmd.query_async::<i64>(&mut conn)).await;
        match done {
            Ok(Ok(n)) => Some(n > 0),
            _ => {
                self.set_degraded(true);
                None
            }
        }
    }

    /// Wait until this replica has read the fleet's open breakers `n` more times.
    pub async fn synced(&self, n: u64) {
        let mut rx = self.synced.subscribe();
        let from = *rx.borrow_and_update();
        let _ = rx.wait_for(|k| *k >= from + n).await;
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

    /// A request against `name`'s fleet-wide requests per minute and concurrency, in one round trip: what each
    /// says (the rate as a GCRA, the concurrency as leased places), or `None` when Redis cannot answer in time.
    pub async fn admit(
        &self,
        name: &str,
        per_minute: Option<u32>,
        concurrency: Option<u32>,
        longest: Duration,
    ) -> Option<(Option<Verdict>, Option<Option<Lease>>)> {
        let mut conn = self.request_conn()?;
        let (interval, tolerance) = match per_minute {
            Some(n) => {
                let interval = (60_000_000 / u64::from(n.max(1))).max(1);
                (interval, interval * u64::from(n.max(1) - 1))
            }
            None => (0, 0),
        };
        let places = format!("{}:conc:{name}", self.prefix);
        let token: u64 = rand::random();
        // Made before the call: whatever becomes of it (Redis slower than the budget but still running the script,
        // the request dropped mid-wait), a place it may have taken is given back unless it is kept below.
        let lease = Lease { key: places.clone(), token, give_back: self.give_back.clone() };
        // As long as the longest request may run (a stream over its deadline never outlives its place).
        let lease_ms = u64::try_from(longest.max(LEASE).as_millis()).unwrap_or(u64::MAX);
        let mut call = self.admit.key(format!("{}:rpm:{name}:{}", self.prefix, per_minute.unwrap_or(0)));
        call.key(&places).arg(interval).arg(tolerance).arg(concurrency.unwrap_or(0)).arg(token).arg(lease_ms);
        let got = tokio::time::timeout(self.budget, call.invoke_async::<(u8, u64)>(&mut conn)).await;
        let Ok(Ok((code, wait_us))) = got else {
            self.set_degraded(true);
            return None;
        };
        self.set_degraded(false);
        Some(match code {
            1 if concurrency.is_some() => (per_minute.map(|_| Verdict::Admitted), Some(Some(lease))),
            1 => {
                // No place was taken: nothing to give back.
                lease.disarm();
                (per_minute.map(|_| Verdict::Admitted), None)
            }
            2 => (Some(Verdict::Wait(Duration::from_micros(wait_us))), None),
            _ => (None, Some(None)),
        })
    }
}
