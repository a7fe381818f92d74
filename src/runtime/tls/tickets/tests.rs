use std::time::Duration;

use rustls::server::ProducesTickets;

use super::{PERIOD_SECS, Tickets};
use crate::clock::Clock;

const MASTER: &[u8] = b"0123456789abcdef0123456789abcdef";
const START_MS: u64 = 1_800_000_000_000;

fn period() -> Duration {
    Duration::from_secs(PERIOD_SECS)
}

#[test]
fn a_ticket_opens_on_every_replica_with_the_same_key() {
    let (a, b) = (Tickets::new(MASTER, Clock::manual(START_MS)), Tickets::new(MASTER, Clock::manual(START_MS)));
    let ticket = a.encrypt(b"session state").unwrap();
    assert_eq!(b.decrypt(&ticket).as_deref(), Some(&b"session state"[..]));
    assert!(!ticket.windows(13).any(|w| w == b"session state"), "the state is sealed, not copied");
    assert_ne!(a.encrypt(b"session state"), Some(ticket), "a fresh nonce per ticket");
}

#[test]
fn another_key_or_a_changed_byte_is_refused() {
    let a = Tickets::new(MASTER, Clock::manual(START_MS));
    let other = Tickets::new(b"another master key of thirty-two bytes", Clock::manual(START_MS));
    let ticket = a.encrypt(b"state").unwrap();
    assert_eq!(other.decrypt(&ticket), None);
    for i in 0..ticket.len() {
        let mut bad = ticket.clone();
        bad[i] ^= 0x01;
        assert_eq!(a.decrypt(&bad), None, "byte {i} changed");
    }
    for len in 0..ticket.len() {
        assert_eq!(a.decrypt(&ticket[..len]), None, "cut to {len} bytes");
    }
}

#[test]
fn keys_rotate_each_period_and_a_ticket_lives_two_periods_at_most() {
    let clock = Clock::manual(START_MS);
    let t = Tickets::new(MASTER, clock.clone());
    let ticket = t.encrypt(b"state").unwrap();
    clock.advance(period());
    assert!(t.decrypt(&ticket).is_some(), "still opens in the next period");
    let newer = t.encrypt(b"state").unwrap();
    assert_ne!(ticket[1..9], newer[1..9], "a new period, a new key");
    clock.advance(period());
    assert_eq!(t.decrypt(&ticket), None, "two periods later it is refused");
    assert!(t.decrypt(&newer).is_some());
}

#[test]
fn a_replica_whose_clock_is_behind_opens_tickets_of_the_next_period() {
    let ahead = Tickets::new(MASTER, Clock::manual(START_MS + PERIOD_SECS * 1000));
    let behind = Tickets::new(MASTER, Clock::manual(START_MS));
    assert!(behind.decrypt(&ahead.encrypt(b"state").unwrap()).is_some());
    let far_ahead = Tickets::new(MASTER, Clock::manual(START_MS + 2 * PERIOD_SECS * 1000));
    assert_eq!(behind.decrypt(&far_ahead.encrypt(b"state").unwrap()), None);
}
