"""keepalived 2.2.7's keywords, block by block, and what each becomes in vrrpyd.

The lists were taken from keepalived 2.2.7's keyword tables
(``keepalived/core/global_parser.c``, ``keepalived/vrrp/vrrp_parser.c``,
``keepalived/check/check_parser.c`` and the checkers' ``check_*.c``,
``keepalived/trackers/track_file.c``): every keyword keepalived installs is
here, so that anything else can be called unknown with confidence.

Each :class:`Rule` says where the keyword goes in vrrpyd (``vrrpy``) and
with which outcome (``status``):

* ``carried``: mapped, same meaning;
* ``changed``: mapped, with a difference the docs and the report explain;
* ``dropped``: not carried over, ``why`` says so (and what to do instead);
* ``info``: not carried over because it changes nothing vrrpyd does (process
  names, buffer sizes, mail settings without alerts...).

The converter (:mod:`vrrpy.keepalived.vrrp`, :mod:`vrrpy.keepalived.lvs`)
handles the ``carried`` and ``changed`` keywords itself and turns the others
into notes with ``why``; docs/migrating-from-keepalived.md prints the table
(a test checks that it names every keyword here).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

__all__ = [
    "ALIASES",
    "NEWER",
    "REMOVED",
    "SECTIONS",
    "Rule",
    "Status",
    "lookup",
]

Status: TypeAlias = Literal["carried", "changed", "dropped", "info"]


@dataclass(frozen=True)
class Rule:
    """What one keepalived keyword becomes: ``vrrpy`` (a key, or "-"), ``status``, ``why``."""

    vrrpy: str
    status: Status
    why: str = ""


def _c(vrrpy: str, why: str = "") -> Rule:
    return Rule(vrrpy, "carried", why)


def _ch(vrrpy: str, why: str) -> Rule:
    return Rule(vrrpy, "changed", why)


def _d(why: str) -> Rule:
    return Rule("-", "dropped", why)


def _i(why: str) -> Rule:
    return Rule("-", "info", why)


_MAIL = "mail settings: vrrpyd sends no mail (smtp_alert is not carried over)"
_SNMP = "vrrpyd has no SNMP agent: its Prometheus endpoint ([global] metrics_listen) serves it"
_BFD = "vrrpyd has no BFD"
_BUFS = "a netlink or socket buffer size: vrrpyd sizes its own"
_NAME = "a process name: vrrpyd is one process, named vrrpyd"
_RELOAD = "how keepalived reloads: vrrpyd reloads on SIGHUP from its one file"

TOP: Final[Mapping[str, Rule]] = {
    "global_defs": _c("[global], and defaults of every [[instance]]"),
    "vrrp_instance": _c("[[instance]]"),
    "vrrp_script": _c("[[track_script]]"),
    "vrrp_sync_group": _c("[[sync_group]]"),
    "track_file": _c("[[track_file]]"),
    "vrrp_track_process": _c("[[track_process]]"),
    "virtual_server": _ch(
        "[[virtual_server]]",
        'follows an instance (instance = ...) with install = "always": in every state but '
        "stopped, as keepalived keeps its virtual servers whatever the VRRP state",
    ),
    "net_namespace": _c("[global] netns"),
    "virtual_server_group": _d(
        "vrrpyd has no virtual_server_group: write one virtual_server per address"
    ),
    "SSL": _d("a client certificate for SSL_GET: vrrpy's HTTPS checks present none"),
    "static_ipaddress": _d("static addresses: configure them with the system's network set-up"),
    "static_routes": _d("static routes: configure them with the system's network set-up"),
    "static_rules": _d("static rules: configure them with the system's network set-up"),
    "track_group": _d("track groups of static addresses: vrrpyd has no static addresses"),
    "garp_group": _d(
        "per-interface gratuitous ARP spacing: vrrpyd spaces each instance's burst (garp_interval)"
    ),
    "linkbeat_interfaces": _i("vrrpyd learns every link change from netlink, never by polling"),
    "interface_up_down_delays": _d("vrrpyd acts on a link change at once"),
    "bfd_instance": _d(_BFD),
    "net_namespace_ipvs": _d("the IPVS pools live in vrrpyd's own namespace"),
    "namespace_with_ipsets": _i("vrrpyd uses no ipsets"),
    "use_pid_dir": _i("pid files: vrrpyd writes none (its state file has the pid)"),
    "instance": _i("names keepalived's pid files: vrrpyd writes none"),
    "child_wait_time": _i("vrrpyd has no child processes to wait for at stop"),
}

GLOBAL_DEFS: Final[Mapping[str, Rule]] = {
    "router_id": _i("names the host in keepalived's mails and SNMP; vrrpyd has neither"),
    "notification_email": _i(_MAIL),
    "notification_email_from": _i(_MAIL),
    "smtp_server": _i(_MAIL),
    "smtp_helo_name": _i(_MAIL),
    "smtp_connect_timeout": _i(_MAIL),
    "no_email_faults": _i(_MAIL),
    "smtp_alert": _d("vrrpyd sends no mail: use a notify script"),
    "smtp_alert_vrrp": _d("vrrpyd sends no mail: use a notify script"),
    "smtp_alert_checker": _d("vrrpyd sends no mail"),
    "startup_script": _d("vrrpyd runs no script at start: use ExecStartPre in the systemd unit"),
    "startup_script_timeout": _d("goes with startup_script"),
    "shutdown_script": _d("vrrpyd runs no script at stop: use ExecStopPost in the systemd unit"),
    "shutdown_script_timeout": _d("goes with shutdown_script"),
    "max_auto_priority": _i(
        "vrrpyd runs real-time from the start ([global] realtime_priority, default 10), "
        "not after timers ran late"
    ),
    "min_auto_priority_delay": _i("goes with max_auto_priority"),
    "vrrp_rt_priority": _c("[global] realtime_priority (2..99)"),
    "vrrp_no_swap": _c("[global] lock_memory"),
    "vrrp_rlimit_rttime": _ch(
        "[global] rlimit_rttime",
        "vrrpyd needs at least 10000 us; its SIGXCPU handler "
        "drops to time-sharing instead of logging",
    ),
    "vrrp_priority": _d("nice: vrrpyd runs real-time; set Nice= in the systemd unit if wanted"),
    "vrrp_cpu_affinity": _d("use CPUAffinity= in the systemd unit or taskset"),
    "vrrp_version": _c("version of every [[instance]] that sets none"),
    "vrrp_garp_master_delay": _c("garp_delay of the instances after it"),
    "vrrp_garp_master_repeat": _c("garp_repeat of the instances after it"),
    "vrrp_garp_master_refresh": _c("garp_refresh of the instances after it"),
    "vrrp_garp_master_refresh_repeat": _c("garp_refresh_repeat of the instances after it"),
    "vrrp_garp_interval": _ch(
        "garp_interval of the IPv4 instances",
        "keepalived spaces every gratuitous ARP on the interface; vrrpyd spaces the ones "
        "of one instance's burst",
    ),
    "vrrp_gna_interval": _ch(
        "garp_interval of the IPv6 instances",
        "keepalived spaces every unsolicited NA on the interface; vrrpyd spaces the ones "
        "of one instance's burst",
    ),
    "vrrp_min_garp": _c("garp_repeat = 1, garp_delay = 0, garp_refresh = 0 where not set"),
    "vrrp_garp_lower_prio_delay": _d(
        "vrrpyd re-announces once when a lower priority claims Master, with no delayed burst"
    ),
    "vrrp_garp_lower_prio_repeat": _d(
        "vrrpyd re-announces with its garp_repeat when a lower priority claims Master"
    ),
    "vrrp_down_timer_adverts": _d("vrrpyd's Master_Down_Interval is RFC 9568's 3 adverts"),
    "vrrp_garp_extra_if": _d("vrrpyd announces on the instance's interface only"),
    "vrrp_lower_prio_no_advert": _d(
        "vrrpyd always answers a lower priority claiming Master with an advert "
        "(keepalived's default)"
    ),
    "vrrp_higher_prio_send_advert": _c("higher_prio_send_advert of every [[instance]]"),
    "vrrp_iptables": _i("vrrpyd enforces accept = false with its own nftables table (inet vrrpy)"),
    "vrrp_ipsets": _i("vrrpyd uses no ipsets"),
    "nftables": _i("vrrpyd enforces accept = false with its own nftables table (inet vrrpy)"),
    "nftables_priority": _i("vrrpyd's table hooks input at priority -10"),
    "nftables_ifindex": _i("vrrpyd's table matches addresses, not interfaces"),
    "nftables_counters": _i("vrrpyd's drop rules always count"),
    "nftables_ipvs": _d("vrrpyd sets no firewall marks for IPVS"),
    "nftables_ipvs_priority": _d("vrrpyd sets no firewall marks for IPVS"),
    "nftables_ipvs_start_fwmark": _d("vrrpyd sets no firewall marks for IPVS"),
    "vrrp_check_unicast_src": _i("vrrpyd always drops unicast adverts from non-peers"),
    "vrrp_skip_check_adv_addr": _i(
        "vrrpyd never drops an advert for its address list; it counts a mismatch"
    ),
    "vrrp_strict": _ch(
        "accept = false, no authentication, no preempt_delay, ...",
        "vrrpyd follows the RFC in most of what strict mode enforces; the report says, "
        "per instance, what keepalived would have changed",
    ),
    "vrrp_mcast_group4": _d("vrrpyd sends to 224.0.0.18 (or unicast_peers)"),
    "vrrp_mcast_group6": _d("vrrpyd sends to ff02::12 (or unicast_peers)"),
    "notify_fifo": _ch(
        "[global] notify_fifo",
        "vrrpyd writes the VRRP lines only (keepalived's also gets the checker's); "
        "a user or group after the path is not carried",
    ),
    "notify_fifo_script": _c("[global] notify_fifo_script"),
    "vrrp_notify_fifo": _c("[global] notify_fifo"),
    "vrrp_notify_fifo_script": _c("[global] notify_fifo_script"),
    "vrrp_notify_priority_changes": _c("[global] notify_priority_changes"),
    "fifo_write_vrrp_states_on_reload": _d("vrrpyd writes the FIFO on transitions only"),
    "lvs_notify_fifo": _d("vrrpyd writes no checker lines to a FIFO"),
    "lvs_notify_fifo_script": _d("vrrpyd writes no checker lines to a FIFO"),
    "lvs_timeouts": _d("set the IPVS timeouts with ipvsadm --set"),
    "lvs_flush": _d("vrrpyd only ever touches the virtual servers it declared"),
    "lvs_flush_on_stop": _d("vrrpyd withdraws the virtual servers it declared at stop"),
    "lvs_sync_daemon": _c("sync_daemon of that instance's [[virtual_server]] tables"),
    "checker_priority": _d("vrrpyd's health agent runs time-sharing"),
    "checker_no_swap": _d("vrrpyd's health agent runs time-sharing, unlocked"),
    "checker_rt_priority": _d("vrrpyd's health agent runs time-sharing"),
    "checker_cpu_affinity": _d("use taskset or the systemd unit"),
    "checker_rlimit_rttime": _d("vrrpyd's health agent runs time-sharing"),
    "checker_log_all_failures": _i("vrrpyd logs every change of a real server's health"),
    "bfd_priority": _d(_BFD),
    "bfd_no_swap": _d(_BFD),
    "bfd_rt_priority": _d(_BFD),
    "bfd_cpu_affinity": _d(_BFD),
    "bfd_rlimit_rttime": _d(_BFD),
    "bfd_process_name": _i(_BFD),
    "snmp_socket": _d(_SNMP),
    "enable_traps": _d(_SNMP),
    "enable_snmp_vrrp": _d(_SNMP),
    "enable_snmp_rfc": _d(_SNMP),
    "enable_snmp_rfcv2": _d(_SNMP),
    "enable_snmp_rfcv3": _d(_SNMP),
    "enable_snmp_checker": _d(_SNMP),
    "enable_dbus": _d("vrrpyd has no D-Bus interface: vrrpctl and the state file serve it"),
    "dbus_service_name": _d("vrrpyd has no D-Bus interface"),
    "script_user": _ch(
        "user of every [[track_script]] and MISC_CHECK that sets none",
        "notify scripts run as vrrpyd's own user",
    ),
    "enable_script_security": _i(
        "vrrpyd runs scripts without a shell and checks at --check that each exists and is "
        "executable, but does not refuse one that others may write: check that yourself"
    ),
    "process_names": _i(_NAME),
    "process_name": _i(_NAME),
    "vrrp_process_name": _i(_NAME),
    "checker_process_name": _i(_NAME),
    "dynamic_interfaces": _ch(
        "-", "vrrpyd needs an instance's interface to exist when the instance starts"
    ),
    "default_interface": _d("used for static addresses and routes, which vrrpyd has not"),
    "disable_local_igmp": _d("vrrpyd leaves IGMP to the kernel"),
    "vrrp_netlink_cmd_rcv_bufs": _i(_BUFS),
    "vrrp_netlink_cmd_rcv_bufs_force": _i(_BUFS),
    "vrrp_netlink_monitor_rcv_bufs": _i(_BUFS),
    "vrrp_netlink_monitor_rcv_bufs_force": _i(_BUFS),
    "process_monitor_rcv_bufs": _i(_BUFS),
    "process_monitor_rcv_bufs_force": _i(_BUFS),
    "lvs_netlink_cmd_rcv_bufs": _i(_BUFS),
    "lvs_netlink_cmd_rcv_bufs_force": _i(_BUFS),
    "lvs_netlink_monitor_rcv_bufs": _i(_BUFS),
    "lvs_netlink_monitor_rcv_bufs_force": _i(_BUFS),
    "vrrp_rx_bufs_policy": _i(_BUFS),
    "vrrp_rx_bufs_multiplier": _i(_BUFS),
    "rs_init_notifies": _d("vrrpyd runs no real-server notify scripts"),
    "no_checker_emails": _i(_MAIL),
    "vrrp_startup_delay": _d("vrrpyd starts its instances at once"),
    "log_unknown_vrids": _i("vrrpyd counts adverts for unknown VRIDs (state file, metrics)"),
    "vmac_prefix": _ch("-", "vrrpyd names its VMACs vrrp4.VRID / vrrp6.VRID"),
    "vmac_addr_prefix": _ch("-", "vrrpyd names its VMACs vrrp4.VRID / vrrp6.VRID"),
    "umask": _i("vrrpyd's files are written with fixed modes"),
    "random_seed": _i("vrrpyd's configuration has no ${_RANDOM}"),
    "reload_check_config": _i(_RELOAD),
    "reload_time_file": _i(_RELOAD),
    "reload_repeat": _i(_RELOAD),
    "reload_file": _i(_RELOAD),
    "include_check": _i("read by the parser: how included files were checked"),
    "config_save_dir": _i(_RELOAD),
    "tmp_config_directory": _i(_RELOAD),
    "data_use_instance": _i("pid and data file naming: vrrpyd writes none of keepalived's"),
    "linkbeat_use_polling": _i("vrrpyd learns every link change from netlink"),
    "lvs_sync_daemon_interface": _i(
        "not a global_defs keyword since keepalived 1.3: 2.2.7 ignores it here too "
        "(lvs_sync_daemon is)"
    ),
}

VRRP_INSTANCE: Final[Mapping[str, Rule]] = {
    "state": _ch(
        "-",
        "vrrpyd has no initial state: every instance starts as Backup and waits "
        "Master_Down_Interval (keepalived's MASTER waits one advert interval)",
    ),
    "interface": _c("interface"),
    "virtual_router_id": _c("vrid"),
    "priority": _c("priority"),
    "advert_int": _c("advert_interval"),
    "version": _c("version"),
    "native_ipv6": _c("(IPv6 virtual_addresses; version 3)"),
    "virtual_ipaddress": _ch(
        "virtual_addresses", "per-address dev, label, scope, brd and the like are not carried"
    ),
    "virtual_ipaddress_excluded": _ch(
        'a [[backend]] type = "script" that adds and deletes them with ip',
        "added after the instance's own addresses, with no gratuitous ARP / NA",
    ),
    "virtual_routes": _d("vrrpyd moves addresses only: add routes in a notify script"),
    "virtual_rules": _d("vrrpyd moves addresses only: add rules in a notify script"),
    "unicast_peer": _c("unicast_peers"),
    "unicast_src_ip": _ch(
        "-", "vrrpyd sends from the interface's primary address (IPv6: its link-local one)"
    ),
    "mcast_src_ip": _ch(
        "-", "vrrpyd sends from the interface's primary address (IPv6: its link-local one)"
    ),
    "unicast_ttl": _ch("-", "vrrpyd sends with TTL / hop limit 255 (RFC 9568)"),
    "unicast_fault_no_peer": _d("vrrpyd needs unicast_peers or uses multicast"),
    "check_unicast_src": _i("vrrpyd always drops unicast adverts from non-peers"),
    "old_unicast_checksum": _d(
        "vrrpyd's v3_checksum has no multicast-group pseudo-header for unicast adverts"
    ),
    "mcast_dst_ip": _d("vrrpyd sends to 224.0.0.18 / ff02::12 (or unicast_peers)"),
    "track_src_ip": _d("vrrpyd does not track its source address"),
    "dont_track_primary": _d("vrrpyd always tracks an instance's own interface"),
    "track_interface": _c("track_interface"),
    "track_script": _c("track_script"),
    "track_file": _c("track_file"),
    "track_process": _c("track_process"),
    "track_bfd": _d(_BFD),
    "use_vmac": _ch("use_vmac", "vrrpyd names the macvlan vrrp4.VRID and sets its MAC itself"),
    "use_vmac_addr": _d("vrrpyd puts no virtual MAC on the parent interface"),
    "vmac_xmit_base": _d("vrrpyd sends from the VMAC"),
    "use_ipvlan": _d("vrrpyd has no ipvlan mode"),
    "vrf": _d("vrrpyd has no VRF binding: run it in a namespace (netns) instead"),
    "accept": _c("accept"),
    "no_accept": _c("accept = false"),
    "preempt": _c("preempt = true"),
    "nopreempt": _c("preempt = false"),
    "preempt_delay": _c("preempt_delay"),
    "skip_check_adv_addr": _i(
        "vrrpyd never drops an advert for its address list; it counts a mismatch"
    ),
    "strict_mode": _ch("see vrrp_strict", "as vrrp_strict, for this instance"),
    "debug": _i("vrrpyd's log level is [global] log_level"),
    "notify_master": _c("notify_master"),
    "notify_backup": _c("notify_backup"),
    "notify_fault": _c("notify_fault"),
    "notify_stop": _c("notify_stop"),
    "notify": _c("notify"),
    "notify_master_rx_lower_pri": _c("notify_master_rx_lower_pri"),
    "notify_deleted": _ch("-", "an instance removed at a reload is notified as STOP"),
    "notify_priority_changes": _ch(
        "[global] notify_priority_changes", "vrrpyd's setting covers every instance"
    ),
    "smtp_alert": _d("vrrpyd sends no mail: use a notify script"),
    "lvs_sync_daemon_interface": _c("sync_daemon of this instance's [[virtual_server]] tables"),
    "garp_master_delay": _c("garp_delay"),
    "garp_master_repeat": _c("garp_repeat"),
    "garp_master_refresh": _c("garp_refresh"),
    "garp_master_refresh_repeat": _c("garp_refresh_repeat"),
    "garp_lower_prio_delay": _d(
        "vrrpyd re-announces once when a lower priority claims Master, with no delayed burst"
    ),
    "garp_lower_prio_repeat": _d(
        "vrrpyd re-announces with garp_repeat when a lower priority claims Master"
    ),
    "down_timer_adverts": _d("vrrpyd's Master_Down_Interval is RFC 9568's 3 adverts"),
    "garp_extra_if": _d("vrrpyd announces on the instance's interface only"),
    "lower_prio_no_advert": _d(
        "vrrpyd always answers a lower priority claiming Master with an advert"
    ),
    "higher_prio_send_advert": _c("higher_prio_send_advert"),
    "v3_checksum_as_v2": _c('v3_checksum = "vrrp-only" (a keyword of keepalived 2.2.8 and later)'),
    "kernel_rx_buf_size": _i(_BUFS),
    "linkbeat_use_polling": _i("vrrpyd learns every link change from netlink"),
    "promote_secondaries": _d("set net.ipv4.conf.IFACE.promote_secondaries yourself"),
    "authentication": _c("auth_pass (PASS, VRRPv2)"),
}

AUTHENTICATION: Final[Mapping[str, Rule]] = {
    "auth_type": _ch("-", "PASS is carried (auth_pass); AH is not"),
    "auth_pass": _ch("auth_pass", "its first 8 characters, as keepalived sends them"),
}

VRRP_SCRIPT: Final[Mapping[str, Rule]] = {
    "script": _c("script"),
    "interval": _c("interval"),
    "timeout": _c("timeout"),
    "weight": _c("weight (and reverse)"),
    "rise": _c("rise"),
    "fall": _c("fall"),
    "user": _c("user (and group)"),
    "init_fail": _c("init_fail"),
}

VRRP_SYNC_GROUP: Final[Mapping[str, Rule]] = {
    "group": _c("members"),
    "track_interface": _c("track_interface"),
    "track_script": _c("track_script"),
    "track_file": _c("track_file"),
    "track_process": _c("track_process"),
    "track_bfd": _d(_BFD),
    "notify_master": _c("notify_master"),
    "notify_backup": _c("notify_backup"),
    "notify_fault": _c("notify_fault"),
    "notify_stop": _c("notify_stop"),
    "notify": _c("notify"),
    "smtp_alert": _d("vrrpyd sends no mail: use a notify script"),
    "sync_group_tracking_weight": _c("tracking_weight"),
    "notify_priority_changes": _ch(
        "[global] notify_priority_changes", "vrrpyd's setting covers every instance"
    ),
}

TRACK_FILE: Final[Mapping[str, Rule]] = {
    "file": _c("file"),
    "weight": _c("weight (and reverse)"),
    "init_file": _d("vrrpyd does not create the file: create it before vrrpyd starts"),
}

VRRP_TRACK_PROCESS: Final[Mapping[str, Rule]] = {
    "process": _c("process (and params)"),
    "param_match": _c("param_match"),
    "weight": _c("weight (and reverse)"),
    "quorum": _c("quorum"),
    "quorum_max": _c("quorum_max"),
    "full_command": _c("full_command"),
    "delay": _d("vrrpyd scans /proc every interval (1 s): no delays"),
    "terminate_delay": _d("vrrpyd scans /proc every interval (1 s): no delays"),
    "fork_delay": _d("vrrpyd scans /proc every interval (1 s): no delays"),
}

_CHECKERS: Final = ("TCP_CHECK", "HTTP_GET", "SSL_GET", "DNS_CHECK", "MISC_CHECK")

VIRTUAL_SERVER: Final[Mapping[str, Rule]] = {
    "ip_family": _c("family (fwmark services)"),
    "delay_loop": _c("delay_loop"),
    "retry": _c("retry of each checker that sets none"),
    "delay_before_retry": _c("delay_before_retry of each checker that sets none"),
    "warmup": _c("warmup of each checker that sets none"),
    "connect_timeout": _c("connect_timeout of each checker that sets none"),
    "inhibit_on_failure": _c("inhibit_on_failure"),
    "lb_algo": _c("lb_algo"),
    "lb_kind": _c("lb_kind"),
    "persistence_timeout": _c("persistence_timeout"),
    "persistence_granularity": _c("persistence_granularity"),
    "protocol": _c("protocol"),
    "alpha": _c("alpha"),
    "omega": _c("omega"),
    "quorum": _c("quorum"),
    "hysteresis": _c("hysteresis"),
    "sorry_server": _c("sorry_server"),
    "sorry_server_inhibit": _c("sorry_server_inhibit"),
    "real_server": _c("[[virtual_server.real_server]]"),
    "virtualhost": _c("virtualhost of each HTTP_GET / SSL_GET that sets none"),
    "hashed": _d("an IPVS service flag vrrpyd does not set"),
    "ops": _d("one-packet scheduling: an IPVS service flag vrrpyd does not set"),
    "flag-1": _d("an IPVS scheduler flag vrrpyd does not set"),
    "flag-2": _d("an IPVS scheduler flag vrrpyd does not set"),
    "flag-3": _d("an IPVS scheduler flag vrrpyd does not set"),
    "sh-port": _d("an IPVS scheduler flag vrrpyd does not set"),
    "sh-fallback": _d("an IPVS scheduler flag vrrpyd does not set"),
    "mh-port": _d("an IPVS scheduler flag vrrpyd does not set"),
    "mh-fallback": _d("an IPVS scheduler flag vrrpyd does not set"),
    "persistence_engine": _d("vrrpyd sets no persistence engine (sip)"),
    "ha_suspend": _d(
        "keepalived suspends the checks while the address is not here; vrrpyd's checks run "
        "in every state"
    ),
    "smtp_alert": _d("vrrpyd sends no mail"),
    "snmp_name": _d(_SNMP),
    "quorum_up": _d("vrrpyd runs no quorum scripts"),
    "quorum_down": _d("vrrpyd runs no quorum scripts"),
    "weight": _d("a virtual server's own weight (virtual_server_group) is not carried"),
    "sorry_server_lvs_method": _d("the sorry server is forwarded as the service's lb_kind"),
}

REAL_SERVER: Final[Mapping[str, Rule]] = {
    "weight": _c("weight"),
    "uthreshold": _c("uthreshold"),
    "lthreshold": _c("lthreshold"),
    "retry": _c("retry of each of its checkers that sets none"),
    "delay_before_retry": _c("delay_before_retry of each of its checkers that sets none"),
    "warmup": _c("warmup of each of its checkers that sets none"),
    "connect_timeout": _c("connect_timeout of each of its checkers that sets none"),
    "delay_loop": _c("delay_loop of each of its checkers that sets none"),
    "virtualhost": _c("virtualhost of each of its HTTP_GET / SSL_GET that sets none"),
    "alpha": _ch("alpha (of the virtual server)", "vrrpyd has alpha per virtual server"),
    "inhibit_on_failure": _ch(
        "inhibit_on_failure (of the virtual server)", "vrrpyd has it per virtual server"
    ),
    "lvs_method": _d("vrrpyd forwards every real server as its service's lb_kind"),
    "notify_up": _d("vrrpyd runs no real-server notify scripts"),
    "notify_down": _d("vrrpyd runs no real-server notify scripts"),
    "smtp_alert": _d("vrrpyd sends no mail"),
    "snmp_name": _d(_SNMP),
    **{kind: _c(kind) for kind in _CHECKERS},
    "SMTP_CHECK": _d("vrrpyd has no SMTP check: use a MISC_CHECK"),
    "UDP_CHECK": _d("vrrpyd has no UDP check: use a MISC_CHECK"),
    "PING_CHECK": _d("vrrpyd has no ICMP check: use a MISC_CHECK"),
    "FILE_CHECK": _d("vrrpyd has no FILE_CHECK: use a MISC_CHECK"),
    "BFD_CHECK": _d(_BFD),
}

CHECKER: Final[Mapping[str, Rule]] = {
    "connect_ip": _c("connect_ip"),
    "connect_port": _c("connect_port"),
    "bindto": _c("bindto"),
    "connect_timeout": _c("connect_timeout"),
    "retry": _c("retry"),
    "delay_before_retry": _c("delay_before_retry"),
    "warmup": _c("warmup"),
    "delay_loop": _c("delay_loop"),
    "alpha": _c("alpha"),
    "bind_port": _d("vrrpy's checks bind no source port"),
    "bind_if": _d("vrrpy's checks bind no interface"),
    "fwmark": _d("vrrpy's checks set no firewall mark"),
    "log_all_failures": _i("vrrpyd logs every change of a real server's health"),
}

HTTP_GET: Final[Mapping[str, Rule]] = {
    "url": _c("url = [{ path, digest, status_code, virtualhost }]"),
    "virtualhost": _c("virtualhost"),
    "enable_sni": _c("enable_sni (SSL_GET)"),
    "http_protocol": _d("vrrpy's checks send HTTP/1.0 requests"),
    "fast_recovery": _d("vrrpy's checks wait delay_loop after a failure"),
}

URL: Final[Mapping[str, Rule]] = {
    "path": _c("path"),
    "digest": _c("digest"),
    "status_code": _c("status_code"),
    "virtualhost": _c("virtualhost"),
    "regex": _d("vrrpy's checks have no regex (receive is a plain substring)"),
    "regex_no_match": _d("vrrpy's checks have no regex"),
    "regex_options": _d("vrrpy's checks have no regex"),
    "regex_min_offset": _d("vrrpy's checks have no regex"),
    "regex_max_offset": _d("vrrpy's checks have no regex"),
    "regex_stack": _d("vrrpy's checks have no regex"),
}

DNS_CHECK: Final[Mapping[str, Rule]] = {
    "type": _c("type"),
    "name": _c("name"),
}

MISC_CHECK: Final[Mapping[str, Rule]] = {
    "misc_path": _c("misc_path"),
    "misc_timeout": _c("misc_timeout"),
    "misc_dynamic": _c("misc_dynamic"),
    "user": _c("user (and group)"),
}

SECTIONS: Final[Mapping[str, Mapping[str, Rule]]] = {
    "top": TOP,
    "global_defs": GLOBAL_DEFS,
    "vrrp_instance": VRRP_INSTANCE,
    "authentication": AUTHENTICATION,
    "vrrp_script": VRRP_SCRIPT,
    "vrrp_sync_group": VRRP_SYNC_GROUP,
    "track_file": TRACK_FILE,
    "vrrp_track_process": VRRP_TRACK_PROCESS,
    "virtual_server": VIRTUAL_SERVER,
    "real_server": REAL_SERVER,
    "checker": CHECKER,
    "HTTP_GET": HTTP_GET,
    "url": URL,
    "DNS_CHECK": DNS_CHECK,
    "MISC_CHECK": MISC_CHECK,
}
"""Every section's keywords. ``checker`` holds what every checker but MISC_CHECK
takes; ``HTTP_GET`` also covers ``SSL_GET``."""

ALIASES: Final[Mapping[str, Mapping[str, str]]] = {
    "top": {"vrrp_track_file": "track_file"},
    "global_defs": {
        "vrrp_rlimit_rtime": "vrrp_rlimit_rttime",
        "checker_rlimit_rtime": "checker_rlimit_rttime",
        "bfd_rlimit_rtime": "bfd_rlimit_rttime",
        "enable_snmp_keepalived": "enable_snmp_vrrp",
        "lvs_process_name": "checker_process_name",
        "lvs_flush_onstop": "lvs_flush_on_stop",
        "vrrp_vmac_garp_intvl": "vrrp_garp_extra_if",
    },
    "vrrp_instance": {"vmac_garp_intvl": "garp_extra_if"},
    "vrrp_sync_group": {"global_tracking": "sync_group_tracking_weight"},
    "virtual_server": {"lvs_sched": "lb_algo", "lvs_method": "lb_kind"},
    "HTTP_GET": {"nb_get_retry": "retry"},
}
"""Deprecated spellings keepalived 2.2.7 still accepts, and the keyword they mean."""

REMOVED: Final[Mapping[str, str]] = {
    "nat_mask": "removed in keepalived 1.3.1 (the netmask of LVS NAT)",
    "lvs_id": "renamed router_id in keepalived 1.1.8 and since removed",
    "plugin_dir": "removed in keepalived 1.1.8",
}
"""Keywords of older keepalived that 2.2.7 no longer knows (it ignores them)."""

NEWER: Final = frozenset(
    {
        "active_key",
        "anti_replay",
        "auth_hmac",
        "dbus_no_interface_name",
        "iproute_etc_dir",
        "iproute_usr_dir",
        "json_dump_file",
        "json_version",
        "mode",
        "multihop",
        "no_virtual_ipaddress",
        "owner_ignore_adverts",
        "set_supplementary_groups",
        "sni_name",
        "snmp_rs_stats_update_interval",
        "snmp_vs_stats_update_interval",
        "state_dump_file",
        "stats_dump_file",
        "thread_timer_expired",
        "time_window",
        "timer_expired_backup",
        "tls_compliant",
        "use_symlink_paths",
        "vrrp_delay_after_boot",
        "vrrp_owner_ignore_adverts",
    }
)
"""Keywords keepalived added after 2.2.7 (2.2.8 to 2.4.3): 2.2.7 ignores them."""

_BLOCKS: Final = frozenset(
    {
        "global_defs",
        "vrrp_instance",
        "vrrp_script",
        "vrrp_sync_group",
        "track_file",
        "vrrp_track_file",
        "vrrp_track_process",
        "virtual_server",
        "virtual_server_group",
        "SSL",
        "static_ipaddress",
        "static_routes",
        "static_rules",
        "track_group",
        "garp_group",
        "linkbeat_interfaces",
        "interface_up_down_delays",
        "bfd_instance",
        "notification_email",
        "virtual_ipaddress",
        "virtual_ipaddress_excluded",
        "virtual_routes",
        "virtual_rules",
        "unicast_peer",
        "track_interface",
        "track_script",
        "track_process",
        "track_bfd",
        "authentication",
        "group",
        "real_server",
        "url",
        *_CHECKERS,
        "SMTP_CHECK",
        "UDP_CHECK",
        "PING_CHECK",
        "FILE_CHECK",
        "BFD_CHECK",
        "host",
    }
)
"""Keywords that open a block (``track_file`` is one at the top and in an instance)."""


def takes_block(section: str, keyword: str) -> bool:
    """Whether keepalived reads a ``{ }`` block after ``keyword`` in ``section``."""
    if keyword == "track_file":
        return section in ("top", "vrrp_instance", "vrrp_sync_group")
    return keyword in _BLOCKS


_CONNECT: Final = ("connect_ip", "connect_port", "bindto", "bind_port", "bind_if",
                   "connect_timeout", "fwmark")  # fmt: skip
"""The checker keywords MISC_CHECK does not take (keepalived installs them for the others)."""


def lookup(section: str, keyword: str) -> tuple[str, Rule | None]:
    """(the modern spelling, its rule) of ``keyword`` in ``section``; rule None: unknown.

    ``section`` is a key of :data:`SECTIONS`, or a checker's name (``TCP_CHECK``,
    ``SSL_GET``...), whose own keywords come first, then the common ones.
    """
    if section == "SSL_GET":
        section = "HTTP_GET"
    if section == "TCP_CHECK":
        return keyword, CHECKER.get(keyword)
    modern = ALIASES.get(section, {}).get(keyword, keyword)
    table = SECTIONS[section]
    if modern in table:
        return modern, table[modern]
    if section in ("HTTP_GET", "DNS_CHECK") or (section == "MISC_CHECK" and modern not in _CONNECT):
        return modern, CHECKER.get(modern)
    return modern, None
