//! bench/peers/tokio - the offload round trip of bench/offload.cpp, written with tokio.
//!
//! A current-thread runtime (the event loop: one thread, which submits every call and receives
//! every completion) sends a trivial call to its blocking pool with
//! `tokio::task::spawn_blocking`, capped at N threads (`max_blocking_threads`), and awaits it.
//! k tasks (1 or 64) each await their calls in sequence. Same method as bench/harness.hpp:
//! calibrate until a run takes ~150 ms, run several rounds, report the median and min-max of
//! wall time and of process CPU time (user+sys, getrusage) per call, and the share of the wall
//! time the runtime's thread was on a CPU (caller%), rows appended to --out in the TSV format of
//! the C++ programs. Then the CPU the idle pool uses right after a burst.
//!
//! `--io` enables the runtime's IO driver, as every tokio server has it: the runtime's thread
//! then sleeps in epoll_wait and is woken through an eventfd, as an Asio io_context is. Without
//! it the thread parks on a futex, which no program that also serves sockets can do.

use std::fs::OpenOptions;
use std::io::Write;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

const VARIANT: &str = "tokio spawn_blocking(f).await";
const VARIANT_IO: &str = "tokio spawn_blocking(f).await, IO driver";

/// The offloaded function: not inlined, and its argument read through a volatile load so the
/// call cannot be folded away (`std::hint::black_box` needs a newer rustc than Debian's).
#[inline(never)]
fn trivial(x: i32) -> i32 {
    // SAFETY: a read of a local through a valid reference.
    unsafe { std::ptr::read_volatile(&x) }.wrapping_add(1)
}

/// Where results go, so nothing is optimised away.
static SINK: AtomicI64 = AtomicI64::new(0);

/// User + system CPU seconds of the whole process, and its voluntary context switches.
fn process_usage() -> (f64, i64) {
    // SAFETY: getrusage only writes into the struct it is given, zeroed here.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let sec = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 * 1e-6;
    (sec(usage.ru_utime) + sec(usage.ru_stime), usage.ru_nvcsw as i64)
}

/// CPU seconds of the calling thread: the runtime's, since a current-thread runtime's
/// `block_on` runs its tasks on the thread that calls it.
fn thread_cpu_seconds() -> f64 {
    // SAFETY: clock_gettime only writes into the struct it is given, zeroed here.
    let ts = unsafe {
        let mut ts: libc::timespec = std::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts);
        ts
    };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

struct Sample {
    wall: f64,
    cpu: f64,
    sleeps: i64,
    loop_cpu: f64,
    ops: usize,
}

fn time_run(ops: usize, run: &mut dyn FnMut(usize)) -> Sample {
    let (cpu0, sleeps0) = process_usage();
    let loop0 = thread_cpu_seconds();
    let t0 = Instant::now();
    run(ops);
    let wall = t0.elapsed().as_secs_f64();
    let loop_cpu = thread_cpu_seconds() - loop0;
    let (cpu1, sleeps1) = process_usage();
    Sample { wall, cpu: cpu1 - cpu0, sleeps: sleeps1 - sleeps0, loop_cpu, ops }
}

/// Median (mean of the middle two for an even count), min and max.
fn summarize(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN in timings"));
    let n = v.len();
    let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
    (median, v[0], v[n - 1])
}

/// One task's share: `calls` round trips in sequence.
async fn chain(calls: usize) -> i64 {
    let mut sum = 0i64;
    for i in 0..calls {
        let r = tokio::task::spawn_blocking(move || trivial(i as i32))
            .await
            .expect("the trivial call does not panic");
        sum += i64::from(r);
    }
    sum
}

/// `inflight` tasks on the runtime's thread, `n / inflight` round trips each.
fn drive(rt: &tokio::runtime::Runtime, inflight: usize, n: usize) {
    let per = n / inflight;
    let sum = rt.block_on(async move {
        let tasks: Vec<_> = (0..inflight).map(|_| tokio::spawn(chain(per))).collect();
        let mut sum = 0i64;
        for t in tasks {
            sum += t.await.expect("a chain does not panic");
        }
        sum
    });
    SINK.fetch_add(sum, Ordering::Relaxed);
}

struct Options {
    pools: Vec<usize>,
    rounds: usize,
    target_seconds: f64,
    idle_seconds: f64,
    out: Option<String>,
    io: bool,
}

fn usage_exit(program: &str) -> ! {
    eprintln!("usage: {program} [--quick] [--io] [--pool N] [--rounds N] [--out results.tsv]");
    std::process::exit(2);
}

