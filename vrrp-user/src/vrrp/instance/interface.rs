//! How an instance follows its interface: it takes the interface (socket, vmac) when it is
//! usable, gives it up when it goes down, loses its address or is deleted (FAULT first, so a
//! Master still tries priority 0 through the old socket), and takes the new one when it is
//! back; the reasons for FAULT and what the sync group is told.
use std::{io, time::Duration};

use tokio::time::Instant;

use super::{Runtime, Tables};
use crate::vrrp::{
    attachment::Attachment,
    fsm::{Event, Machine, State},
    host::Host,
    readiness::{Ready, readiness, still_ready},
    sync::MemberEvent,
};

/// Why the instance is in FAULT; any one is enough.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Faults {
    /// Its interface is missing, down or without an address, or its socket did not open.
    pub(super) interface: Option<String>,
    pub(super) tracking: bool,
    /// Another member of its sync group is in FAULT.
    pub(super) group: bool,
}

impl Faults {
    /// What the instance tells its sync group (keepalived: interface down or tracking).
    pub(super) fn own(&self) -> bool {
        self.interface.is_some() || self.tracking
    }

    pub(super) fn any(&self) -> bool {
        self.own() || self.group
    }

    pub(super) fn reason(&self) -> Option<String> {
        let mut reasons: Vec<String> = self.interface.iter().cloned().collect();
        if self.tracking {
            reasons.push("a tracked object failed".into());
        }
        if self.group {
            reasons.push("a member of its sync group is in FAULT".into());
        }
        (!reasons.is_empty()).then(|| reasons.join("; "))
    }
}

/// Opening the socket on a ready interface failed: retried when the interface changes, or
/// after a backoff (1 s doubling to 30 s).
pub(super) const RETRY_FIRST: Duration = Duration::from_secs(1);
pub(super) const RETRY_MAX: Duration = Duration::from_secs(30);

impl<T: Tables, H: Host> Runtime<'_, T, H> {
    /// Follows the interface after a change: gives it up when it is no longer usable as
    /// opened (FAULT first: a Master still tries priority 0 through the old socket), takes it
    /// when it is ready; then the put-back rule.
    pub(super) async fn follow_interface(&mut self, mut machine: Machine) -> Machine {
        if let Some(attachment) = &self.attachment {
            let verdict = still_ready(&self.spec, &self.interfaces.borrow(), &attachment.ready);
            if let Err(waiting) = verdict {
                let reason = format!("waiting for {}: {waiting}", self.spec.interface);
                machine = self.set_interface_fault(machine, Some(reason)).await;
                self.detach().await;
            }
        }
        if self.attachment.is_none() {
            let readiness = readiness(&self.spec, &self.interfaces.borrow());
            match readiness {
                Ok(ready) if self.failed_on == Some(ready) => {}
                Ok(ready) => machine = self.attach(machine, ready).await,
                Err(waiting) => {
                    let reason = format!("waiting for {}: {waiting}", self.spec.interface);
                    machine = self.set_interface_fault(machine, Some(reason)).await;
                }
            }
        }
        self.put_back_removed(&machine).await;
        machine
    }

    pub(super) async fn attach(&mut self, machine: Machine, ready: Ready) -> Machine {
        match Attachment::open(&self.spec, ready, self.table, self.host).await {
            Ok(attachment) => {
                tracing::info!(instance = self.spec.name, interface = self.spec.interface, ifindex = ready.ifindex, source = %ready.source, "interface usable: VRRP socket open");
                self.attachment = Some(attachment);
                self.params.primary_address = ready.source;
                self.status.ifindex = Some(ready.ifindex);
                (self.failed_on, self.retry_at, self.retry_delay) = (None, None, RETRY_FIRST);
                self.present = self.seen_addresses();
                self.set_interface_fault(machine, None).await
            }
            Err(error) => {
                let reason = format!("opening the VRRP socket on {}: {error:#}", self.spec.interface);
                self.failed_on = Some(ready);
                self.retry_at = Some(Instant::now() + self.retry_delay);
                self.retry_delay = (self.retry_delay * 2).min(RETRY_MAX);
                self.set_interface_fault(machine, Some(reason)).await
            }
        }
    }

    pub(super) async fn detach(&mut self) {
        if let Some(attachment) = self.attachment.take() {
            let gone = self.interfaces.borrow().by_index(attachment.ready.ifindex).is_none();
            attachment.close(self.table, gone).await;
            self.status.ifindex = None;
            tracing::info!(instance = self.spec.name, interface = self.spec.interface, "VRRP socket closed");
        }
    }

    /// The socket broke: FAULT, closed, reopened after the backoff.
    pub(super) async fn socket_failed(&mut self, machine: Machine, error: io::Error) -> Machine {
        let reason = format!("receiving on {}: {error}", self.spec.interface);
        let machine = self.set_interface_fault(machine, Some(reason)).await;
        self.detach().await;
        self.failed_on = None;
        self.retry_at = Some(Instant::now() + self.retry_delay);
        self.retry_delay = (self.retry_delay * 2).min(RETRY_MAX);
        machine
    }

    pub(super) async fn set_interface_fault(&mut self, machine: Machine, reason: Option<String>) -> Machine {
        if reason == self.faults.interface {
            return machine;
        }
        if let Some(reason) = &reason {
            tracing::warn!(instance = self.spec.name, reason, "interface not usable");
        }
        let before = self.faults.clone();
        self.faults.interface = reason;
        self.faults_changed(machine, &before).await
    }

    /// Enters or leaves FAULT when the combined fault changed; tells the sync group when the
    /// instance's own fault did. Before the first step only records it (`start` decides).
    pub(super) async fn faults_changed(&mut self, machine: Machine, before: &Faults) -> Machine {
        if before.own() != self.faults.own() {
            self.tell_group(MemberEvent::OwnFault(self.faults.own()));
        }
        self.status.fault_reason = self.faults.reason();
        if machine.state == State::Initialize {
            return machine;
        }
        match (before.any(), self.faults.any()) {
            (false, true) => self.step(&machine, Event::Fault).await,
            (true, false) => self.step(&machine, Event::FaultCleared).await,
            _ => machine,
        }
    }
}
