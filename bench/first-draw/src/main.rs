//! The first random draw of a process from aws-lc against the next one, over fresh processes:
//!
//! ```sh
//! cargo run --release -p first-draw -- 20
//! AWS_LC_SYS_NO_JITTER_ENTROPY=0 cargo run --release -p first-draw --target-dir target/jitter-on -- 20
//! ```
//!
//! The first runs with the repository's build settings (`.cargo/config.toml`), the second
//! with aws-lc's default CPU jitter entropy, for comparison. Each of the N processes draws
//! 32 bytes twice and reports both times; this one prints their medians.

use std::process::Command;
use std::time::{Duration, Instant};

const CHILD: &str = "--one-process";

fn draw() -> Duration {
    let mut bytes = [0u8; 32];
    let started = Instant::now();
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        eprintln!("first-draw: aws-lc could not draw random bytes");
        std::process::exit(1);
    }
    started.elapsed()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let arg = std::env::args().nth(1).unwrap_or_else(|| "20".into());
    if arg == CHILD {
        let first = draw();
        let next = draw();
        println!("{} {}", first.as_nanos(), next.as_nanos());
        return;
    }
    let Ok(processes) = arg.parse::<usize>() else {
        eprintln!("usage: first-draw [PROCESSES]");
        std::process::exit(2);
    };
    let exe = std::env::current_exe().unwrap_or_else(|err| {
        eprintln!("first-draw: locating this binary: {err}");
        std::process::exit(1);
    });
    let (mut firsts, mut nexts) = (Vec::new(), Vec::new());
    for _ in 0..processes.max(1) {
        let output = match Command::new(&exe).arg(CHILD).output() {
            Ok(output) if output.status.success() => output,
            other => {
                eprintln!("first-draw: a measuring process failed: {other:?}");
                std::process::exit(1);
            }
        };
        let text = String::from_utf8_lossy(&output.stdout);
        let times: Vec<u64> = text
            .split_whitespace()
            .filter_map(|t| t.parse().ok())
            .collect();
        let [first, next] = times[..] else {
            eprintln!("first-draw: unexpected answer {text:?}");
            std::process::exit(1);
        };
        firsts.push(Duration::from_nanos(first));
        nexts.push(Duration::from_nanos(next));
    }
    println!(
        "{} processes: first draw median {:.3} ms (max {:.3} ms), next draw median {:.1} µs",
        firsts.len(),
        median(firsts.clone()).as_secs_f64() * 1e3,
        firsts
            .iter()
            .max()
            .copied()
            .unwrap_or_default()
            .as_secs_f64()
            * 1e3,
        median(nexts).as_secs_f64() * 1e6,
    );
}
