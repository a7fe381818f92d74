//! openloop: an open-loop HTTP/1.1 load generator (what wrk2 does, for bench/run.sh).
//!
//! Requests are scheduled at fixed times: rate R spread evenly over N keep-alive connections
//! (request g is due at g/R seconds and goes to connection g mod N). Each request's latency is
//! measured from its *intended* send time, not from when it was actually written: when a
//! connection is still waiting for an earlier answer, the request queues behind it and the wait
//! counts — a stall of the server shows in every request it delayed (the correction for
//! coordinated omission). Requests due before the warm-up ends are sent but not counted.
//!
//! One thread: the connections are tasks of a current-thread tokio runtime, so the generator stays
//! on one core (pin it with taskset). Each connection waits for its next request's time on a
//! timerfd of its own (the kernel's high-resolution timer, through the runtime's epoll): tokio's
//! timer wheel ticks in milliseconds, which would add up to a millisecond to every latency.
//! Linux only.
//!
//! Output, one line on stdout (latencies in ms):
//!   rate=R conns=N duration=S warmup=W achieved=A requests=C p50= p90= p99= p999= max= non2xx=
//!   errors= unsent= reconnects= total= late_p99=
//! `achieved` is answers completed within the measured window per second; `requests` the requests
//! due in that window (the percentiles' population); `total` every answer, warm-up included (for
//! a server's CPU per request over the whole run). After the end nothing new is due, and requests
//! still queued are sent for a grace period (-g, 1 s), so that a server that keeps up has its last
//! requests measured like the others. `unsent` counts requests due before the end and still
//! queued when the grace period is over (their connection was busy all along): they enter the
//! percentiles with latency (end + grace) − intended, a lower bound (leaving them out would hide
//! exactly the requests an overload delays most). Errors (connect, I/O, timeout, a response that
//! cannot be delimited) are counted, the first one is printed on stderr, and the connection is
//! opened again for the next request. `late_p99` is the generator's own accuracy: p99 of how late
//! it sent requests whose connection was idle at their time (timer slack, a busy core); it is in
//! every latency, so a large one means the generator, not the server, needs a core of its own.

mod http;
mod stats;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

const USAGE: &str =
    "usage: openloop -R RATE [-c CONNS] [-d SECONDS] [-w WARMUP_SECONDS] [-g GRACE_SECONDS] [-t TIMEOUT_SECONDS]
                [-H 'Name: value']... [--per-second] http://host:port/path
  -R RATE         requests per second, spread evenly over the connections (required)
  -c CONNS        keep-alive connections (default 32)
  -d SECONDS      measured duration (default 10)
  -w SECONDS      warm-up before it, sent but not counted (default 1)
  -g SECONDS      after the end, requests still queued are sent for this long (default 1)
  -t SECONDS      a request not answered in this long is an error (default 5)
  -H HEADER       extra request header (repeatable)
  --per-second    also print, on stderr, each second's answers and latencies (by intended time)";

#[derive(Debug, Clone, PartialEq)]
struct Args {
    url: String,
    rate: f64,
    conns: usize,
    duration: Duration,
    warmup: Duration,
    grace: Duration,
    timeout: Duration,
    headers: Vec<String>,
    per_second: bool,
}

fn seconds(flag: &str, v: &str) -> Result<Duration, String> {
    let n: f64 = v.strip_suffix('s').unwrap_or(v).parse().map_err(|_| format!("{flag} {v:?}: expected seconds"))?;
    if !(0.0..=86_400.0).contains(&n) {
        return Err(format!("{flag} {v:?}: out of range"));
    }
    Ok(Duration::from_secs_f64(n))
}

fn parse_args(argv: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut a = Args {
        url: String::new(),
        rate: 0.0,
        conns: 32,
        duration: Duration::from_secs(10),
        warmup: Duration::from_secs(1),
        grace: Duration::from_secs(1),
        timeout: Duration::from_secs(5),
        headers: Vec::new(),
        per_second: false,
    };
    let mut it = argv.into_iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "-R" | "--rate" => {
                let v = value()?;
                a.rate = v.parse().map_err(|_| format!("-R {v:?}: expected a number"))?;
            }
            "-c" | "--connections" => {
                let v = value()?;
                a.conns = v.parse().map_err(|_| format!("-c {v:?}: expected a count"))?;
            }
            "-d" | "--duration" => a.duration = seconds("-d", &value()?)?,
            "-w" | "--warmup" => a.warmup = seconds("-w", &value()?)?,
            "-g" | "--grace" => a.grace = seconds("-g", &value()?)?,
            "-t" | "--timeout" => a.timeout = seconds("-t", &value()?)?,
            "-H" | "--header" => a.headers.push(value()?),
            "--per-second" => a.per_second = true,
            "-h" | "--help" => return Err(String::new()),
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            _ if a.url.is_empty() => a.url = arg,
            _ => return Err(format!("one URL only ({arg:?} is a second one)")),
        }
    }
    if a.url.is_empty() {
        return Err("no URL".into());
    }
    if !(a.rate.is_finite() && a.rate > 0.0 && a.rate <= 10_000_000.0) {
        return Err("-R: a rate above 0 is required".into());
    }
    if a.conns == 0 {
        return Err("-c: at least one connection".into());
    }
    if a.duration.is_zero() || a.timeout.is_zero() {
        return Err("-d and -t must be above 0".into());
    }
    Ok(a)
}

