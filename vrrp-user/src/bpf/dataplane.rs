//! The loaded XDP programs: the guard (entry) chained to the balancer, attached to
//! interfaces, pinned under the pin directory.
use std::{
    fs,
    os::fd::{AsFd, OwnedFd},
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, anyhow, bail};
use aya::{
    Ebpf, EbpfLoader,
    maps::{HashMap, MapData, ProgramArray},
    programs::Xdp,
};
use serde::Serialize;
use vrrp_common::{
    guard::{PeerKey, VridConfig, VridKey},
    pins::{
        LVS_PROG_SLOT, MAP_GUARD_STATS, MAP_LVS_BACKEND_STATS, MAP_LVS_BACKENDS, MAP_LVS_CONFIG,
        MAP_LVS_CONNTRACK, MAP_LVS_DROPS, MAP_LVS_MAGLEV, MAP_LVS_NAT, MAP_LVS_NAT_RS, MAP_LVS_PROGS,
        MAP_LVS_SERVICE_STATS, MAP_LVS_SERVICES, MAP_PEERS, MAP_VIP_STATE, MAP_VRIDS,
        PIN_PROG_LVS_BALANCER, PIN_PROG_VRRP_GUARD, PROG_LVS_BALANCER, PROG_VRRP_GUARD,
    },
};

use super::{GuardMaps, LVS_EBPF, VRRP_EBPF, XdpMaps, links};

/// Pins of the guard's links: `link_vrrp_guard_<interface>`.
const LINK_PIN_PREFIX: &str = "link_vrrp_guard_";
/// Where pins wait for `commit_pins`.
const STAGING_DIR: &str = "staging";

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
const LVS_PINNED_MAPS: [&str; 9] = [
    MAP_LVS_SERVICES,
    MAP_LVS_BACKENDS,
    MAP_LVS_MAGLEV,
    MAP_VIP_STATE,
    MAP_LVS_CONFIG,
    MAP_LVS_BACKEND_STATS,
    MAP_LVS_SERVICE_STATS,
    MAP_LVS_DROPS,
    MAP_LVS_NAT_RS,
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
    /// Taken over from a previous keepxdp (its pinned link, updated in place).
    pub adopted: bool,
    /// The bpf_link, pinned at `pin` from the moment it exists: the data plane outlives the
    /// process (a crash, a panic, kill -9 leave it forwarding; the next keepxdp adopts it).
    #[serde(skip)]
    link: OwnedFd,
    #[serde(skip)]
    pin: PathBuf,
}

pub struct Dataplane {
    guard: Ebpf,
    lvs: Ebpf,
    limits: LvsLimits,
    /// Tests' and benchmarks' handle on the balancer's maps, made on first use (the daemon
    /// takes its own with `lvs_maps_handle`; a second mmap of the rings would double their RSS).
    lvs_maps: std::cell::OnceCell<XdpMaps>,
    attachments: Vec<Attachment>,
    /// Maps and programs pinned by this process (`(staged, final)` until `commit_pins`).
    pins: Vec<PathBuf>,
    staged: Vec<(PathBuf, PathBuf)>,
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
            Self { guard, lvs, limits, lvs_maps: std::cell::OnceCell::new(), attachments: Vec::new(), pins, staged: Vec::new() };
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

    /// Where the guard's link on `interface` is pinned.
    pub fn link_pin(dir: &Path, interface: &str) -> PathBuf {
        dir.join(format!("{LINK_PIN_PREFIX}{interface}"))
    }

