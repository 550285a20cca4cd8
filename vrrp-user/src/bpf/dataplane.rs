//! The loaded XDP programs: the guard (entry) chained to the balancer, attached to
//! interfaces, pinned under the pin directory.
use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, anyhow};
use aya::{
    Ebpf, EbpfLoader,
    maps::{HashMap, MapData, ProgramArray},
    programs::{Xdp, XdpMode, xdp::XdpLinkId},
};
use serde::Serialize;
use vrrp_common::{
    guard::{PeerKey, VridConfig, VridKey},
    pins::{
        LVS_PROG_SLOT, MAP_GUARD_STATS, MAP_LVS_BACKEND_STATS, MAP_LVS_BACKENDS, MAP_LVS_CONFIG,
        MAP_LVS_CONNTRACK, MAP_LVS_DROPS, MAP_LVS_MAGLEV, MAP_LVS_NAT, MAP_LVS_PROGS,
        MAP_LVS_SERVICE_STATS, MAP_LVS_SERVICES, MAP_PEERS, MAP_VIP_STATE, MAP_VRIDS,
        PIN_PROG_LVS_BALANCER, PIN_PROG_VRRP_GUARD, PROG_LVS_BALANCER, PROG_VRRP_GUARD,
    },
};

use super::{GuardMaps, LVS_EBPF, VRRP_EBPF, XdpMaps};

/// Sizes of the balancer's maps, fixed when the object is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LvsLimits {
    /// Services (each gets a ring of `maglev_size` slots and a counters row).
    pub max_services: u32,
    /// Maglev ring size per service: a prime larger than 100 × the backends of a service.
    pub maglev_size: u32,
    /// Conntrack entries (shared LRU).
    pub conntrack_entries: u32,
    /// Shared NAT entries (two per NAT connection).
    pub nat_entries: u32,
}

impl Default for LvsLimits {
    fn default() -> Self {
        use vrrp_common::lvs::*;
        Self {
            max_services: DEFAULT_MAX_SERVICES,
            maglev_size: DEFAULT_MAGLEV_SIZE,
            conntrack_entries: DEFAULT_CONNTRACK_ENTRIES,
            nat_entries: DEFAULT_NAT_ENTRIES,
        }
    }
}

/// How to load the data plane.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub limits: LvsLimits,
    /// Flow state (`lvs_conntrack`, `lvs_nat`) lives in pins here: a keepxdp restarted over
    /// a running data plane (`--keep-dataplane`) adopts the flows instead of forgetting them.
    pub state_pin_dir: Option<PathBuf>,
}

