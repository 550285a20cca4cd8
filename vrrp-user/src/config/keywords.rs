//! Configuration keywords accepted by keepalived, per configuration block kind.
//!
//! These lists were taken from keepalived 2.2.7's configuration parser (the
//! `install_keyword*()` registrations in `global_parser.c`, `vrrp_parser.c`,
//! `check_parser.c`, the `check_*.c` checkers, `track_file.c`, `bfd_parser.c`
//! and the include handling of `parser.c`), cross-checked against the strings
//! of the Debian keepalived 2.2.7 binary. Keywords that are only compiled in
//! with some build options, deprecated synonyms that 2.2.7 still accepts, and
//! a handful of keywords added in later keepalived releases are included too.
//!
//! They are used to tell a keyword that is known to keepalived but not
//! implemented by keepxdp (reported as a warning) from a keyword that is
//! unknown (reported as an error, with a did-you-mean suggestion).
//!
//! Every list is sorted (byte order) and free of duplicates, so it can be
//! searched with `binary_search`. Sub-block openers (e.g. `real_server`,
//! `url`, `authentication`) are listed in the block that contains them.
// Complete reference lists: blocks keepxdp keeps whole (bfd_instance, garp_group, FILE_CHECK...)
// are not looked up keyword by keyword yet.
#![allow(dead_code)]

/// Keywords valid at the top level of the configuration file (block openers and root-level options).
pub const TOP_LEVEL: &[&str] = &[
    "SSL",
    "bfd_instance",
    "child_wait_time",
    "garp_group",
    "global_defs",
    "include",
    "instance",
    "interface_up_down_delays",
    "linkbeat_interfaces",
    "linkbeat_use_polling",
    "namespace_with_ipsets",
    "net_namespace",
    "net_namespace_ipvs",
    "static_ipaddress",
    "static_routes",
    "static_rules",
    "track_file",
    "track_group",
    "use_pid_dir",
    "virtual_server",
    "virtual_server_group",
    "vrrp_instance",
    "vrrp_script",
    "vrrp_sync_group",
    "vrrp_track_file",
    "vrrp_track_process",
];

/// Keywords valid inside a `global_defs { }` block.
pub const GLOBAL_DEFS: &[&str] = &[
    "bfd_cpu_affinity",
    "bfd_no_swap",
    "bfd_priority",
    "bfd_process_name",
    "bfd_rlimit_rtime",
    "bfd_rlimit_rttime",
    "bfd_rt_priority",
    "checker_cpu_affinity",
    "checker_log_all_failures",
    "checker_no_swap",
    "checker_priority",
    "checker_process_name",
    "checker_rlimit_rtime",
    "checker_rlimit_rttime",
    "checker_rt_priority",
    "config_save_dir",
    "data_use_instance",
    "dbus_service_name",
    "default_interface",
    "disable_local_igmp",
    "dynamic_interfaces",
    "enable_dbus",
    "enable_script_security",
    "enable_snmp_checker",
    "enable_snmp_keepalived",
    "enable_snmp_rfc",
    "enable_snmp_rfcv2",
    "enable_snmp_rfcv3",
    "enable_snmp_vrrp",
    "enable_traps",
    "fifo_write_vrrp_states_on_reload",
    "include_check",
    "log_unknown_vrids",
    "lvs_flush",
    "lvs_flush_on_stop",
    "lvs_flush_onstop",
    "lvs_netlink_cmd_rcv_bufs",
    "lvs_netlink_cmd_rcv_bufs_force",
    "lvs_netlink_monitor_rcv_bufs",
    "lvs_netlink_monitor_rcv_bufs_force",
    "lvs_notify_fifo",
    "lvs_notify_fifo_script",
    "lvs_process_name",
    "lvs_sync_daemon",
    "lvs_timeouts",
    "max_auto_priority",
    "min_auto_priority_delay",
    "nftables",
    "nftables_counters",
    "nftables_ifindex",
    "nftables_ipvs",
    "nftables_ipvs_priority",
    "nftables_ipvs_start_fwmark",
    "nftables_priority",
    "no_checker_emails",
    "no_email_faults",
    "notification_email",
    "notification_email_from",
    "notify_fifo",
    "notify_fifo_script",
    "process_monitor_rcv_bufs",
    "process_monitor_rcv_bufs_force",
    "process_name",
    "process_names",
    "random_seed",
    "reload_check_config",
    "reload_file",
    "reload_repeat",
    "reload_time_file",
    "router_id",
    "rs_init_notifies",
    "script_user",
    "shutdown_script",
    "shutdown_script_timeout",
    "smtp_alert",
    "smtp_alert_checker",
    "smtp_alert_vrrp",
    "smtp_connect_timeout",
    "smtp_helo_name",
    "smtp_server",
    "snmp_socket",
    "startup_script",
    "startup_script_timeout",
    "tmp_config_directory",
    "umask",
    "vmac_addr_prefix",
    "vmac_prefix",
    "vrrp_check_unicast_src",
    "vrrp_cpu_affinity",
    "vrrp_down_timer_adverts",
    "vrrp_garp_extra_if",
    "vrrp_garp_interval",
    "vrrp_garp_lower_prio_delay",
    "vrrp_garp_lower_prio_repeat",
    "vrrp_garp_master_delay",
    "vrrp_garp_master_refresh",
    "vrrp_garp_master_refresh_repeat",
    "vrrp_garp_master_repeat",
    "vrrp_gna_interval",
    "vrrp_higher_prio_send_advert",
    "vrrp_ipsets",
    "vrrp_iptables",
    "vrrp_lower_prio_no_advert",
    "vrrp_mcast_group4",
    "vrrp_mcast_group6",
    "vrrp_min_garp",
    "vrrp_netlink_cmd_rcv_bufs",
    "vrrp_netlink_cmd_rcv_bufs_force",
    "vrrp_netlink_monitor_rcv_bufs",
    "vrrp_netlink_monitor_rcv_bufs_force",
    "vrrp_no_swap",
    "vrrp_notify_fifo",
    "vrrp_notify_fifo_script",
    "vrrp_notify_priority_changes",
    "vrrp_priority",
    "vrrp_process_name",
    "vrrp_rlimit_rtime",
    "vrrp_rlimit_rttime",
    "vrrp_rt_priority",
    "vrrp_rx_bufs_multiplier",
    "vrrp_rx_bufs_policy",
    "vrrp_skip_check_adv_addr",
    "vrrp_startup_delay",
    "vrrp_strict",
    "vrrp_version",
    "vrrp_vmac_garp_intvl",
];

