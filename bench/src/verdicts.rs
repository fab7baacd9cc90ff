//! The performance targets, each judged met, not met or not measured from one run's results.

use std::time::Duration;

use crate::report::{median, mib, ms, ms2};
use crate::results::Results;
use crate::{cold, FLOOR, MAX_BINARY_MIB, MAX_OVERHEAD, MAX_RSS_MIB, MAX_SEQUENTIAL};
use crate::{NO_IO, NO_IO_RATIO, PEER, PEER_SHARE, SSM_FLOOR, SSM_FLOOR_RATIO};

pub(crate) struct Verdict {
    pub(crate) target: String,
    pub(crate) met: Option<bool>,
    pub(crate) detail: String,
}

/// The cold-request targets of issue 15.
pub(crate) fn cold_verdicts(results: &Results, functions: &[&'static str]) -> Vec<Verdict> {
    let targets = [
        format!("cold request of a request that needs no I/O ≤ {NO_IO_RATIO}× the bare hello's"),
        format!("cold request of every function ≤ {SSM_FLOOR_RATIO}× the SSM + GetItem floor's"),
        "cold request of every function ≤ ⅓ of the Node.js peer's".to_string(),
        "peak RSS of every function ≤ ⅓ of the Node.js peer's".to_string(),
        "cold path sequential round trips ≤ warm + 1 (SSM included)".to_string(),
    ];
    let Some(cold) = &results.cold_requests else {
        return targets
            .into_iter()
            .map(|target| Verdict {
                target,
                met: None,
                detail: "not measured in this run".into(),
            })
            .collect();
    };
    let case = |label: &str| cold.cases.iter().find(|c| c.label == label);
    let cold_median = |label: &str| case(label).map(|c| median(&c.cold));
    let ours: Vec<&cold::CaseResult> = cold
        .cases
        .iter()
        .filter(|c| functions.contains(&c.label.as_str()))
        .collect();
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    let mut verdicts = Vec::new();

    let hello = cold_median(&format!("{FLOOR} (floor)"));
    verdicts.push(match (cold_median(NO_IO), hello) {
        (Some(no_io), Some(hello)) => {
            let r = ratio(no_io, hello);
            Verdict {
                target: targets[0].clone(),
                met: Some(r <= NO_IO_RATIO),
                detail: format!("{r:.2}× ({} ms against {} ms)", ms2(no_io), ms2(hello)),
            }
        }
        _ => Verdict {
            target: targets[0].clone(),
            met: None,
            detail: "user-me not measured".into(),
        },
    });

    // Each function against a reference median: the ratios over `limit`, and the worst.
    let against = |target: &String, reference: Option<Duration>, limit: f64, name: &str| {
        let Some(reference) = reference.filter(|_| !ours.is_empty()) else {
            return Verdict {
                target: target.clone(),
                met: None,
                detail: format!("{name} not measured"),
            };
        };
        let ratios: Vec<(String, f64)> = ours
            .iter()
            .map(|c| (c.label.clone(), ratio(median(&c.cold), reference)))
            .collect();
        let over: Vec<String> = ratios
            .iter()
            .filter(|(_, r)| *r > limit)
            .map(|(f, r)| format!("{f} {r:.2}×"))
            .collect();
        let worst = ratios
            .iter()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(f, r)| format!("{f} {r:.2}×"))
            .unwrap_or_default();
        Verdict {
            target: target.clone(),
            met: Some(over.is_empty()),
            detail: if over.is_empty() {
                format!("worst {worst} ({name} {} ms)", ms2(reference))
            } else {
                format!("over ({name} {} ms): {}", ms2(reference), over.join(", "))
            },
        }
    };
    verdicts.push(against(
        &targets[1],
        cold_median(&format!("{SSM_FLOOR} (floor)")),
        SSM_FLOOR_RATIO,
        "floor",
    ));
    verdicts.push(against(&targets[2], cold_median(PEER), PEER_SHARE, "peer"));

    let peak = |f: &str| -> Option<u64> {
        let embedded = results.rss_embedded.get(f).copied();
        let dynamo = results.dynamo.as_ref().and_then(|d| d.rss.get(f).copied());
        let cold = case(f).and_then(|c| c.rss);
        embedded.into_iter().chain(dynamo).chain(cold).max()
    };
    verdicts.push(match case(PEER).and_then(|c| c.rss) {
        Some(peer) => {
            let over: Vec<String> = functions
                .iter()
                .filter_map(|f| peak(f).map(|b| (f, b)))
                .filter(|(_, b)| *b as f64 > peer as f64 * PEER_SHARE)
                .map(|(f, b)| format!("{f} {} MiB", mib(b)))
                .collect();
            let worst = functions.iter().filter_map(|f| peak(f)).max().unwrap_or(0);
            Verdict {
                target: targets[3].clone(),
                met: Some(over.is_empty()),
                detail: format!(
                    "peer {} MiB; {}",
                    mib(peer),
                    if over.is_empty() {
                        format!("worst function {} MiB", mib(worst))
                    } else {
                        format!("over: {}", over.join(", "))
                    }
                ),
            }
        }
        None => Verdict {
            target: targets[3].clone(),
            met: None,
            detail: cold
                .peer_missing
                .clone()
                .unwrap_or_else(|| "the peer was not measured".into()),
        },
    });

    let most = |trips: &[cold::Trips]| trips.iter().map(|t| t.sequential).max().unwrap_or(0);
    let rows = ours
        .iter()
        .map(|c| (c.label.clone(), most(&c.cold_trips), most(&c.warm_trips)))
        .chain(cold.flow.iter().map(|s| {
            (
                format!("flow: {}", s.label),
                most(&s.cold_trips),
                most(&s.warm_trips),
            )
        }));
    let (mut over, mut worst) = (Vec::new(), 0usize);
    for (label, cold_trips, warm_trips) in rows {
        let extra = cold_trips.saturating_sub(warm_trips);
        worst = worst.max(extra);
        if extra > 1 {
            over.push(format!(
                "{label} {cold_trips} cold against {warm_trips} warm"
            ));
        }
    }
    verdicts.push(Verdict {
        target: targets[4].clone(),
        met: (!ours.is_empty()).then_some(over.is_empty()),
        detail: if over.is_empty() {
            format!("worst: warm + {worst}")
        } else {
            format!("over: {}", over.join("; "))
        },
    });
    verdicts
}

