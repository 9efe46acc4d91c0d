//! Quick timing of the CPU backend against halo2curves, for tuning without criterion:
//! `cargo run --release -p proofmill-accel --example quick_timing -- [msm|ntt] [log_n...]`.

use std::time::Instant;

use proofmill_accel::conformance::{random_bases, random_scalars};
use proofmill_accel::{omega_for, Backend, CpuBackend, MsmConfig, NttConfig};

fn best_of<F: FnMut()>(reps: usize, mut f: F) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    best * 1e3
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let what = args.first().map_or("msm", String::as_str).to_string();
    let logs: Vec<u32> = args.iter().skip(1).filter_map(|a| a.parse().ok()).collect();
    let cpu = CpuBackend::new();
    if what == "layout" {
        // The CUDA backend's host-side conversions of an NTT's data, against the per-element
        // `to_raw_bytes` they used before.
        use halo2curves::serde::SerdeObject;
        use proofmill_accel::cuda::layout::{fr_words_into, words_into_fr, FIELD_WORDS};
        for log in if logs.is_empty() { vec![22, 24] } else { logs } {
            let values = random_scalars(1 << log, 4);
            let mut words = vec![0u32; values.len() * FIELD_WORDS];
            let to = best_of(3, || fr_words_into(&values, &mut words));
            let old = best_of(3, || {
                for (w, v) in words.chunks_exact_mut(FIELD_WORDS).zip(&values) {
                    for (x, c) in w.iter_mut().zip(v.to_raw_bytes().chunks_exact(4)) {
                        *x = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                    }
                }
            });
            let mut back = values.clone();
            let from = best_of(3, || words_into_fr(&words, &mut back).expect("valid words"));
            assert!(back == values);
            println!(
                "layout 2^{log}: to device words {to:.1} ms (per-element to_raw_bytes, one thread: {old:.1} ms), back {from:.1} ms"
            );
        }
        return;
    }
    if what == "msm" {
        let logs = if logs.is_empty() {
            vec![12, 14, 16, 18, 20]
        } else {
            logs
        };
        let max = 1usize << logs.iter().copied().max().unwrap_or(16);
        let bases = random_bases(max, 1);
        let scalars = random_scalars(max, 2);
        let h = cpu.load_bases(&bases).expect("load");
        let window = std::env::var("WINDOW").ok().and_then(|w| w.parse().ok());
        for log in logs {
            let n = 1usize << log;
            let reps = if log >= 18 { 3 } else { 7 };
            let cfg = MsmConfig {
                window_bits: window,
            };
            let ours = best_of(reps, || {
                cpu.msm(&h, &scalars[..n], &cfg).expect("msm");
            });
            let theirs = best_of(reps, || {
                halo2curves::msm::msm_best(&scalars[..n], &bases[..n]);
            });
            println!(
                "msm 2^{log}: ours {ours:.1} ms, halo2curves {theirs:.1} ms, speedup {:.2}x",
                theirs / ours
            );
        }
    } else {
        let logs = if logs.is_empty() {
            vec![12, 16, 20, 22]
        } else {
            logs
        };
        for log in logs {
            let input = random_scalars(1 << log, 3);
            let reps = if log >= 20 { 3 } else { 7 };
            let mut v = input.clone();
            let ours = best_of(reps, || {
                v.copy_from_slice(&input);
                cpu.ntt(&mut v, log, &NttConfig::forward()).expect("ntt");
            });
            let omega = omega_for(log);
            let theirs = best_of(reps, || {
                v.copy_from_slice(&input);
                halo2curves::fft::best_fft(&mut v, omega, log);
            });
            println!("ntt 2^{log}: ours {ours:.1} ms, halo2curves best_fft {theirs:.1} ms, speedup {:.2}x", theirs / ours);
        }
    }
}