/// Keywords valid inside a `vrrp_instance NAME { }` block (including the `authentication` sub-block opener; `no_virtual_ipaddress`, `timer_expired_backup` and `v3_checksum_as_v2` are later additions that are still valid).
pub const VRRP_INSTANCE: &[&str] = &[
    "accept",
    "advert_int",
    "authentication",
    "check_unicast_src",
    "debug",
    "dont_track_primary",
    "down_timer_adverts",
    "garp_extra_if",
    "garp_lower_prio_delay",
    "garp_lower_prio_repeat",
    "garp_master_delay",
    "garp_master_refresh",
    "garp_master_refresh_repeat",
    "garp_master_repeat",
    "higher_prio_send_advert",
    "interface",
    "kernel_rx_buf_size",
    "linkbeat_use_polling",
    "lower_prio_no_advert",
    "lvs_sync_daemon_interface",
    "mcast_dst_ip",
    "mcast_src_ip",
    "native_ipv6",
    "no_accept",
    "no_virtual_ipaddress",
    "nopreempt",
    "notify",
    "notify_backup",
    "notify_deleted",
    "notify_fault",
    "notify_master",
    "notify_master_rx_lower_pri",
    "notify_priority_changes",
    "notify_stop",
    "old_unicast_checksum",
    "preempt",
    "preempt_delay",
    "priority",
    "promote_secondaries",
    "skip_check_adv_addr",
    "smtp_alert",
    "state",
    "strict_mode",
    "timer_expired_backup",
    "track_bfd",
    "track_file",
    "track_interface",
    "track_process",
    "track_script",
    "track_src_ip",
    "unicast_fault_no_peer",
    "unicast_peer",
    "unicast_src_ip",
    "unicast_ttl",
    "use_ipvlan",
    "use_vmac",
    "use_vmac_addr",
    "v3_checksum_as_v2",
    "version",
    "virtual_ipaddress",
    "virtual_ipaddress_excluded",
    "virtual_router_id",
    "virtual_routes",
    "virtual_rules",
    "vmac_garp_intvl",
    "vmac_xmit_base",
    "vrf",
];

