//! The Maglev rings map (`lvs_maglev`, BPF_F_MMAPABLE) mapped into our memory: a ring
//! rebuild writes memory instead of making one syscall per slot. Hand-written because aya
//! 0.14 has no mmap for maps. Each slot is one aligned u32, stored atomically, so the XDP
//! program sees either the old or the new value of a slot, never a mix.
use std::{
    os::fd::{AsFd, AsRawFd},
    sync::atomic::{AtomicU32, Ordering},
};

use anyhow::{Result, bail};

/// Bytes between two elements of a BPF array in its memory map: the kernel rounds every
/// element up to 8 bytes (`elem_size = round_up(value_size, 8)` in kernel/bpf/arraymap.c),
/// so slot `i`'s u32 sits at byte `8 * i`, followed by 4 bytes of padding. (A stride of 4
/// wrote ring slot `i` into element `i / 2`, or into padding for odd `i`.)
const ELEMENT_STRIDE: usize = 8;

pub struct RingMemory {
    base: *mut AtomicU32,
    slots: usize,
    mapped_len: usize,
}

// SAFETY: the memory is a kernel map shared with XDP; every access is an atomic u32.
unsafe impl Send for RingMemory {}

impl RingMemory {
    /// Maps `slots` u32 values of the array map behind `fd`.
    pub fn map(fd: impl AsFd, slots: usize) -> Result<Self> {
        let page = 4096;
        let mapped_len = (slots * ELEMENT_STRIDE).div_ceil(page) * page;
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
        // SAFETY: in bounds of the live mapping (slots × stride bytes); the value is the first
        // 4 bytes of its 8-byte aligned element; AtomicU32 has u32's layout.
        Ok(unsafe { &*self.base.add(index * (ELEMENT_STRIDE / 4)) })
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
