//! XDP bpf_links by hand (the bpf(2) commands, no more): created, pinned, adopted and
//! updated in place without ever being unpinned.
//!
//! Written here rather than through aya 0.14 because aya's `FdLink` hides its descriptor and
//! offers BPF_LINK_UPDATE only on a link it owns: adopting a pinned link through aya means
//! unpinning it first, and a crash in that moment would take the data plane down with the
//! process — the one thing a pinned link is for.
use std::{
    ffi::CString,
    io,
    os::{
        fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd},
        unix::ffi::OsStrExt,
    },
    path::Path,
};

use super::AttachMode;

const BPF_OBJ_PIN: libc::c_long = 6;
const BPF_OBJ_GET: libc::c_long = 7;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_LINK_UPDATE: libc::c_long = 29;
const BPF_LINK_DETACH: libc::c_long = 34;
/// `enum bpf_attach_type`: BPF_XDP.
const BPF_XDP: u32 = 37;
const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
/// `enum bpf_link_type`: BPF_LINK_TYPE_XDP.
const BPF_LINK_TYPE_XDP: u32 = 6;

/// `union bpf_attr` is 128+ bytes in 6.x; every command reads its own prefix of it.
type Attr = [u8; 128];

fn put_u32(attr: &mut Attr, at: usize, value: u32) {
    attr[at..at + 4].copy_from_slice(&value.to_ne_bytes());
}

fn put_u64(attr: &mut Attr, at: usize, value: u64) {
    attr[at..at + 8].copy_from_slice(&value.to_ne_bytes());
}

fn bpf(command: libc::c_long, attr: &mut Attr) -> io::Result<i64> {
    // SAFETY: `attr` is a zero-filled bpf_attr of the size passed; pointers inside it
    // (paths, info buffers) outlive the call.
    let result = unsafe { libc::syscall(libc::SYS_bpf, command, attr.as_mut_ptr(), attr.len()) };
    if result < 0 { Err(io::Error::last_os_error()) } else { Ok(result) }
}

fn owned(fd: i64) -> OwnedFd {
    // SAFETY: the kernel just returned this new descriptor to us.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a pin path"))
}

/// BPF_LINK_CREATE: attaches `program` (an XDP program) to `ifindex` in `mode`.
pub fn create_xdp(program: BorrowedFd<'_>, ifindex: u32, mode: AttachMode) -> io::Result<OwnedFd> {
    let mut attr: Attr = [0; 128];
    // link_create: { prog_fd, target_ifindex, attach_type, flags }.
    put_u32(&mut attr, 0, program.as_raw_fd() as u32);
    put_u32(&mut attr, 4, ifindex);
    put_u32(&mut attr, 8, BPF_XDP);
    put_u32(&mut attr, 12, match mode {
        AttachMode::Native => XDP_FLAGS_DRV_MODE,
        AttachMode::Generic => XDP_FLAGS_SKB_MODE,
    });
    bpf(BPF_LINK_CREATE, &mut attr).map(owned)
}

/// BPF_OBJ_PIN.
pub fn pin(fd: BorrowedFd<'_>, path: &Path) -> io::Result<()> {
    let path = c_path(path)?;
    let mut attr: Attr = [0; 128];
    // obj_pin: { pathname, bpf_fd, file_flags }.
    put_u64(&mut attr, 0, path.as_ptr() as u64);
    put_u32(&mut attr, 8, fd.as_raw_fd() as u32);
    bpf(BPF_OBJ_PIN, &mut attr).map(|_| ())
}

/// BPF_OBJ_GET: a descriptor of a pinned object; the pin stays.
pub fn open_pinned(path: &Path) -> io::Result<OwnedFd> {
    let path = c_path(path)?;
    let mut attr: Attr = [0; 128];
    put_u64(&mut attr, 0, path.as_ptr() as u64);
    bpf(BPF_OBJ_GET, &mut attr).map(owned)
}

/// BPF_LINK_UPDATE: the link runs `program` from now on, with no moment where it runs none.
pub fn update(link: BorrowedFd<'_>, program: BorrowedFd<'_>) -> io::Result<()> {
    let mut attr: Attr = [0; 128];
    // link_update: { link_fd, new_prog_fd, flags, old_prog_fd }.
    put_u32(&mut attr, 0, link.as_raw_fd() as u32);
    put_u32(&mut attr, 4, program.as_raw_fd() as u32);
    bpf(BPF_LINK_UPDATE, &mut attr).map(|_| ())
}

/// BPF_LINK_DETACH: the program leaves its hook now (dropping the last reference to a link
/// releases it only later, deferred in the kernel, and an attach meanwhile fails with EEXIST).
pub fn detach(link: BorrowedFd<'_>) -> io::Result<()> {
    let mut attr: Attr = [0; 128];
    put_u32(&mut attr, 0, link.as_raw_fd() as u32);
    bpf(BPF_LINK_DETACH, &mut attr).map(|_| ())
}

/// What the kernel says of an XDP link: the interface it is attached to (0 once that
/// interface was deleted: the link is defunct) and the program it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XdpLinkInfo {
    pub ifindex: u32,
    pub program_id: u32,
}

/// BPF_OBJ_GET_INFO_BY_FD on a link; an error when it is not an XDP link.
pub fn xdp_info(link: BorrowedFd<'_>) -> io::Result<XdpLinkInfo> {
    // struct bpf_link_info: { type, id, prog_id, (pad), union { ..., xdp { ifindex } } }:
    // the union holds u64 members, so it starts at offset 16.
    let mut info = [0u8; 64];
    let mut attr: Attr = [0; 128];
    // info: { bpf_fd, info_len, info }.
    put_u32(&mut attr, 0, link.as_raw_fd() as u32);
    put_u32(&mut attr, 4, info.len() as u32);
    put_u64(&mut attr, 8, info.as_mut_ptr() as u64);
    bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr)?;
    let u32_at = |at: usize| u32::from_ne_bytes(info[at..at + 4].try_into().unwrap());
    if u32_at(0) != BPF_LINK_TYPE_XDP {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("link type {} is not XDP", u32_at(0))));
    }
    Ok(XdpLinkInfo { program_id: u32_at(8), ifindex: u32_at(16) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_with_a_nul_is_refused_before_any_syscall() {
        let error = open_pinned(Path::new("/sys/fs/bpf/a\0b")).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    }
}
