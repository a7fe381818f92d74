//! Tests of the redaction module, one file per concern: transforms, path rules and profiles, the
//! streaming walker (chunking and validation), its bulk scans, property tests, decoders, and the
//! fuzz corpus replay.

mod actions;
mod bulk;
mod corpus;
mod decoding;
mod paths;
mod props;
mod stream;

use super::*;

/// The HMAC key of test profiles.
pub(super) const KEY: &[u8] = b"test-profile-key-0123456789";

/// The issue's example profile (deny).
pub(super) const CITIZEN: &str = r#"
default: deny
dry_run: false
rules:
  - {path: "beneficiaries[*].photo_id_number", action: mask, keep_last: 4, format: "XXXX-XXXX-####"}
  - {path: "beneficiaries[*].name", action: keep}
  - {path: "beneficiaries[*].birth_year", action: keep}
  - {path: "beneficiaries[*].mobile_number", action: mask, keep_last: 4, format: "XXXXXX####"}
  - {path: "**.aadhaar*", action: drop}
  - {path: "beneficiaries[*].dose1_date", action: generalize}
  - {path: "beneficiaries[*].mobile", action: hmac}
  - {path: "beneficiaries[*].comorbidity_ind", action: "null"}
  - {path: "ttl", action: keep}
"#;

/// Compile a profile from YAML, panicking on any error.
pub(super) fn profile(yaml: &str) -> Profile {
    let raw: RawProfile = serde_yaml_ng::from_str(yaml).expect("profile YAML");
    compile("test", &raw, KEY).expect("profile compiles")
}

/// Redact `input` in one chunk; the output as a string.
pub(super) fn run(p: &Profile, input: &str) -> String {
    let (out, _) = redact(p, input.as_bytes()).expect("redaction succeeds");
    String::from_utf8(out).expect("UTF-8 output")
}

/// Redact `input` split at the given (ascending) offsets.
pub(super) fn split_run(p: &Profile, input: &[u8], cuts: &[usize]) -> Result<(Vec<u8>, Report), RedactError> {
    let mut out = Vec::new();
    let mut r = Redactor::new(p, Limits::default());
    let mut from = 0;
    for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
        r.feed(&input[from..cut], &mut out)?;
        from = cut;
    }
    let report = r.finish(&mut out)?;
    Ok((out, report))
}

/// Redact `input` fed in chunks of `n` bytes.
pub(super) fn chunks_run(p: &Profile, input: &[u8], n: usize) -> Result<(Vec<u8>, Report), RedactError> {
    let cuts: Vec<usize> = (1..input.len().div_ceil(n)).map(|k| k * n).collect();
    split_run(p, input, &cuts)
}

pub(super) use super::fuzzing::valid_json;
