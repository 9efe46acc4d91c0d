//! The CUDA backend: our kernels (`kernels/`, embedded via [`crate::kernels`]) compiled at
//! run time by NVRTC for the card's exact architecture (`--gpu-architecture=sm_XY`), cached
//! on disk, and driven through cudarc with dynamic loading (the binary builds and runs with
//! no CUDA installed).
//!
//! This is the only module allowed `unsafe`: cudarc's kernel launches and library probes are
//! unsafe FFI. Every driver use is guarded by `is_culib_present()` first, because cudarc
//! panics when libcuda is missing; NVRTC is guarded the same way.
//!
//! It owns device memory and kernel launches; it must not know about circuits or proofs.
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cudarc::driver::{
    CudaContext, CudaEvent, CudaFunction, CudaSlice, CudaStream, DriverError, LaunchConfig,
    PinnedHostSlice, PushKernelArg,
};
use cudarc::nvrtc::Ptx;
use ff::Field;
use halo2curves::bn256::{Fr, G1Affine, G1};

mod compile;
pub mod layout;

pub use compile::{
    compile_kernel, compile_kernel_cached, compile_kernel_variant, kernel_cache_dir,
    nvrtc_available, nvrtc_version,
};

use crate::backend::next_instance_id;
use crate::gates::{GateInputs, GateProgram};
use crate::kernels::{self, KernelSource};
use crate::{AccelError, Backend, BackendKind, BasesHandle, MsmConfig, NttConfig, NttDirection};

/// Environment variable naming a directory that holds `libnvrtc.so*` (e.g. the PyPI wheel's
/// `nvidia/cu13/lib`); libraries there are loaded before cudarc looks for NVRTC by name.
pub const NVRTC_LIB_DIR_ENV: &str = "PROOFMILL_NVRTC_LIB_DIR";
/// Environment variable overriding the kernel cache directory.
pub const KERNEL_CACHE_ENV: &str = "PROOFMILL_KERNEL_CACHE";
/// Environment variable that, set to `1`, compiles the field arithmetic with inline PTX carry
/// chains (`-DPM_ENABLE_PTX`) instead of the portable code the host tests check.
pub const CUDA_PTX_ENV: &str = "PROOFMILL_CUDA_PTX";

/// Whether kernels are built with inline PTX carry chains ([`CUDA_PTX_ENV`] is `1`).
pub fn ptx_carry_chains() -> bool {
    std::env::var(CUDA_PTX_ENV).is_ok_and(|v| v == "1")
}

fn driver_err(op: &'static str) -> impl Fn(DriverError) -> AccelError {
    move |e| AccelError::Driver {
        op,
        detail: format!("{e:?}"),
    }
}

/// True when the CUDA driver library (libcuda) can be loaded. Never panics.
pub fn driver_library_present() -> bool {
    // SAFETY: only tries to dlopen the library; no symbol is called.
    unsafe { cudarc::driver::sys::is_culib_present() }
}

/// A CUDA device context, or the reason there is none. Never panics.
pub fn open_context(ordinal: usize) -> Result<Arc<CudaContext>, AccelError> {
    if !driver_library_present() {
        return Err(AccelError::Unavailable {
            backend: BackendKind::Cuda,
            reason: "libcuda not found (no NVIDIA driver installed)".into(),
        });
    }
    CudaContext::new(ordinal).map_err(|e| AccelError::Unavailable {
        backend: BackendKind::Cuda,
        reason: format!("cannot open GPU {ordinal}: {e:?}"),
    })
}

struct Kernels {
    msm_histogram: CudaFunction,
    msm_scan: CudaFunction,
    msm_scatter: CudaFunction,
    msm_chunk_counts: CudaFunction,
    msm_sum_chunks_affine: CudaFunction,
    msm_sum_chunks_xyzz: CudaFunction,
    msm_gather_buckets: CudaFunction,
    msm_reduce: CudaFunction,
    ntt_bit_reverse: CudaFunction,
    ntt_shared_stages: CudaFunction,
    ntt_global_stage: CudaFunction,
    ntt_scale: CudaFunction,
    gates_evaluate: CudaFunction,
}

/// Bases resident in device memory: affine, Montgomery, 16 u32 per point.
struct CudaBases {
    points: CudaSlice<u32>,
}

/// Device twiddle tables by (log_n, inverse).
type DeviceTwiddles = HashMap<(u32, bool), Arc<CudaSlice<u32>>>;

/// Device-side durations of one `msm` or `ntt` call, measured with CUDA events on the
/// backend's stream (see [`CudaBackend::set_device_timing`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceTime {
    /// From the first upload to the end of the last download: transfers and kernels, without
    /// the host-side conversions before and after.
    pub total: Duration,
    /// The kernels alone.
    pub kernels: Duration,
}