/// The balancer's maps that `pin` pins (flow state is pinned at load, see `LoadOptions`).
const LVS_PINNED_MAPS: [&str; 8] = [
    MAP_LVS_SERVICES,
    MAP_LVS_BACKENDS,
    MAP_LVS_MAGLEV,
    MAP_VIP_STATE,
    MAP_LVS_CONFIG,
    MAP_LVS_BACKEND_STATS,
    MAP_LVS_SERVICE_STATS,
    MAP_LVS_DROPS,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AttachMode {
    /// In the driver (XDP_FLAGS_DRV_MODE).
    Native,
    /// In the stack (XDP_FLAGS_SKB_MODE): the fallback when the driver has no XDP.
    Generic,
}

#[derive(Debug, Serialize)]
pub struct Attachment {
    pub interface: String,
    pub ifindex: u32,
    pub mode: AttachMode,
    #[serde(skip)]
    link: XdpLinkId,
}

pub struct Dataplane {
    guard: Ebpf,
    lvs: Ebpf,
    limits: LvsLimits,
    /// Tests' and benchmarks' handle on the balancer's maps, made on first use (the daemon
    /// takes its own with `lvs_maps_handle`; a second mmap of the rings would double their RSS).
    lvs_maps: std::cell::OnceCell<XdpMaps>,
    attachments: Vec<Attachment>,
    pins: Vec<PathBuf>,
    /// `--keep-dataplane`: on drop, leave programs attached and pinned.
    keep: bool,
}

fn xdp_program<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut Xdp> {
    ebpf.program_mut(name)
        .ok_or_else(|| anyhow!("the object has no program {name}"))?
        .try_into()
        .with_context(|| format!("{name} is not an XDP program"))
}

impl Dataplane {
    /// Loads both objects into the kernel and puts the balancer in the guard's tail-call slot.
    pub fn load() -> Result<Self> {
        Self::load_with(&LoadOptions::default())
    }

    pub fn load_with(options: &LoadOptions) -> Result<Self> {
        let limits = options.limits;
        let mut guard = Ebpf::load(VRRP_EBPF).context("loading the VRRP guard object")?;
        let ring_slots = limits
            .max_services
            .checked_mul(limits.maglev_size)
            .ok_or_else(|| anyhow!("max services × Maglev size overflows"))?;
        let mut loader = EbpfLoader::new();
        loader
            .map_max_entries(MAP_LVS_MAGLEV, ring_slots)
            .map_max_entries(MAP_LVS_SERVICE_STATS, limits.max_services)
            .map_max_entries(MAP_LVS_CONNTRACK, limits.conntrack_entries)
            .map_max_entries(MAP_LVS_NAT, limits.nat_entries);
        if let Some(dir) = &options.state_pin_dir {
            for name in [MAP_LVS_CONNTRACK, MAP_LVS_NAT] {
                loader.map_pin_path(name, dir.join(name));
            }
        }
        let mut lvs = loader.load(LVS_EBPF).context("loading the balancer object")?;
        xdp_program(&mut guard, PROG_VRRP_GUARD)?.load().context("verifying vrrp_guard")?;
        xdp_program(&mut lvs, PROG_LVS_BALANCER)?.load().context("verifying lvs_balancer")?;
        let mut pins = Vec::new();
        if let Some(dir) = &options.state_pin_dir {
            pins.extend([MAP_LVS_CONNTRACK, MAP_LVS_NAT].map(|name| dir.join(name)));
        }
        let mut dataplane =
            Self { guard, lvs, limits, lvs_maps: std::cell::OnceCell::new(), attachments: Vec::new(), pins, keep: false };
        dataplane.chain_balancer()?;
        Ok(dataplane)
    }

    pub fn limits(&self) -> LvsLimits {
        self.limits
    }

    pub(super) fn lvs_maps(&self) -> Result<&XdpMaps> {
        if self.lvs_maps.get().is_none() {
            let _ = self.lvs_maps.set(self.lvs_maps_handle()?);
        }
        Ok(self.lvs_maps.get().expect("just set"))
    }

    pub(super) fn lvs_maps_mut(&mut self) -> Result<&mut XdpMaps> {
        self.lvs_maps()?;
        Ok(self.lvs_maps.get_mut().expect("just set"))
    }

    /// A handle of its own on the balancer's maps, for the controller to keep.
    pub fn lvs_maps_handle(&self) -> Result<XdpMaps> {
        XdpMaps::of(&self.lvs, self.limits.max_services * self.limits.maglev_size)
    }

    /// The balancer's object, read-only.
    pub fn balancer(&self) -> &Ebpf {
        &self.lvs
    }

    fn chain_balancer(&mut self) -> Result<()> {
        let balancer = xdp_program(&mut self.lvs, PROG_LVS_BALANCER)?;
        let fd = balancer.fd()?.try_clone()?;
        let map = self.guard.map_mut(MAP_LVS_PROGS).ok_or_else(|| anyhow!("no map {MAP_LVS_PROGS}"))?;
        let mut slots: ProgramArray<&mut MapData> = ProgramArray::try_from(map)?;
        slots.set(LVS_PROG_SLOT, &fd, 0).context("putting the balancer in the tail-call slot")?;
        Ok(())
    }

    /// The guard's object (programs and maps), for tests and benchmarks.
    pub fn guard_object(&mut self) -> &mut Ebpf {
        &mut self.guard
    }

    /// The balancer's object.
    pub fn balancer_object(&mut self) -> &mut Ebpf {
        &mut self.lvs
    }

    pub fn attachments(&self) -> &[Attachment] {
        &self.attachments
    }

    /// Where `--keep-dataplane` pins the guard's link on `interface`.
    pub fn link_pin(dir: &Path, interface: &str) -> PathBuf {
        dir.join(format!("link_vrrp_guard_{interface}"))
    }

    /// `--keep-dataplane` on stop: the attachments' links are pinned under `dir` so the
    /// guard keeps running after keepxdp exits; maps and programs stay pinned too. The next
    /// keepxdp replaces them.
    pub fn keep_attached(&mut self, dir: &Path) -> Result<()> {
        let program = xdp_program(&mut self.guard, PROG_VRRP_GUARD)?;
        for attachment in std::mem::take(&mut self.attachments) {
            let link = program.take_link(attachment.link)?;
            let link = aya::programs::links::FdLink::try_from(link).context("the guard's attachment is not a bpf_link")?;
            let path = Self::link_pin(dir, &attachment.interface);
            link.pin(&path).with_context(|| format!("pinning {}", path.display()))?;
            tracing::info!(interface = attachment.interface, pin = %path.display(), "guard left attached (--keep-dataplane)");
        }
        self.keep = true;
        Ok(())
    }

    /// Attaches the guard to `interface`: native mode, or generic with a log line saying so.
    /// A guard a previous keepxdp left attached (`--keep-dataplane`) is replaced.
    pub fn attach_in(&mut self, interface: &str, pin_dir: &Path) -> Result<&Attachment> {
        let kept = Self::link_pin(pin_dir, interface);
        if kept.exists() {
            match self.replace_kept(interface, &kept) {
                Ok(()) => return Ok(self.attachments.last().unwrap()),
                Err(error) => tracing::warn!(interface, "cannot replace the kept guard atomically ({error:#}); detaching it first"),
            }
            tracing::info!(interface, "replacing the guard a previous keepxdp left attached");
            // Detach now: dropping the last reference releases the link only later (deferred
            // in the kernel), and attaching meanwhile fails with EEXIST.
            detach_pinned_link(&kept);
            let _ = fs::remove_file(&kept);
        }
        self.attach(interface)
    }

    /// A guard a previous keepxdp left attached (`--keep-dataplane`): swap our program into
    /// its link in one step (BPF_LINK_UPDATE), so no frame meets an interface without XDP.
    fn replace_kept(&mut self, interface: &str, kept: &Path) -> Result<()> {
        use aya::programs::{links::PinnedLink, xdp::XdpLink};
        let ifindex = nix::net::if_::if_nametoindex(interface)
            .with_context(|| format!("interface {interface} does not exist"))?;
        let pinned = PinnedLink::from_pin(kept).with_context(|| format!("opening {}", kept.display()))?;
        let fd_link = pinned.unpin().with_context(|| format!("unpinning {}", kept.display()))?;
        let link = XdpLink::try_from(fd_link).context("the kept link is not an XDP link")?;
        let program = xdp_program(&mut self.guard, PROG_VRRP_GUARD)?;
        let link = program.attach_to_link(link).context("BPF_LINK_UPDATE")?;
        tracing::info!(interface, ifindex, "VRRP guard replaced in place (kept link adopted)");
        self.attachments.push(Attachment { interface: interface.to_string(), ifindex, mode: AttachMode::Native, link });
        Ok(())
    }

    /// Attaches the guard to `interface`: native mode, or generic with a log line saying so.
    pub fn attach(&mut self, interface: &str) -> Result<&Attachment> {
        let ifindex = nix::net::if_::if_nametoindex(interface)
            .with_context(|| format!("interface {interface} does not exist"))?;
        let program = xdp_program(&mut self.guard, PROG_VRRP_GUARD)?;
        let (link, mode) = match program.attach_to_if_index(ifindex, XdpMode::Driver) {
            Ok(link) => (link, AttachMode::Native),
            Err(native_error) => {
                tracing::warn!(
                    interface,
                    error = %native_error,
                    "native XDP is not available on this interface; attaching the VRRP guard in generic (skb) mode"
                );
                let link = program
                    .attach_to_if_index(ifindex, XdpMode::Skb)
                    .with_context(|| format!("attaching vrrp_guard to {interface}"))?;
                (link, AttachMode::Generic)
            }
        };
        tracing::info!(interface, ifindex, ?mode, "VRRP guard attached");
        self.attachments.push(Attachment { interface: interface.to_string(), ifindex, mode, link });
        Ok(self.attachments.last().unwrap())
    }

    pub fn detach_all(&mut self) {
        let attachments = std::mem::take(&mut self.attachments);
        let Ok(program) = xdp_program(&mut self.guard, PROG_VRRP_GUARD) else { return };
        for attachment in attachments {
            match program.detach(attachment.link) {
                Ok(()) => tracing::info!(interface = attachment.interface, "VRRP guard detached"),
                Err(error) => tracing::warn!(interface = attachment.interface, %error, "detaching the VRRP guard"),
            }
        }
    }

    /// Pins maps (under their names) and programs (`prog_*`) in `dir`. Pins left by a
    /// process that did not exit cleanly are replaced, with a log line.
    pub fn pin(&mut self, dir: &Path) -> Result<()> {
        let mut pin_one = |path: PathBuf, pin: &mut dyn FnMut(&Path) -> Result<()>| -> Result<()> {
            if path.exists() {
                tracing::warn!(path = %path.display(), "replacing a stale pin");
                fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            }
            pin(&path).with_context(|| format!("pinning {}", path.display()))?;
            self.pins.push(path);
            Ok(())
        };
        for name in [MAP_VRIDS, MAP_PEERS, MAP_GUARD_STATS, MAP_LVS_PROGS] {
            let map = self.guard.map(name).ok_or_else(|| anyhow!("no map {name}"))?;
            pin_one(dir.join(name), &mut |p| Ok(map.pin(p)?))?;
        }
        for name in LVS_PINNED_MAPS {
            let map = self.lvs.map(name).ok_or_else(|| anyhow!("no map {name}"))?;
            pin_one(dir.join(name), &mut |p| Ok(map.pin(p)?))?;
        }
        let guard = xdp_program(&mut self.guard, PROG_VRRP_GUARD)?;
        pin_one(dir.join(PIN_PROG_VRRP_GUARD), &mut |p| Ok(guard.pin(p)?))?;
        let balancer = xdp_program(&mut self.lvs, PROG_LVS_BALANCER)?;
        pin_one(dir.join(PIN_PROG_LVS_BALANCER), &mut |p| Ok(balancer.pin(p)?))?;
        Ok(())
    }

    /// Removes every pin this process made.
    pub fn unpin(&mut self) {
        for path in std::mem::take(&mut self.pins) {
            if let Err(error) = fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), %error, "cannot remove pin");
            }
        }
    }
}

