//! track_interface: up while the interface exists, is administratively up and has carrier,
//! read from the kernel's link events (through `net::Interfaces`), not polled.
use tokio::sync::watch;

use super::priority::Reading;
use crate::net::Interfaces;

/// The reading of `name` in the table: Unknown until the first dump, Down while missing.
pub fn reading(interfaces: &Interfaces, name: &str) -> Reading {
    if !interfaces.loaded {
        return Reading::Unknown;
    }
    match interfaces.by_name(name) {
        Some(link) if link.up => Reading::Up,
        _ => Reading::Down,
    }
}

pub async fn run(name: String, mut interfaces: watch::Receiver<Interfaces>, out: watch::Sender<Reading>) {
    loop {
        let now = reading(&interfaces.borrow_and_update(), &name);
        if out.send_if_modified(|old| std::mem::replace(old, now) != now) {
            tracing::info!(interface = name, ?now, "tracked interface changed");
        }
        if interfaces.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::NetEvent;

    #[tokio::test]
    async fn a_tracked_interface_follows_its_link_events_and_is_down_when_deleted() {
        let link = |up, deleted| NetEvent::Link { ifindex: 4, name: "eth1".into(), up, deleted };
        let (table, receiver) = watch::channel(Interfaces::default());
        let (out, mut reading) = watch::channel(Reading::Unknown);
        let task = tokio::spawn(run("eth1".into(), receiver, out));
        let mut seen = Vec::new();
        for events in [vec![], vec![link(true, false)], vec![link(false, false)], vec![link(true, false)], vec![link(false, true)]] {
            table.send_replace(Interfaces::of(&events));
            reading.changed().await.unwrap();
            seen.push(*reading.borrow_and_update());
        }
        assert_eq!(seen, [Reading::Down, Reading::Up, Reading::Down, Reading::Up, Reading::Down]);
        assert_eq!(super::reading(&Interfaces::default(), "eth1"), Reading::Unknown, "before the first dump");
        task.abort();
    }
}
