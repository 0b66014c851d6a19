//! The wgpu (Vulkan) implementation of [`Backend`]: WGSL compute shaders over storage buffers,
//! 32-bit atomics only (what every adapter has), 64-bit results assembled from carries so that
//! they equal the CPU's bit for bit. Inputs go up in chunks of at most [`CHUNK`] values.

use super::{AccelConfig, AccelError, Adapter, Backend, GroupSum, DIGITS};
use std::sync::Arc;
use wgpu::util::DeviceExt as _;

/// Values per dispatch (64 MiB of u32: within every adapter's default binding limit of 128 MiB).
pub const CHUNK: usize = 16 << 20;
const WORKGROUP: u32 = 256;

const SUM_COUNT: &str = r#"
struct Params { n: u32, groups: u32, a: u32, b: u32 }
@group(0) @binding(0) var<storage, read> keys: array<u32>;
@group(0) @binding(1) var<storage, read> vals: array<u32>;
@group(0) @binding(2) var<storage, read_write> acc: array<atomic<u32>>;
@group(0) @binding(3) var<uniform> p: Params;

// A 64-bit counter as two words: the carry goes to the high word exactly once per overflow.
fn add64(at: u32, v: u32) {
    let old = atomicAdd(&acc[at], v);
    if (old + v < old) { atomicAdd(&acc[at + 1u], 1u); }
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = id.x + id.y * nw.x * 256u;
    if (i >= p.n) { return; }
    let g = keys[i];
    if (g >= p.groups) { return; }
    add64(g * 4u, 1u);
    add64(g * 4u + 2u, vals[i]);
}
"#;

const DIGIT_HISTOGRAM: &str = r#"
struct Params { n: u32, shift: u32, prefix: u32, prefix_shift: u32 }
@group(0) @binding(0) var<storage, read> vals: array<u32>;
@group(0) @binding(1) var<storage, read_write> acc: array<atomic<u32>>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = id.x + id.y * nw.x * 256u;
    if (i >= p.n) { return; }
    let v = vals[i];
    // prefix_shift 32 means no prefix (a shift by 32 is not defined in WGSL).
    if (p.prefix_shift < 32u && (v >> p.prefix_shift) != p.prefix) { return; }
    atomicAdd(&acc[(v >> p.shift) & 0xffffu], 1u);
}
"#;

/// A device with both pipelines built.
pub struct Gpu {
    name: String,
    device: wgpu::Device,
    queue: wgpu::Queue,
    sum_count: wgpu::ComputePipeline,
    histogram: wgpu::ComputePipeline,
}

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpu")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

fn report(a: &wgpu::Adapter) -> Adapter {
    let info = a.get_info();
    let limits = a.limits();
    let device_type = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => "discrete_gpu",
        wgpu::DeviceType::IntegratedGpu => "integrated_gpu",
        wgpu::DeviceType::VirtualGpu => "virtual_gpu",
        wgpu::DeviceType::Cpu => "cpu",
        wgpu::DeviceType::Other => "other",
    };
    Adapter {
        name: info.name,
        backend: format!("{:?}", info.backend).to_lowercase(),
        device_type: device_type.into(),
        driver: format!("{} {}", info.driver, info.driver_info)
            .trim()
            .to_owned(),
        max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
        max_compute_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
        max_compute_invocations_per_workgroup: limits.max_compute_invocations_per_workgroup,
        software: info.device_type == wgpu::DeviceType::Cpu,
    }
}