impl GuardMaps for Dataplane {
    fn put_vrid(&mut self, key: VridKey, config: VridConfig) -> Result<()> {
        let map = self.guard.map_mut(MAP_VRIDS).ok_or_else(|| anyhow!("no map {MAP_VRIDS}"))?;
        let mut vrids: HashMap<&mut MapData, VridKey, VridConfig> = HashMap::try_from(map)?;
        vrids.insert(key, config, 0).with_context(|| format!("writing {key:?} to {MAP_VRIDS}"))?;
        Ok(())
    }

    fn put_peer(&mut self, key: PeerKey) -> Result<()> {
        let map = self.guard.map_mut(MAP_PEERS).ok_or_else(|| anyhow!("no map {MAP_PEERS}"))?;
        let mut peers: HashMap<&mut MapData, PeerKey, u8> = HashMap::try_from(map)?;
        peers.insert(key, 1, 0).with_context(|| format!("writing {key:?} to {MAP_PEERS}"))?;
        Ok(())
    }

    fn remove_vrid(&mut self, key: VridKey) -> Result<()> {
        let map = self.guard.map_mut(MAP_VRIDS).ok_or_else(|| anyhow!("no map {MAP_VRIDS}"))?;
        let mut vrids: HashMap<&mut MapData, VridKey, VridConfig> = HashMap::try_from(map)?;
        vrids.remove(&key).with_context(|| format!("removing {key:?} from {MAP_VRIDS}"))?;
        Ok(())
    }

