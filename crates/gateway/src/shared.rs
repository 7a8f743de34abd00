//! State shared by a fleet of replicas through Redis (`[state] redis_url`), never on a request's path for longer
//! than `[state] budget`: past it, or with Redis down, every replica falls back to its own local state at once and
//! says so (`degraded`), and reconnects in the background.
//!
//! Shared:
//! - per-key (and per-team) requests per minute (a GCRA) and concurrency (leased places, given back in batches), both
//!   in one Lua script per request that reads Redis's own clock (`TIME`), so replicas with skewed clocks agree and
//!   no read-then-write race exists — the only round trip on a request's path, and only for keys with such limits;
//! - the Responses store (a conversation continues on any replica);
//! - open breakers and their trial: a replica whose breaker opens writes until when (Redis's clock) and that it owns
//!   the trial into one hash; every replica reads the hash every second and keeps those targets aside until the
//!   owner's trial decides (its breaker closing removes the entry, reopening extends it) or, if the owner vanished,
//!   twice the cooldown — so a half-open target gets one trial from the fleet, not one per replica;
//! - cooldowns a provider asked for (a 429's `Retry-After` or its rate-limit headers), the same way;
//! - budgets' spend: each replica adds what it spent to the fleet's day and month totals every second and reads them
//!   back (reservations of requests in flight stay per replica);
//! - the retry budget: deposits and withdrawals per target per second, summed over its window; each replica may
//!   take its share (by the replicas seen in the last seconds) of what the fleet has left, on top of its own;
//! - history and incidents: what a replica writes to its status store goes to a Redis stream too, and every replica
//!   writes the others' rows into its own store (each under its writer, so they add up and a row written twice
//!   changes nothing): every replica's `/status` shows the fleet's availability and incidents.
//!
//! All of this but the admission script runs in one background task, once a second and when something changes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use redis::aio::ConnectionManager;

/// `[state]`.
#[derive(Clone, PartialEq, Eq)]
pub struct StateConfig {
    /// One Redis (`redis://…`, `rediss://…`, `redis+unix:///path`), a Cluster (`redis+cluster://h1:p1,h2:p2`) or a
    /// master behind Sentinel (`redis+sentinel://s1:p1,s2:p2/MASTER`); `None`: everything stays local (embedded).
    pub redis_url: Option<String>,
    /// A PEM file of the certificate authorities a `rediss` server's certificate is checked against (instead of
    /// the system's).
    pub tls_ca: Option<std::path::PathBuf>,
    /// The longest a request waits for Redis before it uses local state.
    pub budget: Duration,
    /// Prefix of every key nines writes (several fleets may share one Redis).
    pub prefix: String,
}

impl std::fmt::Debug for StateConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password.
        f.debug_struct("StateConfig")
            .field("redis_url", &self.redis_url.as_ref().map(|_| "…"))
            .field("tls_ca", &self.tls_ca)
            .field("budget", &self.budget)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            redis_url: None,
            tls_ca: None,
            budget: Duration::from_millis(50),
            prefix: "nines".to_owned(),
        }
    }
}

/// Where the fleet's Redis is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Topology {
    /// One server's URL.
    One(String),
    /// A Redis Cluster: its seed nodes' URLs. Every key nines writes carries the hash tag `{prefix}`, so they all
    /// live in one slot (the scripts touch several keys at once); the cluster gives failover, not sharding.
    Cluster(Vec<String>),
    /// A master found through Sentinel: the sentinels' URLs, the master's name, whether to reach it over TLS, and
    /// its credentials. Asked again when the master stops answering.
    Sentinel {
        sentinels: Vec<String>,
        master: String,
        tls: bool,
        user: Option<String>,
        password: Option<String>,
    },
}

impl Topology {
    /// `[state] redis_url`, read; the error says what is wrong (never echoing a password).
    pub fn parse(url: &str) -> Result<Topology, String> {
        let many = |rest: &str, tls: bool| -> Result<(Option<String>, Vec<String>, String), String> {
            let (hosts, path) = rest.split_once('/').unwrap_or((rest, ""));
            let (auth, hosts) = match hosts.rsplit_once('@') {
                Some((a, h)) => (Some(a.to_owned()), h),
                None => (None, hosts),
            };
            let scheme = if tls { "rediss" } else { "redis" };
            let nodes: Vec<String> = hosts
                .split(',')
                .filter(|h| !h.is_empty())
                .map(|h| match &auth {
                    Some(a) => format!("{scheme}://{a}@{h}"),
                    None => format!("{scheme}://{h}"),
                })
                .collect();
            if nodes.is_empty() {
                return Err("names no host".to_owned());
            }
            Ok((auth, nodes, path.trim_matches('/').to_owned()))
        };
        let cluster = [("redis+cluster://", false), ("rediss+cluster://", true)];
        if let Some((rest, tls)) = cluster.iter().find_map(|(p, tls)| url.strip_prefix(p).map(|r| (r, *tls)))
        {
            let (_, nodes, _) = many(rest, tls)?;
            return Ok(Topology::Cluster(nodes));
        }
        let sentinel = [("redis+sentinel://", false), ("rediss+sentinel://", true)];
        if let Some((rest, tls)) = sentinel.iter().find_map(|(p, tls)| url.strip_prefix(p).map(|r| (r, *tls)))
        {
            let (auth, nodes, master) = many(rest, false)?;
            if master.is_empty() {
                return Err("names no master (redis+sentinel://host:port,…/MASTER)".to_owned());
            }
            // The credentials are the master's; the sentinels are asked without them.
            let sentinels = nodes
                .iter()
                .map(|n| n.rsplit_once('@').map_or(n.clone(), |(_, h)| format!("redis://{h}")))
                .collect();
            let (user, password) = match auth.as_deref().map(|a| a.split_once(':').unwrap_or(("", a))) {
                Some((u, p)) => {
                    ((!u.is_empty()).then(|| u.to_owned()), (!p.is_empty()).then(|| p.to_owned()))
                }
                None => (None, None),
            };
            return Ok(Topology::Sentinel { sentinels, master, tls, user, password });
        }
        if ["redis://", "rediss://", "redis+unix://", "unix://"].iter().any(|p| url.starts_with(p)) {
            return Ok(Topology::One(url.to_owned()));
        }
        Err("must start with redis://, rediss://, redis+unix://, unix://, redis+cluster://, rediss+cluster://, \
             redis+sentinel:// or rediss+sentinel://"
            .to_owned())
    }
}