/// Every adapter found, and the one chosen per `config` (a real GPU first: discrete, then
/// integrated, then virtual; a software one only when allowed), with why.
pub fn choose(config: &AccelConfig) -> super::Choice {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: wgpu::Backends::VULKAN,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::VULKAN));
    let reports: Vec<Adapter> = adapters.iter().map(report).collect();
    if !config.enabled {
        return (reports, None, "GPU offload is off".into());
    }
    let rank = |a: &Adapter| match a.device_type.as_str() {
        "discrete_gpu" => 0,
        "integrated_gpu" => 1,
        "virtual_gpu" => 2,
        _ => 3,
    };
    let mut candidates: Vec<(usize, &Adapter)> = reports
        .iter()
        .enumerate()
        .filter(|(_, a)| !a.software || config.allow_software)
        .collect();
    candidates.sort_by_key(|(_, a)| rank(a));
    let Some(&(i, chosen)) = candidates.first() else {
        let reason = if reports.is_empty() {
            "no Vulkan adapter found (install a GPU driver; for tests, Mesa's lavapipe: mesa-vulkan-drivers)".into()
        } else {
            "only software adapters found, and they are not allowed (--gpu-allow-software)".into()
        };
        return (reports, None, reason);
    };
    match Gpu::open(&adapters[i], &chosen.name) {
        Ok(gpu) => {
            let reason = format!("{} ({})", chosen.name, chosen.device_type);
            (
                reports.clone(),
                Some((chosen.clone(), Arc::new(gpu))),
                reason,
            )
        }
        Err(e) => (reports.clone(), None, format!("{}: {e}", chosen.name)),
    }
}