    fn remove_peer(&mut self, key: PeerKey) -> Result<()> {
        let map = self.guard.map_mut(MAP_PEERS).ok_or_else(|| anyhow!("no map {MAP_PEERS}"))?;
        let mut peers: HashMap<&mut MapData, PeerKey, u8> = HashMap::try_from(map)?;
        peers.remove(&key).with_context(|| format!("removing {key:?} from {MAP_PEERS}"))?;
        Ok(())
    }
}

impl Dataplane {
    /// Detaches the guard from one interface (no instance uses it any more).
    pub fn detach(&mut self, interface: &str) {
        let Some(index) = self.attachments.iter().position(|a| a.interface == interface) else { return };
        let attachment = self.attachments.remove(index);
        if let Ok(program) = xdp_program(&mut self.guard, PROG_VRRP_GUARD) {
            match program.detach(attachment.link) {
                Ok(()) => tracing::info!(interface, "VRRP guard detached"),
                Err(error) => tracing::warn!(interface, %error, "detaching the VRRP guard"),
            }
        }
    }
}

/// One BPF_PROG_TEST_RUN of `program` on `frame`, with 256 bytes of room to grow.
fn test_run(program: &mut Xdp, frame: &[u8]) -> Result<(u32, Vec<u8>)> {
    use aya::programs::{TestRun, TestRunOptions};
    let mut out = vec![0u8; frame.len() + 256];
    let result = program.test_run(TestRunOptions {
        data_in: Some(frame),
        data_out: Some(&mut out),
        ..TestRunOptions::default()
    })?;
    out.truncate(result.data_size_out as usize);
    Ok((result.return_value, out))
}

