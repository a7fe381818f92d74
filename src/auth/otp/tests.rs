use parking_lot::Mutex;
use std::time::Duration;

use super::*;
use crate::auth::delivery::{DeliveryError, DeliveryFuture, Outbox};
use crate::auth::jwt::TokenConfig;
use crate::auth::keys::SessionKeys;
use crate::policy::citizens::{Delivery as Rule, WindowLimit};

/// The owner's address key, and a stranger's.
const OWNER: &str = "203.0.113.7";
const STRANGER: &str = "198.51.100.9";

fn rules() -> OtpRules {
    OtpRules {
        validity: Duration::from_secs(180),
        max_attempts: 5,
        resend_after: Duration::from_secs(60),
        send_limits: vec![
            WindowLimit { limit: 3, window: Duration::from_secs(900) },
            WindowLimit { limit: 10, window: Duration::from_secs(86_400) },
        ],
        failure_limit: WindowLimit { limit: 10, window: Duration::from_secs(86_400) },
        mobile_send_ceiling: WindowLimit { limit: 50, window: Duration::from_secs(86_400) },
        mobile_failure_ceiling: WindowLimit { limit: 1000, window: Duration::from_secs(86_400) },
        source_send_limit: WindowLimit { limit: 20, window: Duration::from_secs(3600) },
        delivery: Rule::Outbox { path: "o.jsonl".into() },
        console: false,
    }
}

fn session() -> SessionRules {
    SessionRules {
        token_ttl: Duration::from_secs(900),
        idle: Duration::from_secs(1800),
        absolute: Duration::from_secs(43_200),
        leeway: Duration::from_secs(30),
        issuer: "otpgate".into(),
        audience: "otpgate-citizen".into(),
    }
}

/// Remembers every OTP it was asked to send; fails when told to.
#[derive(Default)]
struct Recorder {
    sent: Mutex<Vec<(String, String)>>,
    fail: bool,
}

impl Delivery for Recorder {
    fn deliver<'a>(&'a self, msg: &'a OtpMessage) -> DeliveryFuture<'a> {
        self.sent.lock().push((msg.txn_id.clone(), msg.otp.clone()));
        let fail = self.fail;
        Box::pin(async move { if fail { Err(DeliveryError::Status(500)) } else { Ok(()) } })
    }
}

struct Fixture {
    store: Store,
    rules: OtpRules,
    session: SessionRules,
    delivery: Arc<dyn Delivery>,
    recorder: Arc<Recorder>,
    tokens: Tokens,
}

impl Fixture {
    fn new(rules: OtpRules, fail: bool) -> Fixture {
        let recorder = Arc::new(Recorder { fail, ..Default::default() });
        let keys = Arc::new(SessionKeys::generate_ephemeral().unwrap());
        Fixture {
            store: Store::memory(),
            rules,
            session: session(),
            delivery: recorder.clone(),
            recorder,
            tokens: Tokens::new(keys, TokenConfig::default()),
        }
    }