impl Gpu {
    fn open(adapter: &wgpu::Adapter, name: &str) -> Result<Self, AccelError> {
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("goose-analytics"),
            required_limits: adapter.limits(),
            ..Default::default()
        }))
        .map_err(|e| AccelError::Device(e.to_string()))?;
        let pipeline = |src: &str, label: &str| {
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(label),
                source: wgpu::ShaderSource::Wgsl(src.into()),
            });
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(label),
                layout: None,
                module: &module,
                entry_point: Some("main"),
                compilation_options: Default::default(),
                cache: None,
            })
        };
        Ok(Self {
            name: name.to_owned(),
            sum_count: pipeline(SUM_COUNT, "sum_count"),
            histogram: pipeline(DIGIT_HISTOGRAM, "digit_histogram"),
            device,
            queue,
        })
    }

    fn storage(&self, data: &[u32]) -> wgpu::Buffer {
        // A binding may not be empty.
        let data: &[u32] = if data.is_empty() { &[0] } else { data };
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: None,
                contents: bytemuck::cast_slice(data),
                usage: wgpu::BufferUsages::STORAGE,
            })
    }

    /// Runs `pipeline` over `n` invocations with `inputs` then `acc` (zeroed, `words` long)
    /// then the uniform `params` bound in that order, and reads `acc` back.
    fn dispatch(
        &self,
        pipeline: &wgpu::ComputePipeline,
        inputs: &[&wgpu::Buffer],
        words: usize,
        params: [u32; 4],
        n: usize,
    ) -> Result<Vec<u32>, AccelError> {
        let size = (words * 4) as u64;
        let acc = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("acc"),
                contents: bytemuck::cast_slice(&vec![0u32; words]),
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            });
        let uniform = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("params"),
                contents: bytemuck::cast_slice(&params),
                usage: wgpu::BufferUsages::UNIFORM,
            });
        let readback = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut entries: Vec<wgpu::BindGroupEntry<'_>> = inputs
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        entries.push(wgpu::BindGroupEntry {
            binding: inputs.len() as u32,
            resource: acc.as_entire_binding(),
        });
        entries.push(wgpu::BindGroupEntry {
            binding: inputs.len() as u32 + 1,
            resource: uniform.as_entire_binding(),
        });
        let group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        let groups = (n as u32).div_ceil(WORKGROUP).max(1);
        let x = groups.min(65_535);
        let y = groups.div_ceil(x);
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, &group, &[]);
            pass.dispatch_workgroups(x, y, 1);
        }
        encoder.copy_buffer_to_buffer(&acc, 0, &readback, 0, size);
        self.queue.submit([encoder.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        readback.map_async(wgpu::MapMode::Read, .., move |r| {
            // The receiver waits below; it is gone only if this call already returned.
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| AccelError::Device(e.to_string()))?;
        rx.recv()
            .map_err(|e| AccelError::Device(e.to_string()))?
            .map_err(|e| AccelError::Device(e.to_string()))?;
        let view = readback
            .get_mapped_range(..)
            .map_err(|e| AccelError::Device(e.to_string()))?;
        let out = bytemuck::cast_slice::<u8, u32>(&view).to_vec();
        drop(view);
        readback.unmap();
        Ok(out)
    }
}

impl Backend for Gpu {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn grouped_sum_count(
        &self,
        keys: &[u32],
        values: &[u32],
        groups: u32,
    ) -> Result<Vec<GroupSum>, AccelError> {
        if keys.len() != values.len() {
            return Err(AccelError::TooLarge(
                "keys and values differ in length".into(),
            ));
        }
        let mut out = vec![GroupSum::default(); groups as usize];
        let words = (groups as usize * 4).max(4);
        for (k, v) in keys.chunks(CHUNK).zip(values.chunks(CHUNK)) {
            let (kb, vb) = (self.storage(k), self.storage(v));
            let acc = self.dispatch(
                &self.sum_count,
                &[&kb, &vb],
                words,
                [k.len() as u32, groups, 0, 0],
                k.len(),
            )?;
            for (g, o) in out.iter_mut().enumerate() {
                let w = |j: usize| u64::from(acc[g * 4 + j]);
                o.count += w(0) | (w(1) << 32);
                o.sum += w(2) | (w(3) << 32);
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
        let (p, ps) = prefix.unwrap_or((0, 32));
        for chunk in values.chunks(CHUNK) {
            let vb = self.storage(chunk);
            let acc = self.dispatch(
                &self.histogram,
                &[&vb],
                DIGITS,
                [chunk.len() as u32, shift, p, ps],
                chunk.len(),
            )?;
            for (o, c) in out.iter_mut().zip(acc) {
                *o += u64::from(c);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accel::Cpu;

    /// The machine's software adapter (Mesa's lavapipe in CI): the tests fail loudly without one.
    fn gpu() -> (Adapter, Arc<dyn Backend>) {
        let (found, chosen, reason) = choose(&AccelConfig {
            allow_software: true,
            ..AccelConfig::default()
        });
        chosen.unwrap_or_else(|| {
            panic!(
                "no Vulkan adapter for the GPU tests ({reason}; found {found:?}): \
                 apt-get install mesa-vulkan-drivers libvulkan1"
            )
        })
    }

    fn values(n: usize, seed: u64) -> Vec<u32> {
        // xorshift: spread over the whole u32 range, many duplicates of small values too.
        let mut x = seed | 1;
        (0..n)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if i % 3 == 0 {
                    (x % 1000) as u32
                } else {
                    x as u32
                }
            })
            .collect()
    }

    #[test]
    fn grouped_sums_and_counts_equal_the_cpu_bit_for_bit() {
        let (adapter, g) = gpu();
        assert!(!adapter.name.is_empty());
        for n in [0usize, 1, 255, 256, 257, 100_000, 3_000_000] {
            let v = values(n, n as u64 + 7);
            let k: Vec<u32> = v.iter().map(|x| x % 97).collect();
            let want = Cpu.grouped_sum_count(&k, &v, 90).unwrap();
            let got = g.grouped_sum_count(&k, &v, 90).unwrap();
            assert_eq!(got, want, "n = {n}");
            // Sums past 2^32: the carries reached the high word.
            if n >= 100_000 {
                assert!(want.iter().any(|s| s.sum > u64::from(u32::MAX)));
            }
        }
    }

    #[test]
    fn digit_histograms_and_exact_percentiles_equal_the_cpu() {
        let (_, g) = gpu();
        let v = values(2_000_000, 99);
        for (shift, prefix) in [(16, None), (0, Some((v[0] >> 16, 16))), (0, None)] {
            assert_eq!(
                g.digit_histogram(&v, shift, prefix).unwrap(),
                Cpu.digit_histogram(&v, shift, prefix).unwrap(),
                "shift {shift} prefix {prefix:?}"
            );
        }
        let mut sorted = v.clone();
        sorted.sort_unstable();
        for k in [0u64, 1, 999_999, 1_999_999] {
            assert_eq!(
                crate::accel::percentile::kth(g.as_ref(), &v, k).unwrap(),
                sorted[k as usize]
            );
        }
    }
}
