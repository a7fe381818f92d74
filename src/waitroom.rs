//! The waiting room (issue 14): speed is no advantage for scarce seats.
//!
//! On a route with a `waiting_room`, a booking request opens a *contest* for what it asks for
//! (the policy's `key` fields of the JSON body: the session) unless one is open. Requests for the
//! same thing within `window` of the opening are held; each person (verified mobile, as a keyed
//! hash) draws one 64-bit ticket from a CSPRNG when first entering — later requests of theirs, on
//! any token, address or replica, keep it. When the window ends the order is the tickets'
//! ascending order (a uniform random permutation of the people), and the held requests go
//! upstream one after another in that order: the registry, as always, decides whether a seat is
//! left. Requests after the window queue behind in arrival order while the contest lasts; it
//! ends when everyone's turn has passed, and the next request opens a new one (see
//! `store::contest`). A person's second request while their first waits is answered 409
//! `GWY4091` once their turn has passed.
//!
//! The contest lives in the state store (`store::contest`), so replicas sharing Redis run one
//! contest per session. A replica forwards its request when the turn reaches its rank and moves
//! the turn on when the upstream answered ([`Turn::finish`]); a request that goes away withdraws
//! (its turn is skipped), and a turn held longer than the route timeout plus a margin is skipped
//! (a dead replica cannot stall a contest). Waiters poll the store, sooner the nearer their turn,
//! and the few nearest are woken at once by turns that move on this replica. The draw is written to the audit
//! trail once per contest (the first replica to claim it), and an admission rate (GCRA, shared
//! across replicas like every limit) spaces the forwards of all the route's contests.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use crate::audit::{AuditRecord, ContestTurn, Decision, Draw, Hasher, Trail};
use crate::clock::Clock;
use crate::error::GatewayError;
use crate::metrics::Metrics;
use crate::policy::LimitKey;
use crate::policy::waiting_room::WaitingRoom;
use crate::ratelimit::{Limiters, RouteLimits};
use crate::store::{EntryKind, Store, StoreError};

/// A contest ends when everyone's turn has passed; its state is kept at most this long after its
/// last activity in any case (a safety net for contests nobody polls any more).
pub const CONTEST_TTL: Duration = Duration::from_secs(600);
/// Added to the route timeout: how long one turn may be held before it is skipped.
pub const TURN_MARGIN: Duration = Duration::from_secs(5);
/// Polling the store: the interval per rank still ahead, and its bounds.
const POLL_PER_RANK: Duration = Duration::from_millis(5);
const POLL_MIN: Duration = Duration::from_millis(5);
const POLL_MAX: Duration = Duration::from_millis(250);
/// Waiters this near the turn are also woken by turns moving on this replica; the rest only poll
/// (so one turn does not wake a whole contest).
const WAKE_AHEAD: u64 = 4;
/// Wake-ups are shared by contests whose keys fall in one of this many shards.
const WAKE_SHARDS: usize = 64;

/// The waiting rooms of a process: the identity hasher and the wake-ups of local waiters.
pub struct Rooms {
    hasher: Hasher,
    wake: Vec<Arc<Notify>>,
}

/// What waiting needs of the process.
pub struct Deps<'a> {
    pub store: &'a Store,
    pub clock: &'a Clock,
    pub audit: Option<&'a Trail>,
    pub metrics: &'a Metrics,
    pub limiters: &'a Limiters,
}

/// The route a request waits on.
pub struct Room<'a> {
    pub route: &'a str,
    pub policy_version: &'a str,
    pub room: &'a WaitingRoom,
    pub admission: &'a RouteLimits,
    /// The route's upstream timeout (a turn is skipped after it plus [`TURN_MARGIN`]).
    pub timeout: Duration,
}

impl Rooms {
    /// Entrants are named by `hasher` (the audit trail's, so the recorded draw can be checked).
    pub fn new(hasher: Hasher) -> Rooms {
        Rooms { hasher, wake: (0..WAKE_SHARDS).map(|_| Arc::new(Notify::new())).collect() }
    }

    /// The wake-up of the contest `key` (a hex digest).
    fn wake(&self, key: &str) -> Arc<Notify> {
        let shard = key.get(..2).and_then(|h| usize::from_str_radix(h, 16).ok()).unwrap_or(0) % WAKE_SHARDS;
        self.wake[shard].clone()
    }

