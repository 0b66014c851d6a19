//! Offloading heavy, well-defined aggregates: a [`Backend`] trait with the CPU as the
//! reference and, with the `gpu` feature, a wgpu compute implementation ([`gpu`]); the
//! [`Accel`] that decides per call where to run; and the SQL aggregates that use it:
//! `percentile_exact` ([`percentile`]) and `sum_exact` ([`sum`]).
//!
//! Integers only (0..=u32::MAX), so GPU and CPU answers are bit-identical: counts and sums are
//! exact (64-bit sums built from 32-bit atomics with carries), and exact percentiles come from a
//! radix select (two 16-bit digit histograms) rather than from floating-point arithmetic on the
//! device. An aggregate goes to the GPU only with an adapter chosen, at least
//! [`AccelConfig::min_rows`] inputs and a free GPU slot (at most
//! [`AccelConfig::concurrency`] at once); otherwise — and if the device fails — the CPU
//! computes it, and the fallback is counted.

#[cfg(feature = "gpu")]
pub mod gpu;
pub mod percentile;
pub mod sum;

use parking_lot::Mutex;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// Why an accelerated aggregate did not complete (the caller falls back to the CPU).
#[derive(Debug, thiserror::Error)]
pub enum AccelError {
    #[error("the GPU device failed: {0}")]
    Device(String),
    #[error("input too large for one dispatch: {0}")]
    TooLarge(String),
}

/// Count and sum of one group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupSum {
    pub count: u64,
    pub sum: u64,
}

/// Buckets of a digit histogram: one per 16-bit digit.
pub const DIGITS: usize = 1 << 16;

/// The aggregates that may run elsewhere than on the CPU; [`Cpu`] is the reference.
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// What it runs on.
    fn name(&self) -> String;

    /// Per group `0..groups`: how many `values` have that key and their sum. Keys at or past
    /// `groups` are ignored. `keys` and `values` have the same length.
    fn grouped_sum_count(
        &self,
        keys: &[u32],
        values: &[u32],
        groups: u32,
    ) -> Result<Vec<GroupSum>, AccelError>;

    /// Counts of the 16-bit digit `(v >> shift) & 0xffff` of `values`, over those whose
    /// `v >> prefix.1 == prefix.0` when a prefix is given. [`DIGITS`] buckets.
    fn digit_histogram(
        &self,
        values: &[u32],
        shift: u32,
        prefix: Option<(u32, u32)>,
    ) -> Result<Vec<u64>, AccelError>;
}

/// The reference implementation.
#[derive(Debug, Default, Clone, Copy)]
pub struct Cpu;

impl Backend for Cpu {
    fn name(&self) -> String {
        "cpu".into()
    }

    fn grouped_sum_count(
        &self,
        keys: &[u32],
        values: &[u32],
        groups: u32,
    ) -> Result<Vec<GroupSum>, AccelError> {
        let mut out = vec![GroupSum::default(); groups as usize];
        for (&k, &v) in keys.iter().zip(values) {
            if let Some(g) = out.get_mut(k as usize) {
                g.count += 1;
                g.sum += u64::from(v);
            }
        }
        Ok(out)
    }

    fn digit_histogram(
        &self,
        values: &[u32],
        shift: u32,
        prefix: Option<(u32, u32)>,
    ) -> Result<Vec<u64>, AccelError> {
        let mut out = vec![0u64; DIGITS];
        for &v in values {
            if let Some((p, s)) = prefix {
                if v.checked_shr(s).unwrap_or(0) != p {
                    continue;
                }
            }
            out[(v.checked_shr(shift).unwrap_or(0) & 0xffff) as usize] += 1;
        }
        Ok(out)
    }
}

/// How aggregates are offloaded.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AccelConfig {
    /// Use a GPU when one is found (false: always the CPU).
    pub enabled: bool,
    /// Take a software adapter (Mesa's lavapipe, SwiftShader) for a GPU: only for tests and CI.
    pub allow_software: bool,
    /// Inputs below this stay on the CPU (the transfer would cost more than it saves).
    pub min_rows: usize,
    /// Aggregates on the GPU at once; more run on the CPU.
    pub concurrency: usize,
}

impl Default for AccelConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            allow_software: false,
            min_rows: 1_000_000,
            concurrency: 1,
        }
    }
}

/// A graphics adapter as found.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Adapter {
    pub name: String,
    /// `vulkan`, `metal`, ...
    pub backend: String,
    /// `discrete_gpu`, `integrated_gpu`, `virtual_gpu`, `cpu` (software), `other`.
    pub device_type: String,
    pub driver: String,
    pub max_storage_buffer_binding_size: u64,
    pub max_compute_workgroups_per_dimension: u32,
    pub max_compute_invocations_per_workgroup: u32,
    /// A CPU implementation of the graphics API, not a GPU.
    pub software: bool,
}

/// What [`Accel`] found and uses.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Hardware {
    /// Built with the `gpu` feature.
    pub gpu_support: bool,
    pub config: AccelConfig,
    pub adapters: Vec<Adapter>,
    /// The adapter aggregates are offloaded to, if any.
    pub selected: Option<Adapter>,
    /// Why none was selected (or why it was).
    pub reason: String,
    /// Aggregates run on the selected adapter, and ones that fell back to the CPU after it failed.
    pub offloaded: u64,
    pub fallbacks: u64,
}