/// BPF_OBJ_GET + BPF_LINK_DETACH on a pinned link: takes the program off its hook at once.
fn detach_pinned_link(pin: &Path) {
    use std::os::{fd::FromRawFd, unix::ffi::OsStrExt};
    const BPF_OBJ_GET: libc::c_long = 7;
    const BPF_LINK_DETACH: libc::c_long = 34;
    let Ok(path) = std::ffi::CString::new(pin.as_os_str().as_bytes()) else { return };
    // union bpf_attr, obj_get member: { __u64 pathname; __u32 bpf_fd; __u32 file_flags; }.
    let mut attr = [0u8; 128];
    attr[..8].copy_from_slice(&(path.as_ptr() as u64).to_ne_bytes());
    // SAFETY: a zeroed bpf_attr of the size passed; the path outlives the call.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, BPF_OBJ_GET, attr.as_ptr(), attr.len()) };
    if fd < 0 {
        return;
    }
    // SAFETY: the kernel just returned this descriptor to us.
    let link = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) };
    // link_detach member: { __u32 link_fd; }.
    let mut attr = [0u8; 128];
    attr[..4].copy_from_slice(&(std::os::fd::AsRawFd::as_raw_fd(&link) as u32).to_ne_bytes());
    // SAFETY: as above.
    let result = unsafe { libc::syscall(libc::SYS_bpf, BPF_LINK_DETACH, attr.as_ptr(), attr.len()) };
    if result < 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "detaching the previous guard");
    }
}

impl Drop for Dataplane {
    fn drop(&mut self) {
        if !self.keep {
            self.detach_all();
            self.unpin();
        }
    }
}

impl Dataplane {
    /// The guard's counters as loaded in this process: (key, total over CPUs).
    pub fn guard_stat_totals(&self) -> Result<Vec<(vrrp_common::guard::GuardStatKey, u64)>> {
        let map = self.guard.map(MAP_GUARD_STATS).ok_or_else(|| anyhow!("no map {MAP_GUARD_STATS}"))?;
        let stats: aya::maps::PerCpuHashMap<&MapData, _, u64> = aya::maps::PerCpuHashMap::try_from(map)?;
        super::guard_stat_totals(&stats)
    }

    /// The balancer's count of one `LvsReason` (total over CPUs).
    pub fn balancer_reason_count(&self, reason: vrrp_common::lvs::LvsReason) -> Result<u64> {
        let map = self.lvs.map(MAP_LVS_DROPS).ok_or_else(|| anyhow!("no map {MAP_LVS_DROPS}"))?;
        let counts: aya::maps::PerCpuArray<&MapData, u64> = aya::maps::PerCpuArray::try_from(map)?;
        Ok(counts.get(&(reason as u32), 0)?.iter().sum())
    }

    /// Empties the tail-call slot: the guard then passes non-VRRP frames to the stack itself.
    pub fn unchain_balancer(&mut self) -> Result<()> {
        let map = self.guard.map_mut(MAP_LVS_PROGS).ok_or_else(|| anyhow!("no map {MAP_LVS_PROGS}"))?;
        let mut slots: ProgramArray<&mut MapData> = ProgramArray::try_from(map)?;
        slots.clear_index(&LVS_PROG_SLOT)?;
        Ok(())
    }

    /// Runs the guard once on `frame` (BPF_PROG_TEST_RUN): the verdict and the frame after.
    pub fn run_guard(&mut self, frame: &[u8]) -> Result<(u32, Vec<u8>)> {
        test_run(xdp_program(&mut self.guard, PROG_VRRP_GUARD)?, frame)
    }

    /// Runs the balancer alone once on `frame` (BPF_PROG_TEST_RUN): the verdict and the frame
    /// after (TUN output is longer than the input: the buffer has room for the outer header).
    pub fn run_balancer(&mut self, frame: &[u8]) -> Result<(u32, Vec<u8>)> {
        test_run(xdp_program(&mut self.lvs, PROG_LVS_BALANCER)?, frame)
    }
}
