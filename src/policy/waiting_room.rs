//! A route's waiting room, compiled and checked (see `waitroom` for what it does): only on a
//! citizen route that the gateway forwards (the entrant is the verified mobile), with a JSON body
//! (the contest key is read from it), a window between 100 ms and 60 s, and an admission rate.

use std::num::NonZeroU32;
use std::time::Duration;

use crate::config::raw::{self, RawRoute};
use crate::config::{At, ConfigError};

/// Shortest and longest windows `check` accepts.
pub const MIN_WINDOW: Duration = Duration::from_millis(100);
pub const MAX_WINDOW: Duration = Duration::from_secs(60);
/// Most fields a contest key may name.
pub const MAX_KEY_FIELDS: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingRoom {
    /// Requests within this long of a contest's first are drawn among.
    pub window: Duration,
    /// Top-level JSON body fields whose values name the contest.
    pub key: Vec<String>,
    /// Forwards allowed per interval across the route's contests: a burst of `limit`, refilled
    /// one every `per / limit`.
    pub admission: (NonZeroU32, Duration),
}

/// The route's waiting room, if it has a valid one; every problem goes to `errors`.
pub fn compile(at: &At, r: &RawRoute, errors: &mut Vec<ConfigError>) -> Option<WaitingRoom> {
    let w = r.waiting_room.as_ref()?;
    let before = errors.len();
    if r.access != raw::Access::Citizen || r.handler.is_some() {
        errors.push(at.err(
            "waiting_room",
            "a waiting room needs a citizen route the gateway forwards: one ticket per verified mobile",
        ));
    }
    if r.methods.iter().any(|m| !matches!(m.as_str(), "POST" | "PUT" | "PATCH")) {
        errors.push(at.err("waiting_room", "the contest key is read from the JSON body: use POST, PUT or PATCH"));
    }
    if !(MIN_WINDOW..=MAX_WINDOW).contains(&w.window.0) {
        errors.push(at.err("waiting_room.window", "give a window between 100ms and 60s"));
    }
    let name_ok = |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if w.key.is_empty() || w.key.len() > MAX_KEY_FIELDS {
        errors.push(at.err("waiting_room.key", "name 1 to 4 body fields (e.g. [session_id])"));
    }
    for (i, k) in w.key.iter().enumerate() {
        if !name_ok(k) {
            errors.push(at.err(&format!("waiting_room.key[{i}]"), "field names use letters, digits and '_'"));
        } else if w.key[..i].contains(k) {
            errors.push(at.err(&format!("waiting_room.key[{i}]"), format!("`{k}` is listed twice")));
        }
    }
    let admission = NonZeroU32::new(w.admission.limit).filter(|_| {
        w.admission.per.0 >= Duration::from_millis(1) && w.admission.per.0 / w.admission.limit > Duration::ZERO
    });
    if admission.is_none() {
        errors.push(at.err("waiting_room.admission", "limit and per must be greater than zero"));
    }
    if errors.len() != before {
        return None;
    }
    Some(WaitingRoom { window: w.window.0, key: w.key.clone(), admission: (admission?, w.admission.per.0) })
}
