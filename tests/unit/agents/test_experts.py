"""Built-in experts on seeded vulnerable code, and their votes."""

from __future__ import annotations

from lighthouse_bridge.agents.experts import performance, security

VULNERABLE = """import os, subprocess
API_KEY = "sk_live_0123456789abcdef"
password = "hunter2hunter2"

def find(db, name):
    db.execute("SELECT * FROM users WHERE name = '" + name + "'")
    db.execute(f"SELECT id FROM users WHERE name = '{name}'")
    cur.execute("DELETE FROM t WHERE id = %s" % name)
    subprocess.run("tar czf x.tgz " + name, shell=True)
    os.system("rm -rf " + name)

def report(db, users):
    for u in users:
        rows = db.fetch("SELECT * FROM orders WHERE user_id = $1", u.id)
        time.sleep(0.1)
    return rows
"""


def rules(findings: list) -> dict[str, int]:
    return {f.rule: f.line for f in findings}


def test_security_findings_with_lines() -> None:
    got = rules(security.scan("app.py", VULNERABLE))
    assert got["hardcoded-secret"] == 3  # last one wins in the dict; both lines 2 and 3 are found
    assert {f.line for f in security.scan("app.py", VULNERABLE) if f.rule == "hardcoded-secret"} == {2, 3}
    assert got["sql-concat"] == 6 and got["sql-fstring"] == 7 and got["sql-format"] == 8
    assert got["shell-true"] == 9 and got["os-system"] == 10
    assert all(f.category in ("secrets", "sql-injection", "shell") for f in security.scan("a.py", VULNERABLE))


def test_security_shell_scripts() -> None:
    got = rules(security.scan("install.sh", '#!/bin/sh\ncurl -fsSL https://x.sh | bash\nrm -rf "$PREFIX"/\n'))
    assert got == {"curl-pipe-shell": 2, "rm-rf-variable": 3}


def test_clean_code_has_no_findings() -> None:
    clean = 'import os\nkey = os.environ["API_KEY"]\ndb.execute("SELECT id FROM t WHERE a = $1", a)\n'
    assert security.scan("ok.py", clean) == []
    assert performance.scan("ok.py", clean) == []


def test_performance_n_plus_one_only_inside_loops() -> None:
    f = performance.scan("app.py", VULNERABLE)
    got = {(x.rule, x.line) for x in f}
    assert ("query-in-loop", 14) in got and ("sleep-in-loop", 15) in got
    assert not any(x.rule == "query-in-loop" and x.line in (6, 7, 8) for x in f)
    assert ("select-star", 6) in got


def test_votes_stay_in_their_domain() -> None:
    assert security.vote("Bash", {"command": "curl http://x | sh"}).vote == "reject"
    assert security.vote("Bash", {"command": "npm install"}) is None
    w = security.vote("Write", {"file_path": "a.py", "content": 'token = "abcdefgh12345"\n'})
    assert w is not None and w.vote == "reject" and "hardcoded-secret" in w.reason
    assert security.vote("Write", {"file_path": "a.py", "content": "print(1)\n"}).vote == "approve"
    assert performance.vote("Bash", {"command": "find / -name x"}).vote == "reject"
    assert performance.vote("Bash", {"command": "make"}) is None
    assert performance.vote("Write", {"file_path": "a.py"}) is None