    /// Attaches the guard to `interface`, its link pinned under `pin_dir` at once. A link a
    /// previous keepxdp left there (it crashed, or stopped with `--keep-dataplane`) is adopted:
    /// our program swapped into it in one step (BPF_LINK_UPDATE), so no frame meets the
    /// interface without XDP and the pin never goes away. Native mode, or generic with a log
    /// line saying so.
    pub fn attach(&mut self, interface: &str, pin_dir: &Path) -> Result<&Attachment> {
        let ifindex = nix::net::if_::if_nametoindex(interface)
            .with_context(|| format!("interface {interface} does not exist"))?;
        let pin = Self::link_pin(pin_dir, interface);
        if pin.exists() {
            match self.adopt(interface, ifindex, &pin) {
                Ok(attachment) => {
                    tracing::info!(interface, ifindex, mode = ?attachment.mode, "VRRP guard replaced in place (kept link adopted)");
                    self.attachments.push(attachment);
                    return Ok(self.attachments.last().unwrap());
                }
                Err(error) => {
                    tracing::warn!(interface, pin = %pin.display(), "not adopting the link a previous keepxdp left: {error:#}");
                    release_pinned_link(&pin);
                }
            }
        }
        let program = xdp_program(&mut self.guard, PROG_VRRP_GUARD)?.fd()?.as_fd().try_clone_to_owned()?;
        let (link, mode) = match links::create_xdp(program.as_fd(), ifindex, AttachMode::Native) {
            Ok(link) => (link, AttachMode::Native),
            Err(native_error) if native_error.raw_os_error() == Some(libc::EEXIST) || native_error.raw_os_error() == Some(libc::EBUSY) => {
                return Err(anyhow!(
                    "attaching vrrp_guard to {interface}: another XDP program is attached there ({native_error}); \
                     is another keepxdp running with a different --pin-dir?"
                ));
            }
            Err(native_error) => {
                tracing::warn!(
                    interface,
                    error = %native_error,
                    "native XDP is not available on this interface; attaching the VRRP guard in generic (skb) mode"
                );
                let link = links::create_xdp(program.as_fd(), ifindex, AttachMode::Generic)
                    .with_context(|| format!("attaching vrrp_guard to {interface}"))?;
                (link, AttachMode::Generic)
            }
        };
        if let Err(error) = links::pin(link.as_fd(), &pin) {
            let _ = links::detach(link.as_fd());
            return Err(anyhow!("pinning the guard's link at {}: {error}", pin.display()));
        }
        tracing::info!(interface, ifindex, ?mode, pin = %pin.display(), "VRRP guard attached");
        self.attachments.push(Attachment { interface: interface.to_string(), ifindex, mode, adopted: false, link, pin });
        Ok(self.attachments.last().unwrap())
    }

    /// Takes over the link pinned at `pin` if it is an XDP link still on `ifindex`.
    fn adopt(&mut self, interface: &str, ifindex: u32, pin: &Path) -> Result<Attachment> {
        let link = links::open_pinned(pin).with_context(|| format!("opening {}", pin.display()))?;
        let info = links::xdp_info(link.as_fd()).context("reading the link")?;
        if info.ifindex != ifindex {
            bail!("it is attached to ifindex {} (0: that interface was deleted), {interface} is {ifindex} now", info.ifindex);
        }
        let program = xdp_program(&mut self.guard, PROG_VRRP_GUARD)?.fd()?.as_fd().try_clone_to_owned()?;
        links::update(link.as_fd(), program.as_fd()).context("BPF_LINK_UPDATE")?;
        let mode = match crate::net::xdp_attach_mode(ifindex) {
            Some(crate::net::XdpAttachMode::Generic) => AttachMode::Generic,
            _ => AttachMode::Native,
        };
        Ok(Attachment { interface: interface.to_string(), ifindex, mode, adopted: true, link, pin: pin.to_path_buf() })
    }

