//! Admission: who is calling, whether they may, and whether there is room. Between authentication and the
//! engine, in a request's flow:
//!
//! - [`Keyring`]: client keys → [`Identity`] (name, team, routes, priority, limits), from the configuration
//!   (`[keys.NAME]`, or the plain list of `auth.keys_env`) and from the admin API ([`AdminKeys`], persisted in the
//!   embedded store). A key is looked up by its SHA-256, so the configuration may hold only that.
//! - [`Door`]: the global bounds: requests in flight and request bytes held, with room kept for the higher
//!   priorities as they fill.
//! - [`limits::Account`]: per key and per team, requests and tokens per minute, concurrency, budgets.
//!
//! Their state lives in the runtime (`Admission`), keyed by stable ids: a reload keeps it.

pub mod limits;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use crate::config::protect::{Budget, KeyConfig, Limits, Price, Priority, Protect, matches};
use limits::{Account, Held, Over};

pub type KeyDigest = [u8; 32];

pub fn digest(key: &str) -> KeyDigest {
    Sha256::digest(key.as_bytes()).into()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where an identity was defined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// `[keys.NAME]` in the configuration.
    Config,
    /// The plain list of `auth.keys_env`.
    List,
    /// Made through `/admin/keys`.
    Admin,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Config => "config",
            Source::List => "list",
            Source::Admin => "admin",
        }
    }
}

/// A client key's identity: what it may use and how much.
#[derive(Debug)]
pub struct Identity {
    /// Stable: the configuration's name, `key#N` for the plain list, or the admin API's `key_…` id.
    pub id: Box<str>,
    pub name: Box<str>,
    pub team: Option<Box<str>>,
    /// Route names or patterns; empty: every route.
    pub routes: Vec<Box<str>>,
    pub priority: Priority,
    /// May choose any priority per request (`x-nines-priority`); others may only lower theirs.
    pub set_priority: bool,
    /// Who owns what this key stores (Responses conversations).
    pub owner: Box<str>,
    pub source: Source,
    pub account: Option<Arc<Account>>,
    pub team_account: Option<Arc<Account>>,
}

impl Identity {
    pub fn may_use(&self, route: &str) -> bool {
        self.routes.is_empty() || self.routes.iter().any(|p| matches(p, route))
    }
}

/// Who is calling.
#[derive(Clone, Debug)]
pub enum Caller {
    /// No client keys exist: anyone may call.
    Open,
    Key(Arc<Identity>),
}

impl std::fmt::Display for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Caller::Open => f.write_str("open"),
            Caller::Key(i) => f.write_str(&i.name),
        }
    }
}

impl Caller {
    pub fn priority(&self) -> Priority {
        match self {
            Caller::Open => Priority::Default,
            Caller::Key(i) => i.priority,
        }
    }

    /// The request's priority: the key's, or what `x-nines-priority` asks when the key may choose it (any key may
    /// lower its own).
    pub fn priority_for(&self, asked: Option<&http::HeaderValue>) -> Priority {
        let own = self.priority();
        let Some(asked) = asked.and_then(|v| v.to_str().ok()).and_then(Priority::parse) else { return own };
        match self {
            Caller::Key(i) if i.set_priority => asked,
            _ => asked.max(own),
        }
    }

    /// The owner of what this caller stores ("" on an open gateway).
    pub fn owner(&self) -> &str {
        match self {
            Caller::Open => "",
            Caller::Key(i) => &i.owner,
        }
    }
}

/// The keys of one configuration, by digest.
#[derive(Debug, Default)]
pub struct Keyring {
    by_digest: HashMap<KeyDigest, Arc<Identity>>,
    /// The configuration asks for keys (`auth.keys_env` or any `[keys.*]`): never open, even when none of their
    /// variables is set.
    closed: bool,
}