/// Host<->device copy times of one buffer, measured with CUDA events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransferTime {
    /// Host (as the backend copies: page-locked staging or pageable memory) to device.
    pub host_to_device: Duration,
    /// Device to host (likewise).
    pub device_to_host: Duration,
}

/// [`Backend`] on one NVIDIA GPU. Calls are serialised on one stream.
pub struct CudaBackend {
    instance: u64,
    ordinal: usize,
    name: String,
    arch: String,
    /// Kernels built with inline PTX carry chains ([`CUDA_PTX_ENV`]).
    ptx: bool,
    stream: Arc<CudaStream>,
    kernels: Kernels,
    twiddles: Mutex<DeviceTwiddles>,
    exec: Mutex<()>,
    /// When set, `msm`/`ntt` record CUDA events (benchmarks only; off by default).
    timing: AtomicBool,
    last_time: Mutex<Option<DeviceTime>>,
    /// Page-locked host buffer that scalars and NTT data are copied through (grown on
    /// demand up to [`STAGING_MAX_WORDS`]); `None` until first used or when disabled.
    staging: Mutex<Option<PinnedHostSlice<u32>>>,
    /// Copies go through page-locked staging (false with [`CUDA_PAGEABLE_ENV`]=1).
    pinned: bool,
    /// Set when a page-locked allocation failed: later copies use pageable memory rather
    /// than asking the driver again on every call.
    pinned_failed: AtomicBool,
}

impl Drop for CudaBackend {
    fn drop(&mut self) {
        // A failed call may leave a copy from the staging buffer in flight; the buffer's own
        // event does not track copies from plain slices, so wait before it is freed.
        let _ = self.stream.synchronize();
    }
}

impl std::fmt::Debug for CudaBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaBackend")
            .field("ordinal", &self.ordinal)
            .field("name", &self.name)
            .field("arch", &self.arch)
            .finish()
    }
}

const THREADS: u32 = 256;
/// Largest page-locked staging buffer kept per GPU, in u32 words (1 GiB). Larger copies go
/// through pageable memory.
const STAGING_MAX_WORDS: usize = 1 << 28;
/// Set to `1` to copy through pageable host memory only, as before page-locked staging
/// (to compare the two, or where page-locked memory is scarce).
pub const CUDA_PAGEABLE_ENV: &str = "PROOFMILL_CUDA_PAGEABLE";
/// Largest log2 block of the shared-memory NTT stages (must match NTT_SHARED_LOG).
const NTT_SHARED_LOG: u32 = 10;
/// Must match REDUCE_THREADS in msm.cu.
const REDUCE_THREADS: u32 = 128;
/// Largest grid y dimension: NTT batches are launched in groups of at most this many.
const MAX_GRID_Y: usize = 65_535;

