//! Secrets on disk: the keys directory (`--keys-dir`, typically a Kubernetes Secret mount).
//!
//! Layout, one file per secret:
//! - `session-<kid>.pem`: Ed25519 private keys (PKCS#8 PEM) signing citizen session JWTs. Every one of
//!   them verifies; the one with the lexicographically greatest `kid` signs (kids are generated as
//!   `YYYYMMDD-<6 hex>`, so the newest wins). `kid` matches `[A-Za-z0-9_-]{1,64}`.
//! - `otp.key`: ≥ 32 random bytes, hex on one line; keys the HMAC of stored OTPs.
//! - `identity.key`: ≥ 32 random bytes, hex on one line; keys the HS256 upstream identity assertion.
//! - `audit.key`, `redact.key`: the same shape; key the audit trail's HMACs and the redaction tokens.
//! - `tickets.key`: the same shape; master of the TLS session-ticket keys (one per period, derived,
//!   so every replica with this directory resumes the others' sessions: `runtime::tls::tickets`).
//!
//! Files whose names start with `.` (the `..data` links of a Secret mount) and other names are ignored.
//! Nothing here prints key material: errors name files, and `Debug` shows kids only.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

/// File holding the OTP HMAC key.
pub const OTP_KEY_FILE: &str = "otp.key";
/// File holding the upstream identity assertion key.
pub const IDENTITY_KEY_FILE: &str = "identity.key";
/// Keys the HMACs that stand for mobiles and record references in the audit trail.
pub const AUDIT_KEY_FILE: &str = "audit.key";
/// Master key of the redaction profiles' HMAC tokens (one derived key per profile).
pub const REDACT_KEY_FILE: &str = "redact.key";
/// Master of the TLS session-ticket keys.
pub const TICKETS_KEY_FILE: &str = "tickets.key";
/// Minimum length of a symmetric key, in bytes.
pub const MIN_SYMMETRIC_KEY_BYTES: usize = 32;
/// Largest key file read; anything bigger is not a key.
const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;
const SESSION_PREFIX: &str = "session-";
const SESSION_SUFFIX: &str = ".pem";

/// Why the keys directory could not be read or written. Messages name files, never key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The keys directory is missing or unreadable.
    #[error("keys directory {}: {source}", path.display())]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The directory holds no `session-<kid>.pem`.
    #[error("keys directory {} holds no session signing key (session-<kid>.pem); run `otpgate keys generate`", path.display())]
    NoSessionKey {
        /// The directory.
        path: PathBuf,
    },
    /// A required key file is missing.
    #[error("key file {} is missing; run `otpgate keys generate`", path.display())]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// A key file could not be read.
    #[error("key file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A key file is larger than any key.
    #[error("key file {} is too large to be a key", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// A session key file is not an Ed25519 PKCS#8 private key in PEM.
    #[error("key file {}: {reason}", path.display())]
    BadPem {
        /// The file.
        path: PathBuf,
        /// What is wrong, in words that carry no key material.
        reason: &'static str,
    },
    /// A session key file name carries a kid outside `[A-Za-z0-9_-]{1,64}`.
    #[error("key file {}: kid must match [A-Za-z0-9_-]{{1,64}}", path.display())]
    BadKid {
        /// The file.
        path: PathBuf,
    },
    /// A symmetric key file is not one line of hex.
    #[error("key file {} must hold one line of hex", path.display())]
    BadHex {
        /// The file.
        path: PathBuf,
    },
    /// A symmetric key is shorter than [`MIN_SYMMETRIC_KEY_BYTES`].
    #[error("key file {} holds {len} bytes; at least {MIN_SYMMETRIC_KEY_BYTES} are required", path.display())]
    Short {
        /// The file.
        path: PathBuf,
        /// Length found, in bytes.
        len: usize,
    },
    /// A key file could not be written.
    #[error("writing key file {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// Key generation failed in the crypto library.
    #[error("generating a key failed: {0}")]
    Generate(&'static str),
    /// No `YYYYMMDD-<6 hex>` kid for today sorts after the newest existing kid (clock skew, or a
    /// hand-named kid such as `prod`); rename or remove that key file.
    #[error("cannot rotate in {}: existing kid {newest} sorts after any kid that can be made today", path.display())]
    Rotation {
        /// The directory.
        path: PathBuf,
        /// The newest existing kid.
        newest: String,
    },
}

