//! The invariant the fuzz target (`fuzz/fuzz_targets/redact.rs`) and the corpus regression test
//! (`tests/corpus.rs`) check on one input. Not part of the gateway's API.
//!
//! The input is the document itself; its first byte picks a split point, so the fuzzer explores
//! chunk boundaries too. For each of a few profiles (deny, allow, dry run):
//! - feeding the input in two chunks gives exactly the result of one chunk;
//! - `Ok` means the input was valid JSON and the output is valid JSON;
//! - a dry run's output is the input.

use super::{
    Action, DefaultPolicy, Limits, Profile, RawProfile, RawRule, RedactError, Redactor, Report, compile, redact,
};

fn rule(path: &str, action: Action) -> RawRule {
    let (keep_last, format) = match action {
        Action::Mask => (Some(4), Some("XXXX-XXXX-####".to_string())),
        _ => (None, None),
    };
    RawRule { path: path.to_string(), action, keep_last, format }
}

fn profiles() -> Vec<RawProfile> {
    let citizen = vec![
        rule("beneficiaries[*].photo_id_number", Action::Mask),
        rule("beneficiaries[*].name", Action::Keep),
        rule("**.aadhaar*", Action::Drop),
        rule("beneficiaries[*].dose1_date", Action::Generalize),
        rule("beneficiaries[*].mobile", Action::Hmac),
        rule("beneficiaries[*].comorbidity_ind", Action::Null),
        rule("ttl", Action::Keep),
        rule("[*].k*", Action::Keep),
    ];
    let loose = vec![rule("**.id*", Action::Mask), rule("a.b[*]", Action::Drop), rule("**.x", Action::Keep)];
    vec![
        RawProfile { default: DefaultPolicy::Deny, dry_run: false, rules: citizen.clone() },
        RawProfile { default: DefaultPolicy::Allow, dry_run: false, rules: loose },
        RawProfile { default: DefaultPolicy::Deny, dry_run: true, rules: citizen },
    ]
}

/// Whether `bytes` is one valid JSON document, per serde_json. A number beyond f64 range is
/// grammatically valid JSON, so for that one complaint a grammar-only parse (plus UTF-8) decides.
pub fn valid_json(bytes: &[u8]) -> bool {
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(_) => true,
        Err(e) if e.to_string().starts_with("number out of range") => {
            std::str::from_utf8(bytes).is_ok() && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok()
        }
        Err(_) => false,
    }
}

fn split(profile: &Profile, data: &[u8], cut: usize) -> Result<(Vec<u8>, Report), RedactError> {
    let mut out = Vec::new();
    let mut r = Redactor::new(profile, Limits::default());
    r.feed(&data[..cut], &mut out)?;
    r.feed(&data[cut..], &mut out)?;
    let report = r.finish(&mut out)?;
    Ok((out, report))
}

/// The compiled profiles the invariant is checked under (compile once, check many).
pub struct Fixture {
    profiles: Vec<(bool, Profile)>,
}

impl Fixture {
    /// Compile the fixture's profiles.
    pub fn new() -> Result<Fixture, String> {
        let profiles = profiles()
            .iter()
            .map(|raw| {
                let p = compile("fuzz", raw, b"fuzz-profile-key-0123456789").map_err(|e| format!("profile: {e:?}"))?;
                Ok((raw.dry_run, p))
            })
            .collect::<Result<_, String>>()?;
        Ok(Fixture { profiles })
    }

    /// Check the invariant on one input, split where its first byte says; `Err` describes the
    /// violation.
    pub fn check(&self, data: &[u8]) -> Result<(), String> {
        self.check_at(data, data.first().map_or(0, |&b| usize::from(b) % (data.len() + 1)))
    }

    /// Check the invariant on one input split at `cut` (≤ `data.len()`).
    pub fn check_at(&self, data: &[u8], cut: usize) -> Result<(), String> {
        let cut = cut.min(data.len());
        for (i, (dry_run, profile)) in self.profiles.iter().enumerate() {
            let whole = redact(profile, data);
            if split(profile, data, cut) != whole {
                return Err(format!("profile {i}: splitting at {cut} changed the result"));
            }
            if let Ok((out, _)) = &whole {
                if !valid_json(data) {
                    return Err(format!("profile {i}: accepted invalid JSON"));
                }
                if !valid_json(out) {
                    return Err(format!("profile {i}: produced invalid JSON"));
                }
                if *dry_run && out != data {
                    return Err(format!("profile {i}: dry run changed the body"));
                }
            }
        }
        Ok(())
    }
}

/// [`Fixture::check`] with a fixture compiled for this one call.
pub fn check(data: &[u8]) -> Result<(), String> {
    Fixture::new()?.check(data)
}

/// Replay the committed corpus `fuzz/corpus/<target>/` through `check` (the corpus tests of every
/// fuzz target use this); panics naming the first file that violates, returns how many ran.
#[cfg(test)]
pub(crate) fn replay(target: &str, check: impl Fn(&[u8]) -> Result<(), String>) -> usize {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("corpus entry").path();
        let data = std::fs::read(&path).expect("corpus file");
        check(&data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        files += 1;
    }
    files
}