/// One scheduled request, as it ended.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// Intended send time, µs after the schedule's start.
    due_us: u64,
    /// From the intended send time to the end of the answer (or, if never sent, to the end of
    /// the grace period), µs.
    latency_us: u64,
    /// Answered (false: never sent before the grace period was over).
    answered: bool,
}

/// What one connection saw.
#[derive(Debug, Default)]
struct ConnReport {
    samples: Vec<Sample>,
    non2xx: u64,
    errors: u64,
    reconnects: u64,
    first_error: Option<String>,
    /// How late the generator itself sent requests that found their connection idle (the timer's
    /// and the runtime's delay, not the server's), µs, past the warm-up.
    late: Vec<u64>,
}

/// The schedule, shared by the connections.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    start: Instant,
    rate: f64,
    /// Connections: request g goes to connection g mod conns.
    conns: u64,
    /// Requests due from here on are counted (the warm-up is over).
    measured_from: Instant,
    /// Nothing is due from here on.
    end: Instant,
    /// Nothing is sent from here on.
    give_up: Instant,
    timeout: Duration,
}

impl Schedule {
    /// When request g is due: start + g/rate.
    fn due(&self, g: u64) -> Instant {
        self.start + Duration::from_nanos((g as f64 * 1e9 / self.rate) as u64)
    }

    /// Connection i's requests, in order: i, i + N, i + 2N, … while due before the end.
    fn of_connection(&self, i: u64) -> impl Iterator<Item = Instant> + '_ {
        (0..).map(move |k| self.due(i + k * self.conns)).take_while(|t| *t < self.end)
    }
}

fn us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

async fn connect(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, String> {
    let s = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| format!("connect to {addr}: timed out"))?
        .map_err(|e| format!("connect to {addr}: {e}"))?;
    s.set_nodelay(true).map_err(|e| format!("set_nodelay: {e}"))?;
    Ok(s)
}

/// Write the request, read one whole answer.
async fn exchange(stream: &mut TcpStream, req: &[u8], buf: &mut Vec<u8>) -> Result<http::Response, String> {
    stream.write_all(req).await.map_err(|e| format!("write: {e}"))?;
    buf.clear();
    loop {
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(16 << 10);
        }
        let n = stream.read_buf(buf).await.map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("the server closed the connection before a whole answer".into());
        }
        if let Some(r) = http::parse_response(buf)? {
            if r.len != buf.len() {
                return Err(format!("{} bytes after the answer that nobody asked for", buf.len() - r.len));
            }
            return Ok(r);
        }
    }
}

/// Connection i: each of its requests when due, or at once when the previous answer came late
/// (it queued behind it).
async fn connection(
    i: u64,
    addr: SocketAddr,
    mut stream: Option<TcpStream>,
    req: Arc<[u8]>,
    sched: Schedule,
) -> Result<ConnReport, String> {
    let timer = timer::Timer::new().map_err(|e| format!("timerfd: {e}"))?;
    let mut rep = ConnReport::default();
    let mut buf = Vec::with_capacity(16 << 10);
    let fail = |rep: &mut ConnReport, e: String| {
        rep.errors += 1;
        rep.first_error.get_or_insert(e);
    };
    for t in sched.of_connection(i) {
        let due_us = us(t - sched.start);
        if Instant::now() >= sched.give_up {
            // Due before the end, never sent: its latency is at least give_up - intended.
            rep.samples.push(Sample { due_us, latency_us: us(sched.give_up - t), answered: false });
            continue;
        }
        if Instant::now() < t {
            timer.sleep_until(t).await.map_err(|e| format!("timerfd: {e}"))?;
            if t >= sched.measured_from {
                rep.late.push(us(Instant::now() - t));
            }
        }
        let s = match stream.as_mut() {
            Some(s) => s,
            None => match connect(addr, sched.timeout).await {
                Ok(s) => stream.insert(s),
                Err(e) => {
                    fail(&mut rep, e);
                    continue;
                }
            },
        };
        let answer = tokio::time::timeout(sched.timeout, exchange(s, &req, &mut buf)).await;
        let done = Instant::now();
        match answer {
            Ok(Ok(r)) => {
                rep.samples.push(Sample { due_us, latency_us: us(done - t), answered: true });
                if !(200..300).contains(&r.status) {
                    rep.non2xx += 1;
                }
                if r.close {
                    stream = None;
                    rep.reconnects += 1;
                }
            }
            Ok(Err(e)) => {
                fail(&mut rep, e);
                stream = None;
            }
            Err(_) => {
                fail(&mut rep, format!("no whole answer within {:?}", sched.timeout));
                stream = None;
            }
        }
    }
    Ok(rep)
}