/// A connection to the fleet's Redis, whichever its topology.
#[derive(Clone)]
enum Conn {
    One(ConnectionManager),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl redis::aio::ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Conn::One(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Conn::One(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::One(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// `[state] tls_ca` could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read [state] tls_ca {path}: {source}")]
pub struct TlsCaError {
    path: String,
    source: std::io::Error,
}

/// Keeping a target aside: `KEYS[1]` the hash (open breakers, or cooldowns), `ARGV[1]` the target, `ARGV[2]` for
/// how long in ms, `ARGV[3]` this replica. Stored as `until|owner`: a later `until` wins, and a live entry keeps its
/// owner (the replica whose trial decides).
const OPEN: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local untill = now + tonumber(ARGV[2])
local owner = ARGV[3]
local had = redis.call('HGET', KEYS[1], ARGV[1])
if had then
  local sep = string.find(had, '|', 1, true)
  if sep then
    local hu = tonumber(string.sub(had, 1, sep - 1)) or 0
    if hu > now then
      if hu > untill then untill = hu end
      owner = string.sub(had, sep + 1)
    end
  end
end
redis.call('HSET', KEYS[1], ARGV[1], untill .. '|' .. owner)
return now
";

/// The fleet's view, once a second: this replica (`ARGV[1]`) seen now, how many replicas were seen in the last
/// `ARGV[2]` ms (`KEYS[1]`, a sorted set), and for each hash `KEYS[2..]` every live `{target, ms left, owner}`
/// (expired ones removed). Returns `{replicas, {…}, {…}}`.
const OPEN_NOW: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 10)
local out = {redis.call('ZCARD', KEYS[1])}
for k = 2, #KEYS do
  local all = redis.call('HGETALL', KEYS[k])
  local items = {}
  for i = 1, #all, 2 do
    local v = all[i + 1]
    local sep = string.find(v, '|', 1, true)
    local untill = tonumber(sep and string.sub(v, 1, sep - 1) or v) or 0
    if untill > now then
      table.insert(items, all[i]); table.insert(items, untill - now)
      table.insert(items, sep and string.sub(v, sep + 1) or '')
    else
      redis.call('HDEL', KEYS[k], all[i])
    end
  end
  table.insert(out, items)
end
return out
";

/// Budgets' spend: for each account `i`, `KEYS[2i-1]` its day's hash and `KEYS[2i]` its month's, one field per
/// replica holding what that replica spent (written whole each time: a write repeated after a timeout counts once,
/// and a Redis that lost its data is filled again by the next writes); `ARGV[1]`, `ARGV[2]` their lifetimes in ms,
/// `ARGV[3]` this replica, `ARGV[2i+2]`, `ARGV[2i+3]` what it spent this day and this month. Returns the fleet's
/// totals, as strings, `{day, month}` per account.
const SPEND: &str = r"
local out = {}
for i = 1, #KEYS / 2 do
  for j = 1, 2 do
    local key = KEYS[2 * i - 2 + j]
    redis.call('HSET', key, ARGV[3], ARGV[2 * i + 1 + j])
    redis.call('PEXPIRE', key, ARGV[j])
    local total = 0
    for _, v in ipairs(redis.call('HVALS', key)) do total = total + tonumber(v) end
    table.insert(out, tostring(total))
  end
end
return out
";

/// The retry budget: for each target `i`, `KEYS[i]` a hash of per-second counts (`d:SECOND`, `w:SECOND`);
/// `ARGV[1]` the window in seconds; `ARGV[2i]`, `ARGV[2i+1]` this replica's deposits and withdrawals since it last
/// said. Returns `{deposits, withdrawals}` over the window per target, the fleet's.
const RETRIES: &str = r"
local now = tonumber(redis.call('TIME')[1])
local window = tonumber(ARGV[1])
local out = {}
for i = 1, #KEYS do
  local d, w = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  if d > 0 then redis.call('HINCRBY', KEYS[i], 'd:' .. now, d) end
  if w > 0 then redis.call('HINCRBY', KEYS[i], 'w:' .. now, w) end
  local all = redis.call('HGETALL', KEYS[i])
  local sd, sw = 0, 0
  for j = 1, #all, 2 do
    local sec = tonumber(string.sub(all[j], 3))
    if sec <= now - window then
      redis.call('HDEL', KEYS[i], all[j])
    elseif string.sub(all[j], 1, 1) == 'd' then
      sd = sd + tonumber(all[j + 1])
    else
      sw = sw + tonumber(all[j + 1])
    end
  end
  if #all > 0 then redis.call('EXPIRE', KEYS[i], window * 2) end
  table.insert(out, sd); table.insert(out, sw)
end
return out
";

/// The longest the background task waits for one answer (never a request's wait).
const BACKGROUND: Duration = Duration::from_secs(2);

/// Pulls failed in a row after which the sentinels are asked for the master again.
const RESOLVE_AFTER: u32 = 3;

/// How long a replica counts as part of the fleet after it was last seen.
const SEEN_WITHIN: Duration = Duration::from_secs(5);

/// The history stream keeps about this many entries (a replica that joins reads the fleet's history from them),
/// each of at most [`ENTRY_ROWS`] rows: a few tens of MB of Redis at most.
const STREAM_LEN: usize = 5_000;

/// Rows in one entry of the history stream, at most.
const ENTRY_ROWS: usize = 100;

/// Rows waiting to go to the fleet, at most (the oldest minutes go first when Redis stays away that long).
const OUTBOX_ROWS: usize = 20_000;

/// Admission of one request against its key's and its team's fleet-wide limits, all of them in one round trip and
/// all or nothing: for account `i`, its requests per minute (`KEYS[2i-1]`, a GCRA; `ARGV[4i-2]` the emission interval
/// and `ARGV[4i-1]` the burst tolerance in µs, or 0) and its concurrency (`KEYS[2i]`, a sorted set of places by
/// expiry; `ARGV[4i]` the limit or 0, `ARGV[4i+1]` the place's token); `ARGV[1]` a place's lease in ms. Returns
/// `{1, 0, 0}` admitted (every place taken, every rate charged), `{2, i, µs}` account `i` over its rate, `{3, i, 0}`
/// no place free for account `i` — and then nothing was changed. On Redis's clock.
const ADMIT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now_ms = math.floor(now / 1000)
local lease = tonumber(ARGV[1])
local tats = {}
for i = 1, #KEYS / 2 do
  local interval, tolerance, places = tonumber(ARGV[4 * i - 2]), tonumber(ARGV[4 * i - 1]), tonumber(ARGV[4 * i])
  if places > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[2 * i], '-inf', now_ms)
    if redis.call('ZCARD', KEYS[2 * i]) >= places then return {3, i, 0} end
  end
  if interval > 0 then
    local tat = tonumber(redis.call('GET', KEYS[2 * i - 1]) or now)
    if tat < now then tat = now end
    if tat - now > tolerance then return {2, i, tat - now - tolerance} end
    tats[i] = tat + interval
  end
end
for i = 1, #KEYS / 2 do
  if tats[i] then
    redis.call('SET', KEYS[2 * i - 1], tats[i], 'PX', math.floor((tats[i] - now) / 1000) + 1000)
  end
  if tonumber(ARGV[4 * i]) > 0 then
    redis.call('ZADD', KEYS[2 * i], now_ms + lease, ARGV[4 * i + 1])
    redis.call('PEXPIRE', KEYS[2 * i], lease)
  end
end
return {1, 0, 0}
";

/// One account's fleet-wide limits, as a request asks them of Redis.
#[derive(Clone, Copy, Debug)]
pub struct Ask<'a> {
    /// The account's stable id (`key NAME`, `team NAME`).
    pub name: &'a str,
    pub per_minute: Option<u32>,
    pub concurrency: Option<u32>,
}

/// What the fleet said of one account: its requests per minute (`None`: not limited) and its place (`None`: no
/// concurrency limit; `Some(None)`: none free).
pub type Said = (Option<Verdict>, Option<Option<Lease>>);

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

/// How often the fleet's view is read once connected.
const PING_EVERY: Duration = Duration::from_secs(1);

/// What the background task needs of this replica.
pub struct Local {
    pub health: Arc<crate::health::Health>,
    pub changes: tokio::sync::broadcast::Receiver<crate::record::HealthChange>,
    pub stats: Arc<crate::record::stats::Stats>,
    pub admission: Arc<crate::admit::Admission>,
}

/// History and incidents not yet in the fleet's stream: the latest copy of each row and incident.
#[derive(Default)]
struct Outbox {
    writer: String,
    rows: std::collections::BTreeMap<(u64, String), crate::store::status::Row>,
    incidents: std::collections::BTreeMap<String, crate::record::incidents::Incident>,
}

/// One entry of the history stream.
#[derive(serde::Serialize, serde::Deserialize)]
struct Batch {
    rows: Vec<crate::store::status::Row>,
    incidents: Vec<crate::record::incidents::Incident>,
}

/// The fleet as a status report shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FleetStatus {
    /// `shared` (Redis answers) or `degraded` (each replica on its own state).
    pub state: String,
    /// Replicas seen in the last seconds (when last read).
    pub replicas: u32,
    pub detail: String,
}

