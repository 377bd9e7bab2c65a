//! Asynchronous readback that never blocks: a submitted chunk of work maps its staging buffer
//! with `map_async`, and [`Pending::try_take`] is polled (once per UI frame, or in a blocking
//! loop on native) until the bytes are there. The error scopes that wrapped the submission are
//! polled the same way, so a validation or out-of-memory error becomes a [`GpuError`] instead of
//! a panic. On the web the map callback and the scope promises resolve from the browser's event
//! loop; nothing here waits on them.

use super::context::{GpuContext, GpuError};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

type ScopeFuture = Pin<Box<dyn Future<Output = Option<wgpu::Error>>>>;

/// Error scopes pushed around the encoding and submission of one chunk of work.
pub struct Scopes {
    oom: wgpu::ErrorScopeGuard,
    validation: wgpu::ErrorScopeGuard,
}

impl Scopes {
    /// Pushes out-of-memory and validation scopes on `device` (popped by [`Scopes::pop`]).
    pub fn push(device: &wgpu::Device) -> Scopes {
        let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
        Scopes { oom, validation }
    }

    /// Pops both scopes (innermost first) and returns their futures.
    pub fn pop(self) -> Vec<ScopeFuture> {
        let v: ScopeFuture = Box::pin(self.validation.pop());
        let o: ScopeFuture = Box::pin(self.oom.pop());
        vec![v, o]
    }
}

/// Polls `futures` once each with a no-op waker; returns the first error, and drops the futures
/// that have resolved. `Ok(true)` when all have resolved without error.
fn poll_scopes(futures: &mut Vec<ScopeFuture>) -> Result<bool, GpuError> {
    let mut cx = Context::from_waker(Waker::noop());
    let mut i = 0;
    while i < futures.len() {
        match futures[i].as_mut().poll(&mut cx) {
            Poll::Ready(Some(e)) => return Err(e.into()),
            Poll::Ready(None) => {
                drop(futures.remove(i));
            }
            Poll::Pending => i += 1,
        }
    }
    Ok(futures.is_empty())
}

/// Runs `work` on the device inside error scopes and returns its value, or the error the scopes
/// caught. Native only needs no wait: wgpu-core resolves scopes immediately; on the web the
/// returned error may be `None` until the browser answers, so use it where a late error is
/// acceptable (pipeline creation).
pub fn scoped<T>(ctx: &GpuContext, work: impl FnOnce(&wgpu::Device) -> T) -> Result<T, GpuError> {
    ctx.check_lost()?;
    let scopes = Scopes::push(&ctx.device);
    let value = work(&ctx.device);
    let mut futures = scopes.pop();
    poll_scopes(&mut futures)?;
    Ok(value)
}

type MapState = Arc<Mutex<Option<Result<(), wgpu::BufferAsyncError>>>>;

/// One submitted chunk whose results are being copied into a mappable staging buffer.
pub struct Pending {
    staging: wgpu::Buffer,
    bytes: u64,
    mapped: MapState,
    scopes: Vec<ScopeFuture>,
}

impl Pending {
    /// Starts mapping the first `bytes` of `staging` (after the submission that fills it) and
    /// keeps the error-scope futures of that submission.
    pub fn start(staging: wgpu::Buffer, bytes: u64, scopes: Scopes) -> Pending {
        let mapped: MapState = Arc::new(Mutex::new(None));
        let flag = Arc::clone(&mapped);
        staging.map_async(wgpu::MapMode::Read, 0..bytes, move |r| {
            if let Ok(mut m) = flag.lock() {
                *m = Some(r);
            }
        });
        Pending {
            staging,
            bytes,
            mapped,
            scopes: scopes.pop(),
        }
    }

    /// Non-blocking: `Ok(None)` while the GPU is still working, `Ok(Some(bytes))` once the
    /// staging buffer is mapped (it is unmapped again before returning), or the error.
    pub fn try_take(&mut self, ctx: &GpuContext) -> Result<Option<Vec<u8>>, GpuError> {
        ctx.check_lost()?;
        poll_scopes(&mut self.scopes)?;
        let state = self
            .mapped
            .lock()
            .map_err(|_| GpuError::Readback("map state poisoned".into()))?
            .take();
        match state {
            None => Ok(None),
            Some(Err(e)) => {
                ctx.check_lost()?;
                Err(GpuError::Readback(e.to_string()))
            }
            Some(Ok(())) => {
                let data = {
                    let view = self
                        .staging
                        .get_mapped_range(0..self.bytes)
                        .map_err(|e| GpuError::Readback(e.to_string()))?;
                    view.to_vec()
                };
                self.staging.unmap();
                Ok(Some(data))
            }
        }
    }
}

/// A buffer that is kept between calls and only reallocated when a larger one is needed.
#[derive(Default)]
pub struct Reusable {
    buffer: Option<wgpu::Buffer>,
}

impl Reusable {
    /// Forgets the buffer without destroying it (work still in flight may hold it); the next
    /// [`Reusable::get`] allocates a fresh one.
    pub fn forget(&mut self) {
        self.buffer = None;
    }

    /// A buffer of at least `size` bytes with `usage`, reusing the previous one when it fits.
    pub fn get(
        &mut self,
        device: &wgpu::Device,
        label: &str,
        size: u64,
        usage: wgpu::BufferUsages,
    ) -> wgpu::Buffer {
        let size = size.max(16).next_multiple_of(16);
        match &self.buffer {
            Some(b) if b.size() >= size && b.usage() == usage => b.clone(),
            _ => {
                if let Some(old) = self.buffer.take() {
                    old.destroy();
                }
                let b = device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(label),
                    size,
                    usage,
                    mapped_at_creation: false,
                });
                self.buffer = Some(b.clone());
                b
            }
        }
    }
}

/// Little-endian f32 values of a byte buffer (mapped memory carries no alignment guarantee
/// for a cast).
pub fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Little-endian u32 words of a byte buffer.
pub fn u32s(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}
