//! Ownership: a citizen who proved a mobile number by OTP sees only records registered to that number.
//!
//! Two pure checks, with no I/O, that fail closed:
//!
//! - [`check_request`] runs before forwarding: every subject the request names (a mobile, a photo id, a
//!   beneficiary reference), in a path parameter, the query string or a JSON body, must be the caller's. Anything a backend
//!   could read in more than one way (a repeated parameter under any spelling, double encoding, duplicate
//!   JSON keys, a form body) is refused as [`OwnershipError::Ambiguous`], never guessed.
//! - [`filter_response`] runs on the upstream's answer: it keeps only the records whose owner field is the
//!   caller's mobile, whatever the backend returned; when nothing is left the answer is
//!   [`OwnershipError::NothingLeft`]. The keys it reads are read as the redactor after it reads them
//!   (case-insensitively, decoded): a second spelling of one is refused, never passed unfiltered.
//!
//! Helpers: [`canonical_mobile`] (the one mobile spelling rule), [`parse_strict`] (JSON that refuses
//! duplicate keys) and [`same_key`] / [`unique_member`] (keys as a case-folding reader sees them).

mod keys;
mod mobile;
pub(crate) mod query;
mod request;
mod response;
mod strict;

#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::fmt;

pub use keys::{Spelling, same_key, unique_member};
pub use mobile::canonical_mobile;
pub use request::check_request;
pub use response::filter_response;
pub use strict::parse_strict;

/// What the caller owns: their mobile (10 digits) and, when known, their beneficiaries and those
/// beneficiaries' appointments.
///
/// `Debug` prints only whether the mobile is set and how many references are held, never the values.
#[derive(Clone, Default)]
pub struct Subjects {
    /// The verified mobile, canonical 10 digits (other spellings accepted by [`canonical_mobile`] work too).
    pub mobile: String,
    /// Beneficiary reference ids registered to the mobile (13–14 digits).
    pub beneficiary_refs: HashSet<String>,
    /// Photo id numbers (12 digits) of those beneficiaries.
    pub photo_ids: HashSet<String>,
    /// Appointment ids (UUID form, lowercase) of those beneficiaries.
    pub appointment_ids: HashSet<String>,
}

impl fmt::Debug for Subjects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subjects")
            .field("mobile", &if self.mobile.is_empty() { "<none>" } else { "<set>" })
            .field("beneficiary_refs", &self.beneficiary_refs.len())
            .field("photo_ids", &self.photo_ids.len())
            .field("appointment_ids", &self.appointment_ids.len())
            .finish()
    }
}

/// Which kind of subject a parameter names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    /// A 10-digit mobile; must be the caller's.
    Mobile,
    /// A 12-digit photo id number; must be in [`Subjects::photo_ids`].
    PhotoId,
    /// A 13–14 digit beneficiary reference id; must be in [`Subjects::beneficiary_refs`].
    Beneficiary,
    /// An appointment id in UUID form (`8-4-4-4-12` hex digits, either case); must be in
    /// [`Subjects::appointment_ids`] (compared lowercased).
    Appointment,
}

/// A parameter that names a subject, looked for in the route's path parameters, the query string AND a
/// JSON body.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestRule {
    /// Parameter name, compared after the normalization described on [`check_request`]. The path form
    /// `{name}` names the same parameter and says it is one of the route's path parameters (a policy whose
    /// route template has no `{name}` is refused when it is compiled).
    pub param: String,
    /// What the parameter's value names.
    pub kind: SubjectKind,
}

impl RequestRule {
    /// The parameter's name: `param` without the braces of the path form.
    pub fn name(&self) -> &str {
        self.param.strip_prefix('{').and_then(|p| p.strip_suffix('}')).unwrap_or(&self.param)
    }

    /// Written in the path form `{name}`.
    pub fn in_path(&self) -> bool {
        self.name().len() != self.param.len()
    }
}

/// Where the owner of each record sits in a response.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseRule {
    /// Top-level key holding an array of records, e.g. `beneficiaries`: spelled exactly so, and no other
    /// top-level key may be another spelling of it ([`same_key`]).
    pub records: String,
    /// Field in each record holding the owner's mobile, e.g. `mobile_number`: spelled exactly so, and no
    /// other key of any record may be another spelling of it.
    pub owner: String,
}

/// Why an ownership check refused. Messages are static and never carry personal data.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OwnershipError {
    /// 400: the request could be read in more than one way (repeated subject parameter, duplicate JSON key,
    /// bad or double encoding, a non-JSON body where JSON is required, a malformed subject value, …).
    #[error("ambiguous request: {0}")]
    Ambiguous(&'static str),
    /// 403: the request names a subject that is not the caller's.
    #[error("the request names a record that is not the caller's")]
    NotOwned,
    /// 404: the response filter removed every record.
    #[error("no record registered to the caller")]
    NothingLeft,
    /// 502: the upstream's answer is not JSON, its records are not an array, a record is not an object, or a
    /// key the filter reads is spelled more than one way.
    #[error("bad upstream response: {0}")]
    BadUpstream(&'static str),
}

impl OwnershipError {
    /// The HTTP status this error is answered with (400, 403, 404 or 502).
    pub fn status_code(&self) -> u16 {
        match self {
            OwnershipError::Ambiguous(_) => 400,
            OwnershipError::NotOwned => 403,
            OwnershipError::NothingLeft => 404,
            OwnershipError::BadUpstream(_) => 502,
        }
    }
}

/// A request that passed [`check_request`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checked {
    /// How many subject values were checked (0 when the request names none).
    pub named: usize,
}

/// A response that passed [`filter_response`].
///
/// `Debug` prints the body length only (the body holds personal data).
#[derive(Clone, PartialEq, Eq)]
pub struct Filtered {
    /// The filtered document, serialized JSON.
    pub body: Vec<u8>,
    /// The same document as parsed (strictly), for readers after the filter.
    pub doc: serde_json::Value,
    /// Records kept (owned by the caller); at least 1.
    pub kept: usize,
    /// Records dropped (someone else's, masked, or without a usable owner field).
    pub dropped: usize,
}

impl fmt::Debug for Filtered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Filtered")
            .field("body_len", &self.body.len())
            .field("kept", &self.kept)
            .field("dropped", &self.dropped)
            .finish()
    }
}
