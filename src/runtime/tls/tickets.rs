//! TLS session tickets that every replica can open (ARCHITECTURE.md, "TLS").
//!
//! A returning client presents a ticket instead of running a full handshake; it may land on any
//! replica behind the Service, so the ticket key cannot be a random key of one process. Each period
//! (6 h) has its own AES-256-GCM key, `HMAC-SHA256(tickets.key, "otpgate tls ticket v1" ‖ period)`:
//! every replica with the same keys directory derives the same key for the same period, and keys
//! rotate without any coordination. A ticket is `version ‖ period ‖ nonce ‖ sealed state`; it opens
//! in the period it was made and the next one (plus one period ahead, for a replica whose clock is a
//! little behind), so it lives at most 12 h, and a ticket of any other period, key or shape is
//! refused — the client then runs a full handshake, nothing else happens.
//!
//! What a stolen `tickets.key` gives: it opens tickets, i.e. the resumption secrets of sessions.
//! rustls resumes TLS 1.3 only with `psk_dhe_ke`, so every resumed handshake still runs a fresh
//! (EC)DHE and recorded TLS 1.3 traffic stays secret; a TLS 1.2 ticket carries the master secret,
//! so rotate the file (every replica at once) if it leaks.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::clock::Clock;

/// Length of one key period; a ticket lives at most two of them.
pub const PERIOD_SECS: u64 = 6 * 3600;
const VERSION: u8 = 1;
const HEADER_LEN: usize = 1 + 8;
const LABEL: &[u8] = b"otpgate tls ticket v1";

/// Seals and opens session tickets with the key of the current period.
pub struct Tickets {
    master: Vec<u8>,
    clock: Clock,
}

impl fmt::Debug for Tickets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tickets").field("period_secs", &PERIOD_SECS).finish_non_exhaustive()
    }
}

impl Tickets {
    /// Tickets keyed by `master` (the keys directory's `tickets.key`), on `clock`'s time.
    pub fn new(master: &[u8], clock: Clock) -> Tickets {
        Tickets { master: master.to_vec(), clock }
    }

    fn period(&self) -> u64 {
        self.clock.now_ms() / 1000 / PERIOD_SECS
    }

    fn key(&self, period: u64) -> Option<LessSafeKey> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.master).ok()?;
        mac.update(LABEL);
        mac.update(&period.to_be_bytes());
        let bytes = mac.finalize().into_bytes();
        Some(LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &bytes).ok()?))
    }
}

impl rustls::server::ProducesTickets for Tickets {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        // Guaranteed to open for one period; clients may try a little longer and fall back.
        u32::try_from(PERIOD_SECS).unwrap_or(u32::MAX)
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let period = self.period();
        let key = self.key(period)?;
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).ok()?;
        let mut out = Vec::with_capacity(HEADER_LEN + NONCE_LEN + plain.len() + AES_256_GCM.tag_len());
        out.push(VERSION);
        out.extend_from_slice(&period.to_be_bytes());
        out.extend_from_slice(&nonce);
        let mut sealed = plain.to_vec();
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(&out[..HEADER_LEN]), &mut sealed)
            .ok()?;
        out.extend_from_slice(&sealed);
        Some(out)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        let (header, rest) = cipher.split_at_checked(HEADER_LEN)?;
        let (nonce, sealed) = rest.split_at_checked(NONCE_LEN)?;
        let (&version, period) = header.split_first()?;
        let period = u64::from_be_bytes(period.try_into().ok()?);
        let now = self.period();
        if version != VERSION || period.saturating_add(1) < now || period > now.saturating_add(1) {
            return None;
        }
        let key = self.key(period)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buf = sealed.to_vec();
        let plain = key.open_in_place(nonce, Aad::from(header), &mut buf).ok()?;
        Some(plain.to_vec())
    }
}

#[cfg(test)]
mod tests;
