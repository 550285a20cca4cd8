//! What keepalived 2.2.7 writes in its alert mails (core/smtp.c, vrrp/vrrp_notify.c and each
//! checker's file): the subjects, the bodies, and the DATA text with its five headers.
//! Pure: the date comes in as text.
use crate::vrrp::fsm::State;

/// keepalived's buffer sizes (smtp.h): a longer subject or body is cut.
const MAX_SUBJECT: usize = 255;
const MAX_BODY: usize = 511;

/// One alert, before the headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub subject: String,
    pub body: String,
}

/// A VRRP instance entered `state` (None: keepalived sends nothing for it).
pub fn instance(router_id: &str, name: &str, state: State) -> Option<Mail> {
    let (what, body) = match state {
        State::Master => ("Entering MASTER state", "=> VRRP Instance is now owning VRRP VIPs <="),
        State::Backup => ("Entering BACKUP state", "=> VRRP Instance is no longer owning VRRP VIPs <="),
        State::Fault => ("Entering FAULT state", "=> VRRP Instance is no longer owning VRRP VIPs <="),
        State::Stop => ("Stopping", "=> VRRP Instance stopping <="),
        State::Initialize => return None,
    };
    Some(mail(format!("[{router_id}] VRRP Instance {name} - {what}"), body.into()))
}

/// A sync group entered `state`.
pub fn group(router_id: &str, name: &str, state: State) -> Option<Mail> {
    let (what, body) = match state {
        State::Master => ("Entering MASTER state", "=> All VRRP group instances are now in MASTER state <="),
        State::Backup => ("Entering BACKUP state", "=> All VRRP group instances are now in BACKUP state <="),
        State::Fault => ("Entering FAULT state", "=> All VRRP group instances are now in FAULT state <="),
        State::Stop => ("Stopping", "=> All VRRP group instances are now stopping <="),
        State::Initialize => return None,
    };
    Some(mail(format!("[{router_id}] VRRP Group {name} - {what}"), body.into()))
}

/// A checker of a real server changed its verdict: the subject tells the real server's
/// combined state (`real_up`), the body what the checker (`kind`, e.g. `TCP_CHECK`) found.
pub fn real_server(router_id: &str, virtual_server: &str, real: &str, real_up: bool, kind: &str, checker_up: bool) -> Mail {
    let state = if real_up { "UP" } else { "DOWN" };
    let subject = format!("[{router_id}] Realserver {real} of virtual server {virtual_server} - {state}");
    mail(subject, checker_body(kind, checker_up))
}

/// Each checker's own words (check_tcp.c, check_http.c, ...).
fn checker_body(kind: &str, up: bool) -> String {
    let word = if up { "succeed" } else { "failed" };
    match kind {
        "TCP_CHECK" => format!("=> TCP CHECK {word} on service <="),
        "UDP_CHECK" => format!("=> UDP CHECK {word} on service <="),
        "PING_CHECK" => format!("=> ICMP CHECK {word} on service <="),
        "DNS_CHECK" => format!("=> DNS_CHECK: {word} on service <="),
        "MISC_CHECK" => format!("=> MISC CHECK {} on service <=", if up { "succeeded" } else { "failed" }),
        "HTTP_GET" | "SSL_GET" if !up => "=> CHECK failed on service : HTTP request failed <=".into(),
        _ => format!("=> CHECK {word} on service <="),
    }
}

fn mail(subject: String, body: String) -> Mail {
    Mail { subject: cut(subject, MAX_SUBJECT), body: cut(body, MAX_BODY) }
}

fn cut(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// The DATA text keepalived sends, up to and including the lone dot: Date, From, Subject,
/// X-Mailer and To headers (recipients joined by ", "), a blank line, the body. A body line
/// starting with a dot is doubled (RFC 5321 §4.5.2; keepalived's fixed bodies never have one).
pub fn data(date: &str, from: &str, to: &[String], mail: &Mail) -> String {
    let body = mail.body.replace("\r\n", "\n").split('\n').map(|line| if line.starts_with('.') { format!(".{line}") } else { line.to_string() }).collect::<Vec<_>>().join("\r\n");
    format!(
        "Date: {date}\r\nFrom: {from}\r\nSubject: {}\r\nX-Mailer: Keepalived\r\nTo: {}\r\n\r\n{body}\r\n\r\n.\r\n",
        mail.subject,
        to.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_and_group_subjects_and_bodies_are_keepalived_s() {
        let master = instance("LB_1", "VI_1", State::Master).unwrap();
        assert_eq!(master.subject, "[LB_1] VRRP Instance VI_1 - Entering MASTER state");
        assert_eq!(master.body, "=> VRRP Instance is now owning VRRP VIPs <=");
        assert_eq!(instance("LB_1", "VI_1", State::Fault).unwrap().body, "=> VRRP Instance is no longer owning VRRP VIPs <=");
        assert_eq!(instance("LB_1", "VI_1", State::Stop).unwrap().subject, "[LB_1] VRRP Instance VI_1 - Stopping");
        assert_eq!(instance("LB_1", "VI_1", State::Initialize), None);
        let backup = group("LB_1", "VG_1", State::Backup).unwrap();
        assert_eq!(backup.subject, "[LB_1] VRRP Group VG_1 - Entering BACKUP state");
        assert_eq!(backup.body, "=> All VRRP group instances are now in BACKUP state <=");
    }

    #[test]
    fn real_server_mails_name_the_service_as_keepalived_formats_it() {
        let down = real_server("LB_1", "[10.0.0.100]:tcp:80", "[10.0.1.1]:tcp:80", false, "TCP_CHECK", false);
        assert_eq!(down.subject, "[LB_1] Realserver [10.0.1.1]:tcp:80 of virtual server [10.0.0.100]:tcp:80 - DOWN");
        assert_eq!(down.body, "=> TCP CHECK failed on service <=");
        assert_eq!(real_server("r", "v", "s", true, "HTTP_GET", true).body, "=> CHECK succeed on service <=");
        assert_eq!(real_server("r", "v", "s", false, "SSL_GET", false).body, "=> CHECK failed on service : HTTP request failed <=");
        assert_eq!(real_server("r", "v", "s", true, "MISC_CHECK", true).body, "=> MISC CHECK succeeded on service <=");
        assert_eq!(real_server("r", "v", "s", true, "PING_CHECK", true).body, "=> ICMP CHECK succeed on service <=");
        assert_eq!(real_server("r", "v", "s", false, "DNS_CHECK", false).body, "=> DNS_CHECK: failed on service <=");
    }

    #[test]
    fn data_has_keepalived_s_headers_in_order_then_the_body_and_the_dot() {
        let mail = Mail { subject: "S".into(), body: "one\n.two".into() };
        let text = data("Wed, 02 Dec 2026 10:00:00 +0000", "lb@example.com", &["a@example.com".into(), "b@example.com".into()], &mail);
        assert_eq!(
            text,
            "Date: Wed, 02 Dec 2026 10:00:00 +0000\r\nFrom: lb@example.com\r\nSubject: S\r\nX-Mailer: Keepalived\r\nTo: a@example.com, b@example.com\r\n\r\none\r\n..two\r\n\r\n.\r\n"
        );
    }

    #[test]
    fn long_subjects_are_cut_at_keepalived_s_buffer_size() {
        let long = instance(&"r".repeat(300), "VI", State::Master).unwrap();
        assert_eq!(long.subject.len(), MAX_SUBJECT);
    }
}