/// Everything the gateway reads from the keys directory.
pub struct Secrets {
    /// Session JWT signing and verification keys.
    pub sessions: SessionKeys,
    /// Key of the HMAC over stored OTPs.
    pub otp_key: Vec<u8>,
    /// Key of the HS256 upstream identity assertion.
    pub identity_key: Vec<u8>,
    /// Key of the audit trail's identifier HMACs (security teams need it to query by mobile).
    pub audit_key: Vec<u8>,
    /// Master key of redaction HMAC tokens.
    pub redact_key: Vec<u8>,
    /// Master of the TLS session-ticket keys.
    pub tickets_key: Vec<u8>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets")
            .field("sessions", &self.sessions)
            .field("otp_key", &"[redacted]")
            .field("identity_key", &"[redacted]")
            .field("audit_key", &"[redacted]")
            .field("tickets_key", &"[redacted]")
            .field("redact_key", &"[redacted]")
            .finish()
    }
}

/// One verification key: the public half of a session key.
struct VerifyKey {
    decoding: DecodingKey,
    public_pem: String,
}

/// Session JWT keys: the active signing key and every key that verifies, by kid.
pub struct SessionKeys {
    active_kid: String,
    signing: EncodingKey,
    verifying: BTreeMap<String, VerifyKey>,
}

impl fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionKeys").field("active_kid", &self.active_kid).field("kids", &self.kids()).finish()
    }
}

impl SessionKeys {
    /// The kid of the key that signs new tokens.
    pub fn active_kid(&self) -> &str {
        &self.active_kid
    }

    /// Every kid that verifies, in ascending order (the last one is active).
    pub fn kids(&self) -> Vec<String> {
        self.verifying.keys().cloned().collect()
    }

    /// The private key that signs new tokens (the active kid's).
    pub(crate) fn signing_key(&self) -> &EncodingKey {
        &self.signing
    }

    /// The public key for `kid`, if it is one of ours. A pure map lookup: never touches the filesystem.
    pub fn verifying_key(&self, kid: &str) -> Option<&DecodingKey> {
        self.verifying.get(kid).map(|k| &k.decoding)
    }

    /// The public key for `kid` as SPKI PEM (public material, e.g. for publishing).
    pub fn public_key_pem(&self, kid: &str) -> Option<&str> {
        self.verifying.get(kid).map(|k| k.public_pem.as_str())
    }

