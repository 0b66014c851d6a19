//! `loadtest gpu`: the offloadable aggregates on the CPU and on the GPU adapter by input size,
//! transfer included (a GPU call uploads its input, dispatches, reads the result back), and
//! whether both gave the same answer. For a machine with a real GPU (scripts/gpu-bench.sh);
//! `--allow-software` measures Mesa's lavapipe instead.

use anyhow::{bail, Result};
use clap::Args;
use goose_analytics::accel::percentile::kth;
use goose_analytics::accel::{Accel, AccelConfig, Backend, Cpu};
use std::time::Instant;

#[derive(Debug, Args)]
pub struct GpuArgs {
    /// Input sizes (values).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "10000,100000,1000000,10000000,100000000"
    )]
    sizes: Vec<usize>,
    /// Groups of the grouped sum and count.
    #[arg(long, default_value_t = 1000)]
    groups: u32,
    /// Take a software adapter (lavapipe) if no GPU is found.
    #[arg(long)]
    allow_software: bool,
}

fn values(n: usize) -> Vec<u32> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u32
        })
        .collect()
}

fn ms<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let t = Instant::now();
    let v = f();
    (v, t.elapsed().as_secs_f64() * 1e3)
}

pub fn run(args: &GpuArgs) -> Result<()> {
    let accel = Accel::new(AccelConfig {
        allow_software: args.allow_software,
        min_rows: 0,
        ..AccelConfig::default()
    });
    let hw = accel.hardware();
    let Some(adapter) = hw.selected.clone() else {
        bail!("no adapter to measure: {}", hw.reason);
    };
    println!(
        "adapter: {} ({}, {}), driver {}",
        adapter.name, adapter.backend, adapter.device_type, adapter.driver
    );
    println!("\n| values | aggregate | CPU ms | GPU ms (with transfer) | CPU/GPU | same answer |\n|---:|---|---:|---:|---:|---|");
    for &n in &args.sizes {
        let v = values(n);
        let keys: Vec<u32> = v.iter().map(|x| x % args.groups).collect();
        let (want, cpu) = ms(|| Cpu.grouped_sum_count(&keys, &v, args.groups));
        let (got, gpu) = ms(|| accel.run(n, |b| b.grouped_sum_count(&keys, &v, args.groups)));
        let (got, _) = got?;
        let same = want? == got;
        println!(
            "| {n} | grouped sum+count ({} groups) | {cpu:.1} | {gpu:.1} | {:.2} | {same} |",
            args.groups,
            cpu / gpu
        );
        let k = (n as u64 * 99) / 100;
        let (want, cpu) = ms(|| {
            let mut s = v.clone();
            let (_, x, _) = s.select_nth_unstable(k as usize);
            *x
        });
        let (got, gpu) = ms(|| accel.run(n, |b| kth(b, &v, k)));
        let (got, _) = got?;
        println!(
            "| {n} | exact p99 (radix select) | {cpu:.1} | {gpu:.1} | {:.2} | {} |",
            cpu / gpu,
            want == got
        );
    }
    Ok(())
}