impl Keyring {
    /// From `[keys.*]` (secrets by variable or digest) and the plain list; accounts resolved from `admission`.
    pub fn build(
        protect: &Protect,
        list: &[secrecy::SecretString],
        keys_env_set: bool,
        env: &crate::config::Env,
        admission: &Admission,
    ) -> Keyring {
        let mut by_digest = HashMap::new();
        for (n, key) in list.iter().enumerate() {
            let d = digest(key.expose_secret());
            // The owner of a plain-list key is a digest of the key, as it always was (stored conversations keep
            // their owner across versions).
            let owner = hex(d.get(..16).unwrap_or(&[]));
            let id = format!("key#{n}");
            let identity = Identity {
                name: id.clone().into(),
                id: id.into(),
                team: None,
                routes: Vec::new(),
                priority: Priority::Default,
                set_priority: false,
                owner: owner.into(),
                source: Source::List,
                account: None,
                team_account: None,
            };
            by_digest.entry(d).or_insert_with(|| Arc::new(identity));
        }
        for k in &protect.keys {
            let d = match &k.secret {
                crate::config::protect::KeySecret::Env(var) => {
                    match env.get(var).map(|v| v.trim().to_owned()) {
                        Some(v) if !v.is_empty() => digest(&v),
                        _ => continue,
                    }
                }
                crate::config::protect::KeySecret::Sha256(d) => *d,
            };
            by_digest.insert(d, Arc::new(admission.identity(k, Source::Config, protect)));
        }
        Keyring { by_digest, closed: !protect.keys.is_empty() || keys_env_set }
    }

    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }

    /// Whether anyone may call without a key: no key asked for by the configuration.
    pub fn is_open(&self) -> bool {
        !self.closed && self.by_digest.is_empty()
    }

    pub fn identities(&self) -> impl Iterator<Item = &Arc<Identity>> {
        self.by_digest.values()
    }

    fn get(&self, d: &KeyDigest) -> Option<&Arc<Identity>> {
        self.by_digest.get(d)
    }
}

/// A key made through the admin API, as persisted (never the key itself: its digest).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct KeyRecord {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    #[serde(default)]
    pub routes: Vec<String>,
    pub priority: String,
    #[serde(default)]
    pub set_priority: bool,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub budget: Budget,
    /// Unix seconds.
    pub created: u64,
    pub secrets: Vec<SecretRecord>,
    /// Revoked: kept (without secrets) so that the gateway stays closed and the id is never reused.
    #[serde(default)]
    pub revoked: bool,
}

/// One secret of a key (two during a rotation's overlap).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SecretRecord {
    /// SHA-256 of the key, hex.
    pub sha256: String,
    /// The key's first characters, to recognise it in a list.
    pub prefix: String,
    /// Unix seconds after which it no longer works (a rotated-out secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<u64>,
}

#[derive(Debug, Clone)]
struct AdminEntry {
    identity: Arc<Identity>,
    not_after: Option<u64>,
}

/// Keys made at run time, by digest; swapped whole on each change (rare).
#[derive(Debug, Default)]
pub struct AdminKeys {
    by_digest: ArcSwap<HashMap<KeyDigest, AdminEntry>>,
    pub records: Mutex<Vec<KeyRecord>>,
    /// Whether any key was ever made (a revoked one's record stays): the gateway is then never open.
    pub ever: std::sync::atomic::AtomicBool,
    /// One change at a time (made, rotated, revoked; a reload): each persisted before it applies.
    pub changing: tokio::sync::Mutex<()>,
}

impl AdminKeys {
    pub fn is_empty(&self) -> bool {
        self.by_digest.load().is_empty()
    }

    /// Replace the records (already persisted).
    pub fn set_records(&self, records: Vec<KeyRecord>) {
        self.ever.store(!records.is_empty(), std::sync::atomic::Ordering::Release);
        *self.records.lock().unwrap_or_else(|p| p.into_inner()) = records;
    }
}

/// Requests in flight and request bytes held, over every door.
#[derive(Debug, Default)]
pub struct Door {
    in_flight: AtomicU32,
    bytes: AtomicU64,
}

/// A request counted at the door until dropped.
#[derive(Debug)]
pub struct Entry {
    door: Arc<Door>,
    bytes: u64,
}

/// The door is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Busy {
    Requests,
    Bytes,
}