/// A timerfd: sleeps to the µs (the kernel's hrtimer, with the thread's timer slack, 50 µs by
/// default), woken through the runtime's epoll like a socket.
mod timer {
    use std::fs::File;
    use std::io::{self, Read};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    use tokio::io::Interest;
    use tokio::io::unix::AsyncFd;
    use tokio::time::Instant;

    pub struct Timer(AsyncFd<File>);

    impl Timer {
        pub fn new() -> io::Result<Timer> {
            // SAFETY: timerfd_create takes no pointers; a descriptor it returns is ours alone.
            let fd = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: fd is a fresh, valid descriptor that nothing else owns.
            let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
            // SAFETY: the File owns the descriptor and is owned by the AsyncFd: it stays open, the
            // same, for the AsyncFd's whole life.
            Ok(Timer(unsafe { AsyncFd::register_with_interest(file, Interest::READABLE) }?))
        }

        /// Returns at `deadline` (at once if it has passed).
        pub async fn sleep_until(&self, deadline: Instant) -> io::Result<()> {
            let now = Instant::now();
            if deadline <= now {
                return Ok(());
            }
            let d = deadline - now;
            let spec = libc::itimerspec {
                it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 },
                it_value: libc::timespec {
                    tv_sec: d.as_secs() as libc::time_t,
                    tv_nsec: (d.subsec_nanos() as libc::c_long).max(1),
                },
            };
            // SAFETY: spec is a valid itimerspec for the call's duration; the old value is not asked for.
            if unsafe { libc::timerfd_settime(self.0.get_ref().as_raw_fd(), 0, &spec, std::ptr::null_mut()) } < 0 {
                return Err(io::Error::last_os_error());
            }
            loop {
                let mut ready = self.0.readable().await?;
                // The expiration count (8 bytes); WouldBlock until the timer fires.
                match ready.try_io(|f| f.get_ref().read(&mut [0u8; 8])) {
                    Ok(r) => {
                        // The timer is empty again: the next sleep waits for its next expiry
                        // without a read that would only say WouldBlock.
                        ready.clear_ready();
                        return r.map(|_| ());
                    }
                    Err(_would_block) => continue,
                }
            }
        }
    }
}