    fn flow(&self) -> OtpFlow<'_> {
        OtpFlow {
            store: &self.store,
            otp_key: b"0123456789abcdef0123456789abcdef",
            rules: &self.rules,
            session: &self.session,
            delivery: &self.delivery,
            tokens: &self.tokens,
        }
    }

    async fn generate(&self, mobile: &str, now: u64) -> Result<String, GatewayError> {
        self.generate_from(OWNER, mobile, now).await
    }

    async fn generate_from(&self, source: &str, mobile: &str, now: u64) -> Result<String, GatewayError> {
        let v = self.flow().generate(format!(r#"{{"mobile":"{mobile}"}}"#).as_bytes(), now, source).await?;
        Ok(v["txnId"].as_str().unwrap().to_string())
    }

    fn otp_of(&self, txn: &str) -> String {
        self.recorder.sent.lock().iter().find(|(t, _)| t == txn).unwrap().1.clone()
    }

    async fn confirm(&self, txn: &str, otp: &str, now: u64) -> Result<String, GatewayError> {
        self.confirm_from(OWNER, txn, otp, now).await
    }

    async fn confirm_from(&self, source: &str, txn: &str, otp: &str, now: u64) -> Result<String, GatewayError> {
        let hash = hex::encode(Sha256::digest(otp.as_bytes()));
        let body = format!(r#"{{"otp":"{hash}","txnId":"{txn}"}}"#);
        let v = self.flow().confirm(body.as_bytes(), now, source).await?;
        Ok(v["token"].as_str().unwrap().to_string())
    }
}

const T0: u64 = 1_800_000_000_000;

#[tokio::test]
async fn generate_then_confirm_gives_a_token_once() {
    let f = Fixture::new(rules(), false);
    let txn = f.generate("9000000001", T0).await.unwrap();
    let otp = f.otp_of(&txn);
    assert_eq!(otp.len(), 6);
    assert!(otp.bytes().all(|b| b.is_ascii_digit()));
    let token = f.confirm(&txn, &otp, T0 + 1000).await.unwrap();
    let claims = f.tokens.verify(&token, (T0 + 1000) / 1000).unwrap();
    assert!(!token.contains("9000000001") && !claims.sub.contains("9000000001"), "no personal data in the token");
    let s = f.store.session_touch(&claims.sub, T0 + 2000, session_limits(&f.session)).await.unwrap().unwrap();
    assert_eq!(s.mobile, "9000000001");
    assert!(matches!(f.confirm(&txn, &otp, T0 + 2000).await, Err(GatewayError::OtpTransactionInvalid)), "single use");
}

#[tokio::test]
async fn registered_and_unregistered_numbers_get_the_same_answer() {
    let f = Fixture::new(rules(), false);
    let a = f.flow().generate(br#"{"mobile":"9000000001"}"#, T0, OWNER).await.unwrap();
    let b = f.flow().generate(br#"{"mobile":"9100000000"}"#, T0, OWNER).await.unwrap();
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&a), keys(&b));
    assert_eq!(f.recorder.sent.lock().len(), 2, "both get an OTP");
}

#[tokio::test]
async fn only_indian_mobiles_and_well_formed_bodies() {
    let f = Fixture::new(rules(), false);
    for bad in ["+14155550100", "12345", "5000000001", "90000000011", "abcdefghij", ""] {
        assert!(matches!(f.generate(bad, T0).await, Err(GatewayError::InvalidMobile)), "{bad}");
    }
    for body in [&b"not json"[..], br#"{"mobile":"9000000001","mobile":"9000000002"}"#, b"{}", b"[]"] {
        let r = f.flow().generate(body, T0, OWNER).await;
        assert!(matches!(r, Err(GatewayError::BadRequest(_))), "{:?}", String::from_utf8_lossy(body));
    }
    assert!(f.generate("+919000000001", T0).await.is_ok(), "+91 prefix accepted");
}

#[tokio::test]
async fn wrong_tries_burn_the_transaction_and_expiry_holds() {
    let f = Fixture::new(rules(), false);
    let txn = f.generate("9000000002", T0).await.unwrap();
    let otp = f.otp_of(&txn);
    let wrong = if otp == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        assert!(matches!(f.confirm(&txn, wrong, T0).await, Err(GatewayError::InvalidOtp)));
    }
    assert!(matches!(f.confirm(&txn, &otp, T0).await, Err(GatewayError::OtpTransactionInvalid)), "burned");

    let txn = f.generate("9000000003", T0).await.unwrap();
    let otp = f.otp_of(&txn);
    let late = T0 + 180_000;
    assert!(matches!(f.confirm(&txn, &otp, late).await, Err(GatewayError::OtpTransactionInvalid)), "expired");
}

#[tokio::test]
async fn resend_cooldown_and_send_caps_throttle_with_retry_after() {
    let f = Fixture::new(rules(), false);
    f.generate("9000000004", T0).await.unwrap();
    match f.generate("9000000004", T0 + 10_000).await {
        Err(GatewayError::OtpThrottled { retry_after }) => assert_eq!(retry_after, Duration::from_secs(50)),
        other => panic!("cooldown: {other:?}"),
    }
    f.generate("9000000004", T0 + 61_000).await.unwrap();
    f.generate("9000000004", T0 + 122_000).await.unwrap();
    match f.generate("9000000004", T0 + 183_000).await {
        Err(GatewayError::OtpThrottled { retry_after }) => {
            assert_eq!(retry_after, Duration::from_millis(900_000 - 183_000), "3 per 15 min");
        }
        other => panic!("send cap: {other:?}"),
    }
    assert!(f.generate("9000000005", T0 + 183_000).await.is_ok(), "other numbers are unaffected");
}

#[tokio::test]
async fn failures_are_counted_per_mobile_across_resends() {
    let mut r = rules();
    r.failure_limit = WindowLimit { limit: 3, window: Duration::from_secs(86_400) };
    r.resend_after = Duration::from_secs(1);
    let f = Fixture::new(r, false);
    let t1 = f.generate("9000000006", T0).await.unwrap();
    let wrong = |t: &str| if f.otp_of(t) == "000000" { "111111" } else { "000000" };
    assert!(matches!(f.confirm(&t1, wrong(&t1), T0).await, Err(GatewayError::InvalidOtp)));
    assert!(matches!(f.confirm(&t1, wrong(&t1), T0).await, Err(GatewayError::InvalidOtp)));
    let t2 = f.generate("9000000006", T0 + 2000).await.unwrap();
    assert!(matches!(f.confirm(&t2, wrong(&t2), T0 + 2000).await, Err(GatewayError::InvalidOtp)));
    let otp = f.otp_of(&t2);
    assert!(
        matches!(f.confirm(&t2, &otp, T0 + 2000).await, Err(GatewayError::OtpThrottled { .. })),
        "the mobile is locked even for a fresh transaction's right OTP"
    );
    assert!(matches!(f.generate("9000000006", T0 + 4000).await, Err(GatewayError::OtpThrottled { .. })));
}

#[tokio::test]
async fn racing_confirms_give_exactly_one_token() {
    let f = Arc::new(Fixture::new(rules(), false));
    let txn = f.generate("9000000007", T0).await.unwrap();
    let otp = f.otp_of(&txn);
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (f, txn, otp) = (f.clone(), txn.clone(), otp.clone());
        tasks.push(tokio::spawn(async move { f.confirm(&txn, &otp, T0).await.is_ok() }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    assert_eq!(wins, 1);
}

#[tokio::test]
async fn failed_delivery_is_503_and_the_transaction_is_unusable() {
    let f = Fixture::new(rules(), true);
    assert!(matches!(f.generate("9000000008", T0).await, Err(GatewayError::OtpDeliveryFailed)));
    let (txn, otp) = f.recorder.sent.lock()[0].clone();
    assert!(matches!(f.confirm(&txn, &otp, T0).await, Err(GatewayError::OtpTransactionInvalid)));
}

#[tokio::test]
async fn the_outbox_writes_one_json_line_per_otp() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::new(dir.path().join("o.jsonl"), false);
    for i in 0..2 {
        let msg = OtpMessage {
            mobile: "9000000001".into(),
            txn_id: format!("t{i}"),
            otp: "123456".into(),
            time_ms: T0,
            validity: Duration::from_secs(180),
        };
        outbox.deliver(&msg).await.unwrap();
        assert!(!format!("{msg:?}").contains("123456") && !format!("{msg:?}").contains("9000000001"));
    }
    let text = std::fs::read_to_string(dir.path().join("o.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["txnId"], "t1");
    assert_eq!(lines[0]["mobile"], "9000000001");
    assert_eq!(lines[0]["otp"], "123456");
    assert!(lines[0]["time"].as_str().unwrap().ends_with('Z'));
}

/// A stranger who knows the number spends only their own budget for it: wrong OTPs, sends and
/// the cooldown from their address leave the owner, at another address, free to sign in.
#[tokio::test]
async fn a_stranger_cannot_lock_the_owner_out() {
    let mut r = rules();
    r.resend_after = Duration::from_secs(1);
    let f = Fixture::new(r, false);
    let m = "9000000011";
    let wrong = |otp: &str| if otp == "000000" { "111111".to_string() } else { "000000".to_string() };
    let mut now = T0;
    // Every send the stranger may make, each burned with wrong OTPs, until refused.
    let mut failures = 0;
    while let Ok(t) = f.generate_from(STRANGER, m, now).await {
        for _ in 0..5 {
            if f.confirm_from(STRANGER, &t, &wrong(&f.otp_of(&t)), now).await.is_ok() {
                panic!("a wrong OTP signed in");
            }
            failures += 1;
        }
        now += 1_500;
    }
    assert!(failures >= 10, "the stranger spent their budget: {failures}");
    assert!(matches!(f.generate_from(STRANGER, m, now).await, Err(GatewayError::OtpThrottled { .. })));
    // The owner, from their own address, right away.
    let t = f.generate_from(OWNER, m, now).await.expect("the owner gets an OTP");
    let otp = f.otp_of(&t);
    assert!(f.confirm_from(OWNER, &t, &otp, now).await.is_ok(), "and signs in");
}

#[tokio::test]
async fn the_guessing_ceiling_holds_across_every_source() {
    let mut r = rules();
    r.resend_after = Duration::from_secs(1);
    r.mobile_failure_ceiling = WindowLimit { limit: 6, window: Duration::from_secs(86_400) };
    let f = Fixture::new(r, false);
    let m = "9000000012";
    // Three strangers, two wrong OTPs each: six against the number in all.
    for (i, source) in ["198.51.100.1", "198.51.100.2", "198.51.100.3"].iter().enumerate() {
        let t = f.generate_from(source, m, T0 + i as u64).await.unwrap();
        let otp = f.otp_of(&t);
        let wrong = if otp == "000000" { "111111" } else { "000000" };
        for _ in 0..2 {
            assert!(matches!(f.confirm_from(source, &t, wrong, T0).await, Err(GatewayError::InvalidOtp)));
        }
    }
    let t = f.generate_from("198.51.100.4", m, T0);
    assert!(matches!(t.await, Err(GatewayError::OtpThrottled { .. })), "a fourth address gets nothing more");
}

#[tokio::test]
async fn one_source_cannot_pump_otps_to_many_numbers() {
    let mut r = rules();
    r.source_send_limit = WindowLimit { limit: 3, window: Duration::from_secs(3600) };
    let f = Fixture::new(r, false);
    for m in ["9000000021", "9000000022", "9000000023"] {
        f.generate_from(STRANGER, m, T0).await.unwrap();
    }
    assert!(matches!(f.generate_from(STRANGER, "9000000024", T0).await, Err(GatewayError::OtpThrottled { .. })));
    assert!(f.generate_from(OWNER, "9000000024", T0).await.is_ok(), "other sources are unaffected");
}

/// Caps are checked and charged in one atomic step each: however many requests race, a source
/// gets no more sends than its limit.
#[tokio::test]
async fn concurrent_sends_cannot_pass_a_cap() {
    let mut r = rules();
    r.source_send_limit = WindowLimit { limit: 5, window: Duration::from_secs(3600) };
    let f = Arc::new(Fixture::new(r, false));
    let tries = (0..40u64).map(|i| {
        let f = f.clone();
        tokio::spawn(async move { f.generate_from(STRANGER, &format!("{}", 9_000_000_100u64 + i), T0).await.is_ok() })
    });
    let sent = futures_util::future::join_all(tries).await.into_iter().filter(|r| matches!(r, Ok(true))).count();
    assert_eq!(sent, 5);
}

/// A source that signed a number in before is not held to that number's send ceiling: strangers
/// who spend the ceiling from many addresses do not lock the owner's device out.
#[tokio::test]
async fn the_owners_device_is_exempt_from_a_spent_ceiling() {
    let mut r = rules();
    r.resend_after = Duration::from_secs(1);
    r.mobile_send_ceiling = WindowLimit { limit: 3, window: Duration::from_secs(86_400) };
    let f = Fixture::new(r, false);
    let m = "9000000041";
    let t = f.generate_from(OWNER, m, T0).await.unwrap();
    let otp = f.otp_of(&t);
    f.confirm_from(OWNER, &t, &otp, T0).await.unwrap();
    for source in ["198.51.100.21", "198.51.100.22"] {
        f.generate_from(source, m, T0 + 10).await.unwrap();
    }
    let stranger = f.generate_from("198.51.100.23", m, T0 + 10).await;
    assert!(matches!(stranger, Err(GatewayError::OtpThrottled { .. })), "the ceiling holds for strangers");
    assert!(f.generate_from(OWNER, m, T0 + 2_000).await.is_ok(), "the owner's device still gets an OTP");
}