    /// Hold the request of `mobile` for the contest `values` until its turn (and an admission
    /// cell) comes. The caller forwards, then calls [`Turn::finish`].
    pub async fn wait(
        &self,
        d: &Deps<'_>,
        room: &Room<'_>,
        values: &[String],
        mobile: &str,
    ) -> Result<Turn, GatewayError> {
        let held = Held::new(d.metrics);
        let person = self.hasher.mobile(mobile);
        let key = store_key(room.route, values);
        // rand's thread-local generator: ChaCha12 seeded (and reseeded) from the OS — a CSPRNG.
        let ticket = format!("{:016x}", rand::random::<u64>());
        let turn_timeout = room.timeout + TURN_MARGIN;
        let entered = d
            .store
            .contest_enter(&key, &person, &ticket, d.clock.now_ms(), room.room.window, CONTEST_TTL)
            .await
            .map_err(store_err)?;
        let contest = contest_id(room.route, values, entered.opened_ms);
        let duplicate = entered.kind == EntryKind::Duplicate;
        let wake = self.wake(&key);
        let mut turn = Turn {
            store: d.store.clone(),
            clock: d.clock.clone(),
            wake: wake.clone(),
            key,
            person,
            rank: u64::MAX,
            contest,
            waited_ms: 0,
            armed: !duplicate,
        };
        let mut claimed = false;
        loop {
            let now = d.clock.now_ms();
            if now < entered.close_ms {
                tokio::time::sleep(Duration::from_millis(entered.close_ms - now)).await;
                continue;
            }
            let view = d
                .store
                .contest_poll(&turn.key, &turn.person, now, turn_timeout, CONTEST_TTL)
                .await
                .map_err(store_err)?;
            let view = view.filter(|v| v.opened_ms == entered.opened_ms);
            let Some(view) = view else {
                // Our contest ended: a duplicate's first request has been answered.
                if duplicate {
                    return Err(GatewayError::AlreadyWaiting);
                }
                // Ended before our turn: the store lost it (a failover). Go on, unordered.
                tracing::warn!(contest = %turn.contest, "waiting-room contest gone; forwarding");
                break;
            };
            if view.frozen && !claimed {
                claimed = true;
                self.record_draw(d, room, &turn, view.drawn).await.map_err(store_err)?;
            }
            let Some(rank) = view.rank.filter(|_| view.frozen) else {
                if view.frozen {
                    // Drawn without us: the store lost our entry (a failover). Not held forever.
                    tracing::warn!(contest = %turn.contest, "not in the waiting-room draw; forwarding");
                    if duplicate {
                        return Err(GatewayError::AlreadyWaiting);
                    }
                    break;
                }
                sleep_or_wake(&wake, POLL_MAX).await;
                continue;
            };
            if duplicate {
                if rank < view.turn {
                    held.done();
                    return Err(GatewayError::AlreadyWaiting);
                }
            } else if rank <= view.turn {
                // Our turn (or it was skipped while we were slow: go now).
                turn.rank = rank;
                break;
            }
            let ahead = rank.saturating_sub(view.turn);
            let interval = POLL_PER_RANK.saturating_mul(u32::try_from(ahead).unwrap_or(u32::MAX));
            let interval = interval.clamp(POLL_MIN, POLL_MAX);
            if ahead <= WAKE_AHEAD {
                sleep_or_wake(&wake, interval).await;
            } else {
                tokio::time::sleep(interval).await;
            }
        }
        let cell = vec![(LimitKey::Ip, vec!["waiting-room-admission".to_string()])];
        while let Err(throttled) = d.limiters.check(room.admission, &cell).await {
            tokio::time::sleep(throttled.retry_after.max(Duration::from_millis(1))).await;
        }
        turn.waited_ms = held.done();
        Ok(turn)
    }

    /// Write the contest's draw to the audit trail, if this is the first replica to see it frozen.
    async fn record_draw(&self, d: &Deps<'_>, room: &Room<'_>, turn: &Turn, drawn: u64) -> Result<(), StoreError> {
        if drawn == 0 || !d.store.contest_claim(&turn.key, d.clock.now_ms()).await? {
            return Ok(());
        }
        let order = d.store.contest_order(&turn.key, d.clock.now_ms()).await?;
        d.metrics.waiting_room.contest(room.route, order.len() as u64);
        tracing::info!(contest = %turn.contest, entrants = order.len(), "waiting-room draw");
        let Some(audit) = d.audit else { return Ok(()) };
        let record = draw_record(d.clock.now_ms(), room, &turn.contest, order);
        if let Err(e) = audit.write(&record).await {
            tracing::error!(contest = %turn.contest, error = %e, "waiting-room draw not recorded");
            d.metrics.audit_failure();
        }
        Ok(())
    }
}

/// The audit record of a draw.
fn draw_record(now_ms: u64, room: &Room<'_>, contest: &str, order: Vec<String>) -> AuditRecord {
    AuditRecord {
        time: crate::clock::rfc3339(now_ms),
        request_id: uuid::Uuid::new_v4().to_string(),
        trace_id: String::new(),
        caller_kind: "gateway".into(),
        caller_id: "waiting-room".into(),
        route: room.route.to_string(),
        method: "POST".into(),
        decision: Decision::Allow,
        reason: "waiting_room_draw".into(),
        status: 0,
        records: Vec::new(),
        record_count: 0,
        subjects: Vec::new(),
        fields_redacted: Vec::new(),
        policy_version: room.policy_version.to_string(),
        upstream_ms: None,
        client: String::new(),
        count: None,
        waiting_room: None,
        draw: Some(Draw { contest: contest.to_string(), entrants: order.len() as u64, order }),
    }
}

