use super::*;

/// Throwaway Ed25519 key from `openssl genpkey -algorithm ed25519` (PKCS#8 v1, no public key).
const OPENSSL_ED25519: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIBmiStuIYxi5Rl/kE2o8kSlsgdhIiTylG5T6IVS6K/Gc
-----END PRIVATE KEY-----
";

/// Throwaway P-256 key (PKCS#8): a valid private key of the wrong type.
const P256_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg5PmATJLGBrPXUzwn
Kxk25lN/I2iN6DON1zUXiRF4seOhRANCAARNhMJLFnIDIpzF0ehiUNGDymdVZkdN
3ipnHNxaS5tloMH/US1FK2IGfluQ0XqtZIC7bSnVt1mU6f93oyYN/pGC
-----END PRIVATE KEY-----
";

const HEX_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

fn put(dir: &Path, name: &str, contents: &str) {
    fs::write(dir.join(name), contents).unwrap();
}

/// A complete keys directory with one session key of kid `kid`.
fn full_dir(kid: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    put(dir.path(), &format!("session-{kid}.pem"), &generate_session_pem().unwrap());
    put(dir.path(), OTP_KEY_FILE, &format!("{HEX_KEY}\n"));
    put(dir.path(), IDENTITY_KEY_FILE, HEX_KEY);
    put(dir.path(), AUDIT_KEY_FILE, HEX_KEY);
    put(dir.path(), REDACT_KEY_FILE, HEX_KEY);
    put(dir.path(), TICKETS_KEY_FILE, HEX_KEY);
    dir
}

#[test]
fn loads_a_complete_directory() {
    let dir = full_dir("20250101-000001");
    let secrets = load(dir.path()).unwrap();
    assert_eq!(secrets.sessions.active_kid(), "20250101-000001");
    assert_eq!(secrets.sessions.kids(), vec!["20250101-000001".to_owned()]);
    assert_eq!(secrets.otp_key, hex::decode(HEX_KEY).unwrap());
    assert_eq!(secrets.identity_key.len(), 32);
    assert!(secrets.sessions.verifying_key("20250101-000001").is_some());
    assert!(secrets.sessions.verifying_key("20250101-000002").is_none());
}

#[test]
fn greatest_kid_is_active_and_all_verify() {
    let dir = full_dir("20250101-000001");
    put(dir.path(), "session-20250301-00aaaa.pem", &generate_session_pem().unwrap());
    put(dir.path(), "session-20250201-ffffff.pem", &generate_session_pem().unwrap());
    let keys = load(dir.path()).unwrap().sessions;
    assert_eq!(keys.active_kid(), "20250301-00aaaa");
    assert_eq!(keys.kids(), ["20250101-000001", "20250201-ffffff", "20250301-00aaaa"]);
}

#[test]
fn ignores_dotfiles_and_unrelated_names() {
    let dir = full_dir("k1");
    fs::create_dir(dir.path().join("..data")).unwrap();
    put(dir.path(), ".session-zz.pem", "garbage");
    put(dir.path(), "README", "garbage");
    put(dir.path(), "session-zz.pem.bak", "garbage");
    assert_eq!(load(dir.path()).unwrap().sessions.kids(), ["k1"]);
}

#[test]
fn accepts_openssl_pkcs8_v1_keys() {
    let keys = SessionKeys::from_pems([("ossl", OPENSSL_ED25519)]).unwrap();
    assert_eq!(keys.active_kid(), "ossl");
    assert!(keys.public_key_pem("ossl").unwrap().contains("PUBLIC KEY"));
}

#[test]
fn missing_directory_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = load(&missing).unwrap_err();
    assert!(matches!(err, KeyError::Dir { .. }), "{err:?}");
    assert!(err.to_string().contains("nope"));
}

#[test]
fn directory_without_session_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    put(dir.path(), OTP_KEY_FILE, HEX_KEY);
    assert!(matches!(load(dir.path()), Err(KeyError::NoSessionKey { .. })));
}

