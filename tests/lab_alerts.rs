//! keepalived's email alerts, received: keepxdp on the lab's node with `smtp_server` pointing
//! at an SMTP sink in the peer namespace. Two instances' and their sync group's BACKUP and
//! MASTER transitions and a real server going down arrive with keepalived 2.2.7's envelope, headers, subjects and
//! bodies; with the sink gone, the next alert fails, is counted, and VRRP carries on.
use std::{net::SocketAddr, time::Duration};

use anyhow::{Context, Result, ensure};
use keepxdp_lab::{
    http::HttpServer,
    keepxdp::Keepxdp,
    process::wait_for,
    vrrp_lab::{VIP, VrrpLab, instance_config},
};
use keepxdp_tests::{
    keepxdp_bin,
    smtp_sink::{Received, SmtpSink},
};

const SINK: &str = "10.77.0.1:2525";
const REAL: &str = "10.77.0.1:8080";

fn config() -> String {
    let global = "global_defs {\n  router_id LAB_ALERTS\n  notification_email {\n    ops@example.com\n    oncall@example.com\n  }\n  \
                  notification_email_from keepxdp@lab.example.com\n  smtp_server 10.77.0.1 2525\n  smtp_helo_name lab-node\n  \
                  smtp_connect_timeout 3\n  smtp_alert\n}\n";
    // Two instances in a sync group: the group's own mails come too.
    let one = instance_config("kxnode", 3, 100, "0.1", "BACKUP", "");
    let one = &one[one.find("vrrp_instance").unwrap()..];
    let two = one.replace("VI_51", "VI_52").replace("virtual_router_id 51", "virtual_router_id 52").replace(&format!("{VIP}/24"), "10.77.0.101/24");
    let instance = format!("{one}{two}vrrp_sync_group G {{\n  group {{\n    VI_51\n    VI_52\n  }}\n}}\n");
    let service = format!(
        "virtual_server {VIP} 80 {{\n  delay_loop 1\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n  \
         real_server 10.77.0.1 8080 {{\n    weight 1\n    TCP_CHECK {{\n      connect_timeout 1\n      retry 1\n      delay_before_retry 0.5\n    }}\n  }}\n}}\n"
    );
    format!("{global}{instance}{service}")
}

fn alerts(node: &Keepxdp) -> Result<serde_json::Value> {
    let status: serde_json::Value = serde_json::from_str(&node.status_json()?)?;
    Ok(status["alerts"].clone())
}

fn subjects(messages: &[Received]) -> Vec<String> {
    messages.iter().map(|m| m.header("Subject").unwrap_or_default().to_string()).collect()
}

/// keepalived's envelope and headers on every message.
fn check_envelope(message: &Received) -> Result<()> {
    ensure!(message.helo == "lab-node", "HELO {:?}", message.helo);
    ensure!(message.mail_from == "<keepxdp@lab.example.com>", "MAIL FROM {:?}", message.mail_from);
    ensure!(message.rcpt_to == ["<ops@example.com>", "<oncall@example.com>"], "RCPT TO {:?}", message.rcpt_to);
    ensure!(message.header_names() == ["Date", "From", "Subject", "X-Mailer", "To"], "headers {:?}", message.header_names());
    ensure!(message.header("From") == Some("keepxdp@lab.example.com"), "{message:?}");
    ensure!(message.header("To") == Some("ops@example.com, oncall@example.com"), "{message:?}");
    ensure!(message.header("X-Mailer") == Some("Keepalived"), "{message:?}");
    let date = message.header("Date").unwrap_or_default();
    ensure!(date.len() >= 30 && date.contains(", ") && date.ends_with(|c: char| c.is_ascii_digit()), "Date {date:?}");
    Ok(())
}