/// The adapters found, the one chosen with its backend, and why.
pub type Choice = (Vec<Adapter>, Option<(Adapter, Arc<dyn Backend>)>, String);

/// The adapter chosen and the backend that runs on it.
#[cfg(not(feature = "gpu"))]
type Chosen = (Adapter, Arc<dyn Backend>);

/// Where accelerated aggregates run.
#[derive(Debug)]
pub struct Accel {
    config: AccelConfig,
    device: Option<Arc<dyn Backend>>,
    hardware: Hardware,
    busy: Mutex<usize>,
    offloaded: AtomicU64,
    fallbacks: AtomicU64,
}

impl Accel {
    /// Looks for adapters (with the `gpu` feature) and chooses one per `config`.
    pub fn new(config: AccelConfig) -> Self {
        #[cfg(feature = "gpu")]
        let (adapters, device, reason) = gpu::choose(&config);
        #[cfg(not(feature = "gpu"))]
        let (adapters, device, reason): (Vec<Adapter>, Option<Chosen>, String) =
            (Vec::new(), None, "built without the gpu feature".to_owned());
        let selected = device.as_ref().map(|(a, _)| a.clone());
        Self {
            hardware: Hardware {
                gpu_support: cfg!(feature = "gpu"),
                config: config.clone(),
                adapters,
                selected,
                reason,
                offloaded: 0,
                fallbacks: 0,
            },
            config,
            device: device.map(|(_, d)| d),
            busy: Mutex::new(0),
            offloaded: AtomicU64::new(0),
            fallbacks: AtomicU64::new(0),
        }
    }

    /// Whether an adapter was chosen (aggregates may be offloaded).
    pub fn has_device(&self) -> bool {
        self.device.is_some()
    }

    /// The CPU only.
    pub fn cpu_only() -> Self {
        Self::new(AccelConfig {
            enabled: false,
            ..AccelConfig::default()
        })
    }

    /// What was found and chosen, with the counts so far.
    pub fn hardware(&self) -> Hardware {
        Hardware {
            offloaded: self.offloaded.load(Ordering::Relaxed),
            fallbacks: self.fallbacks.load(Ordering::Relaxed),
            ..self.hardware.clone()
        }
    }

    /// Runs `f` on the device when `rows` is large enough and a GPU slot is free, else (or if
    /// the device fails) on the CPU. Says which ran it.
    pub fn run<T>(
        &self,
        rows: usize,
        f: impl Fn(&dyn Backend) -> Result<T, AccelError>,
    ) -> Result<(T, Ran), AccelError> {
        if let Some(device) = self
            .device
            .as_ref()
            .filter(|_| rows >= self.config.min_rows)
        {
            if let Some(_slot) = self.slot() {
                match f(device.as_ref()) {
                    Ok(v) => {
                        self.offloaded.fetch_add(1, Ordering::Relaxed);
                        return Ok((v, Ran::Device));
                    }
                    Err(e) => {
                        self.fallbacks.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(error = %e, "GPU aggregate failed; computing it on the CPU");
                    }
                }
            }
        }
        Ok((f(&Cpu)?, Ran::Cpu))
    }

    fn slot(&self) -> Option<Slot<'_>> {
        let mut busy = self.busy.lock();
        (*busy < self.config.concurrency.max(1)).then(|| {
            *busy += 1;
            Slot(&self.busy)
        })
    }
}

struct Slot<'a>(&'a Mutex<usize>);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *self.0.lock() -= 1;
    }
}

/// Where an aggregate ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ran {
    Device,
    Cpu,
}

static ACCEL: OnceLock<Accel> = OnceLock::new();

/// Sets up the process's accelerator (the first call wins; later ones return the one set).
pub fn configure(config: AccelConfig) -> &'static Accel {
    ACCEL.get_or_init(|| Accel::new(config))
}

static CPU_ONLY: std::sync::LazyLock<Accel> = std::sync::LazyLock::new(Accel::cpu_only);

/// The process's accelerator: the configured one, or the CPU only until one is configured
/// (using an aggregate first does not stop a later `configure` from taking effect).
pub fn accel() -> &'static Accel {
    ACCEL.get().unwrap_or(&CPU_ONLY)
}

/// `values` as Int64 for aggregate `name`: a value that does not fit is an error, never a
/// silent null.
pub(crate) fn as_i64(
    values: &datafusion::arrow::array::ArrayRef,
    name: &str,
) -> datafusion::common::Result<datafusion::arrow::array::ArrayRef> {
    use datafusion::arrow::compute::{cast_with_options, CastOptions};
    cast_with_options(
        values,
        &datafusion::arrow::datatypes::DataType::Int64,
        &CastOptions {
            safe: false,
            ..Default::default()
        },
    )
    .map_err(|e| {
        datafusion::error::DataFusionError::Execution(format!(
            "{name} takes whole numbers in the 64-bit range: {e}"
        ))
    })
}