/// A request whose turn came: forward it, then [`Turn::finish`]. Dropped unfinished (the client
/// went away, or a later phase refused), it withdraws, so the contest moves on at once.
pub struct Turn {
    store: Store,
    clock: Clock,
    wake: Arc<Notify>,
    key: String,
    person: String,
    rank: u64,
    contest: String,
    waited_ms: u64,
    armed: bool,
}

impl Turn {
    /// What the request's audit record says of its place.
    pub fn record(&self) -> ContestTurn {
        ContestTurn { contest: self.contest.clone(), rank: self.rank, waited_ms: self.waited_ms }
    }

    /// The upstream answered: the next rank may go.
    pub async fn finish(mut self) {
        self.armed = false;
        let now = self.clock.now_ms();
        if let Err(e) = self.store.contest_advance(&self.key, self.rank, now, CONTEST_TTL).await {
            // The turn will be skipped after its timeout.
            tracing::warn!(contest = %self.contest, error = %e, "waiting-room turn not advanced");
        }
        self.wake.notify_waiters();
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else { return };
        let (store, key, person, wake) = (self.store.clone(), self.key.clone(), self.person.clone(), self.wake.clone());
        let now = self.clock.now_ms();
        handle.spawn(async move {
            if let Err(e) = store.contest_withdraw(&key, &person, now, CONTEST_TTL).await {
                tracing::warn!(error = %e, "waiting-room request not withdrawn; its turn times out");
            }
            wake.notify_waiters();
        });
    }
}

/// Counts a request as held while it waits, and how long it waited.
struct Held<'a> {
    metrics: &'a Metrics,
    since: tokio::time::Instant,
    done: bool,
}

impl<'a> Held<'a> {
    fn new(metrics: &'a Metrics) -> Held<'a> {
        metrics.waiting_room.held(1);
        Held { metrics, since: tokio::time::Instant::now(), done: false }
    }

    /// No longer held: the wait in milliseconds.
    fn done(mut self) -> u64 {
        self.finish()
    }

    fn finish(&mut self) -> u64 {
        let waited = self.since.elapsed();
        if !std::mem::replace(&mut self.done, true) {
            self.metrics.waiting_room.held(-1);
            self.metrics.waiting_room.waited(waited.as_secs_f64());
        }
        u64::try_from(waited.as_millis()).unwrap_or(u64::MAX)
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.finish();
    }
}

async fn sleep_or_wake(wake: &Notify, at_most: Duration) {
    tokio::select! {
        () = wake.notified() => {}
        () = tokio::time::sleep(at_most) => {}
    }
}

fn store_err(e: StoreError) -> GatewayError {
    tracing::error!(error = %e, "state store failed in the waiting room; failing closed");
    GatewayError::StoreUnavailable
}

/// The contest key of a request: the values of the room's `key` fields in the JSON body, each
/// canonical (a UUID in its lower-case hyphenated form, other text trimmed and lower-cased,
/// integers as digits), so two spellings of one session are one contest.
pub fn key_values(room: &WaitingRoom, body: &[u8]) -> Result<Vec<String>, GatewayError> {
    const MISSING: GatewayError = GatewayError::BadRequest("the request body must name what it books");
    let doc = crate::ownership::parse_strict(body).map_err(|_| MISSING)?;
    room.key
        .iter()
        .map(|field| match doc.get(field) {
            Some(serde_json::Value::String(s)) => Ok(canonical(s)),
            Some(serde_json::Value::Number(n)) => Ok(n.as_u64().map_or_else(|| n.to_string(), |v| v.to_string())),
            _ => Err(MISSING),
        })
        .collect()
}

fn canonical(s: &str) -> String {
    let trimmed = s.trim();
    match uuid::Uuid::try_parse(trimmed) {
        Ok(id) => id.hyphenated().to_string(),
        Err(_) => match trimmed.parse::<u64>() {
            Ok(n) => n.to_string(),
            Err(_) => trimmed.to_lowercase(),
        },
    }
}

/// The store key of a contest: a digest of the route and the key values (bounded, and safe in a
/// key name whatever a body holds).
pub fn store_key(route: &str, values: &[String]) -> String {
    let mut h = Sha256::new();
    h.update(route.as_bytes());
    for v in values {
        h.update([0]);
        h.update(v.as_bytes());
    }
    hex::encode(&h.finalize()[..16])
}

/// The contest's name in the audit trail: `route:value/value@opened_ms` (a value that is long or
/// not plain is replaced by a digest).
pub fn contest_id(route: &str, values: &[String], opened_ms: u64) -> String {
    let plain = |v: &String| v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    let shown: Vec<String> = values
        .iter()
        .map(|v| if plain(v) { v.clone() } else { format!("h{}", &hex::encode(Sha256::digest(v.as_bytes()))[..16]) })
        .collect();
    format!("{route}:{}@{opened_ms}", shown.join("/"))
}

#[cfg(test)]
mod tests;