fn parse_options() -> Options {
    let args: Vec<String> = std::env::args().collect();
    let mut o = Options {
        pools: vec![1, 2],
        rounds: 10,
        target_seconds: 0.15,
        idle_seconds: 1.0,
        out: None,
        io: false,
    };
    let mut quick = false;
    let mut i = 1;
    while i < args.len() {
        let value = |i: usize| -> &String { args.get(i + 1).unwrap_or_else(|| usage_exit(&args[0])) };
        let number = |i: usize| -> usize {
            match value(i).parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => usage_exit(&args[0]),
            }
        };
        match args[i].as_str() {
            "--quick" => quick = true,
            "--io" => o.io = true,
            "--pool" => {
                o.pools = vec![number(i)];
                i += 1;
            }
            "--rounds" => {
                o.rounds = number(i);
                i += 1;
            }
            "--out" => {
                o.out = Some(value(i).clone());
                i += 1;
            }
            _ => usage_exit(&args[0]),
        }
        i += 1;
    }
    if quick {
        o.rounds = o.rounds.min(3);
        o.target_seconds = 0.02;
        o.idle_seconds = 0.3;
    }
    o
}

fn main() {
    let o = parse_options();
    let variant = if o.io { VARIANT_IO } else { VARIANT };
    let mut rows = String::new();
    println!(
        "# tokio spawn_blocking round trip of a trivial function, current-thread runtime{} \
         ({} rounds, medians)",
        if o.io { " with its IO driver" } else { "" },
        o.rounds
    );
    for &pool in &o.pools {
        let mut builder = tokio::runtime::Builder::new_current_thread();
        builder.max_blocking_threads(pool);
        if o.io {
            builder.enable_io();
        }
        let rt = builder.build().expect("a runtime can be built");
        for inflight in [1usize, 64] {
            let group = format!("peers, {inflight} in flight, pool of {pool}");
            let mut run = |n: usize| drive(&rt, inflight, n);
            // Calibrate as bench::alternate does: warm up and grow until a run takes a tenth
            // of the target, then size the runs for the target, in whole batches of 64.
            let mut n = 16usize;
            let ops = loop {
                let s = time_run(n, &mut run);
                if s.wall >= o.target_seconds / 10.0 || n >= 1 << 30 {
                    let per_op = (s.wall / n as f64).max(1e-10);
                    let ops = ((o.target_seconds / per_op) as usize).max(64);
                    break (ops + 63) / 64 * 64;
                }
                n *= 4;
            };
            let samples: Vec<Sample> = (0..o.rounds).map(|_| time_run(ops, &mut run)).collect();
            let t = summarize(samples.iter().map(|s| s.wall * 1e9 / s.ops as f64).collect());
            let cpu = summarize(samples.iter().map(|s| s.cpu * 1e9 / s.ops as f64).collect());
            let sleeps = summarize(samples.iter().map(|s| s.sleeps as f64 / s.ops as f64).collect());
            let busy = summarize(samples.iter().map(|s| 100.0 * s.loop_cpu / s.wall).collect());
            println!("\n## {group}");
            println!(
                "{:<41} {:>12} {:>12} {:>12} {:>12} {:>10} {:>10} {:>7}",
                "variant", "median ns/op", "min", "max", "ops/s (med)", "cpu ns/op", "sleeps/op", "caller%"
            );
            println!(
                "{:<41} {:>12.1} {:>12.1} {:>12.1} {:>12.0} {:>10.0} {:>10.3} {:>7.0}",
                variant, t.0, t.1, t.2, 1e9 / t.0, cpu.0, sleeps.0, busy.0
            );
            for (metric, (med, lo, hi), unit) in [
                ("ns_per_op", t, "ns"),
                ("cpu_ns_per_op", cpu, "ns"),
                ("sleeps_per_op", sleeps, ""),
                ("caller_busy", busy, "%"),
            ] {
                rows += &format!("{group}\t{variant}\t{metric}\t{med:.6}\t{lo:.6}\t{hi:.6}\t{unit}\n");
            }
        }
        // The idle pool right after a burst of 1000 sequential round trips: its threads wait
        // for work (tokio keeps them 10 s), and any spinning would show here.
        drive(&rt, 1, 1000);
        let (cpu0, _) = process_usage();
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_secs_f64(o.idle_seconds));
        let (cpu1, _) = process_usage();
        let idle = 100.0 * (cpu1 - cpu0) / t0.elapsed().as_secs_f64();
        println!("\nidle CPU over {} s after a burst, pool of {pool}: {idle:.2} % of one core", o.idle_seconds);
        rows += &format!(
            "peers, idle after a burst, pool of {pool}\t{variant}\tcpu_percent\t{idle:.6}\t{idle:.6}\t{idle:.6}\t%\n"
        );
    }
    if let Some(path) = &o.out {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap_or_else(|e| panic!("cannot open {path}: {e}"));
        f.write_all(rows.as_bytes()).unwrap_or_else(|e| panic!("cannot write {path}: {e}"));
    }
    // Read the sink once, so its additions are observable.
    if SINK.load(Ordering::Relaxed) == i64::MIN {
        println!("(sink)");
    }
}