pub(crate) fn verdicts(results: &Results, functions: &[&'static str]) -> Vec<Verdict> {
    let mut verdicts = Vec::new();
    verdicts.extend(cold_verdicts(results, functions));

    match &results.dynamo {
        Some(dynamo) => {
            let over: Vec<String> = dynamo
                .steps
                .iter()
                .filter_map(|s| {
                    let worst = s.dynamo.iter().map(|d| d.sequential).max().unwrap_or(0);
                    (worst > MAX_SEQUENTIAL).then(|| {
                        let shape = s
                            .dynamo
                            .first()
                            .map(|d| d.shape.clone())
                            .unwrap_or_default();
                        format!("{} {worst} ({shape})", s.label)
                    })
                })
                .collect();
            let worst = dynamo
                .steps
                .iter()
                .flat_map(|s| s.dynamo.iter().map(|d| d.sequential))
                .max()
                .unwrap_or(0);
            verdicts.push(Verdict {
                target: format!(
                    "no operation needs more than {MAX_SEQUENTIAL} sequential DynamoDB round trips"
                ),
                met: Some(over.is_empty()),
                detail: if over.is_empty() {
                    format!("worst {worst}")
                } else {
                    format!("over: {}", over.join("; "))
                },
            });
            let binding: Vec<String> = dynamo
                .steps
                .iter()
                .filter(|s| s.label.starts_with("bind-"))
                .map(|s| {
                    let ok = s
                        .dynamo
                        .iter()
                        .all(|d| d.transactions == 1 && d.plain_writes == 0);
                    let shape = s
                        .dynamo
                        .first()
                        .map(|d| d.shape.clone())
                        .unwrap_or_default();
                    format!(
                        "{}: {} ({shape})",
                        s.label,
                        if ok {
                            "one TransactWriteItems, no other write"
                        } else {
                            "NOT one write transaction"
                        }
                    )
                })
                .collect();
            let binding_ok = dynamo
                .steps
                .iter()
                .filter(|s| s.label.starts_with("bind-"))
                .all(|s| {
                    s.dynamo
                        .iter()
                        .all(|d| d.transactions == 1 && d.plain_writes == 0)
                });
            verdicts.push(Verdict {
                target: "binding needs exactly one write transaction".into(),
                met: Some(binding_ok && !binding.is_empty()),
                detail: binding.join("; "),
            });
        }
        None => {
            for target in [
                format!(
                    "no operation needs more than {MAX_SEQUENTIAL} sequential DynamoDB round trips"
                ),
                "binding needs exactly one write transaction".to_string(),
            ] {
                verdicts.push(Verdict {
                    target,
                    met: None,
                    detail: "not measured in this run".into(),
                });
            }
        }
    }

    let peak = |f: &str| -> Option<u64> {
        let a = results.rss_embedded.get(f).copied();
        let b = results.dynamo.as_ref().and_then(|d| d.rss.get(f).copied());
        let c = results
            .cold_requests
            .as_ref()
            .and_then(|cold| cold.cases.iter().find(|c| c.label == f))
            .and_then(|c| c.rss);
        a.into_iter().chain(b).chain(c).max()
    };
    let heavy: Vec<String> = functions
        .iter()
        .filter_map(|f| {
            let bytes = peak(f)?;
            (bytes as f64 > MAX_RSS_MIB * 1024.0 * 1024.0)
                .then(|| format!("{f} {} MiB", mib(bytes)))
        })
        .collect();
    let worst_rss = functions.iter().filter_map(|f| peak(f)).max().unwrap_or(0);
    verdicts.push(Verdict {
        target: format!("peak RSS of every function < {MAX_RSS_MIB} MiB"),
        met: (worst_rss > 0).then_some(heavy.is_empty()),
        detail: if heavy.is_empty() {
            format!("worst {} MiB", mib(worst_rss))
        } else {
            format!("over: {}", heavy.join(", "))
        },
    });
    let big: Vec<String> = results
        .sizes
        .iter()
        .filter(|(name, size, _)| {
            functions.contains(&name.as_str()) && *size as f64 > MAX_BINARY_MIB * 1024.0 * 1024.0
        })
        .map(|(name, size, _)| format!("{name} {} MiB", mib(*size)))
        .collect();
    let unstripped: Vec<&str> = results
        .sizes
        .iter()
        .filter(|(name, _, symbols)| functions.contains(&name.as_str()) && *symbols != Some(false))
        .map(|(name, _, _)| name.as_str())
        .collect();
    let worst_size = results
        .sizes
        .iter()
        .filter(|(name, _, _)| functions.contains(&name.as_str()))
        .map(|(_, size, _)| *size)
        .max()
        .unwrap_or(0);
    verdicts.push(Verdict {
        target: format!("stripped binary of every function < {MAX_BINARY_MIB} MiB"),
        met: Some(big.is_empty() && unstripped.is_empty()),
        detail: if big.is_empty() && unstripped.is_empty() {
            format!("worst {} MiB, all stripped", mib(worst_size))
        } else {
            let mut problems = Vec::new();
            if !big.is_empty() {
                problems.push(format!("over: {}", big.join(", ")));
            }
            if !unstripped.is_empty() {
                problems.push(format!("not stripped: {}", unstripped.join(", ")));
            }
            problems.join("; ")
        },
    });

    let floor_warm = median(&results.floor_warm);
    let mut over = Vec::new();
    let mut worst_in_process = (Duration::ZERO, "");
    for step in results.in_process.iter().filter(|s| !s.hashing) {
        let m = median(&step.samples);
        if m > worst_in_process.0 {
            worst_in_process = (m, step.label);
        }
        if m >= MAX_OVERHEAD {
            over.push(format!("{} in process {} ms", step.label, ms(m)));
        }
    }
    let mut worst_emulated = (Duration::ZERO, "");
    for solo in results.solo.iter().filter(|s| !s.hashing) {
        let overhead = median(&solo.samples).saturating_sub(floor_warm);
        if overhead > worst_emulated.0 {
            worst_emulated = (overhead, solo.function);
        }
        if overhead >= MAX_OVERHEAD {
            over.push(format!(
                "{} through the emulator {} ms over the floor",
                solo.function,
                ms(overhead)
            ));
        }
    }
    let measured = !results.in_process.is_empty() && !results.solo.is_empty();
    verdicts.push(Verdict {
        target: "warm overhead of our code (embedded store, no password hashing) < 1 ms median per operation".into(),
        met: measured.then_some(over.is_empty()),
        detail: if over.is_empty() {
            format!(
                "worst in process {} ms ({}); worst through the emulator {} ms over the floor ({})",
                ms(worst_in_process.0),
                worst_in_process.1,
                ms(worst_emulated.0),
                worst_emulated.1
            )
        } else {
            format!("over: {}", over.join("; "))
        },
    });
    verdicts
}