    /// Build from `(kid, PKCS#8 PEM)` pairs. Errors name `session-<kid>.pem`.
    pub fn from_pems<I, K, P>(keys: I) -> Result<SessionKeys, KeyError>
    where
        I: IntoIterator<Item = (K, P)>,
        K: AsRef<str>,
        P: AsRef<str>,
    {
        let parsed = keys
            .into_iter()
            .map(|(kid, pem)| {
                let path = PathBuf::from(session_file_name(kid.as_ref()));
                if !valid_kid(kid.as_ref()) {
                    return Err(KeyError::BadKid { path });
                }
                Ok((kid.as_ref().to_owned(), parse_session_pem(&path, pem.as_ref())?))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::assemble(parsed, Path::new("(in memory)"))
    }

    /// One freshly generated in-memory key (tests, throwaway demos).
    pub fn generate_ephemeral() -> Result<SessionKeys, KeyError> {
        let pem = generate_session_pem()?;
        Self::from_pems([(kid_for_day(today_days()), pem)])
    }

    fn assemble(parsed: Vec<(String, ParsedKey)>, dir: &Path) -> Result<SessionKeys, KeyError> {
        let mut verifying = BTreeMap::new();
        let mut active: Option<(String, EncodingKey)> = None;
        for (kid, key) in parsed {
            if active.as_ref().is_none_or(|(a, _)| kid > *a) {
                active = Some((kid.clone(), key.signing));
            }
            verifying.insert(kid, key.verify);
        }
        let (active_kid, signing) = active.ok_or_else(|| KeyError::NoSessionKey { path: dir.to_owned() })?;
        Ok(SessionKeys { active_kid, signing, verifying })
    }
}

struct ParsedKey {
    signing: EncodingKey,
    verify: VerifyKey,
}

/// Parse one PKCS#8 Ed25519 PEM and prove the halves belong together with a sign/verify round.
fn parse_session_pem(path: &Path, pem: &str) -> Result<ParsedKey, KeyError> {
    let bad = |reason| KeyError::BadPem { path: path.to_owned(), reason };
    let pair = rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(pem, &rcgen::PKCS_ED25519)
        .map_err(|_| bad("not an Ed25519 PKCS#8 private key in PEM"))?;
    let signing = EncodingKey::from_ed_pem(pem.as_bytes()).map_err(|_| bad("not an Ed25519 PKCS#8 private key"))?;
    let public_pem = pair.public_key_pem();
    let decoding = DecodingKey::from_ed_pem(public_pem.as_bytes()).map_err(|_| bad("public key cannot be derived"))?;
    let probe = b"otpgate key self-test";
    let signature =
        jsonwebtoken::crypto::sign(probe, &signing, Algorithm::EdDSA).map_err(|_| bad("key cannot sign"))?;
    match jsonwebtoken::crypto::verify(&signature, probe, &decoding, Algorithm::EdDSA) {
        Ok(true) => Ok(ParsedKey { signing, verify: VerifyKey { decoding, public_pem } }),
        _ => Err(bad("key failed its sign/verify self-test")),
    }
}

/// Whether `kid` matches `[A-Za-z0-9_-]{1,64}`.
pub fn valid_kid(kid: &str) -> bool {
    (1..=64).contains(&kid.len()) && kid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn session_file_name(kid: &str) -> String {
    format!("{SESSION_PREFIX}{kid}{SESSION_SUFFIX}")
}

/// Load every secret from `dir`.
pub fn load(dir: &Path) -> Result<Secrets, KeyError> {
    let mut parsed = Vec::new();
    for (kid, path) in session_files(dir)? {
        let pem = read_key_file(&path)?;
        let pem = String::from_utf8(pem).map_err(|_| KeyError::BadPem { path: path.clone(), reason: "not text" })?;
        parsed.push((kid, parse_session_pem(&path, &pem)?));
    }
    let sessions = SessionKeys::assemble(parsed, dir)?;
    let otp_key = read_symmetric(&dir.join(OTP_KEY_FILE))?;
    let identity_key = read_symmetric(&dir.join(IDENTITY_KEY_FILE))?;
    let audit_key = read_symmetric(&dir.join(AUDIT_KEY_FILE))?;
    let redact_key = read_symmetric(&dir.join(REDACT_KEY_FILE))?;
    let tickets_key = read_symmetric(&dir.join(TICKETS_KEY_FILE))?;
    Ok(Secrets { sessions, otp_key, identity_key, audit_key, redact_key, tickets_key })
}

/// A full set of random in-memory secrets (`otpgate check` without a keys directory; tests).
pub fn ephemeral() -> Result<Secrets, KeyError> {
    let random = || rand::random::<[u8; 32]>().to_vec();
    Ok(Secrets {
        sessions: SessionKeys::generate_ephemeral()?,
        otp_key: random(),
        identity_key: random(),
        audit_key: random(),
        redact_key: random(),
        tickets_key: random(),
    })
}

/// The `session-<kid>.pem` files of `dir`, as `(kid, path)`, sorted by kid. A bad kid is an error.
fn session_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, KeyError> {
    let dir_err = |source| KeyError::Dir { path: dir.to_owned(), source };
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(dir_err)? {
        let entry = entry.map_err(dir_err)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') {
            continue;
        }
        let Some(kid) = name.strip_prefix(SESSION_PREFIX).and_then(|rest| rest.strip_suffix(SESSION_SUFFIX)) else {
            continue;
        };
        if !valid_kid(kid) {
            return Err(KeyError::BadKid { path: entry.path() });
        }
        found.push((kid.to_owned(), entry.path()));
    }
    found.sort();
    Ok(found)
}

fn read_key_file(path: &Path) -> Result<Vec<u8>, KeyError> {
    let file = fs::File::open(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => KeyError::Missing { path: path.to_owned() },
        _ => KeyError::Read { path: path.to_owned(), source },
    })?;
    let mut bytes = Vec::new();
    file.take(MAX_KEY_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| KeyError::Read { path: path.to_owned(), source })?;
    if bytes.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(KeyError::TooLarge { path: path.to_owned() });
    }
    Ok(bytes)
}

/// Read a hex key file: one line (surrounding whitespace ignored), at least 32 bytes.
fn read_symmetric(path: &Path) -> Result<Vec<u8>, KeyError> {
    let text = read_key_file(path)?;
    let key = hex::decode(text.trim_ascii()).map_err(|_| KeyError::BadHex { path: path.to_owned() })?;
    if key.len() < MIN_SYMMETRIC_KEY_BYTES {
        return Err(KeyError::Short { path: path.to_owned(), len: key.len() });
    }
    Ok(key)
}

