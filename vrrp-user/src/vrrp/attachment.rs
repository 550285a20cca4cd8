//! An instance's hold on its interface while the interface is usable: the VRRP socket, the
//! vmac lease (use_vmac), and where the virtual addresses go. Taken when the interface is
//! ready, given back when it goes down, loses its address or is deleted (a re-created
//! interface gets a new one, on its new index).
use super::{
    host::Host,
    link::LinkPlace,
    readiness::Ready,
    spec::InstanceSpec,
};
use crate::{
    config::Family,
    net::vmac::{LinkTable, VmacLease, vmac_name},
};

pub struct Attachment<L> {
    pub ready: Ready,
    pub link: L,
    pub vmac: Option<VmacLease>,
    /// Where the virtual addresses live (the interface, or its vmac), and the MAC their
    /// announcements carry.
    pub address_interface: String,
    pub address_ifindex: u32,
    pub mac: [u8; 6],
}

impl<L> Attachment<L> {
    pub async fn open<T: LinkTable, H: Host<Link = L>>(spec: &InstanceSpec, ready: Ready, table: &T, host: &H) -> anyhow::Result<Attachment<L>> {
        let vmac = match &spec.use_vmac {
            Some(configured) => {
                let name = vmac_name(configured, spec.vrid);
                let lease = VmacLease::take(table, &name, &spec.interface, ready.ifindex, spec.vrid, spec.family == Family::Ipv6).await?;
                tracing::info!(instance = spec.name, vmac = name, "virtual MAC interface created");
                Some(lease)
            }
            None => None,
        };
        match Self::open_link(spec, ready, vmac.as_ref(), host) {
            Ok((link, mac)) => {
                let (address_interface, address_ifindex) = match &vmac {
                    Some(lease) => (lease.name.clone(), lease.ifindex),
                    None => (spec.interface.clone(), ready.ifindex),
                };
                Ok(Attachment { ready, link, vmac, address_interface, address_ifindex, mac })
            }
            Err(error) => {
                if let Some(lease) = vmac {
                    lease.release(table, false).await;
                }
                Err(error)
            }
        }
    }

    fn open_link<H: Host<Link = L>>(spec: &InstanceSpec, ready: Ready, vmac: Option<&VmacLease>, host: &H) -> anyhow::Result<(L, [u8; 6])> {
        // IPv6 adverts must leave from a link-local address; the fresh vmac's is still in
        // DAD, so they go from the base interface (as with vmac_xmit_base).
        let (send_interface, send_ifindex) = match vmac {
            Some(lease) if !spec.vmac_xmit_base && spec.family == Family::Ipv4 => (lease.name.clone(), lease.ifindex),
            _ => (spec.interface.clone(), ready.ifindex),
        };
        let place = LinkPlace {
            interface: spec.interface.clone(),
            ifindex: ready.ifindex,
            send_interface,
            send_ifindex,
            source: ready.source,
            group: spec.group,
        };
        let link = host.open_link(&place)?;
        let mac = match vmac {
            Some(lease) => lease.mac,
            None => host.mac_address(&spec.interface)?,
        };
        Ok((link, mac))
    }

    /// Closes the socket and gives the vmac back (`base_gone`: the interface was deleted and
    /// took the vmac with it).
    pub async fn close<T: LinkTable>(self, table: &T, base_gone: bool) {
        drop(self.link);
        if let Some(lease) = self.vmac {
            lease.release(table, base_gone).await;
        }
    }
}
