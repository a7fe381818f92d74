//! The state of one waiting-room contest (ARCHITECTURE.md, "Where state lives"), the same
//! state machine in process ([`Contest`], held by the memory store) and in Redis (the `CONTEST_*`
//! scripts of `store::redis`, which mirror these methods line by line).
//!
//! A contest opens with its first entry and is *open* for `window`: each person (a keyed hash of
//! the verified mobile) who enters draws one ticket — the first draw stays, whatever number of
//! requests that person sends. The first call at or after the window's end *freezes* the contest:
//! the people in it are ranked by ticket (ascending: a uniform random permutation), and anyone
//! entering later is ranked behind them in arrival order. A turn counter then walks the ranks:
//! the holder of rank `turn` is forwarded, and the turn moves on when its answer came
//! ([`Contest::advance`]), when its request was withdrawn (client gone), or when it stalled for
//! longer than the turn timeout (a replica that died holding the turn cannot stall the rest).
//! When the turn has passed everyone, the contest *ends* (its state is dropped): the next request
//! for the same thing opens a new contest with a new window. So a contest opened early — say by a
//! script booking before the seats are released — is long over when they are, and cannot turn
//! the release into first come, first served.

use std::collections::{HashMap, HashSet};

/// How a request entered a contest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// Held until the window ends, with a ticket (the person's first request in the contest).
    Held,
    /// The window had ended: ranked behind everyone before, in arrival order.
    Ranked(u64),
    /// The person already has a request waiting in this contest.
    Duplicate,
}

/// What [`Contest::enter`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entered {
    /// When the contest opened (unix ms): names the contest, with its key.
    pub opened_ms: u64,
    /// When its window ends (unix ms).
    pub close_ms: u64,
    pub kind: EntryKind,
}

/// A contest as one person sees it ([`Contest::poll`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    pub opened_ms: u64,
    pub close_ms: u64,
    /// The order is drawn: ranks and the turn mean something.
    pub frozen: bool,
    /// The rank now allowed to go upstream.
    pub turn: u64,
    /// The person's latest rank, once frozen.
    pub rank: Option<u64>,
    /// How many people were in the draw (entered within the window).
    pub drawn: u64,
}

/// One contest's state.
#[derive(Debug, Default, Clone)]
pub struct Contest {
    opened_ms: Option<u64>,
    close_ms: u64,
    frozen: bool,
    turn: u64,
    /// When the turn last moved (or the contest froze).
    since_ms: u64,
    drawn: u64,
    /// Person → ticket (16 hex digits), for those who entered within the window.
    tickets: HashMap<String, String>,
    /// People by rank, once frozen.
    order: Vec<String>,
    /// Person → latest rank.
    ranks: HashMap<String, u64>,
    /// People whose request went away before their turn was used.
    withdrawn: HashSet<String>,
    /// The draw has been recorded (in the audit trail).
    recorded: bool,
}

impl Contest {
    /// Whether the contest exists (has been opened).
    pub fn is_open(&self) -> bool {
        self.opened_ms.is_some()
    }

    /// `person` enters at `now_ms` with a freshly drawn `ticket` (used only if the person holds
    /// none). The first entry opens the contest for `window_ms`.
    pub fn enter(&mut self, person: &str, ticket: &str, now_ms: u64, window_ms: u64) -> Entered {
        let opened_ms = *self.opened_ms.get_or_insert_with(|| {
            self.close_ms = now_ms.saturating_add(window_ms);
            self.since_ms = now_ms;
            now_ms
        });
        if !self.frozen && now_ms >= self.close_ms {
            self.freeze(now_ms);
        }
        let entered = |kind| Entered { opened_ms, close_ms: self.close_ms, kind };
        if !self.frozen {
            if self.tickets.contains_key(person) {
                // A request that went away gives its ticket to the person's next one.
                let kind = if self.withdrawn.remove(person) { EntryKind::Held } else { EntryKind::Duplicate };
                return entered(kind);
            }
            self.tickets.insert(person.to_string(), ticket.to_string());
            return entered(EntryKind::Held);
        }
        if let Some(&rank) = self.ranks.get(person)
            && rank >= self.turn
        {
            let kind = if self.withdrawn.remove(person) { EntryKind::Ranked(rank) } else { EntryKind::Duplicate };
            return entered(kind);
        }
        let rank = self.order.len() as u64;
        self.order.push(person.to_string());
        self.ranks.insert(person.to_string(), rank);
        self.withdrawn.remove(person);
        entered(EntryKind::Ranked(rank))
    }