#[test]
fn lab_alert_mails_for_vrrp_transitions_and_a_real_server_going_down() -> Result<()> {
    let lab = VrrpLab::new()?;
    let mut sink = SmtpSink::start(&lab.peer, SINK.parse()?)?;
    let real: SocketAddr = REAL.parse()?;
    let mut server = HttpServer::start(&lab.peer, real, "rs1")?;
    let mut node = Keepxdp::start(&keepxdp_bin()?, &lab.node, lab.dir.path(), &config())?;

    let mut vrrp: Vec<String> = ["Instance VI_51", "Instance VI_52", "Group G"]
        .iter()
        .flat_map(|who| ["BACKUP", "MASTER"].map(|state| format!("[LAB_ALERTS] VRRP {who} - Entering {state} state")))
        .collect();
    vrrp.sort();
    wait_for("the instances' and the group's BACKUP and MASTER mails", Duration::from_secs(10), || Ok(sink.received().len() >= 6))
        .with_context(|| format!("received {:?}; keepxdp's log:\n{}", subjects(&sink.received()), node.child.log_text()))?;
    ensure!(lab.node_holds_vip()?, "Master without the VIP");
    let received = sink.received();
    let mut got = subjects(&received[..6]);
    got.sort();
    ensure!(got == vrrp, "{:?}", subjects(&received));
    let body = |subject: &str| received.iter().find(|m| m.header("Subject") == Some(subject)).map(|m| m.body().to_string());
    ensure!(body("[LAB_ALERTS] VRRP Instance VI_51 - Entering BACKUP state").as_deref() == Some("=> VRRP Instance is no longer owning VRRP VIPs <="));
    ensure!(body("[LAB_ALERTS] VRRP Instance VI_51 - Entering MASTER state").as_deref() == Some("=> VRRP Instance is now owning VRRP VIPs <="));
    ensure!(body("[LAB_ALERTS] VRRP Group G - Entering MASTER state").as_deref() == Some("=> All VRRP group instances are now in MASTER state <="));
    for message in &received {
        check_envelope(message)?;
    }
    // Each one's BACKUP before its MASTER.
    let at = |subject: &str| subjects(&received).iter().position(|s| s == subject);
    for who in ["Instance VI_51", "Instance VI_52", "Group G"] {
        ensure!(at(&format!("[LAB_ALERTS] VRRP {who} - Entering BACKUP state")) < at(&format!("[LAB_ALERTS] VRRP {who} - Entering MASTER state")), "{:?}", subjects(&received));
    }
    // The real server's first verdict (up, as it started) is no change: no mail for it.
    std::thread::sleep(Duration::from_millis(1500));
    ensure!(sink.received().len() == 6, "unexpected mails: {:?}", subjects(&sink.received()));

    server.stop();
    let down = "[LAB_ALERTS] Realserver [10.77.0.1]:tcp:8080 of virtual server [10.77.0.100]:tcp:80 - DOWN";
    wait_for("the real server's DOWN mail", Duration::from_secs(10), || Ok(sink.received().len() >= 7))
        .with_context(|| format!("received {:?}; keepxdp's log:\n{}", subjects(&sink.received()), node.child.log_text()))?;
    let received = sink.received();
    ensure!(received.len() == 7 && received[6].header("Subject") == Some(down), "{:?}", subjects(&received));
    ensure!(received[6].body() == "=> TCP CHECK failed on service <=", "{:?}", received[6].body());
    check_envelope(&received[6])?;
    // Counted once the client has QUIT's reply, which races with the sink keeping the mail.
    wait_for("7 mails counted sent", Duration::from_secs(3), || Ok(alerts(&node)?["sent"] == 7)).with_context(|| format!("{}", alerts(&node).unwrap_or_default()))?;
    let counts = alerts(&node)?;
    ensure!(counts["failed"] == 0 && counts["dropped"] == 0 && counts["queued"] == 0, "{counts}");

    // No SMTP server any more: the UP mail fails (refused at once), is counted and logged,
    // and keepxdp stays Master, advertising.
    sink.stop();
    server.restart()?;
    wait_for("the UP mail to fail", Duration::from_secs(10), || Ok(alerts(&node)?["failed"] == 1))
        .with_context(|| format!("{}; keepxdp's log:\n{}", alerts(&node).unwrap_or_default(), node.child.log_text()))?;
    ensure!(node.child.log_text().contains("SMTP alert not sent"), "the failure is not logged:\n{}", node.child.log_text());
    node.child.check_running()?;
    let status: serde_json::Value = serde_json::from_str(&node.status_json()?)?;
    ensure!(status["vrrp"][0]["state"] == "Master" && lab.node_holds_vip()?, "{status}");
    node.stop()?;
    Ok(())
}