#[test]
fn bad_pem_is_named_without_its_contents() {
    for contents in ["not a pem", P256_KEY, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"] {
        let dir = full_dir("k1");
        put(dir.path(), "session-k2.pem", contents);
        let err = load(dir.path()).unwrap_err();
        assert!(matches!(err, KeyError::BadPem { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("session-k2.pem"), "{msg}");
        assert!(!msg.contains("MIGH") && !msg.contains("AAAA"), "{msg}");
    }
}

#[test]
fn bad_kids_are_refused() {
    for name in ["session-.pem", "session-a.b.pem", "session-a b.pem", &format!("session-{}.pem", "a".repeat(65))] {
        let dir = full_dir("k1");
        put(dir.path(), name, &generate_session_pem().unwrap());
        let err = load(dir.path()).unwrap_err();
        assert!(matches!(err, KeyError::BadKid { .. }), "{name}: {err:?}");
    }
    assert!(matches!(SessionKeys::from_pems([("../x", OPENSSL_ED25519)]), Err(KeyError::BadKid { .. })));
}

#[test]
fn valid_kid_pattern() {
    assert!(valid_kid("20250101-a1b2c3"));
    assert!(valid_kid("A_z-9"));
    assert!(valid_kid(&"a".repeat(64)));
    for bad in ["", "a.b", "../etc", "a/b", "é", "' OR 1=1", &"a".repeat(65)] {
        assert!(!valid_kid(bad), "{bad}");
    }
}

#[test]
fn symmetric_key_errors_are_named() {
    let cases: [(&str, Option<&str>); 8] = [
        (OTP_KEY_FILE, None),
        (TICKETS_KEY_FILE, None),
        (AUDIT_KEY_FILE, None),
        (REDACT_KEY_FILE, Some("zz")),
        (OTP_KEY_FILE, Some("zz not hex")),
        (IDENTITY_KEY_FILE, Some("0011\n2233")),
        (IDENTITY_KEY_FILE, Some("00112233445566778899aabbccddeeff")),
        (OTP_KEY_FILE, Some("")),
    ];
    for (name, contents) in cases {
        let dir = full_dir("k1");
        match contents {
            Some(c) => put(dir.path(), name, c),
            None => fs::remove_file(dir.path().join(name)).unwrap(),
        }
        let err = load(dir.path()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(name), "{msg}");
        match contents {
            None => assert!(matches!(err, KeyError::Missing { .. }), "{err:?}"),
            Some("00112233445566778899aabbccddeeff") => {
                assert!(matches!(err, KeyError::Short { len: 16, .. }), "{err:?}");
                assert!(!msg.contains("0011223344"), "{msg}");
            }
            Some("") => assert!(matches!(err, KeyError::Short { len: 0, .. }), "{err:?}"),
            Some(_) => assert!(matches!(err, KeyError::BadHex { .. }), "{err:?}"),
        }
    }
}

#[test]
fn oversized_key_file_is_refused() {
    let dir = full_dir("k1");
    put(dir.path(), OTP_KEY_FILE, &"00".repeat(40_000));
    assert!(matches!(load(dir.path()), Err(KeyError::TooLarge { .. })));
}

#[test]
fn debug_never_prints_key_material() {
    let dir = full_dir("k1");
    let secrets = load(dir.path()).unwrap();
    let debug = format!("{secrets:?}");
    assert!(debug.contains("k1"), "{debug}");
    assert!(!debug.contains("0011223344") && !debug.contains("[0, 17"), "{debug}");
    assert!(!debug.contains("PRIVATE") && !debug.contains("MC4C"), "{debug}");
}

#[test]
fn generate_creates_what_is_missing_with_private_modes() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("keys").join("nested");
    let written = generate(&dir).unwrap();
    assert_eq!(written.len(), 6, "session key, otp, identity, audit, redact, tickets: {written:?}");
    let secrets = load(&dir).unwrap();
    assert_eq!(secrets.sessions.kids().len(), 1);
    assert_eq!(secrets.otp_key.len(), 32);
    assert_ne!(secrets.otp_key, secrets.identity_key);
    assert_ne!(secrets.audit_key, secrets.redact_key);
    assert_ne!(secrets.redact_key, secrets.tickets_key);
    let active = secrets.sessions.active_kid();
    assert!(active.starts_with(&date_prefix(today_days())), "{active}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        for path in &written {
            assert_eq!(fs::metadata(path).unwrap().permissions().mode() & 0o777, 0o600, "{path:?}");
        }
    }
    // A second run changes nothing; a lost otp.key is recreated alone.
    assert!(generate(&dir).unwrap().is_empty());
    fs::remove_file(dir.join(OTP_KEY_FILE)).unwrap();
    assert_eq!(generate(&dir).unwrap(), vec![dir.join(OTP_KEY_FILE)]);
    assert_eq!(load(&dir).unwrap().sessions.active_kid(), active);
}

#[test]
fn rotate_adds_a_new_active_key_and_keeps_the_old() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path()).unwrap();
    let first = load(dir.path()).unwrap().sessions.active_kid().to_owned();
    let path = rotate(dir.path()).unwrap();
    let second = rotate(dir.path()).unwrap();
    assert_ne!(path, second);
    let keys = load(dir.path()).unwrap().sessions;
    assert_eq!(keys.kids().len(), 3);
    assert_eq!(dir.path().join(format!("session-{}.pem", keys.active_kid())), second);
    assert!(keys.active_kid() > first.as_str());
    assert!(keys.verifying_key(&first).is_some());
}

#[test]
fn rotate_refuses_a_missing_directory() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(rotate(&dir.path().join("nope")), Err(KeyError::Dir { .. })));
}

#[test]
fn next_kid_always_sorts_after_the_newest() {
    let day = 19_723; // 2024-01-01
    assert!(next_kid(None, day).unwrap().starts_with("20240101-"));
    for newest in ["20231231-ffffff", "20240101-000000", "20240101-fffffe", "20240101-00ab12-x", "1"] {
        for _ in 0..50 {
            let kid = next_kid(Some(newest), day).unwrap();
            assert!(kid.as_str() > newest && valid_kid(&kid), "{newest} -> {kid}");
        }
    }
    for impossible in ["20240101-ffffff", "20240102-000000", "prod"] {
        assert_eq!(next_kid(Some(impossible), day), None, "{impossible}");
    }
}

#[test]
fn date_prefix_matches_the_calendar() {
    assert_eq!(date_prefix(0), "19700101");
    assert_eq!(date_prefix(-1), "19691231");
    assert_eq!(date_prefix(11_016), "20000229");
    assert_eq!(date_prefix(19_723), "20240101");
}

#[test]
fn ephemeral_keys_are_distinct_and_usable() {
    let a = SessionKeys::generate_ephemeral().unwrap();
    let b = SessionKeys::generate_ephemeral().unwrap();
    assert!(valid_kid(a.active_kid()));
    assert_eq!(a.kids().len(), 1);
    let (pa, pb) = (a.public_key_pem(a.active_kid()).unwrap(), b.public_key_pem(b.active_kid()).unwrap());
    assert_ne!(pa, pb);
}
