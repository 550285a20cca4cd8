//! Which kind of XDP attachment an interface has, asked of rtnetlink synchronously (the data
//! plane's loader is not async): an adopted link does not say whether it runs in the driver
//! or in the stack.
use rtnetlink::{
    packet_core::{NLM_F_REQUEST, NetlinkMessage, NetlinkPayload},
    packet_route::{
        RouteNetlinkMessage,
        link::{LinkAttribute, LinkMessage, LinkXdp, XdpAttached},
    },
    sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpAttachMode {
    Native,
    Generic,
    Other,
}

/// IFLA_XDP_ATTACHED of `ifindex`, or None when it has no XDP program (or netlink failed).
pub fn xdp_attach_mode(ifindex: u32) -> Option<XdpAttachMode> {
    let socket = Socket::new(NETLINK_ROUTE).ok()?;
    socket.connect(&SocketAddr::new(0, 0)).ok()?;
    let mut link = LinkMessage::default();
    link.header.index = ifindex;
    let mut request = NetlinkMessage::from(RouteNetlinkMessage::GetLink(link));
    request.header.flags = NLM_F_REQUEST;
    request.finalize();
    let mut buffer = vec![0u8; request.buffer_len()];
    request.serialize(&mut buffer);
    socket.send(&buffer, 0).ok()?;
    let mut reply = vec![0u8; 64 * 1024];
    let length = socket.recv(&mut &mut reply[..], 0).ok()?;
    let message = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&reply[..length]).ok()?;
    let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) = message.payload else { return None };
    link.attributes.iter().find_map(|attribute| match attribute {
        LinkAttribute::Xdp(xdp) => xdp.iter().find_map(|x| match x {
            LinkXdp::Attached(XdpAttached::Driver) => Some(XdpAttachMode::Native),
            LinkXdp::Attached(XdpAttached::SocketBuffer) => Some(XdpAttachMode::Generic),
            LinkXdp::Attached(XdpAttached::None) => None,
            LinkXdp::Attached(_) => Some(XdpAttachMode::Other),
            _ => None,
        }),
        _ => None,
    })
}