/// The shared state's handle: a connection (when there is one) and whether the fleet view is degraded.
pub struct Shared {
    topology: Topology,
    /// `[state] tls_ca`'s certificates (PEM).
    tls_ca: Option<Vec<u8>>,
    budget: Duration,
    prefix: String,
    /// Requests' connection: every answer within the budget.
    conn: ArcSwapOption<Conn>,
    /// The background task's: answers may take up to [`BACKGROUND`] (large history entries), never on a request's
    /// path, and never what decides whether the fleet view is degraded.
    bg: ArcSwapOption<Conn>,
    degraded: AtomicBool,
    /// The same, for whoever waits for a change (tests, the status page).
    up: tokio::sync::watch::Sender<bool>,
    /// Fleet reads done so far (each second's pull of open breakers).
    synced: tokio::sync::watch::Sender<u64>,
    open: redis::Script,
    open_now: redis::Script,
    admit: redis::Script,
    spend: redis::Script,
    retries: redis::Script,
    give_back: tokio::sync::mpsc::UnboundedSender<(String, u64)>,
    given_back: std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<(String, u64)>>>,
    /// This replica's id in the fleet (breaker trials' owner, the registry of replicas).
    replica: String,
    /// Replicas seen in the last seconds.
    replicas: std::sync::atomic::AtomicU32,
    /// Cooldowns to tell the fleet (target, ms): bounded, a full queue drops one (the next 429 says it again).
    cooling: tokio::sync::mpsc::Sender<(String, u64)>,
    cooled: std::sync::Mutex<Option<tokio::sync::mpsc::Receiver<(String, u64)>>>,
    outbox: std::sync::Mutex<Outbox>,
    /// One sender of the outbox at a time, and the flush's call to send it now.
    sending: tokio::sync::Mutex<()>,
    send_now: tokio::sync::Notify,
    /// Places whose give-back Redis did not take yet (retried each second; their lease bounds them anyway).
    unplaced: std::sync::Mutex<Vec<(String, u64)>>,
    /// Breaker changes Redis did not take yet.
    unpushed: std::sync::Mutex<Vec<crate::record::HealthChange>>,
    /// The last history entry read from the fleet's stream.
    read_to: std::sync::Mutex<String>,
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
    pub fn new(cfg: &StateConfig) -> Result<Option<Arc<Shared>>, TlsCaError> {
        let Some(url) = cfg.redis_url.as_deref() else { return Ok(None) };
        // Checked by the configuration's validation.
        let Ok(topology) = Topology::parse(url) else { return Ok(None) };
        let tls_ca = match &cfg.tls_ca {
            Some(p) => Some(
                std::fs::read(p).map_err(|source| TlsCaError { path: p.display().to_string(), source })?,
            ),
            None => None,
        };
        let (give_back, given_back) = tokio::sync::mpsc::unbounded_channel();
        let (cooling, cooled) = tokio::sync::mpsc::channel(1024);
        Ok(Some(Arc::new(Shared {
            topology,
            tls_ca,
            budget: cfg.budget,
            // A hash tag: every key in one Cluster slot (the scripts touch several at once).
            prefix: format!("{{{}}}", cfg.prefix),
            conn: ArcSwapOption::empty(),
            bg: ArcSwapOption::empty(),
            degraded: AtomicBool::new(true),
            up: tokio::sync::watch::Sender::new(false),
            synced: tokio::sync::watch::Sender::new(0),
            open: redis::Script::new(OPEN),
            open_now: redis::Script::new(OPEN_NOW),
            admit: redis::Script::new(ADMIT),
            spend: redis::Script::new(SPEND),
            retries: redis::Script::new(RETRIES),
            give_back,
            given_back: std::sync::Mutex::new(Some(given_back)),
            replica: format!("{:016x}", rand::random::<u64>()),
            replicas: std::sync::atomic::AtomicU32::new(0),
            cooling,
            cooled: std::sync::Mutex::new(Some(cooled)),
            outbox: std::sync::Mutex::new(Outbox::default()),
            sending: tokio::sync::Mutex::new(()),
            send_now: tokio::sync::Notify::new(),
            unplaced: std::sync::Mutex::new(Vec::new()),
            unpushed: std::sync::Mutex::new(Vec::new()),
            read_to: std::sync::Mutex::new("0".to_owned()),
        })))
    }