/// Keywords valid inside a `vrrp_sync_group NAME { }` block.
pub const VRRP_SYNC_GROUP: &[&str] = &[
    "global_tracking",
    "group",
    "notify",
    "notify_backup",
    "notify_fault",
    "notify_master",
    "notify_priority_changes",
    "notify_stop",
    "smtp_alert",
    "sync_group_tracking_weight",
    "track_bfd",
    "track_file",
    "track_interface",
    "track_process",
    "track_script",
];

/// Keywords valid inside a `vrrp_script NAME { }` block.
pub const VRRP_SCRIPT: &[&str] = &[
    "fall",
    "init_fail",
    "interval",
    "rise",
    "script",
    "timeout",
    "user",
    "weight",
];

/// Keywords valid inside a `vrrp_track_process NAME { }` block.
pub const VRRP_TRACK_PROCESS: &[&str] = &[
    "delay",
    "fork_delay",
    "full_command",
    "param_match",
    "process",
    "quorum",
    "quorum_max",
    "terminate_delay",
    "weight",
];

/// Keywords valid inside a `track_file NAME { }` or (deprecated) `vrrp_track_file NAME { }` block.
pub const VRRP_TRACK_FILE: &[&str] = &[
    "file",
    "init_file",
    "weight",
];

/// Keywords valid inside a `virtual_server_group NAME { }` block (all other lines are address/range entries).
pub const VIRTUAL_SERVER_GROUP: &[&str] = &[
    "fwmark",
];

/// Keywords valid inside a `virtual_server ... { }` block (including the `real_server` sub-block opener).
pub const VIRTUAL_SERVER: &[&str] = &[
    "alpha",
    "connect_timeout",
    "delay_before_retry",
    "delay_loop",
    "flag-1",
    "flag-2",
    "flag-3",
    "ha_suspend",
    "hashed",
    "hysteresis",
    "inhibit_on_failure",
    "ip_family",
    "lb_algo",
    "lb_kind",
    "lvs_method",
    "lvs_sched",
    "mh-fallback",
    "mh-port",
    "omega",
    "ops",
    "persistence_engine",
    "persistence_granularity",
    "persistence_timeout",
    "protocol",
    "quorum",
    "quorum_down",
    "quorum_up",
    "real_server",
    "retry",
    "sh-fallback",
    "sh-port",
    "smtp_alert",
    "snmp_name",
    "sorry_server",
    "sorry_server_inhibit",
    "sorry_server_lvs_method",
    "virtualhost",
    "warmup",
    "weight",
];

/// Keywords valid inside a `real_server ADDR [PORT] { }` block (including the checker sub-block openers).
pub const REAL_SERVER: &[&str] = &[
    "BFD_CHECK",
    "DNS_CHECK",
    "FILE_CHECK",
    "HTTP_GET",
    "MISC_CHECK",
    "PING_CHECK",
    "SMTP_CHECK",
    "SSL_GET",
    "TCP_CHECK",
    "UDP_CHECK",
    "alpha",
    "connect_timeout",
    "delay_before_retry",
    "delay_loop",
    "inhibit_on_failure",
    "lthreshold",
    "lvs_method",
    "notify_down",
    "notify_up",
    "retry",
    "smtp_alert",
    "snmp_name",
    "uthreshold",
    "virtualhost",
    "warmup",
    "weight",
];

/// Keywords common to the checkers (connection options plus retry/timing options; `MISC_CHECK` only takes the non-connection ones, `BFD_CHECK`/`FILE_CHECK` take none). `nb_get_retry` is a deprecated `HTTP_GET`/`SSL_GET` synonym of `retry`, listed here because old configurations use it in every checker.
pub const CHECKER_COMMON: &[&str] = &[
    "alpha",
    "bind_if",
    "bind_port",
    "bindto",
    "connect_ip",
    "connect_port",
    "connect_timeout",
    "delay_before_retry",
    "delay_loop",
    "fwmark",
    "log_all_failures",
    "nb_get_retry",
    "retry",
    "warmup",
];

/// Keywords specific to `TCP_CHECK { }` beyond [`CHECKER_COMMON`] (none).
pub const TCP_CHECK: &[&str] = &[];

/// Keywords specific to `HTTP_GET { }` / `SSL_GET { }` beyond [`CHECKER_COMMON`] (including the `url` sub-block opener; `tls_compliant` is a later addition).
pub const HTTP_GET: &[&str] = &[
    "enable_sni",
    "fast_recovery",
    "http_protocol",
    "nb_get_retry",
    "tls_compliant",
    "url",
    "virtualhost",
];