async fn run(a: Args) -> Result<i32, String> {
    let target = http::parse_url(&a.url)?;
    let req: Arc<[u8]> = http::request_bytes(&target, &a.headers)?.into();
    let addr = tokio::net::lookup_host((target.host.as_str(), target.port))
        .await
        .map_err(|e| format!("{}: {e}", target.host))?
        .next()
        .ok_or_else(|| format!("{}: no address", target.host))?;

    // All connections open before the schedule starts (a refused one is fatal here).
    let mut streams = Vec::with_capacity(a.conns);
    for _ in 0..a.conns {
        streams.push(connect(addr, a.timeout).await?);
    }
    let start = Instant::now() + Duration::from_millis(20);
    let end = start + a.warmup + a.duration;
    let sched = Schedule {
        start,
        rate: a.rate,
        conns: a.conns as u64,
        measured_from: start + a.warmup,
        end,
        give_up: end + a.grace,
        timeout: a.timeout,
    };
    let tasks: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(i, s)| tokio::spawn(connection(i as u64, addr, Some(s), req.clone(), sched)))
        .collect();

    let mut all = ConnReport::default();
    for t in tasks {
        let r = t.await.map_err(|e| format!("connection task: {e}"))??;
        all.samples.extend(r.samples);
        all.non2xx += r.non2xx;
        all.errors += r.errors;
        all.reconnects += r.reconnects;
        all.late.extend(r.late);
        if all.first_error.is_none() {
            all.first_error = r.first_error;
        }
    }

    let warm_us = us(a.warmup);
    let end_us = warm_us + us(a.duration);
    let measured: Vec<&Sample> = all.samples.iter().filter(|s| s.due_us >= warm_us).collect();
    let answered_in_window =
        all.samples.iter().filter(|s| s.answered && (warm_us..=end_us).contains(&(s.due_us + s.latency_us))).count();
    let unsent = measured.iter().filter(|s| !s.answered).count();
    let sum = stats::summarize(measured.iter().map(|s| s.latency_us).collect());
    let late = stats::summarize(std::mem::take(&mut all.late));
    if a.per_second {
        per_second(&all.samples, warm_us);
    }
    if let Some(e) = &all.first_error {
        eprintln!("openloop: {} errors; the first: {e}", all.errors);
    }
    println!(
        "rate={} conns={} duration={:.3} warmup={:.3} achieved={:.1} requests={} p50={} p90={} p99={} p999={} \
         max={} non2xx={} errors={} unsent={} reconnects={} total={} late_p99={}",
        a.rate,
        a.conns,
        a.duration.as_secs_f64(),
        a.warmup.as_secs_f64(),
        answered_in_window as f64 / a.duration.as_secs_f64(),
        sum.count,
        stats::ms(sum.p50),
        stats::ms(sum.p90),
        stats::ms(sum.p99),
        stats::ms(sum.p999),
        stats::ms(sum.max),
        all.non2xx,
        all.errors,
        unsent,
        all.reconnects,
        all.samples.iter().filter(|s| s.answered).count(),
        stats::ms(late.p99)
    );
    Ok(0)
}

/// Each second of the schedule (by intended send time): requests, answered, p50/p99/max ms.
fn per_second(samples: &[Sample], warm_us: u64) {
    let mut by_sec: Vec<Vec<Sample>> = Vec::new();
    for s in samples {
        let i = (s.due_us / 1_000_000) as usize;
        if by_sec.len() <= i {
            by_sec.resize_with(i + 1, Vec::new);
        }
        by_sec[i].push(*s);
    }
    eprintln!("second  requests  answered   p50 ms   p99 ms   max ms");
    for (i, v) in by_sec.into_iter().enumerate() {
        let answered = v.iter().filter(|s| s.answered).count();
        let sum = stats::summarize(v.iter().map(|s| s.latency_us).collect());
        let warm = if (i as u64 + 1) * 1_000_000 <= warm_us { " (warm-up)" } else { "" };
        eprintln!(
            "{i:>6} {:>9} {answered:>9} {:>8} {:>8} {:>8}{warm}",
            sum.count,
            stats::ms(sum.p50),
            stats::ms(sum.p99),
            stats::ms(sum.max)
        );
    }
}