    /// Guard links a previous keepxdp pinned in `dir` on interfaces this one does not use:
    /// detached (they would keep running the old program and its maps).
    pub fn release_unused_links(&mut self, dir: &Path) {
        let Ok(entries) = fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(interface) = name.strip_prefix(LINK_PIN_PREFIX) else { continue };
            if self.attachments.iter().any(|a| a.pin == entry.path()) {
                continue;
            }
            tracing::info!(interface, "detaching the guard a previous keepxdp left on an interface this configuration does not use");
            release_pinned_link(&entry.path());
        }
    }

    /// Detaches the guard from one interface (no instance uses it any more, or it was deleted).
    pub fn detach(&mut self, interface: &str) {
        let Some(index) = self.attachments.iter().position(|a| a.interface == interface) else { return };
        let attachment = self.attachments.remove(index);
        attachment.release();
    }

    /// A clean stop: every link detached and unpinned.
    pub fn detach_all(&mut self) {
        for attachment in std::mem::take(&mut self.attachments) {
            attachment.release();
        }
    }

    /// Pins maps (under their names) and programs (`prog_*`) in `dir`, first in
    /// `dir/staging/`; `commit_pins` renames them over the final names. A
    /// previous keepxdp's pins stay in force until then: its prog array (`lvs_progs`) is
    /// cleared by the kernel the moment its last pin goes, so replacing the pins before the
    /// guard links run our program would let its guard pass every frame to the stack.
    pub fn stage_pins(&mut self, dir: &Path) -> Result<()> {
        // bpffs refuses names with a dot: a directory of its own holds the staged pins.
        let staging = dir.join(STAGING_DIR);
        fs::create_dir_all(&staging).with_context(|| format!("creating {}", staging.display()))?;
        let mut staged = Vec::new();
        let mut stage = |path: PathBuf, pin: &mut dyn FnMut(&Path) -> Result<()>| -> Result<()> {
            let temporary = staging.join(path.file_name().expect("a pin has a name"));
            // Left by a keepxdp that died between staging and committing.
            let _ = fs::remove_file(&temporary);
            pin(&temporary).with_context(|| format!("pinning {}", temporary.display()))?;
            staged.push((temporary, path));
            Ok(())
        };
        for name in [MAP_VRIDS, MAP_PEERS, MAP_GUARD_STATS, MAP_LVS_PROGS] {
            let map = self.guard.map(name).ok_or_else(|| anyhow!("no map {name}"))?;
            stage(dir.join(name), &mut |p| Ok(map.pin(p)?))?;
        }
        for name in LVS_PINNED_MAPS {
            let map = self.lvs.map(name).ok_or_else(|| anyhow!("no map {name}"))?;
            stage(dir.join(name), &mut |p| Ok(map.pin(p)?))?;
        }
        let guard = xdp_program(&mut self.guard, PROG_VRRP_GUARD)?;
        stage(dir.join(PIN_PROG_VRRP_GUARD), &mut |p| Ok(guard.pin(p)?))?;
        let balancer = xdp_program(&mut self.lvs, PROG_LVS_BALANCER)?;
        stage(dir.join(PIN_PROG_LVS_BALANCER), &mut |p| Ok(balancer.pin(p)?))?;
        self.staged = staged;
        Ok(())
    }

    /// The staged pins take the final names (a rename replaces a previous keepxdp's pin in
    /// one step).
    pub fn commit_pins(&mut self) -> Result<()> {
        let mut staging = None;
        for (temporary, path) in std::mem::take(&mut self.staged) {
            fs::rename(&temporary, &path).with_context(|| format!("renaming {} to {}", temporary.display(), path.display()))?;
            staging = temporary.parent().map(Path::to_path_buf);
            self.pins.push(path);
        }
        if let Some(staging) = staging {
            let _ = fs::remove_dir(staging);
        }
        Ok(())
    }

    /// Stages and commits at once (nothing attached yet to keep running meanwhile).
    pub fn pin(&mut self, dir: &Path) -> Result<()> {
        self.stage_pins(dir)?;
        self.commit_pins()
    }

    /// Removes every pin this process made.
    pub fn unpin(&mut self) {
        for (path, _) in std::mem::take(&mut self.staged) {
            let _ = fs::remove_file(&path);
            if let Some(staging) = path.parent() {
                let _ = fs::remove_dir(staging);
            }
        }
        for path in std::mem::take(&mut self.pins) {
            if let Err(error) = fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), %error, "cannot remove pin");
            }
        }
    }
}

impl Attachment {
    /// Unpins and detaches the link.
    fn release(self) {
        let _ = fs::remove_file(&self.pin);
        match links::detach(self.link.as_fd()) {
            Ok(()) => tracing::info!(interface = self.interface, "VRRP guard detached"),
            // A link whose interface was deleted is defunct already.
            Err(error) if error.raw_os_error() == Some(libc::ENOLINK) => {}
            Err(error) => tracing::warn!(interface = self.interface, %error, "detaching the VRRP guard"),
        }
    }
}

/// Detaches and unpins a link a previous keepxdp pinned.
fn release_pinned_link(pin: &Path) {
    if let Ok(link) = links::open_pinned(pin)
        && let Err(error) = links::detach(link.as_fd())
        && error.raw_os_error() != Some(libc::ENOLINK)
    {
        tracing::warn!(pin = %pin.display(), %error, "detaching a previous guard link");
    }
    let _ = fs::remove_file(pin);
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
