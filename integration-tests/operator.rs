//! Issue 17 (part): what operators of nginx or Envoy expect of the binary and its answers.

use std::process::Command;

use crate::harness::*;

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn version_completions_and_man_page_come_from_the_cli_definition() {
    let (ok, version) = run(&["--version"]);
    assert!(ok);
    let rev = version.split("(git ").nth(1).and_then(|r| r.split(',').next()).unwrap_or_default();
    assert!(version.starts_with("otpgate 0.1.0 (git ") && (rev == "unknown" || rev.len() == 12), "{version}");
    assert!(version.contains(", debug)") || version.contains(", release)"), "{version}");
    let (ok, bash) = run(&["completions", "bash"]);
    assert!(ok && bash.contains("_otpgate()") && bash.contains("serve"), "a bash completion for every command");
    let (ok, man) = run(&["man"]);
    assert!(ok && man.contains(".TH otpgate 1") && man.contains("serve"), "a roff manual page");
}

#[tokio::test]
async fn https_answers_carry_hsts_and_every_answer_nosniff() {
    let gw = Gateway::demo(&["--listen-plain", "127.0.0.1:0"]);
    let plain = get_h1(gw.addr("http"), "/api/v2/admin/location/states").await;
    assert_eq!(plain.headers["x-content-type-options"], "nosniff");
    assert!(!plain.headers.contains_key("strict-transport-security"), "never over plain HTTP");
    let missing = get_h1(gw.addr("http"), "/nowhere").await;
    assert_eq!(missing.headers["x-content-type-options"], "nosniff", "errors too");
    let out = Command::new("curl")
        .args(["-s", "-D", "-", "-o", "/dev/null", "--cacert"])
        .arg(gw.data_path("ca.pem"))
        .arg(format!("{}/api/v2/admin/location/states", gw.url("https")))
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    assert!(head.contains("strict-transport-security: max-age=15552000"), "{head}");
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
}

#[tokio::test]
async fn metrics_name_the_build_and_show_the_process() {
    let gw = Gateway::demo(&[]);
    let text = get_h1(gw.addr("admin"), "/metrics").await.text();
    let info = text.lines().find(|l| l.starts_with("otpgate_build_info{")).unwrap_or_default();
    assert!(info.contains("version=\"0.1.0\"") && info.contains("revision=\"") && info.ends_with(" 1"), "{info}");
    assert!(metric(&text, "otpgate_process_cpu_seconds_total", &[]) > 0.0, "{text}");
    assert!(metric(&text, "otpgate_process_resident_memory_bytes", &[]) > 1e6);
    assert!(metric(&text, "otpgate_process_open_fds", &[]) >= 4.0);
}
