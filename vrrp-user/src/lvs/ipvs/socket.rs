//! The only side-effecting part of the IPVS seam: a generic-netlink socket to the kernel's
//! "IPVS" family. Everything it sends is built by `encode` and everything it reads is
//! parsed by `decode`; this file only frames, sends and maps errors.
use neli::consts::nl::NlmF;
use neli::consts::socket::NlFamily;
use neli::err::RouterError;
use neli::genl::Genlmsghdr;
use neli::nl::NlPayload;
use neli::router::synchronous::{NlRouter, NlRouterReceiverHandle};
use neli::utils::Groups;

use super::attrs::{GENL_NAME, cmd, cmd_attr};
use super::decode::{dest_from_nlattr, service_from_nlattr};
use super::encode::request;
use super::error::IpvsError;
use super::types::{IpvsDest, IpvsService};

type Message = Genlmsghdr<u8, u16>;
type Replies = NlRouterReceiverHandle<u16, Message>;

/// A connection to the kernel's IPVS. Needs CAP_NET_ADMIN for anything but `connect`
/// (the family lookup is unprivileged). Calls block until the kernel answers (neli's
/// router reads replies on its own thread): from async code, call them in spawn_blocking.
pub struct IpvsSocket {
    router: NlRouter,
    family: u16,
}

impl IpvsSocket {
    /// Opens a generic-netlink socket and resolves the "IPVS" family (CTRL_CMD_GETFAMILY);
    /// `IpvsError::NoIpvs` when the kernel has none.
    pub fn connect() -> Result<IpvsSocket, IpvsError> {
        let (router, _multicast) = NlRouter::connect(NlFamily::Generic, None, Groups::empty())
            .map_err(|e| IpvsError::Netlink(format!("cannot open a generic netlink socket: {e}")))?;
        let family = router.resolve_genl_family(GENL_NAME).map_err(|e| match e {
            // The controller answers ENOENT for a family nobody registered.
            RouterError::Nlmsgerr(err) if *err.error() == -libc::ENOENT => IpvsError::NoIpvs,
            other => IpvsError::Netlink(format!("resolving the {GENL_NAME} family: {other}")),
        })?;
        Ok(IpvsSocket { router, family })
    }

    /// The generic-netlink id the kernel gave "IPVS".
    pub fn family_id(&self) -> u16 {
        self.family
    }

    pub fn add_service(&self, service: &IpvsService) -> Result<(), IpvsError> {
        self.command("add a service", cmd::NEW_SERVICE, Some(service), None)
    }

    pub fn edit_service(&self, service: &IpvsService) -> Result<(), IpvsError> {
        self.command("edit a service", cmd::SET_SERVICE, Some(service), None)
    }

    pub fn del_service(&self, service: &IpvsService) -> Result<(), IpvsError> {
        self.command("delete a service", cmd::DEL_SERVICE, Some(service), None)
    }

    pub fn add_dest(&self, service: &IpvsService, dest: &IpvsDest) -> Result<(), IpvsError> {
        self.command("add a real server", cmd::NEW_DEST, Some(service), Some(dest))
    }

    pub fn edit_dest(&self, service: &IpvsService, dest: &IpvsDest) -> Result<(), IpvsError> {
        self.command("edit a real server", cmd::SET_DEST, Some(service), Some(dest))
    }

    pub fn del_dest(&self, service: &IpvsService, dest: &IpvsDest) -> Result<(), IpvsError> {
        self.command("delete a real server", cmd::DEL_DEST, Some(service), Some(dest))
    }

    /// Deletes every service and destination.
    pub fn flush(&self) -> Result<(), IpvsError> {
        self.command("flush", cmd::FLUSH, None, None)
    }

    /// Every service in the table (a GET_SERVICE dump).
    pub fn services(&self) -> Result<Vec<IpvsService>, IpvsError> {
        let replies = self.dump("list services", cmd::GET_SERVICE, None)?;
        let mut services = Vec::new();
        for reply in &replies {
            if let Some(attr) = reply.attrs().get_attr_handle().get_attribute(cmd_attr::SERVICE) {
                services.push(service_from_nlattr(attr)?);
            }
        }
        Ok(services)
    }

    /// The destinations of `service` (a GET_DEST dump naming the service).
    pub fn dests(&self, service: &IpvsService) -> Result<Vec<IpvsDest>, IpvsError> {
        let replies = self.dump("list real servers", cmd::GET_DEST, Some(service))?;
        let mut dests = Vec::new();
        for reply in &replies {
            if let Some(attr) = reply.attrs().get_attr_handle().get_attribute(cmd_attr::DEST) {
                dests.push(dest_from_nlattr(attr, service.family())?);
            }
        }
        Ok(dests)
    }

    /// The whole table, as `import::to_keepalived` takes it.
    pub fn table(&self) -> Result<Vec<(IpvsService, Vec<IpvsDest>)>, IpvsError> {
        self.services()?
            .into_iter()
            .map(|service| {
                let dests = self.dests(&service)?;
                Ok((service, dests))
            })
            .collect()
    }

    /// Sends a request with NLM_F_ACK and waits for the kernel's answer.
    fn command(
        &self,
        op: &'static str,
        cmd: u8,
        service: Option<&IpvsService>,
        dest: Option<&IpvsDest>,
    ) -> Result<(), IpvsError> {
        let replies: Replies = self
            .router
            .send(self.family, NlmF::ACK, NlPayload::Payload(request(cmd, service, dest)?))
            .map_err(|e| IpvsError::Netlink(format!("{op}: {e}")))?;
        for reply in replies {
            reply.map_err(|e| refused(op, e))?;
        }
        Ok(())
    }

    /// Sends a NLM_F_DUMP request and collects every reply up to NLMSG_DONE.
    fn dump(&self, op: &'static str, cmd: u8, service: Option<&IpvsService>) -> Result<Vec<Message>, IpvsError> {
        let replies: Replies = self
            .router
            .send(self.family, NlmF::DUMP, NlPayload::Payload(request(cmd, service, None)?))
            .map_err(|e| IpvsError::Netlink(format!("{op}: {e}")))?;
        let mut messages = Vec::new();
        for reply in replies {
            if let NlPayload::Payload(message) = reply.map_err(|e| refused(op, e))?.nl_payload() {
                messages.push(message.clone());
            }
        }
        Ok(messages)
    }
}

/// A netlink error message is IPVS's refusal (errno); anything else is the transport's.
fn refused(op: &'static str, error: RouterError<u16, Message>) -> IpvsError {
    match error {
        RouterError::Nlmsgerr(err) => IpvsError::Kernel { op, errno: -*err.error() },
        other => IpvsError::Netlink(format!("{op}: {other}")),
    }
}