/// Keywords valid inside a `url { }` block of `HTTP_GET` / `SSL_GET`.
pub const URL: &[&str] = &[
    "digest",
    "path",
    "regex",
    "regex_max_offset",
    "regex_min_offset",
    "regex_no_match",
    "regex_options",
    "regex_stack",
    "status_code",
    "virtualhost",
];

/// Keywords specific to `MISC_CHECK { }` beyond [`CHECKER_COMMON`].
pub const MISC_CHECK: &[&str] = &[
    "misc_dynamic",
    "misc_path",
    "misc_timeout",
    "user",
];

/// Keywords specific to `SMTP_CHECK { }` beyond [`CHECKER_COMMON`] (including the deprecated `host` sub-block opener, whose body takes the connection keywords of [`CHECKER_COMMON`]).
pub const SMTP_CHECK: &[&str] = &[
    "helo_name",
    "host",
];

/// Keywords specific to `DNS_CHECK { }` beyond [`CHECKER_COMMON`].
pub const DNS_CHECK: &[&str] = &[
    "name",
    "type",
];

/// Keywords specific to `UDP_CHECK { }` beyond [`CHECKER_COMMON`].
pub const UDP_CHECK: &[&str] = &[
    "max_reply_length",
    "min_reply_length",
    "payload",
    "require_reply",
];

/// Keywords specific to `PING_CHECK { }` beyond [`CHECKER_COMMON`] (none).
pub const PING_CHECK: &[&str] = &[];

/// Keywords valid inside `FILE_CHECK { }` (it takes none of [`CHECKER_COMMON`]).
pub const FILE_CHECK: &[&str] = &[
    "track_file",
    "weight",
];

/// Keywords valid inside `BFD_CHECK { }` (it takes none of [`CHECKER_COMMON`]).
pub const BFD_CHECK: &[&str] = &[
    "alpha",
    "name",
];

/// Keywords valid inside a `bfd_instance NAME { }` block.
pub const BFD_INSTANCE: &[&str] = &[
    "checker",
    "hoplimit",
    "idle_tx",
    "max_hops",
    "min_rx",
    "min_tx",
    "multiplier",
    "neighbor_ip",
    "neighbour_ip",
    "passive",
    "source_ip",
    "ttl",
    "vrrp",
    "weight",
];

/// Keywords valid inside a `garp_group { }` block.
pub const GARP_GROUP: &[&str] = &[
    "garp_interval",
    "gna_interval",
    "interface",
    "interfaces",
];

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &[(&str, &[&str])] = &[
        ("TOP_LEVEL", TOP_LEVEL),
        ("GLOBAL_DEFS", GLOBAL_DEFS),
        ("VRRP_INSTANCE", VRRP_INSTANCE),
        ("VRRP_SYNC_GROUP", VRRP_SYNC_GROUP),
        ("VRRP_SCRIPT", VRRP_SCRIPT),
        ("VRRP_TRACK_PROCESS", VRRP_TRACK_PROCESS),
        ("VRRP_TRACK_FILE", VRRP_TRACK_FILE),
        ("VIRTUAL_SERVER_GROUP", VIRTUAL_SERVER_GROUP),
        ("VIRTUAL_SERVER", VIRTUAL_SERVER),
        ("REAL_SERVER", REAL_SERVER),
        ("CHECKER_COMMON", CHECKER_COMMON),
        ("TCP_CHECK", TCP_CHECK),
        ("HTTP_GET", HTTP_GET),
        ("URL", URL),
        ("MISC_CHECK", MISC_CHECK),
        ("SMTP_CHECK", SMTP_CHECK),
        ("DNS_CHECK", DNS_CHECK),
        ("UDP_CHECK", UDP_CHECK),
        ("PING_CHECK", PING_CHECK),
        ("FILE_CHECK", FILE_CHECK),
        ("BFD_CHECK", BFD_CHECK),
        ("BFD_INSTANCE", BFD_INSTANCE),
        ("GARP_GROUP", GARP_GROUP),
    ];

    #[test]
    fn lists_are_sorted_and_unique() {
        for (name, list) in ALL {
            for pair in list.windows(2) {
                assert!(pair[0] < pair[1], "{name}: {:?} must sort before {:?}", pair[0], pair[1]);
            }
        }
    }
}
