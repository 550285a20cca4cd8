//! The Maglev rings map (`lvs_maglev`, BPF_F_MMAPABLE) mapped into our memory: a ring
//! rebuild writes memory instead of making one syscall per slot. Hand-written because aya
//! 0.14 has no mmap for maps. Each slot is one aligned u32, stored atomically, so the XDP
//! program sees either the old or the new value of a slot, never a mix.
//!
//! Array maps keep each value in an 8-byte-aligned cell (the kernel rounds the value size up
//! to 8), so slot `i` is at byte `8 * i`, not `4 * i`.
use std::{
    os::fd::{AsFd, AsRawFd},
    sync::atomic::{AtomicU32, Ordering},
};

use anyhow::{Result, bail};

/// Bytes between consecutive values of an array map (`round_up(value_size, 8)`).
const CELL: usize = 8;

pub struct RingMemory {
    base: *mut u8,
    slots: usize,
    mapped_len: usize,
}

// SAFETY: the memory is a kernel map shared with XDP; every access is an atomic u32.
unsafe impl Send for RingMemory {}

impl RingMemory {
    /// Maps `slots` u32 values of the array map behind `fd`.
    pub fn map(fd: impl AsFd, slots: usize) -> Result<Self> {
        let page = 4096;
        let mapped_len = (slots * CELL).div_ceil(page) * page;
        // SAFETY: a shared mapping of a BPF array map, length rounded to pages as the kernel
        // requires; the pointer is checked before use.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                mapped_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_fd().as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            bail!("mmap of the Maglev rings map: {}", std::io::Error::last_os_error());
        }
        Ok(Self { base: base.cast(), slots, mapped_len })
    }

    fn slot(&self, index: usize) -> Result<&AtomicU32> {
        if index >= self.slots {
            bail!("ring slot {index} is outside the map ({} slots)", self.slots);
        }
        // SAFETY: in bounds of the live mapping, 8-byte aligned; AtomicU32 has u32's layout.
        Ok(unsafe { &*(self.base.add(index * CELL) as *const AtomicU32) })
    }

    pub fn write(&self, index: usize, value: u32) -> Result<()> {
        self.slot(index)?.store(value, Ordering::Release);
        Ok(())
    }

    pub fn read(&self, index: usize) -> Result<u32> {
        Ok(self.slot(index)?.load(Ordering::Acquire))
    }
}

impl Drop for RingMemory {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `map` mapped.
        unsafe { libc::munmap(self.base.cast(), self.mapped_len) };
    }
}
