"""Importing hosts from Ansible inventories (INI, YAML) and OpenSSH client configurations."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from tend.hosts.importers import (
    ImportedInventory,
    InventoryError,
    InventoryFormat,
    detect_format,
    host_name_from,
    parse_inventory,
)
from tend.hosts.schemas import HostCreate, Transport

FIXTURES = Path(__file__).parent.parent / "fixtures" / "inventories"
INI = InventoryFormat.ANSIBLE_INI
YAML = InventoryFormat.ANSIBLE_YAML
SSH = InventoryFormat.SSH_CONFIG


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def parse(text: str, fmt: InventoryFormat, **kwargs: object) -> ImportedInventory:
    return parse_inventory(dedent(text), fmt=fmt, **kwargs)  # type: ignore[arg-type]


def by_name(result: ImportedInventory) -> dict[str, HostCreate]:
    return {host.name: host for host in result.hosts}


def error_of(text: str, fmt: InventoryFormat, filename: str = "inv") -> InventoryError:
    with pytest.raises(InventoryError) as caught:
        parse_inventory(dedent(text), fmt=fmt, filename=filename)
    return caught.value


# ----------------------------------------------------------------------------- Ansible INI


def test_ini_fixture_yields_every_host_in_inventory_order() -> None:
    result = parse_inventory(fixture("hosts.ini"), filename="hosts.ini")
    assert [h.name for h in result.hosts] == [
        "bastion-example-com",
        "web01-example-com",
        "web02-example-com",
        "web03-example-com",
        "web-canary-example-com",
        "db-a-internal",
        "db-b-internal",
        "db-c-internal",
        "db-legacy",
        "localhost",
    ]
    assert all(h.trust_on_first_use is False and h.host_key is None for h in result.hosts)


def test_ini_ranges_expand_numeric_with_padding_and_alphabetic() -> None:
    hosts = by_name(parse_inventory(fixture("hosts.ini"), fmt=INI))
    assert [hosts[f"web0{i}-example-com"].address for i in (1, 2, 3)] == [
        "web01.example.com",
        "web02.example.com",
        "web03.example.com",
    ]
    assert {hosts[f"db-{c}-internal"].address for c in "abc"} == {
        "db-a.internal",
        "db-b.internal",
        "db-c.internal",
    }


def test_ini_range_with_step_and_two_ranges() -> None:
    result = parse("[app]\napp[1:9:4]-[a:b]\n", INI)
    assert [h.name for h in result.hosts] == [
        "app1-a",
        "app1-b",
        "app5-a",
        "app5-b",
        "app9-a",
        "app9-b",
    ]


def test_ini_groups_and_their_ancestors_become_normalised_tags() -> None:
    hosts = by_name(parse_inventory(fixture("hosts.ini"), fmt=INI))
    assert hosts["web01-example-com"].tags == ["eu-west", "prod", "web"]
    assert hosts["db-legacy"].tags == ["db", "eu-west", "prod"]
    assert hosts["localhost"].tags == ["monitoring"]
    assert hosts["bastion-example-com"].tags == []  # ungrouped and all are not tags


def test_ini_variable_precedence_child_groups_over_parents_and_hosts_over_groups() -> None:
    hosts = by_name(parse_inventory(fixture("hosts.ini"), fmt=INI))
    web = hosts["web02-example-com"]
    # all: deploy < prod: admin < web: www; EU-West: 2200 < prod: 2222.
    assert (web.user, web.port) == ("www", 2222)
    assert web.key_file == "~/.ssh/fleet_ed25519"  # from all:vars
    canary = hosts["web-canary-example-com"]
    assert (canary.user, canary.port) == ("www", 2201)  # host var beats group vars
    db = hosts["db-b-internal"]
    assert (db.user, db.port) == ("postgres", 2222)
    bastion = hosts["bastion-example-com"]
    assert (bastion.user, bastion.port) == ("ops", 22)


def test_ini_legacy_ssh_variables_are_honoured() -> None:
    legacy = by_name(parse_inventory(fixture("hosts.ini"), fmt=INI))["db-legacy"]
    assert legacy.address == "10.0.5.9"
    assert legacy.port == 2022
    assert legacy.user == "root"


def test_ini_host_level_legacy_name_overrides_group_modern_name() -> None:
    text = """
    [web]
    w1 ansible_ssh_host=10.0.0.1 ansible_ssh_port=2022
    [web:vars]
    ansible_host=10.9.9.9
    ansible_port=22
    """
    host = parse(text, INI).hosts[0]
    assert (host.address, host.port) == ("10.0.0.1", 2022)


def test_ini_local_connection_becomes_local_transport() -> None:
    local = by_name(parse_inventory(fixture("hosts.ini"), fmt=INI))["localhost"]
    assert local.transport is Transport.LOCAL
    assert local.address == "localhost"
    assert local.key_file is None  # ssh settings do not apply to a local connection
    assert local.port == 22


def test_ini_passwords_are_warned_about_and_never_imported() -> None:
    result = parse_inventory(fixture("hosts.ini"), fmt=INI)
    password_warnings = [w for w in result.warnings if "Passwords are not imported" in w]
    assert len(password_warnings) == 1
    assert "ansible_become_pass" in password_warnings[0]
    assert "ansible_ssh_pass" in password_warnings[0]
    assert "group 'prod'" in password_warnings[0]
    assert "host 'db-legacy'" in password_warnings[0]
    everything = repr(result) + " ".join(h.model_dump_json() for h in result.hosts)
    assert "hunter2" not in everything
    assert "s3cret-legacy" not in everything


def test_ini_other_variables_are_summarised_in_one_warning() -> None:
    result = parse_inventory(fixture("hosts.ini"), fmt=INI)
    ignored = [w for w in result.warnings if w.startswith("Ignored")]
    assert ignored == [
        "Ignored 4 variable(s) that tend does not use: "
        "ansible_ssh_common_args, http_port, ntp_server, timezone."
    ]


def test_ini_quoted_values_and_inline_comments() -> None:
    text = """
    [web]
    w1 ansible_user="deploy" ansible_ssh_private_key_file='/etc/tend/keys/web key'  # comment
    [web:vars]
    ansible_port = "2222"   # quoted
    """
    host = parse(text, INI).hosts[0]
    assert host.user == "deploy"
    assert host.key_file == "/etc/tend/keys/web key"
    assert host.port == 2222


def test_ini_host_port_suffix_and_ipv6_addresses() -> None:
    result = parse("edge.example.com:2200\n2001:db8::10\n", INI)
    edge, v6 = result.hosts
    assert (edge.name, edge.address, edge.port) == ("edge-example-com", "edge.example.com", 2200)
    assert (v6.name, v6.address, v6.port) == ("2001-db8-10", "2001:db8::10", 22)


def test_ini_invalid_port_names_host_field_and_line() -> None:
    text = """\
    [web]
    w1
    w2 ansible_port=ssh
    """
    error = error_of(text, INI, filename="hosts.ini")
    assert error.line == 3
    assert str(error).startswith("hosts.ini:3: host 'w2': port (from ansible_port)")
    assert "'ssh'" in str(error)


def test_invalid_group_port_points_at_the_vars_line() -> None:
    text = """\
    [db]
    db1
    [db:vars]
    ansible_port=70000
    """
    error = error_of(text, INI)
    assert error.line == 4
    assert "host 'db1'" in str(error)
    assert "port (from ansible_port)" in str(error)


def test_invalid_address_and_user_are_errors_not_silently_dropped() -> None:
    address = error_of("[web]\nw1 ansible_host=bad_host!\n", INI)
    assert "host 'w1': address (from ansible_host)" in str(address)
    user = error_of("[web]\nw1 ansible_user='Not A User'\n", INI)
    assert "host 'w1': user (from ansible_user)" in str(user)


def test_name_collision_names_both_hosts() -> None:
    text = """\
    [web]
    Web_1 ansible_host=10.0.0.1
    web-1 ansible_host=10.0.0.2
    """
    error = error_of(text, INI, filename="hosts.ini")
    assert "'Web_1'" in str(error)
    assert "'web-1'" in str(error)
    assert "'web-1'" in error.message.split("tend host name")[1]
    assert error.line == 3


def test_same_host_in_several_groups_is_one_host_with_merged_vars() -> None:
    text = """
    [web]
    h1 ansible_user=www
    [db]
    h1 ansible_port=2022
    """
    result = parse(text, INI)
    assert len(result.hosts) == 1
    host = result.hosts[0]
    assert (host.user, host.port, host.tags) == ("www", 2022, ["db", "web"])


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("[web]\nw1\n[web\n", 3, "malformed section header"),
        ("[web:hostvars]\nw1\n", 1, "unknown section type"),
        ("[web]\nw1 ansible_user='deploy\n", 2, "cannot split"),
        ("[web:vars]\nansible_user deploy\n", 2, "expected key=value"),
        ("[web]\nw1 ansible_user\n", 2, "expected key=value"),
        ("[web]\nweb[3:1]\n", 2, "the start is after the end"),
        ("[web]\nweb[a:3]\n", 2, "invalid range"),
        ("[web]\nw1:http\n", 2, "is not a number"),
        ("[a:children]\nb c\n", 2, "one group name"),
    ],
)
def test_malformed_ini_reports_the_line(text: str, line: int, fragment: str) -> None:
    error = error_of(text, INI, filename="hosts")
    assert error.line == line
    assert str(error).startswith(f"hosts:{line}: ")
    assert fragment in str(error)


def test_ini_range_explosion_is_refused() -> None:
    error = error_of("[big]\nn[0:99999]\n", INI)
    assert "more than 10000 hosts" in str(error)


def test_ini_group_cycle_is_refused() -> None:
    error = error_of("[a:children]\nb\n[b:children]\na\n[a]\nh1\n", INI)
    assert "its own descendant" in str(error)


def test_jinja_values_are_taken_literally_or_the_host_is_skipped() -> None:
    text = """
    [web]
    w1 ansible_host="{{ inventory_hostname }}.example.com"
    w2 ansible_ssh_private_key_file="/keys/{{ env }}.key"
    w3 ansible_host=10.0.0.3
    """
    result = parse(text, INI)
    assert [h.name for h in result.hosts] == ["w2", "w3"]
    assert result.hosts[0].key_file == "/keys/{{ env }}.key"
    assert any("Skipped host 'w1'" in w and "ansible_host" in w for w in result.warnings)
    assert any("ansible_ssh_private_key_file of host 'w2'" in w for w in result.warnings)


def test_unsupported_connection_is_skipped_with_a_warning() -> None:
    result = parse("[win]\nwin1 ansible_connection=winrm\n[lin]\nlin1\n", INI)
    assert [h.name for h in result.hosts] == ["lin1"]
    assert any("Skipped host 'win1'" in w and "winrm" in w for w in result.warnings)


def test_trust_on_first_use_is_applied_to_every_host() -> None:
    result = parse_inventory(fixture("hosts.ini"), fmt=INI, trust_on_first_use=True)
    assert result.hosts
    assert all(h.trust_on_first_use for h in result.hosts)


# ----------------------------------------------------------------------------- Ansible YAML


def test_yaml_fixture_produces_the_same_hosts_as_the_ini_fixture() -> None:
    from_ini = parse_inventory(fixture("hosts.ini"), filename="hosts.ini")
    from_yaml = parse_inventory(fixture("hosts.yml"), filename="hosts.yml")
    assert len(from_yaml.hosts) == 10
    assert sorted(from_yaml.hosts, key=lambda h: h.name) == sorted(
        from_ini.hosts, key=lambda h: h.name
    )
    assert sorted(from_yaml.warnings) == sorted(from_ini.warnings)


def test_yaml_children_nest_to_any_depth_and_null_bodies_are_fine() -> None:
    text = """
    all:
      children:
        europe:
          vars: {ansible_user: eu}
          children:
            nl:
              children:
                ams:
                  hosts:
                    ams1.example.com:
                    ams2.example.com: {ansible_user: root}
                  children:
                    empty:
        spare:
    """
    hosts = by_name(parse(text, YAML))
    assert list(hosts) == ["ams1-example-com", "ams2-example-com"]
    assert hosts["ams1-example-com"].tags == ["ams", "europe", "nl"]
    assert hosts["ams1-example-com"].user == "eu"
    assert hosts["ams2-example-com"].user == "root"


def test_yaml_without_all_and_scalar_values() -> None:
    text = """
    hosts:
      10.0.0.7:
        ansible_port: "2200"
      box:
        ansible_host: 10.0.0.8
        ansible_connection: ssh
    """
    first, second = parse(text, YAML).hosts
    assert (first.name, first.address, first.port) == ("10-0-0-7", "10.0.0.7", 2200)
    assert (second.name, second.address) == ("box", "10.0.0.8")


def test_yaml_boolean_port_is_an_error_not_port_one() -> None:
    error = error_of("all:\n  hosts:\n    h1:\n      ansible_port: yes\n", YAML)
    assert "host 'h1': port (from ansible_port)" in str(error)


def test_yaml_unknown_group_key_is_warned() -> None:
    result = parse("all:\n  hosts:\n    h1:\n  host_vars:\n    h1: {}\n", YAML)
    assert [h.name for h in result.hosts] == ["h1"]
    assert result.warnings == [
        "Ignored key 'host_vars' in group 'all': only hosts, vars and children are read."
    ]


def test_malformed_yaml_reports_the_line() -> None:
    text = "all:\n  hosts:\n    h1:\n      ansible_user: [deploy\n    h2:\n"
    error = error_of(text, YAML, filename="hosts.yml")
    assert error.line is not None
    assert error.line >= 4
    assert str(error).startswith(f"hosts.yml:{error.line}: invalid YAML")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("- all\n- web\n", "top level must be a mapping"),
        ("all:\n  hosts:\n    - h1\n    - h2\n", "hosts of group 'all' must be a mapping"),
        ("all:\n  children: [web]\n", "children of 'all' must be a mapping"),
        ("all:\n  hosts:\n    h1: deploy\n", "variables of host 'h1' must be a mapping"),
        ("all:\n  hosts:\n    h1:\n      ansible_host: [a, b]\n", "address (from ansible_host)"),
    ],
)
def test_yaml_of_the_wrong_shape_is_an_error(text: str, fragment: str) -> None:
    assert fragment in str(error_of(text, YAML))


def test_yaml_alias_loop_is_refused_not_followed_forever() -> None:
    text = "all: &top\n  children:\n    loop: *top\n"
    assert "nest endlessly" in str(error_of(text, YAML))


# ----------------------------------------------------------------------------- ssh config


def test_ssh_config_fixture_hosts() -> None:
    result = parse_inventory(fixture("ssh_config"), filename="ssh_config")
    hosts = by_name(result)
    assert list(hosts) == ["bastion", "web1", "web2", "db-prod", "api-prod", "legacy"]
    assert all(h.tags == ["ssh-config"] for h in result.hosts)
    bastion = hosts["bastion"]
    assert (bastion.address, bastion.port, bastion.user) == ("bastion.example.com", 2200, "ops")
    assert bastion.key_file == "~/.ssh/bastion_ed25519"
    assert bastion.proxy_jump is None  # excluded from `Host * !bastion`


def test_ssh_config_first_match_wins_per_keyword() -> None:
    hosts = by_name(parse_inventory(fixture("ssh_config"), fmt=SSH))
    web1 = hosts["web1"]
    assert web1.user == "www"  # `Host web1 web2` comes before `Host web1` (User root)
    assert web1.address == "10.0.1.11"
    assert web1.key_file == "~/.ssh/id_ed25519"  # from `Host *` at the end
    assert hosts["web2"].address == "10.0.1.12"  # hostname=... form, lower-case keyword
    assert hosts["db-prod"].user == "deploy"


def test_ssh_config_proxy_jump_none_and_uri() -> None:
    hosts = by_name(parse_inventory(fixture("ssh_config"), fmt=SSH))
    assert hosts["web1"].proxy_jump == "ops@bastion.example.com:2200"
    assert hosts["db-prod"].proxy_jump == "bastion.example.com"  # ssh:// URI made plain
    assert hosts["legacy"].proxy_jump is None  # `ProxyJump none` wins over `Host * !bastion`


def test_ssh_config_hostname_percent_h_expands_to_the_alias() -> None:
    hosts = by_name(parse_inventory(fixture("ssh_config"), fmt=SSH))
    assert hosts["db-prod"].address == "db.prod.internal.example.com"
    assert hosts["api-prod"].address == "api.prod.internal.example.com"
    assert hosts["api-prod"].port == 2222


def test_ssh_config_identity_file_with_tokens_is_skipped_for_the_next_one() -> None:
    result = parse_inventory(fixture("ssh_config"), fmt=SSH)
    assert by_name(result)["legacy"].key_file == "~/.ssh/legacy_rsa"
    assert (
        "Skipped IdentityFile '%d/.ssh/legacy_rsa' on line 31 for legacy: "
        "tokens such as %d or ${VAR} are not expanded."
    ) in result.warnings


def test_ssh_config_match_and_include_are_warned_and_skipped() -> None:
    result = parse_inventory(fixture("ssh_config"), fmt=SSH)
    assert all(h.user != "corp-admin" for h in result.hosts)
    assert all(h.key_file != "~/.ssh/corp" for h in result.hosts)
    assert any(w.startswith("Skipped the Match block on line 35") for w in result.warnings)
    assert any("Include 'config.d/*.conf' on line 2" in w for w in result.warnings)
    assert (
        "Ignored ssh_config keyword(s) that tend does not use: ForwardAgent, ServerAliveInterval."
    ) in result.warnings


def test_ssh_config_keyword_forms_quotes_comments_and_global_options() -> None:
    text = """
    # options before any Host apply to every host, first
    USER = early
    host = "alpha"   # trailing comment
      HOSTNAME "alpha.example.com"
      PORT=2022
      User late
    Host beta
      User beta
    """
    alpha, beta = parse(text, SSH).hosts
    assert (alpha.name, alpha.address, alpha.port, alpha.user) == (
        "alpha",
        "alpha.example.com",
        2022,
        "early",
    )
    assert (beta.address, beta.user) == ("beta", "early")


def test_ssh_config_other_hostname_tokens_skip_the_host() -> None:
    result = parse("Host a b\n  HostName %h.x.example.com\nHost b\n  HostName %p.example\n", SSH)
    hosts = by_name(result)
    assert hosts["a"].address == "a.x.example.com"
    assert hosts["b"].address == "b.x.example.com"  # the first HostName matched wins
    other = parse("Host c\n  HostName %r.example.com\n", SSH)
    assert other.hosts == []
    assert other.warnings == [
        "Skipped host 'c': its HostName '%r.example.com' (line 2) uses %r, "
        "which tend cannot expand."
    ]


def test_ssh_config_wildcard_only_blocks_give_no_hosts() -> None:
    result = parse("Host *\n  User deploy\nHost *.prod !db.prod\n  Port 2200\n", SSH)
    assert result.hosts == []


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("Host a\n  Port twenty-two\n", 2, "host 'a': port (from Port)"),
        ("Host a\n  User Bad User\n", 2, "User takes one value"),
        ("Host a\n  ProxyJump -oProxyCommand=x\n", 2, "proxy_jump (from ProxyJump)"),
        ("Host a\n  IdentityFile id_rsa\n", 2, "key_file (from IdentityFile)"),
        ('Host a\n  HostName "unterminated\n', 2, "unterminated quote"),
        ("Host\n", 1, "Host needs a value"),
        ("Host a\n  -bogus line\n", 2, "expected 'Keyword value'"),
    ],
)
def test_bad_ssh_config_values_are_errors_with_lines(text: str, line: int, fragment: str) -> None:
    error = error_of(text, SSH, filename="config")
    assert error.line == line
    assert fragment in str(error)


# ----------------------------------------------------------------------------- detection etc.


@pytest.mark.parametrize(
    ("filename", "text", "expected"),
    [
        ("inventory/hosts.yml", "", YAML),
        ("prod.YAML", "[web]\nw1\n", YAML),
        ("/home/me/.ssh/config", "", SSH),
        ("ssh_config", "web1\n", SSH),
        ("hosts.ini", "[web]\nw1\n", INI),
        ("ansible.cfg", "w1 ansible_host=10.0.0.1\n", INI),
        ("servers.cfg", "Host web1\n  HostName 10.0.0.1\n", SSH),
    ],
)
def test_detect_format_by_file_name(filename: str, text: str, expected: InventoryFormat) -> None:
    assert detect_format(text, filename) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[web]\nweb1\n", INI),
        ("# plain list\nweb1\nweb2 ansible_port=2222\n", INI),
        ("Host web1\n  HostName 10.0.0.1\n", SSH),
        ("HostName 10.0.0.1\n", SSH),
        ("all:\n  hosts:\n    web1:\n", YAML),
        ("web:\n  hosts:\n    web1:\n", YAML),
        ("---\nall:\n  hosts: [broken\n", YAML),
        ("host ansible_host=10.0.0.1\n", INI),
        ("", INI),
    ],
)
def test_detect_format_by_content(text: str, expected: InventoryFormat) -> None:
    assert detect_format(text) is expected
    assert detect_format(text, "inventory") is expected


def test_fixtures_are_detected_by_content_alone() -> None:
    assert detect_format(fixture("hosts.ini")) is INI
    assert detect_format(fixture("hosts.yml")) is YAML
    assert detect_format(fixture("ssh_config")) is SSH


@pytest.mark.parametrize("fmt", [INI, YAML, SSH, None])
@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_files_give_zero_hosts(fmt: InventoryFormat | None, text: str) -> None:
    result = parse_inventory(text, fmt=fmt)
    assert result == ImportedInventory(hosts=[], warnings=[])


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ("Web01.Example.COM", "web01-example-com"),
        ("db__primary", "db-primary"),
        ("-edge-", "edge"),
        ("a" * 70, "a" * 63),
        ("x" * 62 + ".y", "x" * 62),
        ("___", ""),
    ],
)
def test_host_names_are_derived_as_dns_labels(source: str, name: str) -> None:
    assert host_name_from(source) == name


def test_host_without_a_usable_name_is_an_error() -> None:
    assert "no usable characters" in str(error_of("[web]\n___ ansible_host=10.0.0.1\n", INI))


def test_byte_order_mark_is_ignored() -> None:
    result = parse_inventory("\ufeff[web]\nw1\n", filename="hosts.ini")
    assert [h.name for h in result.hosts] == ["w1"]


def test_modern_variable_name_wins_over_legacy_one_at_the_same_level() -> None:
    host = parse("[web]\nw1 ansible_ssh_host=10.0.0.9 ansible_host=10.0.0.1\n", INI).hosts[0]
    assert host.address == "10.0.0.1"


def test_group_without_a_usable_tag_name_is_warned() -> None:
    result = parse("[___]\nh1\n[Ops.Team]\nh1\n", INI)
    assert result.hosts[0].tags == ["ops.team"]
    assert result.warnings == ["Groups '___' have no usable tag name; not tagged."]


def test_ssh_config_template_values_skip_the_host_with_a_warning() -> None:
    result = parse('Host a\n  User "{{ user }}"\nHost b\n', SSH)
    assert [h.name for h in result.hosts] == ["b"]
    assert any("unrendered Jinja template" in w and "'a'" in w for w in result.warnings)
    assert any(w.startswith("Skipped host 'a'") for w in result.warnings)