fn main() {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("openloop: {e}");
            }
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| {
        eprintln!("openloop: runtime: {e}");
        std::process::exit(1)
    });
    match rt.block_on(run(args)) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("openloop: {e}");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    fn args(s: &str) -> Result<Args, String> {
        parse_args(s.split(' ').map(String::from))
    }

    #[test]
    fn arguments() {
        let a = args("-R 10000 -c 8 -d 3s -w 0.5 -H X-A:_1 http://127.0.0.1:1/").unwrap();
        assert_eq!(
            (a.rate, a.conns, a.duration, a.warmup),
            (10_000.0, 8, Duration::from_secs(3), Duration::from_millis(500))
        );
        assert_eq!(a.headers, vec!["X-A:_1".to_string()]);
        assert!(args("http://h/").is_err()); // no rate
        assert!(args("-R 0 http://h/").is_err());
        assert!(args("-R 10 -c 0 http://h/").is_err());
        assert!(args("-R 10 -d -1 http://h/").is_err());
        assert!(args("-R 10 http://h/ http://i/").is_err());
        assert!(args("-R 10 --bogus http://h/").is_err());
        assert!(args("-R").is_err());
    }

    /// A server on one connection that answers each GET at once, except the one numbered
    /// `stall_at` (from 0), which it holds for `stall`.
    async fn stalling_server(stall_at: usize, stall: Duration) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let (mut buf, mut n) = (Vec::new(), 0);
            let mut chunk = [0u8; 1024];
            loop {
                let k = s.read(&mut chunk).await.unwrap_or(0);
                if k == 0 {
                    return;
                }
                buf.extend_from_slice(&chunk[..k]);
                while let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    buf.drain(..i + 4);
                    if n == stall_at {
                        tokio::time::sleep(stall).await;
                    }
                    n += 1;
                    if s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await.is_err() {
                        return;
                    }
                }
            }
        });
        addr
    }

    /// 100 requests/s on one connection for `run`, against `stalling_server`.
    fn one_connection(stall_at: usize, stall: Duration, run: Duration, grace: Duration) -> ConnReport {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let addr = stalling_server(stall_at, stall).await;
            let stream = connect(addr, Duration::from_secs(1)).await.unwrap();
            let req: Arc<[u8]> =
                http::request_bytes(&http::parse_url(&format!("http://{addr}/")).unwrap(), &[]).unwrap().into();
            let start = Instant::now() + Duration::from_millis(10);
            let end = start + run;
            let sched = Schedule {
                start,
                rate: 100.0,
                conns: 1,
                measured_from: start,
                end,
                give_up: end + grace,
                timeout: Duration::from_secs(5),
            };
            let rep = connection(0, addr, Some(stream), req, sched).await.unwrap();
            assert_eq!(rep.samples.len() as u64 + rep.errors, sched.of_connection(0).count() as u64);
            rep
        })
    }

    #[test]
    fn a_stall_counts_against_every_request_queued_behind_it() {
        // Request 9 (due at 90 ms) is held 100 ms: answered at 190 ms at the earliest. Request k
        // after it, due at 10·k ms, waits for it: at least 190 − 10·k ms, though it was sent only
        // then (a closed-loop count would show one slow request, not ten).
        let rep = one_connection(9, Duration::from_millis(100), Duration::from_millis(300), Duration::from_secs(1));
        assert_eq!((rep.errors, rep.non2xx, rep.samples.len()), (0, 0, 30), "{:?}", rep.first_error);
        assert!(rep.samples.iter().all(|s| s.answered));
        let lat: Vec<u64> = rep.samples.iter().map(|s| s.latency_us).collect();
        for (k, &l) in lat.iter().enumerate().take(19).skip(9) {
            assert!(l >= 190_000 - 10_000 * k as u64, "request {k}: {l} µs");
        }
        // Before the stall, answers within a few ms of their time.
        assert!(lat[..9].iter().all(|&l| l < 20_000), "{:?}", &lat[..9]);
        assert_eq!(rep.samples[12].due_us, 120_000);
    }

    #[test]
    fn requests_still_queued_after_the_grace_period_count_as_unsent_lower_bounds() {
        // Request 20 (due at 200 ms) is held 600 ms; the run ends at 300 ms, the grace period at
        // 400 ms: requests 21 to 29 are never sent, with latencies of 400 ms − due.
        let rep =
            one_connection(20, Duration::from_millis(600), Duration::from_millis(300), Duration::from_millis(100));
        assert_eq!((rep.errors, rep.samples.len()), (0, 30), "{:?}", rep.first_error);
        assert!(rep.samples[..21].iter().all(|s| s.answered));
        assert!(rep.samples[20].latency_us >= 600_000);
        for s in &rep.samples[21..] {
            assert!(!s.answered);
            assert_eq!(s.latency_us, 400_000 - s.due_us);
        }
    }

    #[test]
    fn the_timer_is_sub_millisecond() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let timer = timer::Timer::new().unwrap();
            let mut late = Vec::new();
            for _ in 0..50 {
                let t = Instant::now() + Duration::from_micros(1_300);
                timer.sleep_until(t).await.unwrap();
                let now = Instant::now();
                assert!(now >= t);
                late.push(us(now - t));
            }
            // Never early; usually tens of µs late (tokio's own timer would be ~700 µs late here).
            late.sort_unstable();
            assert!(late[25] < 500, "median lateness {} µs", late[25]);
            timer.sleep_until(Instant::now()).await.unwrap(); // past deadlines return at once
        });
    }

    #[test]
    fn the_schedule_spreads_evenly_over_connections() {
        let start = Instant::now();
        let end = start + Duration::from_millis(10);
        // 4,000/s for 10 ms over 4 connections: 40 requests, 10 on each, 1 ms apart.
        let sched = Schedule {
            start,
            rate: 4_000.0,
            conns: 4,
            measured_from: start,
            end,
            give_up: end,
            timeout: Duration::from_secs(1),
        };
        for i in 0..4 {
            let due: Vec<u64> = sched.of_connection(i).map(|t| us(t - start)).collect();
            let want: Vec<u64> = (0..10).map(|k| i * 250 + k * 1000).collect();
            assert_eq!(due, want, "connection {i}");
        }
    }
}
