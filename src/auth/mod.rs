//! Identification: turning credentials into a [`Caller`].
//!
//! Each authenticator either recognises its credential or says it is not responsible; a request
//! that no authenticator recognises is `Anonymous`. Citizen OTP sessions and partner clients plug
//! in here; until they do, every caller is anonymous, so citizen and partner routes stay closed.

pub mod delivery;
pub mod jwt;
pub mod keys;
pub mod otp;

use http::HeaderMap;

/// Who is calling, as proven by credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No credentials, or none that this gateway accepts on this route.
    Anonymous,
}

impl Caller {
    /// Metric and audit label of the caller kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Caller::Anonymous => "anonymous",
        }
    }
}

/// Identify the caller of one request. Credentials never appear in the result's `Debug` output.
pub fn identify(_headers: &HeaderMap) -> Caller {
    Caller::Anonymous
}