fn grid(n: usize, y: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: ((n as u32).div_ceil(THREADS).max(1), y as u32, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

impl CudaBackend {
    /// Opens GPU `ordinal`, compiles (or loads from the cache) the kernels for its exact
    /// architecture and loads them. Errors say why the GPU cannot be used.
    pub fn new(ordinal: usize) -> Result<Self, AccelError> {
        let ctx = open_context(ordinal)?;
        let (major, minor) = ctx
            .compute_capability()
            .map_err(driver_err("compute_capability"))?;
        let arch = format!("sm_{major}{minor}");
        let name = ctx.name().map_err(driver_err("device name"))?;
        nvrtc_available().map_err(|reason| AccelError::Unavailable {
            backend: BackendKind::Cuda,
            reason,
        })?;
        let cache = kernel_cache_dir();
        let load = |src: &KernelSource| -> Result<_, AccelError> {
            let ptx = compile_kernel_cached(src, &arch, &cache)?;
            ctx.load_module(Ptx::from_src(ptx))
                .map_err(driver_err("load module"))
        };
        let msm = load(&kernels::MSM)?;
        let ntt = load(&kernels::NTT)?;
        let gates = load(&kernels::GATES)?;
        let f = |m: &Arc<cudarc::driver::CudaModule>, name: &'static str| {
            m.load_function(name).map_err(driver_err(name))
        };
        let kernels = Kernels {
            msm_histogram: f(&msm, "msm_histogram")?,
            msm_scan: f(&msm, "msm_scan")?,
            msm_scatter: f(&msm, "msm_scatter")?,
            msm_chunk_counts: f(&msm, "msm_chunk_counts")?,
            msm_sum_chunks_affine: f(&msm, "msm_sum_chunks_affine")?,
            msm_sum_chunks_xyzz: f(&msm, "msm_sum_chunks_xyzz")?,
            msm_gather_buckets: f(&msm, "msm_gather_buckets")?,
            msm_reduce: f(&msm, "msm_reduce")?,
            ntt_bit_reverse: f(&ntt, "ntt_bit_reverse")?,
            ntt_shared_stages: f(&ntt, "ntt_shared_stages")?,
            ntt_global_stage: f(&ntt, "ntt_global_stage")?,
            ntt_scale: f(&ntt, "ntt_scale")?,
            gates_evaluate: f(&gates, "gates_evaluate")?,
        };
        Ok(Self {
            instance: next_instance_id(),
            ordinal,
            name,
            arch,
            ptx: ptx_carry_chains(),
            stream: ctx.default_stream(),
            kernels,
            twiddles: Mutex::new(HashMap::new()),
            exec: Mutex::new(()),
            timing: AtomicBool::new(false),
            last_time: Mutex::new(None),
            staging: Mutex::new(None),
            pinned: !std::env::var(CUDA_PAGEABLE_ENV).is_ok_and(|v| v == "1"),
            pinned_failed: AtomicBool::new(false),
        })
    }

    /// Turns device-side timing on or off. When on, every `msm` and `ntt` records CUDA
    /// events around its stream work, readable afterwards with
    /// [`CudaBackend::last_device_time`]. Off (the default), no event is created.
    /// Meant for `proofmill bench`: host wall clocks also count the host-side conversions
    /// and scheduling noise, events count what the GPU's stream did.
    pub fn set_device_timing(&self, on: bool) {
        self.timing.store(on, Ordering::Relaxed);
    }

    /// Device-side time of the most recent `msm` or `ntt` (all chunks of a batched NTT
    /// summed), when device timing is on and the events could be read.
    pub fn last_device_time(&self) -> Option<DeviceTime> {
        self.last_time.lock().ok().and_then(|t| *t)
    }

    /// Copies `data` to the device and back the way this backend moves data (through its
    /// page-locked staging buffer, or pageable memory with [`CUDA_PAGEABLE_ENV`]=1) and
    /// times both copies with CUDA events. The round trip is checked: a mismatch is an
    /// error.
    pub fn measure_transfer(&self, data: &[u32]) -> Result<TransferTime, AccelError> {
        let event = |op| {
            self.stream
                .record_event(Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT))
                .map_err(driver_err(op))
        };
        let _guard = self.exec.lock();
        // The host-side fill stays outside the events, as in `msm` and `ntt`.
        let mut slot = self.staging.lock().unwrap_or_else(|e| e.into_inner());
        let staging = self.staging(&mut slot, data.len(), true)?;
        let pinned = staging.is_some();
        let e0;
        let device = match staging {
            Some(host) => {
                host.copy_from_slice(data);
                e0 = event("event record")?;
                self.copy_to_device(host)?
            }
            None => {
                e0 = event("event record")?;
                self.upload(data)?
            }
        };
        let e1 = event("event record")?;
        // Each event is recorded right after its copy is queued, and the host-side work
        // between copies (clearing the staging buffer, comparing) stays outside them.
        let (d0, d1, same) = match self
            .staging(&mut slot, data.len(), true)?
            .filter(|_| pinned)
        {
            Some(host) => {
                host.fill(0); // so that a copy that did nothing cannot pass
                let d0 = event("event record")?;
                self.queue_copy_to_host(&device, host)?;
                let d1 = event("event record")?;
                self.stream
                    .synchronize()
                    .map_err(driver_err("stream synchronize"))?;
                (d0, d1, &*host == data)
            }
            None => {
                let d0 = event("event record")?;
                let back = self
                    .stream
                    .clone_dtoh(&device)
                    .map_err(driver_err("copy from device"))?;
                // A copy into pageable memory returns when done: its page faults count.
                (d0, event("event record")?, back.as_slice() == data)
            }
        };
        if !same {
            return Err(AccelError::InvalidDeviceResult {
                what: "transfer round trip",
            });
        }
        let elapsed = |a: &CudaEvent, b: &CudaEvent| {
            a.elapsed_ms(b)
                .map(ms_to_duration)
                .map_err(driver_err("event elapsed time"))
        };
        Ok(TransferTime {
            host_to_device: elapsed(&e0, &e1)?,
            device_to_host: elapsed(&d0, &d1)?,
        })
    }

    /// An event recorded now on the stream, when device timing is on.
    fn mark(&self) -> Option<CudaEvent> {
        if !self.timing.load(Ordering::Relaxed) {
            return None;
        }
        self.stream
            .record_event(Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT))
            .ok()
    }

    /// Stores (or, with `add`, adds to) the last device time from four marks: before the
    /// uploads, before the kernels, after the kernels, after the downloads. Missing or
    /// unreadable marks clear it, so that a stale time is never reported for this call.
    fn store_device_time(&self, marks: [Option<CudaEvent>; 4], add: bool) {
        let this = match &marks {
            [Some(a), Some(b), Some(c), Some(d)] => match (a.elapsed_ms(d), b.elapsed_ms(c)) {
                (Ok(total), Ok(kernels)) => Some(DeviceTime {
                    total: ms_to_duration(total),
                    kernels: ms_to_duration(kernels),
                }),
                _ => None,
            },
            _ => None,
        };
        if let Ok(mut last) = self.last_time.lock() {
            *last = match (this, *last, add) {
                (Some(this), Some(prev), true) => Some(DeviceTime {
                    total: prev.total + this.total,
                    kernels: prev.kernels + this.kernels,
                }),
                (this, _, _) => this,
            };
        }
    }

    /// The `sm_XY` architecture kernels were compiled for.
    pub fn arch(&self) -> &str {
        &self.arch
    }

    fn upload(&self, words: &[u32]) -> Result<CudaSlice<u32>, AccelError> {
        self.stream
            .clone_htod(words)
            .map_err(driver_err("copy to device"))
    }

    /// Whether copies go through page-locked staging ([`CUDA_PAGEABLE_ENV`] unset).
    pub fn pinned_transfers(&self) -> bool {
        self.pinned
    }

    /// The staging buffer grown to at least `len` words, or `None` when copies of this size
    /// go through pageable memory (disabled, over [`STAGING_MAX_WORDS`], or page-locked
    /// memory could not be had). With `for_host`, the stream is idle on return, so no copy
    /// still reads or writes the buffer and the host may use it; without, the caller only
    /// queues a device copy into it, ordered after earlier copies by the stream.
    fn staging<'a>(
        &self,
        slot: &'a mut Option<PinnedHostSlice<u32>>,
        len: usize,
        for_host: bool,
    ) -> Result<Option<&'a mut [u32]>, AccelError> {
        if !self.pinned
            || self.pinned_failed.load(Ordering::Relaxed)
            || len == 0
            || len > STAGING_MAX_WORDS
        {
            return Ok(None);
        }
        let grow = slot.as_ref().is_none_or(|b| b.len() < len);
        if for_host || grow {
            self.stream
                .synchronize()
                .map_err(driver_err("stream synchronize"))?;
        }
        if grow {
            *slot = None; // free the smaller buffer first
            let cap = len.next_power_of_two().min(STAGING_MAX_WORDS);
            // Flags 0: cached, not write-combined, as the host reads results back from it.
            // SAFETY: the buffer is zeroed below before any read.
            match unsafe { self.stream.context().alloc_pinned_with_flags::<u32>(cap, 0) } {
                Ok(mut buf) => {
                    buf.as_mut_slice()
                        .map_err(driver_err("staging buffer"))?
                        .fill(0);
                    *slot = Some(buf);
                }
                Err(_) => {
                    // No page-locked memory: copy from pageable memory from now on.
                    self.pinned_failed.store(true, Ordering::Relaxed);
                    return Ok(None);
                }
            }
        }
        match slot {
            Some(buf) => Ok(Some(
                &mut buf.as_mut_slice().map_err(driver_err("staging buffer"))?[..len],
            )),
            None => Ok(None),
        }
    }

    /// A new device buffer of `len` words written by `fill`, copied through the staging
    /// buffer (or a pageable `Vec` when there is none), and the timing mark recorded after
    /// the host-side fill, just before the copy.
    fn upload_filled(
        &self,
        len: usize,
        fill: impl FnOnce(&mut [u32]),
    ) -> Result<(CudaSlice<u32>, Option<CudaEvent>), AccelError> {
        let mut slot = self.staging.lock().unwrap_or_else(|e| e.into_inner());
        let Some(host) = self.staging(&mut slot, len, true)? else {
            let mut words = vec![0; len];
            fill(&mut words);
            let mark = self.mark();
            return Ok((self.upload(&words)?, mark));
        };
        fill(host);
        let mark = self.mark();
        Ok((self.copy_to_device(host)?, mark))
    }

    /// A new device buffer holding all of `host` (page-locked staging), copied on the
    /// stream: the host must not touch `host` again before the stream has passed the copy.
    fn copy_to_device(&self, host: &[u32]) -> Result<CudaSlice<u32>, AccelError> {
        // SAFETY: u32 has no invalid bit patterns, and the copy below writes every word
        // before anything on this stream reads them.
        let mut device = unsafe { self.stream.alloc::<u32>(host.len()) }
            .map_err(driver_err("device allocation"))?;
        self.stream
            .memcpy_htod(host, &mut device)
            .map_err(driver_err("copy to device"))?;
        Ok(device)
    }

    /// Queues a copy of `device` into `host` (page-locked staging). It is asynchronous: the
    /// caller synchronizes the stream before reading `host`.
    fn queue_copy_to_host(
        &self,
        device: &CudaSlice<u32>,
        host: &mut [u32],
    ) -> Result<(), AccelError> {
        self.stream
            .memcpy_dtoh(device, host)
            .map_err(driver_err("copy from device"))
    }

    /// Copies `device` back and hands its words to `read`, through the staging buffer (or a
    /// pageable `Vec` when there is none).
    fn download_with<R>(
        &self,
        device: &CudaSlice<u32>,
        read: impl FnOnce(&[u32]) -> R,
    ) -> Result<R, AccelError> {
        let mut slot = self.staging.lock().unwrap_or_else(|e| e.into_inner());
        let Some(host) = self.staging(&mut slot, device.len(), false)? else {
            let words = self
                .stream
                .clone_dtoh(device)
                .map_err(driver_err("copy from device"))?;
            return Ok(read(&words));
        };
        self.queue_copy_to_host(device, host)?;
        // The copy into page-locked memory is asynchronous: wait for it before reading.
        self.stream
            .synchronize()
            .map_err(driver_err("stream synchronize"))?;
        Ok(read(host))
    }

    /// Launches `msm_scan`: `offsets[0..=len]` = exclusive prefix sums of `counts[0..len]`.
    fn scan(
        &self,
        counts: &CudaSlice<u32>,
        len: u32,
        offsets: &mut CudaSlice<u32>,
    ) -> Result<(), AccelError> {
        let mut b = self.stream.launch_builder(&self.kernels.msm_scan);
        b.arg(counts).arg(&len).arg(offsets);
        let one_block = LaunchConfig {
            grid_dim: (1, 1, 1),
            block_dim: (1024, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: matches msm_scan(const u32*, u32, u32*); callers pass buffers of len and
        // len + 1 words.
        unsafe { b.launch(one_block) }.map_err(driver_err("msm_scan"))?;
        Ok(())
    }

    fn zeros(&self, len: usize) -> Result<CudaSlice<u32>, AccelError> {
        self.stream
            .alloc_zeros::<u32>(len.max(1))
            .map_err(driver_err("device allocation"))
    }

    fn twiddles(&self, log_n: u32, inverse: bool) -> Result<Arc<CudaSlice<u32>>, AccelError> {
        let key = (log_n, inverse);
        if let Some(t) = self.twiddles.lock().ok().and_then(|c| c.get(&key).cloned()) {
            return Ok(t);
        }
        let slice = Arc::new(self.upload(&layout::twiddle_words(log_n, inverse))?);
        if let Ok(mut c) = self.twiddles.lock() {
            c.insert(key, Arc::clone(&slice));
        }
        Ok(slice)
    }

    /// Launches `ntt_scale` so that `a[i] *= scale * g^i` for every vector of the batch.
    fn scale(
        &self,
        data: &mut CudaSlice<u32>,
        log_n: u32,
        batch: usize,
        g: Fr,
        scale: Fr,
    ) -> Result<(), AccelError> {
        let (lo_w, hi_w, lo_bits) = layout::scale_tables(log_n, g, scale);
        let d_lo = self.upload(&lo_w)?;
        let d_hi = self.upload(&hi_w)?;
        let n = 1usize << log_n;
        let mut b = self.stream.launch_builder(&self.kernels.ntt_scale);
        b.arg(data).arg(&log_n).arg(&d_lo).arg(&d_hi).arg(&lo_bits);
        // SAFETY: argument types and order match `ntt_scale` in ntt.cu; the grid covers
        // n x batch and the kernel bounds-checks i < n.
        unsafe { b.launch(grid(n, batch)) }.map_err(driver_err("ntt_scale"))?;
        Ok(())
    }

    fn ntt_chunk(&self, values: &mut [Fr], log_n: u32, cfg: &NttConfig) -> Result<(), AccelError> {
        let n = 1usize << log_n;
        let batch = values.len() / n;
        let inverse = cfg.direction == NttDirection::Inverse;
        let (mut data, m0) = self.upload_filled(values.len() * layout::FIELD_WORDS, |w| {
            layout::fr_words_into(values, w)
        })?;
        let m1 = self.mark();
        if let (false, Some(g)) = (inverse, cfg.coset) {
            self.scale(&mut data, log_n, batch, g, Fr::ONE)?;
        }
        let tw = self.twiddles(log_n, inverse)?;
        let k = &self.kernels;
        {
            let mut b = self.stream.launch_builder(&k.ntt_bit_reverse);
            b.arg(&mut data).arg(&log_n);
            // SAFETY: matches `ntt_bit_reverse(Fr*, u32)`; log_n >= 1 here.
            unsafe { b.launch(grid(n, batch)) }.map_err(driver_err("ntt_bit_reverse"))?;
        }
        let block_log = log_n.min(NTT_SHARED_LOG);
        {
            let cfg_shared = LaunchConfig {
                grid_dim: ((n >> block_log) as u32, batch as u32, 1),
                block_dim: (1 << (block_log - 1), 1, 1),
                shared_mem_bytes: 0,
            };
            let mut b = self.stream.launch_builder(&k.ntt_shared_stages);
            b.arg(&mut data)
                .arg(tw.as_ref())
                .arg(&log_n)
                .arg(&block_log);
            // SAFETY: matches `ntt_shared_stages(Fr*, const Fr*, u32, u32)`; one thread per
            // butterfly of each 2^block_log block, block_log <= NTT_SHARED_LOG.
            unsafe { b.launch(cfg_shared) }.map_err(driver_err("ntt_shared_stages"))?;
        }
        for s in block_log..log_n {
            let mut b = self.stream.launch_builder(&k.ntt_global_stage);
            b.arg(&mut data).arg(tw.as_ref()).arg(&log_n).arg(&s);
            // SAFETY: matches `ntt_global_stage(Fr*, const Fr*, u32, u32)`; bounds-checked.
            unsafe { b.launch(grid(n / 2, batch)) }.map_err(driver_err("ntt_global_stage"))?;
        }
        if inverse {
            let (g_inv, n_inv) = layout::inverse_scaling(log_n, cfg.coset);
            self.scale(&mut data, log_n, batch, g_inv, n_inv)?;
        }
        let m2 = self.mark();
        let mut m3 = None;
        self.download_with(&data, |words| {
            m3 = self.mark();
            layout::words_into_fr(words, values)
        })??;
        self.store_device_time([m0, m1, m2, m3], true);
        Ok(())
    }
}

impl Backend for CudaBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Cuda
    }

    fn instance_id(&self) -> u64 {
        self.instance
    }

    fn description(&self) -> String {
        let variant = if self.ptx { ", PTX carry chains" } else { "" };
        format!(
            "CUDA GPU {} ({}, {}{variant})",
            self.ordinal, self.name, self.arch
        )
    }

    fn load_bases_unchecked(&self, bases: &[G1Affine]) -> Result<BasesHandle, AccelError> {
        let mut words = layout::bases_to_words(bases);
        if words.is_empty() {
            words.resize(16, 0);
        }
        let _guard = self.exec.lock();
        let points = self.upload(&words)?;
        Ok(BasesHandle::new(
            BackendKind::Cuda,
            self.instance,
            bases.len(),
            CudaBases { points },
        ))
    }

    #[allow(unsafe_code)] // Backend's contract; called only by the checked `msm`
    unsafe fn msm_unchecked(
        &self,
        bases: &BasesHandle,
        scalars: &[Fr],
        cfg: &MsmConfig,
    ) -> Result<G1, AccelError> {
        let d_bases = bases
            .inner::<CudaBases>()
            .ok_or(AccelError::ForeignHandle {
                expected: BackendKind::Cuda,
                expected_instance: self.instance,
                got: bases.backend(),
                got_instance: bases.instance(),
            })?;
        let n = scalars.len();
        let shape = layout::MsmShape::new(n, cfg.window_bits);
        let (c, windows, nb) = (shape.c, shape.windows, shape.buckets_per_window);
        let total = shape.total_buckets();
        let (n32, c32, w32, nb32, total32) =
            (n as u32, c as u32, windows as u32, nb as u32, total as u32);
        let k = &self.kernels;
        let _guard = self.exec.lock();
        // Every buffer's size comes from `MsmBuffers`, which the prover's memory formula reads.
        let sizes = layout::MsmBuffers::new(n, &shape);
        let (d_scalars, m0) =
            self.upload_filled(sizes.scalars, |w| layout::scalar_words_into(scalars, w))?;
        let mut counts = self.zeros(sizes.per_bucket)?;
        let mut offsets = self.zeros(sizes.offsets)?;
        let mut cursors = self.zeros(sizes.per_bucket)?;
        let mut entries = self.zeros(sizes.entries)?;
        let mut buckets = self.zeros(sizes.buckets)?;
        let mut sums = self.zeros(sizes.sums)?;
        // Buffers of the chunked bucket sums (msm.cu, step 4); levels alternate between two
        // buffers, each sized for its widest level.
        let levels = layout::chunk_levels(n, &shape);
        let chunk = layout::BUCKET_CHUNK;
        let mut chunk_counts = self.zeros(sizes.per_bucket)?;
        let mut chunk_offsets = [self.zeros(sizes.offsets)?, self.zeros(sizes.offsets)?];
        let mut chunk_sums = [
            self.zeros(sizes.chunk_sums[0])?,
            self.zeros(sizes.chunk_sums[1])?,
        ];
        let m1 = self.mark();
        {
            let mut b = self.stream.launch_builder(&k.msm_histogram);
            b.arg(&d_scalars)
                .arg(&n32)
                .arg(&c32)
                .arg(&w32)
                .arg(&mut counts);
            // SAFETY: matches msm_histogram(const u32*, u32, u32, u32, u32*); bounds-checked.
            unsafe { b.launch(grid(n, 1)) }.map_err(driver_err("msm_histogram"))?;
        }
        self.scan(&counts, total32, &mut offsets)?;
        {
            let mut b = self.stream.launch_builder(&k.msm_scatter);
            b.arg(&d_scalars)
                .arg(&n32)
                .arg(&c32)
                .arg(&w32)
                .arg(&offsets)
                .arg(&mut cursors)
                .arg(&mut entries);
            // SAFETY: matches msm_scatter; entries holds n*windows >= all non-zero digits.
            unsafe { b.launch(grid(n, 1)) }.map_err(driver_err("msm_scatter"))?;
        }
        // Bucket sums in chunks of entries, level by level (msm.cu, step 4).
        for (level, &bound) in levels.iter().enumerate() {
            let (lo, hi) = chunk_offsets.split_at_mut(1);
            let (cur_offsets, prev_offsets) = if level % 2 == 0 {
                (&mut lo[0], &hi[0])
            } else {
                (&mut hi[0], &lo[0])
            };
            let (lo, hi) = chunk_sums.split_at_mut(1);
            let (cur_sums, prev_sums) = if level % 2 == 0 {
                (&mut lo[0], &hi[0])
            } else {
                (&mut hi[0], &lo[0])
            };
            {
                let segments = if level == 0 { &offsets } else { prev_offsets };
                let mut b = self.stream.launch_builder(&k.msm_chunk_counts);
                b.arg(segments)
                    .arg(&total32)
                    .arg(&chunk)
                    .arg(&mut chunk_counts);
                // SAFETY: matches msm_chunk_counts(const u32*, u32, u32, u32*); both buffers
                // hold total (+1) words; bounds-checked.
                unsafe { b.launch(grid(total, 1)) }.map_err(driver_err("msm_chunk_counts"))?;
            }
            self.scan(&chunk_counts, total32, cur_offsets)?;
            if level == 0 {
                let mut b = self.stream.launch_builder(&k.msm_sum_chunks_affine);
                b.arg(&d_bases.points)
                    .arg(&entries)
                    .arg(&offsets)
                    .arg(&*cur_offsets)
                    .arg(&total32)
                    .arg(&chunk)
                    .arg(cur_sums);
                // SAFETY: matches msm_sum_chunks_affine; `bound` >= the chunk count the
                // scan produced (layout::chunk_levels), and threads past it return.
                unsafe { b.launch(grid(bound, 1)) }.map_err(driver_err("msm_sum_chunks_affine"))?;
            } else {
                let mut b = self.stream.launch_builder(&k.msm_sum_chunks_xyzz);
                b.arg(prev_sums)
                    .arg(prev_offsets)
                    .arg(&*cur_offsets)
                    .arg(&total32)
                    .arg(&chunk)
                    .arg(cur_sums);
                // SAFETY: matches msm_sum_chunks_xyzz; as above, over the previous level.
                unsafe { b.launch(grid(bound, 1)) }.map_err(driver_err("msm_sum_chunks_xyzz"))?;
            }
        }
        {
            let last = (levels.len() - 1) % 2;
            let mut b = self.stream.launch_builder(&k.msm_gather_buckets);
            b.arg(&chunk_sums[last])
                .arg(&chunk_offsets[last])
                .arg(&total32)
                .arg(&mut buckets);
            // SAFETY: matches msm_gather_buckets; after the last level every bucket has at
            // most one chunk sum.
            unsafe { b.launch(grid(total, 1)) }.map_err(driver_err("msm_gather_buckets"))?;
        }
        {
            let mut b = self.stream.launch_builder(&k.msm_reduce);
            b.arg(&buckets).arg(&nb32).arg(&mut sums);
            let per_window = LaunchConfig {
                grid_dim: (w32, 1, 1),
                block_dim: (REDUCE_THREADS, 1, 1),
                shared_mem_bytes: 0,
            };
            // SAFETY: matches msm_reduce(const G1Xyzz*, u32, G1Xyzz*); one block per window.
            unsafe { b.launch(per_window) }.map_err(driver_err("msm_reduce"))?;
        }
        let m2 = self.mark();
        let host = self
            .stream
            .clone_dtoh(&sums)
            .map_err(driver_err("copy from device"))?;
        let m3 = self.mark();
        self.store_device_time([m0, m1, m2, m3], false);
        layout::combine_window_sums(&host, &shape)
    }

    #[allow(unsafe_code)] // Backend's contract; called only by the checked `ntt`
    unsafe fn ntt_unchecked(
        &self,
        values: &mut [Fr],
        log_n: u32,
        cfg: &NttConfig,
    ) -> Result<(), AccelError> {
        if log_n == 0 {
            return Ok(()); // size-1 transforms (and their cosets) are the identity
        }
        let n = 1usize << log_n;
        let _guard = self.exec.lock();
        if let Ok(mut last) = self.last_time.lock() {
            *last = None; // the chunks below add to it
        }
        for chunk in values.chunks_mut(n * MAX_GRID_Y) {
            self.ntt_chunk(chunk, log_n, cfg)?;
        }
        Ok(())
    }

    #[allow(unsafe_code)] // Backend's contract; called only by the checked `evaluate_gates`
    unsafe fn evaluate_gates_unchecked(
        &self,
        program: &GateProgram,
        inputs: &GateInputs<'_>,
        values: &mut [Fr],
    ) -> Result<(), AccelError> {
        let rows = values.len();
        let columns = &inputs.columns[..program.columns()];
        let _guard = self.exec.lock();
        let words = self.upload(&program.device_words())?;
        let scalars = self.upload(&layout::fr_to_words(&inputs.scalars[..program.scalars()]))?;
        let rotations: Vec<u32> = program.rotations().iter().map(|&r| r as u32).collect();
        let rotations = self.upload(&rotations)?;
        // Column by column through one column's worth of staging: a quotient part reads
        // dozens of columns, several GB at k = 21, which must not be doubled on the host.
        let column_words = rows * layout::FIELD_WORDS;
        // SAFETY: u32 has no invalid bit patterns; the copies below write every word before
        // the kernel reads any.
        let mut columns_dev = unsafe {
            self.stream
                .alloc::<u32>(columns.len().max(1) * column_words)
        }
        .map_err(driver_err("device allocation"))?;
        let m0 = self.mark();
        {
            let mut slot = self.staging.lock().unwrap_or_else(|e| e.into_inner());
            let mut pageable = Vec::new();
            for (i, column) in columns.iter().enumerate() {
                // With staging, `staging(.., true)` waits until the previous copy read it.
                let (host, pinned) = match self.staging(&mut slot, column_words, true)? {
                    Some(host) => (host, true),
                    None => {
                        pageable.resize(column_words, 0);
                        (&mut pageable[..], false)
                    }
                };
                layout::fr_words_into(&column[..rows], host);
                let mut view = columns_dev.slice_mut(i * column_words..(i + 1) * column_words);
                self.stream
                    .memcpy_htod(&*host, &mut view)
                    .map_err(driver_err("copy to device"))?;
                if !pinned {
                    self.stream
                        .synchronize()
                        .map_err(driver_err("stream synchronize"))?;
                }
            }
        }
        let mut data = self.upload(&layout::fr_to_words(values))?;
        let grid_x = layout::gate_grid(rows);
        let threads = grid_x as usize * layout::GATE_THREADS as usize;
        let mut slots = self.zeros(program.slots().max(1) * threads * layout::FIELD_WORDS)?;
        let m1 = self.mark();
        let rows32 = rows as u32;
        let mut b = self.stream.launch_builder(&self.kernels.gates_evaluate);
        b.arg(&words)
            .arg(&scalars)
            .arg(&columns_dev)
            .arg(&rotations)
            .arg(&rows32)
            .arg(&mut data)
            .arg(&mut slots);
        let cfg = LaunchConfig {
            grid_dim: (grid_x, 1, 1),
            block_dim: (layout::GATE_THREADS, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: matches `gates_evaluate(const u32*, const Fr*, const Fr*, const i32*, u32,
        // Fr*, Fr*)` in gates.cu; the checked caller guaranteed that every column and scalar
        // the program reads is there and `rows` long, the slots buffer holds `slots` elements
        // for each of the grid's threads, and the kernel strides over `rows` rows.
        unsafe { b.launch(cfg) }.map_err(driver_err("gates_evaluate"))?;
        let m2 = self.mark();
        let mut m3 = None;
        self.download_with(&data, |w| {
            m3 = self.mark();
            layout::words_into_fr(w, values)
        })??;
        self.store_device_time([m0, m1, m2, m3], false);
        Ok(())
    }
}

fn ms_to_duration(ms: f32) -> Duration {
    Duration::from_secs_f64(f64::from(ms.max(0.0)) / 1e3)
}

/// The GPU's `sm_XY` string for a compute capability.
pub fn arch_for(major: i32, minor: i32) -> String {
    format!("sm_{major}{minor}")
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<CudaBackend>();
}