/// Create what is missing in `dir`: the directory (mode 0700), a session key if none exists, and each
/// symmetric key file. Files are created with mode 0600 and never overwritten. Returns the files written.
pub fn generate(dir: &Path) -> Result<Vec<PathBuf>, KeyError> {
    create_dir(dir)?;
    let mut written = Vec::new();
    if session_files(dir)?.is_empty() {
        written.push(write_new_session_key(dir, kid_for_day(today_days()))?);
    }
    for name in [OTP_KEY_FILE, IDENTITY_KEY_FILE, AUDIT_KEY_FILE, REDACT_KEY_FILE, TICKETS_KEY_FILE] {
        let path = dir.join(name);
        if !path.exists() {
            let key: [u8; MIN_SYMMETRIC_KEY_BYTES] = rand::random();
            write_new_file(&path, format!("{}\n", hex::encode(key)).as_bytes())?;
            written.push(path);
        }
    }
    Ok(written)
}

/// Add a session key whose kid sorts after every existing one, so it becomes active; older keys stay
/// and keep verifying until removed by hand (after the token lifetime). Returns the file written.
pub fn rotate(dir: &Path) -> Result<PathBuf, KeyError> {
    let newest = session_files(dir)?.pop().map(|(kid, _)| kid);
    let kid = next_kid(newest.as_deref(), today_days())
        .ok_or_else(|| KeyError::Rotation { path: dir.to_owned(), newest: newest.clone().unwrap_or_default() })?;
    write_new_session_key(dir, kid)
}

/// A kid for `day` (days since the Unix epoch) that sorts after `newest`, or `None` when impossible.
fn next_kid(newest: Option<&str>, day: i64) -> Option<String> {
    let date = date_prefix(day);
    let low = match newest {
        None => 0,
        Some(n) if n < date.as_str() => 0,
        Some(n) => {
            // Same day: pick a suffix above the newest one's.
            let hex = n.strip_prefix(&date)?.strip_prefix('-')?.get(..6)?;
            u32::from_str_radix(hex, 16).ok()?.checked_add(1)?
        }
    };
    if low > 0xff_ffff {
        return None;
    }
    let suffix = low + rand::random_range(0..=(0xff_ffff - low).min(0xffff));
    let kid = format!("{date}-{suffix:06x}");
    newest.is_none_or(|n| kid.as_str() > n).then_some(kid)
}

fn kid_for_day(day: i64) -> String {
    // Leave room above for same-day rotations.
    format!("{}-{:06x}", date_prefix(day), rand::random_range(0..=0xffffu32))
}

fn today_days() -> i64 {
    i64::try_from(crate::clock::system_now_ms() / 86_400_000).unwrap_or(0)
}

/// `YYYYMMDD` for a day count since 1970-01-01.
fn date_prefix(days: i64) -> String {
    let epoch = jiff::civil::date(1970, 1, 1);
    let day = epoch.checked_add(jiff::SignedDuration::from_hours(days.saturating_mul(24))).unwrap_or(epoch);
    day.strftime("%Y%m%d").to_string()
}

fn generate_session_pem() -> Result<String, KeyError> {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)
        .map_err(|_| KeyError::Generate("Ed25519 key generation failed"))?;
    Ok(pair.serialize_pem())
}

fn write_new_session_key(dir: &Path, kid: String) -> Result<PathBuf, KeyError> {
    let path = dir.join(session_file_name(&kid));
    write_new_file(&path, generate_session_pem()?.as_bytes())?;
    Ok(path)
}

fn create_dir(dir: &Path) -> Result<(), KeyError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|source| KeyError::Dir { path: dir.to_owned(), source })
}

/// Create `path` (mode 0600, failing if it exists) and write `contents`; remove it again on failure.
fn write_new_file(path: &Path, contents: &[u8]) -> Result<(), KeyError> {
    let err = |source| KeyError::Write { path: path.to_owned(), source };
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(err)?;
    if let Err(source) = file.write_all(contents).and_then(|()| file.sync_all()) {
        drop(file);
        let _ = fs::remove_file(path);
        return Err(err(source));
    }
    Ok(())
}

#[cfg(test)]
mod tests;

/// A new random partner API key: 32 CSPRNG bytes, base64url.
pub fn new_api_key() -> String {
    use base64::Engine;
    use rand::Rng;
    let bytes: [u8; 32] = rand::rng().random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The hex SHA-256 a policy stores for an API key.
pub fn api_key_sha256(key: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(key.as_bytes()))
}