    /// The contest as `person` sees it at `now_ms`: freezes it when its window is over, and moves
    /// the turn past withdrawn requests and past one that has held it for `turn_timeout_ms`.
    pub fn poll(&mut self, person: &str, now_ms: u64, turn_timeout_ms: u64) -> Option<View> {
        let opened_ms = self.opened_ms?;
        if !self.frozen && now_ms >= self.close_ms {
            self.freeze(now_ms);
        }
        if self.frozen {
            self.skip(now_ms, turn_timeout_ms);
            if !self.is_open() {
                return None;
            }
        }
        Some(View {
            opened_ms,
            close_ms: self.close_ms,
            frozen: self.frozen,
            turn: self.turn,
            rank: self.ranks.get(person).copied(),
            drawn: self.drawn,
        })
    }

    /// The holder of `rank` is done: the turn moves on if it was theirs. Answers the turn, or
    /// `None` when that was the last one and the contest ended.
    pub fn advance(&mut self, rank: u64, now_ms: u64) -> Option<u64> {
        if self.frozen && self.turn == rank {
            self.turn += 1;
            self.since_ms = now_ms;
            self.skip(now_ms, u64::MAX);
        }
        self.is_open().then_some(self.turn)
    }

    /// `person`'s waiting request went away: their turn, when it comes (or has come), is skipped.
    /// Their ticket stays theirs (a new request of theirs takes it over).
    pub fn withdraw(&mut self, person: &str, now_ms: u64) {
        if !self.is_open() {
            return;
        }
        self.withdrawn.insert(person.to_string());
        if self.frozen {
            self.skip(now_ms, u64::MAX);
        }
    }

    /// The people drawn, in their drawn order (empty before the contest freezes).
    pub fn drawn_order(&self) -> Vec<String> {
        self.order.iter().take(usize::try_from(self.drawn).unwrap_or(usize::MAX)).cloned().collect()
    }

    /// True for the first caller only: the draw is recorded once.
    pub fn claim(&mut self) -> bool {
        self.is_open() && !std::mem::replace(&mut self.recorded, true)
    }

    fn freeze(&mut self, now_ms: u64) {
        let mut entries: Vec<(&String, &String)> = self.tickets.iter().map(|(p, t)| (t, p)).collect();
        // By ticket, then (for equal tickets, which a 64-bit draw practically never gives) by person.
        entries.sort();
        self.order = entries.into_iter().map(|(_, p)| p.clone()).collect();
        self.ranks = self.order.iter().enumerate().map(|(i, p)| (p.clone(), i as u64)).collect();
        self.drawn = self.order.len() as u64;
        self.frozen = true;
        self.since_ms = now_ms;
    }

    fn skip(&mut self, now_ms: u64, turn_timeout_ms: u64) {
        while let Some(holder) = self.order.get(usize::try_from(self.turn).unwrap_or(usize::MAX)) {
            let stalled = now_ms.saturating_sub(self.since_ms) >= turn_timeout_ms;
            if !self.withdrawn.contains(holder) && !stalled {
                break;
            }
            self.turn += 1;
            self.since_ms = now_ms;
        }
        if self.frozen && self.turn >= self.order.len() as u64 {
            // Everyone's turn has passed: the contest ends.
            *self = Contest::default();
        }
    }
}

#[cfg(test)]
mod tests;