impl Entry {
    /// Hold `more` bytes of this request's body too (a body without `Content-Length`, once read).
    pub fn hold(&mut self, more: u64, max: u64) -> Result<(), Busy> {
        // Never more than a body can be (a `Content-Length` near 2^64 must not wrap the count).
        let more = more.min(max.saturating_add(1));
        let before = self.door.bytes.fetch_add(more, Ordering::AcqRel);
        self.bytes += more;
        if before.saturating_add(more) > max { Err(Busy::Bytes) } else { Ok(()) }
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.door.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.door.bytes.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// What outlives configurations: accounts by stable id, the keys of the admin API, the door's counts.
#[derive(Debug)]
pub struct Admission {
    accounts: Mutex<HashMap<String, Arc<Account>>>,
    pub admin: AdminKeys,
    pub door: Arc<Door>,
    wall: crate::record::history::Wall,
    /// Spend read back from the store, given to each account when it is first made.
    saved: Mutex<HashMap<String, limits::Spend>>,
}

impl Default for Admission {
    fn default() -> Self {
        Admission::new()
    }
}

impl Admission {
    pub fn new() -> Admission {
        Admission {
            accounts: Mutex::default(),
            admin: AdminKeys::default(),
            door: Arc::default(),
            wall: crate::record::history::Wall::new(),
            saved: Mutex::default(),
        }
    }

    /// Spend read back from the store after a restart.
    pub fn restore(&self, saved: Vec<(String, limits::Spend)>) {
        let mut map = self.saved.lock().unwrap_or_else(|p| p.into_inner());
        map.extend(saved);
    }

    /// Every account's spend, to be written.
    pub fn spend(&self) -> Vec<(String, limits::Spend)> {
        self.accounts()
            .iter()
            .filter(|a| !a.budget().is_empty())
            .map(|a| (a.whose.clone(), a.spend()))
            .collect()
    }

    /// Unix seconds, read through `tokio::time`.
    pub fn unix_now(&self) -> u64 {
        self.wall.unix_ms(tokio::time::Instant::now()) / 1000
    }

    /// The account of `id` with these limits, kept from before if it existed; `None` when it has no limits.
    pub fn account(&self, id: &str, limits: Limits, budget: Budget) -> Option<Arc<Account>> {
        let mut map = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(a) = map.get(id) {
            a.configure(limits, budget);
            return Some(a.clone());
        }
        if limits.is_empty() && budget.is_empty() {
            return None;
        }
        let a = Arc::new(Account::new(id.to_owned(), limits, budget));
        if let Some(saved) = self.saved.lock().unwrap_or_else(|p| p.into_inner()).remove(id) {
            a.restore(saved);
        }
        map.insert(id.to_owned(), a.clone());
        Some(a)
    }

    pub fn accounts(&self) -> Vec<Arc<Account>> {
        self.accounts.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }

    pub fn team_account(&self, team: Option<&str>, protect: &Protect) -> Option<Arc<Account>> {
        let team = team?;
        let t = protect.teams.get(team).copied().unwrap_or_default();
        self.account(&format!("team {team}"), t.limits, t.budget)
    }

    /// The identity of a configured key.
    pub fn identity(&self, k: &KeyConfig, source: Source, protect: &Protect) -> Identity {
        Identity {
            id: k.name.clone().into(),
            name: k.name.clone().into(),
            team: k.team.clone().map(Into::into),
            routes: k.routes.iter().map(|r| r.clone().into()).collect(),
            priority: k.priority,
            set_priority: k.set_priority,
            owner: format!("key:{}", k.name).into(),
            source,
            account: self.account(&format!("key {}", k.name), k.limits, k.budget),
            team_account: self.team_account(k.team.as_deref(), protect),
        }
    }

    /// Rebuild the admin keys' identities from their records (at start, after a change, after a reload: team
    /// limits may have changed).
    /// The identity of a key made through the admin API: by the record's id, never its name (a made key named like a
    /// configured one must not touch that key's account).
    pub fn admin_identity(&self, r: &KeyRecord, protect: &Protect) -> Identity {
        Identity {
            id: r.id.clone().into(),
            name: r.name.clone().into(),
            team: r.team.clone().map(Into::into),
            routes: r.routes.iter().map(|x| x.clone().into()).collect(),
            priority: Priority::parse(&r.priority).unwrap_or_default(),
            set_priority: r.set_priority,
            owner: format!("key:{}", r.id).into(),
            source: Source::Admin,
            account: self.account(&format!("key {}", r.id), r.limits, r.budget),
            team_account: self.team_account(r.team.as_deref(), protect),
        }
    }

    pub fn rebuild_admin(&self, protect: &Protect) {
        let records = self.admin.records.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut map = HashMap::new();
        for r in records.iter().filter(|r| !r.revoked) {
            let identity = Arc::new(self.admin_identity(r, protect));
            for s in &r.secrets {
                if let Some(d) = crate::config::protect::parse_sha256(&s.sha256) {
                    map.insert(d, AdminEntry { identity: identity.clone(), not_after: s.not_after });
                }
            }
        }
        self.admin.by_digest.store(Arc::new(map));
    }

    /// The caller presenting `key` (`None`: no key, or not a valid one). Open only when no key was ever asked
    /// for: none in the configuration, none ever made through the admin API (revoking the last one does not open
    /// the gateway).
    pub fn identify(&self, ring: &Keyring, key: Option<&str>, unix_now: u64) -> Option<Caller> {
        let admin = self.admin.by_digest.load();
        if ring.is_open() && !self.admin.ever.load(std::sync::atomic::Ordering::Acquire) {
            return Some(Caller::Open);
        }
        let d = digest(key.filter(|k| !k.is_empty())?);
        if let Some(i) = ring.get(&d) {
            return Some(Caller::Key(i.clone()));
        }
        let e = admin.get(&d)?;
        if e.not_after.is_some_and(|t| unix_now >= t) {
            return None;
        }
        Some(Caller::Key(e.identity.clone()))
    }

    /// Count a request at the door: refused when the requests in flight, or the bytes held, would pass what its
    /// priority may use (batch up to 80% of each bound, default 90%, interactive all of it).
    pub fn enter(
        &self,
        priority: Priority,
        max_in_flight: u32,
        bytes: u64,
        max_bytes: u64,
    ) -> Result<Entry, Busy> {
        let share = |max: u64| match priority {
            Priority::Interactive => max,
            Priority::Default => max / 10 * 9,
            Priority::Batch => max / 10 * 8,
        };
        let before = self.door.in_flight.fetch_add(1, Ordering::AcqRel);
        let mut entry = Entry { door: self.door.clone(), bytes: 0 };
        if u64::from(before) >= share(u64::from(max_in_flight)).max(1) {
            return Err(Busy::Requests);
        }
        entry.hold(bytes, share(max_bytes))?;
        Ok(entry)
    }
}

/// Why a request was not admitted.
#[derive(Debug)]
pub enum Refusal {
    /// The key may not use this route.
    Route {
        route: String,
        key: String,
    },
    Over(Over),
}

/// What a request is expected to use.
#[derive(Clone, Copy, Debug, Default)]
pub struct Estimate {
    pub input: u64,
    pub output: u64,
    pub price: Option<Price>,
    /// The longest the request may run (its deadline): how long a fleet-wide place is leased for.
    pub longest: std::time::Duration,
}

/// What an admitted request holds of its key's and team's limits.
#[derive(Debug, Default)]
pub struct Ticket {
    held: Vec<Held>,
    /// The price it was admitted at: what a target without its own price is charged at.
    price: Option<Price>,
}

impl Ticket {
    /// An answer has started.
    pub fn commit(&mut self) {
        for h in &mut self.held {
            h.commit();
        }
    }

    /// The usage is known, from a target priced `price`.
    pub fn settle(&mut self, input: u64, output: u64, price: Option<Price>) {
        let cost = price.or(self.price).map_or(0.0, |p| p.cost(input, output));
        for h in &mut self.held {
            h.settle(input, output, cost);
        }
    }
}

/// Admit `caller`'s request on `route`: its routes, then its key's limits, then its team's; requests per minute
/// decided by the fleet (`shared`, Redis) when it answers in time, else by this replica.
pub async fn admit(
    caller: &Caller,
    route: &str,
    est: Estimate,
    shared: Option<&crate::shared::Shared>,
) -> Result<Ticket, Refusal> {
    let Caller::Key(id) = caller else { return Ok(Ticket::default()) };
    if !id.may_use(route) {
        return Err(Refusal::Route { route: route.to_owned(), key: id.name.to_string() });
    }
    let mut ticket = Ticket { held: Vec::new(), price: est.price };
    // What it may cost: its input and the output it may ask for (reserved until it settles, so that requests at
    // once cannot each spend the same remainder).
    let cost = est.price.map_or(0.0, |p| p.cost(est.input, est.output));
    let accounts: Vec<&Arc<Account>> = [&id.account, &id.team_account].into_iter().flatten().collect();
    // Every fleet-wide limit of the key and its team in one round trip (none when neither has one, or without a
    // fleet).
    let said = match shared {
        Some(s) => {
            let asks: Vec<crate::shared::Ask<'_>> = accounts
                .iter()
                .map(|a| {
                    let l = a.limits();
                    crate::shared::Ask {
                        name: &a.whose,
                        per_minute: l.requests_per_minute,
                        concurrency: l.concurrency,
                    }
                })
                .collect();
            let limited = asks.iter().any(|a| a.per_minute.is_some() || a.concurrency.is_some());
            if limited { s.admit(&asks, est.longest).await } else { None }
        }
        None => None,
    };
    // The fleet refused one account (and took nothing from any): only that one is asked, for its refusal; the
    // others' own limiters are not charged for a request that does not go.
    let refused = said.as_ref().and_then(|v| {
        v.iter()
            .position(|(f, p)| matches!(f, Some(crate::shared::Verdict::Wait(_))) || matches!(p, Some(None)))
    });
    let mut said = said.map(Vec::into_iter);
    if let (Some(i), Some(all)) = (refused, said.as_mut())
        && let (Some(account), Some((fleet, place))) = (accounts.get(i), all.nth(i))
    {
        let output = account.limits().output_tokens_per_minute.map_or(est.output, |l| est.output.min(l));
        if let Err(over) = account.admit_with(est.input, output, cost, fleet, place) {
            return Err(Refusal::Over(over));
        }
        // Not expected (the fleet said no): decided here alone, then.
        said = None;
    }
    for account in accounts {
        let limits = account.limits();
        let output = limits.output_tokens_per_minute.map_or(est.output, |l| est.output.min(l));
        let (fleet, place) = said.as_mut().and_then(Iterator::next).unwrap_or((None, None));
        ticket.held.push(account.admit_with(est.input, output, cost, fleet, place).map_err(Refusal::Over)?);
    }
    Ok(ticket)
}