    /// Connect, waiting a little longer after each failure, until connected or `stop`. (Once connected, the
    /// connection manager reconnects by itself.)
    pub async fn connect(self: Arc<Self>, stop: tokio_util::sync::CancellationToken, local: Local) {
        let Local { health, mut changes, stats, admission } = local;
        let taken = self.given_back.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(mut given_back) = taken else { return };
        let taken = self.cooled.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(mut cooled) = taken else { return };
        let mut wait = Duration::from_millis(100);
        'run: loop {
            let attempt = tokio::select! {
                () = stop.cancelled() => break,
                r = async { Ok::<_, redis::RedisError>((self.open(self.budget).await?, self.open(BACKGROUND).await?)) } => r,
            };
            match attempt {
                Ok((conn, bg)) => {
                    self.conn.store(Some(Arc::new(conn)));
                    self.bg.store(Some(Arc::new(bg)));
                    self.set_degraded(false);
                    wait = Duration::from_millis(100);
                }
                Err(e) => {
                    tracing::warn!(target: "nines::shared", "cannot reach Redis ({e}); state stays local meanwhile");
                    self.set_degraded(true);
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(wait) => {}
                    }
                    wait = (wait * 2).min(Duration::from_secs(5));
                    continue;
                }
            }
            // Every second: read the fleet's view (which also tells whether Redis answers) and tell it this
            // replica's; at once: breaker changes, cooldowns, places given back, history to send.
            let mut every = tokio::time::interval(PING_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut missed = 0u32;
            loop {
                tokio::select! {
                    () = stop.cancelled() => break 'run,
                    _ = every.tick() => {
                        if self.pull(&health).await {
                            missed = 0;
                            let waiting =
                                std::mem::take(&mut *self.unplaced.lock().unwrap_or_else(|p| p.into_inner()));
                            if !waiting.is_empty() {
                                self.unplace(waiting).await;
                            }
                            let changes =
                                std::mem::take(&mut *self.unpushed.lock().unwrap_or_else(|p| p.into_inner()));
                            for c in &changes {
                                self.push(c).await;
                            }
                            self.history(&stats).await;
                            self.spend(&admission).await;
                            self.retries(&health).await;
                            self.synced.send_modify(|n| *n += 1);
                        } else {
                            for t in health.all() {
                                t.fleet_retries(None);
                            }
                            missed += 1;
                            // Behind Sentinel, the master may have moved: ask the sentinels again.
                            if missed >= RESOLVE_AFTER && matches!(self.topology, Topology::Sentinel { .. }) {
                                break;
                            }
                        }
                    }
                    Some((target, ms)) = cooled.recv() => self.cooled(&target, ms).await,
                    () = self.send_now.notified() => self.send_outbox().await,
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
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            self.pull(&health).await;
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => break 'run,
                    },
                }
            }
            tracing::warn!(target: "nines::shared", "Redis's master does not answer: asking the sentinels again");
        }
        // Requests still draining give their places back after this: `give_back_all` at the end.
        *self.given_back.lock().unwrap_or_else(|p| p.into_inner()) = Some(given_back);
    }

    /// The background task's connection.
    fn bg_conn(&self) -> Option<Conn> {
        self.bg.load_full().map(|c| (*c).clone())
    }

    /// The connection for a client request's call: none while degraded (requests then use local state at once
    /// rather than each waiting its budget; the background read each second finds Redis again).
    fn request_conn(&self) -> Option<Conn> {
        if self.degraded() {
            return None;
        }
        self.conn.load_full().map(|c| (*c).clone())
    }

    fn open_key(&self) -> String {
        format!("{}:open", self.prefix)
    }

    fn cool_key(&self) -> String {
        format!("{}:cool", self.prefix)
    }

    /// Read the fleet's open breakers and cooldowns and keep those targets aside here; count the replicas. Whether
    /// Redis answered.
    async fn pull(&self, health: &crate::health::Health) -> bool {
        let Some(mut conn) = self.bg_conn() else { return false };
        let mut call = self.open_now.key(format!("{}:replicas", self.prefix));
        call.key(self.open_key()).key(self.cool_key());
        call.arg(&self.replica).arg(u64::try_from(SEEN_WITHIN.as_millis()).unwrap_or(5000));
        let answer =
            tokio::time::timeout(self.budget, call.invoke_async::<Vec<redis::Value>>(&mut conn)).await;
        let Ok(Ok(values)) = answer else {
            self.set_degraded(true);
            return false;
        };
        self.set_degraded(false);
        let now = tokio::time::Instant::now();
        let mut it = values.into_iter();
        if let Some(redis::Value::Int(n)) = it.next() {
            self.replicas.store(u32::try_from(n).unwrap_or(u32::MAX), Ordering::Relaxed);
        }
        let entries = |v: Option<redis::Value>| -> Vec<(crate::health::TargetId, Duration, String)> {
            let Some(redis::Value::Array(items)) = v else { return Vec::new() };
            items
                .chunks(3)
                .filter_map(|c| {
                    let (Some(redis::Value::BulkString(target)), Some(redis::Value::Int(left))) =
                        (c.first(), c.get(1))
                    else {
                        return None;
                    };
                    let owner = match c.get(2) {
                        Some(redis::Value::BulkString(o)) => String::from_utf8_lossy(o).into_owned(),
                        _ => String::new(),
                    };
                    let (provider, model) = std::str::from_utf8(target).ok()?.split_once('/')?;
                    let left = Duration::from_millis(u64::try_from(*left).unwrap_or(0));
                    Some((crate::health::TargetId::new(provider, model), left, owner))
                })
                .collect()
        };
        let mut open = std::collections::HashSet::new();
        for (id, left, owner) in entries(it.next()) {
            // Only targets this replica knows (a client-named one it never saw is not remembered for the fleet);
            // this replica's own breaker decides its own trial.
            if owner != self.replica
                && let Some(t) = health.known(&id)
            {
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
        for (id, left, _) in entries(it.next()) {
            if let Some(t) = health.known(&id) {
                t.cooling_in_fleet(now + left);
            }
        }
        true
    }

    /// A provider asked this replica to wait `left` before asking `target` again: the fleet waits too (sent by the
    /// background task; a full queue drops it).
    pub fn cooling(&self, target: &crate::health::TargetId, left: Duration) {
        let ms = u64::try_from(left.as_millis()).unwrap_or(u64::MAX);
        let _ = self.cooling.try_send((target.as_str().to_owned(), ms));
    }

    async fn cooled(&self, target: &str, ms: u64) {
        let Some(mut conn) = self.bg_conn() else { return };
        let mut call = self.open.key(self.cool_key());
        call.arg(target).arg(ms).arg(&self.replica);
        let _ = tokio::time::timeout(BACKGROUND, call.invoke_async::<i64>(&mut conn)).await;
    }

    /// Queue history and incidents this replica just wrote to its store for the fleet, and send what waits.
    pub async fn publish(
        &self,
        writer: &str,
        rows: Vec<crate::store::status::Row>,
        incidents: Vec<crate::record::incidents::Incident>,
    ) {
        {
            let mut o = self.outbox.lock().unwrap_or_else(|p| p.into_inner());
            writer.clone_into(&mut o.writer);
            for r in rows {
                o.rows.insert((r.minute, r.series.clone()), r);
            }
            for i in incidents {
                o.incidents.insert(i.id.clone(), i);
            }
            while o.rows.len() > OUTBOX_ROWS {
                o.rows.pop_first();
            }
        }
        // Sent by the background task (a status page's request never waits on Redis for it).
        self.send_now.notify_one();
    }

    fn stream_key(&self) -> String {
        format!("{}:history", self.prefix)
    }

    /// Send the waiting history in one entry of the stream; kept for the next try if Redis does not take it.
    async fn send_outbox(&self) {
        // One sender at a time: an older copy put back must never land after a newer one.
        let _one = self.sending.lock().await;
        for _ in 0..OUTBOX_ROWS / ENTRY_ROWS {
            if !self.send_entry().await {
                return;
            }
        }
    }

    /// Send at most [`ENTRY_ROWS`] rows and the incidents as one entry; whether more wait and this one went.
    async fn send_entry(&self) -> bool {
        let Some(mut conn) = self.bg_conn() else { return false };
        let (writer, rows, incidents) = {
            let mut o = self.outbox.lock().unwrap_or_else(|p| p.into_inner());
            if o.rows.is_empty() && o.incidents.is_empty() {
                return false;
            }
            // The oldest rows first.
            let rest = match o.rows.keys().nth(ENTRY_ROWS).cloned() {
                Some(k) => o.rows.split_off(&k),
                None => std::collections::BTreeMap::new(),
            };
            let rows = std::mem::replace(&mut o.rows, rest);
            (o.writer.clone(), rows, std::mem::take(&mut o.incidents))
        };
        let batch = Batch {
            rows: rows.values().cloned().collect(),
            incidents: incidents.values().cloned().collect(),
        };
        let Ok(data) = serde_json::to_vec(&batch) else { return false };
        let mut cmd = redis::cmd("XADD");
        cmd.arg(self.stream_key()).arg("MAXLEN").arg("~").arg(STREAM_LEN).arg("*").arg("w").arg(&writer);
        cmd.arg("d").arg(data);
        let done = tokio::time::timeout(BACKGROUND, cmd.query_async::<redis::Value>(&mut conn)).await;
        let ok = matches!(done, Ok(Ok(_)));
        if !ok {
            // Back, unless a newer copy came meanwhile.
            let mut o = self.outbox.lock().unwrap_or_else(|p| p.into_inner());
            for (k, r) in rows {
                o.rows.entry(k).or_insert(r);
            }
            for (k, i) in incidents {
                o.incidents.entry(k).or_insert(i);
            }
            return false;
        }
        let o = self.outbox.lock().unwrap_or_else(|p| p.into_inner());
        !o.rows.is_empty() || !o.incidents.is_empty()
    }

    /// Send what waits, and write the other replicas' new history into this replica's store.
    async fn history(&self, stats: &crate::record::stats::Stats) {
        self.send_outbox().await;
        let mine = stats.store.writer().to_owned();
        // A replica that joins catches up a few thousand entries a second.
        for _ in 0..10 {
            let Some(mut conn) = self.bg_conn() else { return };
            let from = self.read_to.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let mut cmd = redis::cmd("XREAD");
            cmd.arg("COUNT").arg(200).arg("STREAMS").arg(self.stream_key()).arg(&from);
            let got = tokio::time::timeout(BACKGROUND, cmd.query_async::<redis::Value>(&mut conn)).await;
            let Ok(Ok(value)) = got else { return };
            let entries = stream_entries(value);
            let Some((last, _, _)) = entries.last() else { return };
            let last = last.clone();
            let full = entries.len() == 200;
            let others: Vec<(String, Batch)> = entries
                .into_iter()
                .filter(|(_, w, _)| *w != mine)
                .filter_map(|(_, w, d)| serde_json::from_slice::<Batch>(&d).ok().map(|b| (w, b)))
                .collect();
            if !others.is_empty() {
                let store = stats.store.clone();
                let written = tokio::task::spawn_blocking(move || {
                    others.iter().try_for_each(|(w, b)| store.write_rows(w, &b.rows, &b.incidents, None))
                })
                .await;
                if !matches!(written, Ok(Ok(()))) {
                    // Read again at the next tick.
                    return;
                }
            }
            *self.read_to.lock().unwrap_or_else(|p| p.into_inner()) = last;
            if !full {
                return;
            }
        }
    }

    /// Tell the fleet what this replica spent on every account with a budget, and read the fleet's totals back.
    async fn spend(&self, admission: &crate::admit::Admission) {
        let Some(mut conn) = self.bg_conn() else { return };
        let pushes: Vec<(Arc<crate::admit::limits::Account>, crate::admit::limits::SpendPush)> =
            admission.accounts().into_iter().filter_map(|a| a.spent_here().map(|p| (a, p))).collect();
        if pushes.is_empty() {
            return;
        }
        let mut call = self.spend.prepare_invoke();
        for (a, p) in &pushes {
            call.key(format!("{}:spend:{}:d{}", self.prefix, a.whose, p.day));
            call.key(format!("{}:spend:{}:m{}", self.prefix, a.whose, p.month));
        }
        call.arg(2 * 86_400_000u64).arg(32 * 86_400_000u64).arg(&self.replica);
        for (_, p) in &pushes {
            call.arg(p.day_usd).arg(p.month_usd);
        }
        let got = tokio::time::timeout(BACKGROUND, call.invoke_async::<Vec<String>>(&mut conn)).await;
        // Not taken: the next second writes this replica's totals again, whole.
        let Ok(Ok(totals)) = got else { return };
        for ((a, p), pair) in pushes.iter().zip(totals.chunks(2)) {
            let parse = |i: usize| pair.get(i).and_then(|t| t.parse::<f64>().ok());
            if let (Some(day), Some(month)) = (parse(0), parse(1)) {
                a.fleet_spend(p, day, month);
            }
        }
    }

    /// Tell the fleet this replica's requests and retries per target, and take this replica's share of the retries
    /// the fleet has left.
    async fn retries(&self, health: &crate::health::Health) {
        let targets = health.all();
        let Some(mut conn) = self.bg_conn() else {
            for t in &targets {
                t.fleet_retries(None);
            }
            return;
        };
        let cfg = health.retry_budget();
        let window = cfg.ttl.as_secs().max(1);
        let counts: Vec<(u64, u64)> = targets.iter().map(|t| t.take_retry_counts()).collect();
        let mut call = self.retries.prepare_invoke();
        for t in &targets {
            call.key(format!("{}:retry:{}", self.prefix, t.id.as_str()));
        }
        call.arg(window);
        for (d, w) in &counts {
            call.arg(*d).arg(*w);
        }
        let got = tokio::time::timeout(BACKGROUND, call.invoke_async::<Vec<i64>>(&mut conn)).await;
        let Ok(Ok(sums)) = got else {
            // The counts are told next time; meanwhile each replica's own budget decides.
            for (t, (d, w)) in targets.iter().zip(counts) {
                t.put_back_retry_counts(d, w);
                t.fleet_retries(None);
            }
            return;
        };
        let replicas = i64::from(self.replicas.load(Ordering::Relaxed).max(1));
        for (t, pair) in targets.iter().zip(sums.chunks(2)) {
            let (Some(d), Some(w)) = (pair.first(), pair.get(1)) else { continue };
            // The fleet's budget over the window: a floor per second, plus a share of the requests sent.
            let allowed = i64::from(cfg.min_per_second) * i64::try_from(window).unwrap_or(1)
                + (f64::from(cfg.ratio) * *d as f64) as i64;
            t.fleet_retries(Some((allowed - w).max(0) / replicas));
        }
    }

    /// The fleet as the status page shows it (`None` without Redis).
    pub fn status(&self) -> FleetStatus {
        let replicas = self.replicas.load(Ordering::Relaxed);
        if self.degraded() {
            FleetStatus {
                state: "degraded".to_owned(),
                replicas,
                detail: "Redis does not answer: each replica decides on its own state (limits per replica, \
                         breakers and incidents not shared) until it returns"
                    .to_owned(),
            }
        } else {
            FleetStatus {
                state: "shared".to_owned(),
                replicas,
                detail: format!(
                    "{replicas} replica(s) share breakers, limits, budgets and history through Redis"
                ),
            }
        }
    }

    /// Tell the fleet a breaker of this replica opened (until when) or closed.
    async fn push(&self, change: &crate::record::HealthChange) {
        use crate::health::breaker::Transition;
        let Some(mut conn) = self.bg_conn() else { return };
        let target = change.target.as_str().to_owned();
        let done = match change.transition {
            Transition::Opened { cooldown, .. } | Transition::Reopened { cooldown } => {
                // Aside on the others until this replica's trial decides, or twice the cooldown if it vanished.
                let mut call = self.open.key(self.open_key());
                let aside = u64::try_from(cooldown.as_millis()).unwrap_or(u64::MAX / 2).saturating_mul(2);
                call.arg(target).arg(aside).arg(&self.replica);
                tokio::time::timeout(BACKGROUND, call.invoke_async::<i64>(&mut conn))
                    .await
                    .map(|r| r.map(|_| ()))
            }
            Transition::Closed => {
                let mut del = redis::cmd("HDEL");
                del.arg(self.open_key()).arg(target);
                tokio::time::timeout(BACKGROUND, del.query_async::<i64>(&mut conn))
                    .await
                    .map(|r| r.map(|_| ()))
            }
        };
        if !matches!(done, Ok(Ok(()))) {
            // Said again at the next second (a newer change of the same target supersedes it).
            let mut waiting = self.unpushed.lock().unwrap_or_else(|p| p.into_inner());
            waiting.retain(|c| c.target != change.target);
            waiting.push(change.clone());
        }
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
        places.sort_unstable();
        let mut pipe = redis::pipe();
        for group in places.chunk_by(|a, b| a.0 == b.0) {
            let Some((key, _)) = group.first() else { continue };
            pipe.zrem(key, group.iter().map(|(_, t)| *t).collect::<Vec<_>>()).ignore();
        }
        let done = match self.bg_conn() {
            Some(mut conn) => tokio::time::timeout(BACKGROUND, pipe.query_async::<()>(&mut conn)).await.ok(),
            None => None,
        };
        if !matches!(done, Some(Ok(()))) {
            // Kept for the next second (at most 100,000: past that, their lease gives them back).
            let mut waiting = self.unplaced.lock().unwrap_or_else(|p| p.into_inner());
            let room = 100_000usize.saturating_sub(waiting.len());
            waiting.extend(places.into_iter().take(room));
        }
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

    /// Replicas seen in the last seconds, when Redis last answered.
    pub fn replicas(&self) -> u32 {
        self.replicas.load(Ordering::Relaxed)
    }

    /// Wait until this replica has read (and told) the fleet's state `n` more times: breakers, cooldowns, history,
    /// spend and retries.
    pub async fn synced(&self, n: u64) {
        let mut rx = self.synced.subscribe();
        let from = *rx.borrow_and_update();
        let _ = rx.wait_for(|k| *k >= from + n).await;
    }

    /// A connection whose answers come within `answer_within` (or fail).
    async fn open(&self, answer_within: Duration) -> Result<Conn, redis::RedisError> {
        let connect_within = self.budget.max(Duration::from_millis(200));
        let certs = || redis::TlsCertificates { client_tls: None, root_cert: self.tls_ca.clone() };
        let manager = |client: redis::Client| async move {
            let cfg = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(connect_within))
                .set_response_timeout(Some(answer_within))
                .set_number_of_retries(1);
            client.get_connection_manager_with_config(cfg).await.map(Conn::One)
        };
        match &self.topology {
            Topology::One(url) => {
                let client = match self.tls_ca {
                    Some(_) => redis::Client::build_with_tls(url.as_str(), certs())?,
                    None => redis::Client::open(url.as_str())?,
                };
                manager(client).await
            }
            Topology::Cluster(nodes) => {
                let mut b = redis::cluster::ClusterClient::builder(nodes.iter().map(String::as_str))
                    .connection_timeout(connect_within)
                    .response_timeout(answer_within)
                    .retries(1);
                if self.tls_ca.is_some() {
                    b = b.certs(certs());
                }
                Ok(Conn::Cluster(b.build()?.get_async_connection().await?))
            }
            Topology::Sentinel { sentinels, master, tls, user, password } => {
                let mut info = redis::RedisConnectionInfo::default();
                if let Some(u) = user {
                    info = info.set_username(u);
                }
                if let Some(p) = password {
                    info = info.set_password(p);
                }
                let mut node =
                    redis::sentinel::SentinelNodeConnectionInfo::default().set_redis_connection_info(info);
                if *tls {
                    node = node.set_tls_mode(redis::TlsMode::Secure);
                }
                let mut sc = redis::sentinel::SentinelClient::build(
                    sentinels.clone(),
                    master.as_str(),
                    Some(node),
                    redis::sentinel::SentinelServerType::Master,
                )?;
                manager(sc.async_get_client().await?).await
            }
        }
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

    /// Wait until Redis does not answer (or already did not).
    pub async fn unreachable(&self) {
        let mut rx = self.up.subscribe();
        let _ = rx.wait_for(|up| !*up).await;
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

    /// A request against its accounts' fleet-wide requests per minute and concurrency, in one round trip, all or
    /// nothing: what the fleet says of each account (in `asks`' order), or `None` when Redis cannot answer in time.
    pub async fn admit(&self, asks: &[Ask<'_>], longest: Duration) -> Option<Vec<Said>> {
        let mut conn = self.request_conn()?;
        // As long as the longest request may run (a stream over its deadline never outlives its place).
        let lease_ms = u64::try_from(longest.max(LEASE).as_millis()).unwrap_or(u64::MAX);
        let mut call = self.admit.prepare_invoke();
        call.arg(lease_ms);
        // Made before the call: whatever becomes of it (Redis slower than the budget but still running the script,
        // the request dropped mid-wait), a place it may have taken is given back unless it is kept below.
        let mut leases = Vec::with_capacity(asks.len());
        for a in asks {
            let (interval, tolerance) = match a.per_minute {
                Some(n) => {
                    let interval = (60_000_000 / u64::from(n.max(1))).max(1);
                    (interval, interval * u64::from(n.max(1) - 1))
                }
                None => (0, 0),
            };
            let places = format!("{}:conc:{}", self.prefix, a.name);
            let token: u64 = rand::random();
            call.key(format!("{}:rpm:{}:{}", self.prefix, a.name, a.per_minute.unwrap_or(0))).key(&places);
            call.arg(interval).arg(tolerance).arg(a.concurrency.unwrap_or(0)).arg(token);
            leases.push(a.concurrency.is_some().then(|| Lease {
                key: places,
                token,
                give_back: self.give_back.clone(),
            }));
        }
        let got = tokio::time::timeout(self.budget, call.invoke_async::<(u8, usize, u64)>(&mut conn)).await;
        let Ok(Ok((code, which, wait_us))) = got else {
            self.set_degraded(true);
            return None;
        };
        self.set_degraded(false);
        Some(
            asks.iter()
                .zip(leases)
                .enumerate()
                .map(|(i, (a, lease))| match code {
                    1 => (a.per_minute.map(|_| Verdict::Admitted), lease.map(Some)),
                    // Refused: nothing was taken, for any account.
                    _ => {
                        if let Some(l) = lease {
                            l.disarm();
                        }
                        match (code, i + 1 == which) {
                            (2, true) => (Some(Verdict::Wait(Duration::from_micros(wait_us))), None),
                            (3, true) => (None, Some(None)),
                            _ => (None, None),
                        }
                    }
                })
                .collect(),
        )
    }
}

/// The entries of an `XREAD` answer: `(id, writer, data)`.
fn stream_entries(v: redis::Value) -> Vec<(String, String, Vec<u8>)> {
    use redis::Value;
    let text = |v: &Value| match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    };
    // RESP2: [[stream, [[id, [k, v, …]], …]]]; RESP3 may answer a map {stream: [[id, [k, v, …]], …]}.
    let streams: Vec<Value> = match v {
        Value::Array(a) => {
            a.into_iter().filter_map(|s| if let Value::Array(mut p) = s { p.pop() } else { None }).collect()
        }
        Value::Map(m) => m.into_iter().map(|(_, v)| v).collect(),
        _ => Vec::new(),
    };
    let mut out = Vec::new();
    for s in streams {
        let Value::Array(entries) = s else { continue };
        for e in entries {
            let Value::Array(parts) = e else { continue };
            let (Some(id), Some(Value::Array(fields))) = (parts.first().and_then(text), parts.get(1)) else {
                continue;
            };
            let mut writer = String::new();
            let mut data = Vec::new();
            for kv in fields.chunks(2) {
                match (kv.first().and_then(text).as_deref(), kv.get(1)) {
                    (Some("w"), Some(v)) => writer = text(v).unwrap_or_default(),
                    (Some("d"), Some(Value::BulkString(b))) => data.clone_from(b),
                    _ => {}
                }
            }
            out.push((id, writer, data));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_says_the_topology() {
        assert_eq!(Topology::parse("redis://h:6379/0"), Ok(Topology::One("redis://h:6379/0".to_owned())));
        assert_eq!(
            Topology::parse("rediss+cluster://:pw@a:1,b:2"),
            Ok(Topology::Cluster(vec!["rediss://:pw@a:1".to_owned(), "rediss://:pw@b:2".to_owned()]))
        );
        assert_eq!(
            Topology::parse("redis+sentinel://user:pw@s1:26379,s2:26379/main"),
            Ok(Topology::Sentinel {
                sentinels: vec!["redis://s1:26379".to_owned(), "redis://s2:26379".to_owned()],
                master: "main".to_owned(),
                tls: false,
                user: Some("user".to_owned()),
                password: Some("pw".to_owned()),
            })
        );
        for bad in ["redis+sentinel://s1:26379", "redis+cluster://", "http://h", "secret-pw@h"] {
            let e = Topology::parse(bad).unwrap_err();
            assert!(!e.contains("pw"), "{e}");
        }
        // The configuration's Debug never shows the URL (it may hold a password).
        let cfg = StateConfig { redis_url: Some("redis://:hunter2@h".to_owned()), ..StateConfig::default() };
        assert!(!format!("{cfg:?}").contains("hunter2"));
    }
}
