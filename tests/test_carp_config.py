"""vrrpyd's CARP keys: ``protocol = "carp"`` instances, checked at load, naming each key.

A password the chosen profile would cut or refuse fails at load (so a file that
would not interoperate never starts), VRRP-only keys are refused on a CARP
instance and CARP-only keys on a VRRP one, and an id is CARP or VRRP on one
interface, never both.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from vrrpy.daemon.config import ConfigFileError, parse_config

HEAD = """
[global]
state_file = "/run/vrrpyd-test.json"
"""


def carp(body: str) -> str:
    return (
        HEAD
        + """
[[instance]]
name = "web"
protocol = "carp"
interface = "eth0"
virtual_addresses = ["192.0.2.50/24"]
"""
        + textwrap.dedent(body)
    )


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigFileError) as caught:
        parse_config(text)
    return [str(issue) for issue in caught.value.errors]


def test_a_carp_instance_loads_with_the_defaults_of_openbsd_and_ucarp() -> None:
    (spec,) = parse_config(carp('vhid = 7\npassword = "s3cret"\n')).instances
    assert spec.is_carp and spec.vrid == 7
    assert (spec.advbase, spec.advskew, spec.demote) == (1, 0, 0)
    assert spec.carp_profile == "openbsd" and spec.password == "s3cret"
    assert spec.preempt is False  # OpenBSD's net.inet.carp.preempt and ucarp's -P: off
    assert spec.replay_protection is False


def test_every_carp_key_is_read() -> None:
    (spec,) = parse_config(
        carp(
            'vhid = 9\nadvbase = 2\nadvskew = 100\ndemote = 3\npassword = "pw"\n'
            'carp_profile = "ucarp"\npreempt = true\nreplay_protection = true\n'
            "use_vmac = true\n"
        )
    ).instances
    assert (spec.vrid, spec.advbase, spec.advskew, spec.demote) == (9, 2, 100, 3)
    assert spec.carp_profile == "ucarp" and spec.preempt and spec.replay_protection
    assert spec.use_vmac


def test_a_password_file_is_read_as_ucarp_reads_its_passfile(tmp_path: Path) -> None:
    secret = tmp_path / "web.pass"
    secret.write_bytes(b"from-a-file\nsecond line ignored\n")
    (spec,) = parse_config(carp(f'vhid = 7\npassword_file = "{secret}"\n')).instances
    assert spec.password == "from-a-file"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('password = "x"\n', "instance[web].vhid: required key is missing"),
        ('vhid = 0\npassword = "x"\n', "instance[web].vhid: must be 1..255"),
        ('vhid = 7\nadvbase = 0\npassword = "x"\n', "instance[web].advbase: must be 1..254"),
        ('vhid = 7\nadvskew = 255\npassword = "x"\n', "instance[web].advskew: must be 0..254"),
        ('vhid = 7\ndemote = 256\npassword = "x"\n', "instance[web].demote: must be 0..255"),
        ("vhid = 7\n", "instance[web].password: required"),
        ('vhid = 7\npassword = ""\n', "instance[web].password: must not be empty"),
        (
            'vhid = 7\npassword = "' + "x" * 20 + '"\n',
            "instance[web].password: is 20 bytes; the openbsd profile carries at most 19",
        ),
        (
            'vhid = 7\ncarp_profile = "ucarp"\npassword = "' + "x" * 25 + '"\n',
            "instance[web].password: is 25 bytes; the ucarp profile carries at most 19 "
            "(ucarp refuses",
        ),
        ('vhid = 7\npassword = "x"\ncarp_profile = "netbsd"\n', "instance[web].carp_profile"),
        (
            'vhid = 7\npassword = "x"\npassword_file = "/etc/x"\n',
            "instance[web].password_file: give password or password_file, not both",
        ),
        (
            'vhid = 7\npassword_file = "rel.pass"\n',
            "instance[web].password_file: must be an absolute path",
        ),
        (
            'vhid = 7\npassword_file = "/nonexistent/vrrpy.pass"\n',
            "instance[web].password_file: cannot read",
        ),
        ('vhid = 7\npassword = "x"\npriority = 200\n', "instance[web].priority: not a CARP key"),
        ('vhid = 7\npassword = "x"\nvrid = 7\n', "instance[web].vrid: not a CARP key (use vhid)"),
        (
            'vhid = 7\npassword = "x"\nadvert_interval = 1.0\n',
            "instance[web].advert_interval: not a CARP key",
        ),
        ('vhid = 7\npassword = "x"\nauth_pass = "y"\n', "instance[web].auth_pass: not a CARP key"),
    ],
)
def test_bad_carp_tables_are_named(body: str, expected: str) -> None:
    found = problems(carp(body))
    assert any(p.startswith(expected) for p in found), found


def test_the_ucarp_profile_signs_one_ipv4_address() -> None:
    text = carp('vhid = 7\npassword = "x"\ncarp_profile = "ucarp"\n').replace(
        '["192.0.2.50/24"]', '["192.0.2.50/24", "192.0.2.51/24"]'
    )
    (found,) = problems(text)
    assert found.startswith("instance[web].virtual_addresses: the ucarp profile signs exactly one")


def test_carp_keys_on_a_vrrp_instance_are_refused() -> None:
    text = HEAD + textwrap.dedent(
        """
        [[instance]]
        name = "VI_1"
        interface = "eth0"
        vrid = 51
        virtual_addresses = ["192.0.2.100/24"]
        advskew = 10
        password = "x"
        """
    )
    found = problems(text)
    assert 'instance[VI_1].advskew: applies only to protocol = "carp"' in found
    assert 'instance[VI_1].password: applies only to protocol = "carp"' in found


def test_an_id_is_carp_or_vrrp_on_one_interface_never_both() -> None:
    text = carp('vhid = 51\npassword = "x"\n') + textwrap.dedent(
        """
        [[instance]]
        name = "VI_1"
        interface = "eth0"
        vrid = 51
        virtual_addresses = ["192.0.2.100/24"]
        """
    )
    (found,) = problems(text)
    assert found.startswith("instance[VI_1].vrid: VRID 51 is already used for IPv4 on eth0")
    assert "whether VRRP or CARP" in found


def test_vrrp_and_carp_instances_live_in_one_file() -> None:
    text = carp('vhid = 7\npassword = "x"\n') + textwrap.dedent(
        """
        [[instance]]
        name = "VI_1"
        interface = "eth0"
        vrid = 51
        virtual_addresses = ["192.0.2.100/24"]
        """
    )
    web, vi1 = parse_config(text).instances
    assert web.is_carp and not vi1.is_carp and vi1.preempt is True


def test_an_unknown_protocol_is_named() -> None:
    found = problems(carp('vhid = 7\npassword = "x"\n').replace('"carp"', '"hsrp"'))
    assert any(p.startswith('instance[web].protocol: must be "vrrp" or "carp"') for p in found)


def test_carp_uses_the_ipv4_virtual_mac_for_both_families_and_its_own_link_name() -> None:
    from vrrpy.runtime.attach import vmac_for, vmac_name

    text = carp('vhid = 7\npassword = "x"\nuse_vmac = true\n')
    (v4,) = parse_config(text).instances
    (v6,) = parse_config(text.replace("192.0.2.50/24", "2001:db8::50/64")).instances
    assert vmac_for(v4) == vmac_for(v6) == "00:00:5e:00:01:07"  # carp(4), ucarp
    assert (vmac_name(v4), vmac_name(v6)) == ("carp4.7", "carp6.7")
