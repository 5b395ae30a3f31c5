"""Policy rules: upstream defaults, ordering, custom rules, and reload semantics (last good policy kept)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lighthouse_bridge.agents import policy

D = policy.default_policy()


def bash(cmd: str) -> dict[str, str]:
    return {"command": cmd}


@pytest.mark.parametrize(
    "cmd, rule",
    [
        ("rm -rf /", "block-rm-rf-root"),
        ("rm -fr /*", "block-rm-rf-root"),
        ("rm -r -f /", "block-rm-rf-root"),
        ("sudo rm -f /tmp/x", "block-sudo-rm"),
        ("chmod 777 app.py", "block-chmod-777"),
        ("chmod -R 0777 .", "block-chmod-777"),
        ("dd if=/dev/zero of=/dev/sda bs=1M", "block-dd-device"),
        ("mkfs.ext4 /dev/sdb1", "block-mkfs"),
        ("fdisk /dev/sda", "block-fdisk"),
        ("shutdown -h now", "block-shutdown"),
        ("reboot", "block-reboot"),
        ("kill -9 1234", "block-kill-9"),
        ("killall python", "block-killall"),
    ],
)
def test_upstream_blocks(cmd: str, rule: str) -> None:
    d = D.decide("Bash", bash(cmd))
    assert (d.action, d.rule_id) == ("block", rule)


@pytest.mark.parametrize(
    "tool, tool_input",
    [
        ("Read", {"file_path": "src/app.py"}),
        ("Glob", {"pattern": "**/*.py"}),
        ("Grep", {"pattern": "TODO"}),
        ("LS", {"path": "src"}),
        ("Bash", bash("ls -la")),
        ("Bash", bash("pwd")),
        ("Bash", bash("git status")),
        ("Bash", bash("git log --oneline -5")),
        ("Bash", bash("git diff HEAD~1")),
        ("Bash", bash("grep -rn foo src")),
    ],
)
def test_upstream_approvals(tool: str, tool_input: dict[str, str]) -> None:
    d = D.decide(tool, tool_input)
    assert d.action == "approve", d
    assert D.is_read_only(tool, tool_input)


@pytest.mark.parametrize(
    "tool, tool_input, rule",
    [
        ("Write", {"file_path": "/etc/hosts", "content": "x"}, "escalate-system-path"),
        ("Read", {"file_path": "/etc/shadow"}, "escalate-system-path"),
        ("Edit", {"file_path": "/usr/lib/x.py"}, "escalate-system-path"),
        ("Bash", bash("cat /etc/passwd"), "escalate-system-path-shell"),
        ("Bash", bash("npm install left-pad"), "default"),
        ("Write", {"file_path": "src/app.py", "content": "print(1)"}, "default"),
    ],
)
def test_upstream_escalations(tool: str, tool_input: dict[str, str], rule: str) -> None:
    d = D.decide(tool, tool_input)
    assert (d.action, d.rule_id) == ("escalate", rule)


@pytest.mark.parametrize(
    "cmd",
    ["ls; rm -rf ~", "echo hi && curl x | sh", "ls $(rm -rf ~)", "echo `id`", "git status > /tmp/out", "grep x | sh"],
)
def test_safe_prefix_does_not_approve_chained_commands(cmd: str) -> None:
    assert D.decide("Bash", bash(cmd)).action != "approve"
    assert not D.is_read_only("Bash", bash(cmd))


def test_dev_null_is_not_a_system_path() -> None:
    assert D.decide("Bash", bash("make test 2>/dev/null")).rule_id == "default"


def test_custom_rules_come_first_and_defaults_follow() -> None:
    p = policy.parse(
        """
rules:
  - id: no-force-push
    tool: Bash
    command: 'git\\s+push\\b.*--force'
    action: block
    reason: force pushes rewrite history
  - id: allow-pytest
    tool: [Bash]
    command: '^pytest(\\s|$)'
    action: approve
  - id: etc-hosts-ok
    tool: "*"
    path: '^/etc/hosts$'
    action: approve
""",
        "test",
    )
    assert p.decide("Bash", bash("git push origin main --force")).rule_id == "no-force-push"
    assert p.decide("Bash", bash("pytest -q")).action == "approve"
    assert p.decide("Write", {"file_path": "/etc/hosts"}).rule_id == "etc-hosts-ok"
    assert p.decide("Write", {"file_path": "/etc/passwd"}).rule_id == "escalate-system-path"
    assert p.decide("Bash", bash("rm -rf /")).rule_id == "block-rm-rf-root"
    assert p.hash != D.hash


def test_without_defaults_and_default_action() -> None:
    p = policy.parse("include_defaults: false\ndefault_action: block\nescalation_timeout_seconds: 5\n", "t")
    assert p.rules == [] and p.escalation_timeout == 5
    assert p.decide("Read", {"file_path": "x"}).action == "block"


@pytest.mark.parametrize(
    "text, message",
    [
        ("rules: [{action: explode}]", "action"),
        ("rules: [{action: block, command: '(unclosed'}]", "invalid regex"),
        ("rules: [{id: a, action: block}, {id: a, action: approve}]", "duplicate rule id"),
        ("- just a list", "must be a mapping"),
        ("rules: {oops", "not valid YAML"),
        ("unknown_key: 1", "unknown_key"),
    ],
)
def test_invalid_policies_are_rejected_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(policy.PolicyError, match=message):
        policy.parse(text, "test")


def test_empty_documents_mean_defaults() -> None:
    assert policy.parse("", "t").hash == D.hash
    assert policy.parse("{}\n", "t").hash == D.hash


def test_holder_reloads_and_keeps_last_good(tmp_path: Path) -> None:
    f = tmp_path / "policy.yaml"
    f.write_text("rules: [{id: r1, tool: Bash, command: '^make\\b', action: approve}]\n")
    seen: list[tuple[bool, str | None]] = []
    h = policy.PolicyHolder(f, lambda ok, p, err: seen.append((ok, err)))
    assert h.check() is True
    assert h.policy.decide("Bash", bash("make")).rule_id == "r1"
    assert h.check() is False  # unchanged content: no reload
    f.write_text("rules: [{id: r1, action: nope}]\n")
    assert h.check() is False
    assert h.policy.decide("Bash", bash("make")).rule_id == "r1"  # last good kept
    assert h.last_error and "action" in h.last_error
    f.write_text("rules: [{id: r2, tool: Bash, command: '^make\\b', action: block}]\n")
    assert h.check() is True
    assert h.policy.decide("Bash", bash("make")).rule_id == "r2" and h.last_error is None
    assert [ok for ok, _ in seen] == [True, False, True]


def test_missing_file_keeps_defaults_loudly(tmp_path: Path) -> None:
    h = policy.PolicyHolder(tmp_path / "absent.yaml")
    assert h.check() is False
    assert h.policy.hash == D.hash and "cannot read" in (h.last_error or "")
