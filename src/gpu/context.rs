//! The device: either a headless one acquired here (CLI, tests) or the one the app already owns
//! (eframe's `wgpu::Device`/`Queue`), plus the typed error every GPU path returns.

use std::fmt;
use std::sync::{Arc, Mutex};

/// Why a GPU computation could not run. Callers fall back to the CPU path and report this.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GpuError {
    /// No adapter could be acquired (no driver, no WebGPU, or every backend refused).
    NoAdapter(String),
    /// The adapter refused to create a device with the limits needed.
    RequestDevice(String),
    /// The device was lost (driver reset, `destroy`, browser tab in the background too long).
    DeviceLost(String),
    /// An allocation failed on the device.
    OutOfMemory(String),
    /// wgpu rejected an operation (caught by an error scope instead of panicking).
    Validation(String),
    /// The request cannot fit the device limits even after chunking.
    Limits(String),
    /// Mapping a result buffer for reading failed.
    Readback(String),
    /// The request itself is invalid (for example a position above 2^32 - 1).
    InvalidRequest(String),
}

impl fmt::Display for GpuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, msg) = match self {
            GpuError::NoAdapter(m) => ("no GPU adapter", m),
            GpuError::RequestDevice(m) => ("GPU device request failed", m),
            GpuError::DeviceLost(m) => ("GPU device lost", m),
            GpuError::OutOfMemory(m) => ("GPU out of memory", m),
            GpuError::Validation(m) => ("GPU validation error", m),
            GpuError::Limits(m) => ("GPU limits exceeded", m),
            GpuError::Readback(m) => ("GPU readback failed", m),
            GpuError::InvalidRequest(m) => ("invalid GPU request", m),
        };
        // one line: wgpu messages can span several
        let msg = msg.split_whitespace().collect::<Vec<_>>().join(" ");
        write!(f, "{kind}: {msg}")
    }
}

impl std::error::Error for GpuError {}

impl From<wgpu::Error> for GpuError {
    fn from(e: wgpu::Error) -> Self {
        match e {
            wgpu::Error::OutOfMemory { .. } => GpuError::OutOfMemory(e.to_string()),
            wgpu::Error::Validation { description, .. } => GpuError::Validation(description),
            wgpu::Error::Internal { description, .. } => GpuError::Validation(description),
        }
    }
}

/// A device and queue with what the pipelines need to know about them. Cheap to clone.
#[derive(Clone, Debug)]
pub struct GpuContext {
    /// The device.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    /// Adapter name, reported as the `backend` of results.
    pub adapter_name: String,
    /// Limits of the device (what chunking respects).
    pub limits: wgpu::Limits,
    /// The adapter is a software rasterizer running on the CPU (lavapipe, SwiftShader): the
    /// kernels are exact there but slower than the CPU path.
    pub software: bool,
    lost: Arc<Mutex<Option<String>>>,
}

impl GpuContext {
    /// Wraps a device someone else created (eframe's `wgpu_render_state`). Installs a
    /// device-lost callback; validation errors of our work are caught with error scopes, so the
    /// owner's uncaptured-error handler is left alone.
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue, adapter_name: String) -> Self {
        let lost = Arc::new(Mutex::new(None));
        let flag = Arc::clone(&lost);
        device.set_device_lost_callback(move |reason, msg| {
            if let Ok(mut l) = flag.lock() {
                *l = Some(format!("{reason:?}: {msg}"));
            }
        });
        let limits = device.limits();
        GpuContext {
            device,
            queue,
            adapter_name,
            limits,
            software: false,
            lost,
        }
    }

    /// Acquires a headless device of its own (no window or surface). Honours `WGPU_BACKEND`,
    /// `WGPU_ADAPTER_NAME` and `WGPU_POWER_PREF`. Raises the storage-binding and buffer-size
    /// limits to what the adapter offers so fewer chunks are needed.
    pub async fn new_headless() -> Result<GpuContext, GpuError> {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = wgpu::util::initialize_adapter_from_env_or_default(&instance, None)
            .await
            .map_err(|e| GpuError::NoAdapter(e.to_string()))?;
        let info = adapter.get_info();
        let offered = adapter.limits();
        let mut limits = wgpu::Limits::downlevel_defaults();
        limits.max_storage_buffer_binding_size = offered.max_storage_buffer_binding_size;
        limits.max_buffer_size = offered.max_buffer_size;
        limits.max_storage_buffers_per_shader_stage = offered
            .max_storage_buffers_per_shader_stage
            .max(limits.max_storage_buffers_per_shader_stage);
        limits.max_compute_workgroups_per_dimension = offered.max_compute_workgroups_per_dimension;
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("resonance-lab compute"),
                required_features: wgpu::Features::empty(),
                required_limits: limits,
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| GpuError::RequestDevice(e.to_string()))?;
        // Our own device: errors outside a scope are logged, never a panic (the default handler
        // panics). Our own work runs inside error scopes and reports through `GpuError`.
        device.on_uncaptured_error(Arc::new(|e: wgpu::Error| {
            log::error!("uncaptured GPU error: {e}");
        }));
        let name = format!("{} ({:?})", info.name, info.backend);
        Ok(GpuContext {
            software: info.device_type == wgpu::DeviceType::Cpu,
            ..GpuContext::from_device(device, queue, name)
        })
    }

    /// Blocking [`GpuContext::new_headless`] (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new_headless_blocking() -> Result<GpuContext, GpuError> {
        pollster::block_on(GpuContext::new_headless())
    }

    /// `Err(DeviceLost)` once the device-lost callback has fired.
    pub fn check_lost(&self) -> Result<(), GpuError> {
        match self.lost.lock().ok().and_then(|l| l.clone()) {
            Some(m) => Err(GpuError::DeviceLost(m)),
            None => Ok(()),
        }
    }

    /// Largest buffer (bytes) one binding may use: the smaller of the storage-binding limit,
    /// the buffer-size limit and `cap`, rounded down to a multiple of 256.
    pub fn max_binding(&self, cap: u64) -> u64 {
        let m = self
            .limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size)
            .min(cap);
        m & !255
    }

    /// Workgroup grid for `invocations` one-dimensional invocations of 256 threads, split into
    /// two dimensions when it exceeds `max_compute_workgroups_per_dimension`.
    pub fn grid(&self, invocations: u64) -> Result<(u32, u32), GpuError> {
        let groups = invocations.div_ceil(256).max(1);
        let max = self.limits.max_compute_workgroups_per_dimension.max(1) as u64;
        if groups <= max {
            return Ok((groups as u32, 1));
        }
        let y = groups.div_ceil(max);
        if y > max {
            return Err(GpuError::Limits(format!(
                "{invocations} invocations need more than {max} x {max} workgroups"
            )));
        }
        // x * 256 * y must cover every invocation and x must stay within the limit
        let x = groups.div_ceil(y);
        Ok((x as u32, y as u32))
    }

    /// A bind group with `buffers` bound whole at bindings 0, 1, 2, ... in order (every
    /// pipeline here binds one buffer per binding, in declaration order).
    pub fn bind_all(
        &self,
        label: &str,
        layout: &wgpu::BindGroupLayout,
        buffers: &[&wgpu::Buffer],
    ) -> wgpu::BindGroup {
        let entries: Vec<wgpu::BindGroupEntry<'_>> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(label),
            layout,
            entries: &entries,
        })
    }
}
