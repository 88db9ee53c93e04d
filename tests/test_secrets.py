"""Planted secrets of many kinds: none may reach a memory file, the index, the cache, a log or a message."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from mtlgit.secrets import find_secrets
from tests.conftest import SHARED_DATA, VALID, git, write

# Fake values in the formats real credentials have (assembled so no scanner mistakes this file for a leak).
PLANTED = {
    "aws access key": "AKIA" + "QYLPMN5HZ3KX7RWA",
    "aws secret key": "aws_secret_access_key = " + "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq8Qe2Lm4Y",
    "github token": "ghp_" + "Xq7Lm2Np9Rs4Tv6Wy8Za1Bc3De5Fg7Hi9Jk0L",
    "github fine-grained": "github_pat_" + "11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRS",
    "gitlab token": "glpat-" + "x9Yz8Wv7Ut6Sr5Qp4On3",
    "slack token": "xoxb-" + "123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    "stripe key": "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc9Qx",
    "openai key": "OPENAI_API_KEY=sk-proj-" + "Tq8Wm3Xz9Kp2Lr7Vn4Bs6Hd1Jf5Gc0Ya",
    "anthropic key": "sk-ant-" + "api03-Zr9Qm2Xn7Kp4Lt8Vw3Bs6Hd1Jf5Gc0Ya",
    "hugging face token": "hf_" + "QzRmXnKpLtVwBsHdJfGcYaUeIoPlMkNjBh",
    "google api key": "AIza" + "SyD3x9Qm2Xn7Kp4Lt8Vw3Bs6Hd1Jf5Gc0Ya",
    "private key": "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7Zq\n-----END RSA PRIVATE KEY-----",
    "password in a url": "postgres://admin:" + "Hunter2Secret9@db.internal.example:5432/app",
    "jwt": "Authorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    + "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    "password assignment": "DB_PASSWORD=" + "Zq8!mX2#pL9vR4tK",
    "api token assignment": "export API_TOKEN=" + "3f9a7c2e8b1d4f6a0c5e9b2d7f1a3c8e",
    "npm token": "//registry.npmjs.org/:_authToken=npm_" + "Ab3Cd5Ef7Gh9Ij1Kl3Mn5Op7Qr9St1Uv3Wx5Y",
    "sendgrid key": "SG." + "ngeVfQFYQlKU0ufo8x5d1A.TwL2iGABf9DHoTf-09kqeF8tAmbihYzrnopKc-1s5cr",
    "mysql password option": "mysql -u root -p" + "S3cr3tPassw0rd orders",
    "look-alike key": "p\u0430ssw\u043erd = " + '"S3cr3tPassw0rd"',  # Cyrillic a and o
}
ALLOWED_PROSE = [
    "Rotate the API token after every incident and keep passwords in the vault, never in the repository.",
    "The key insight: a token bucket limits the rate; the password prompt must not echo.",
    "Use uuid4 for ids like 3fa85f64-5717-4562-b3fc-2c963f66afa6 and compare hashes with hmac.compare_digest.",
    "Immunohistochemistry and CEM15/APOBEC3G-dependent deamination were measured.",
]


@pytest.mark.parametrize("kind", sorted(PLANTED))
def test_each_planted_secret_is_found(kind: str) -> None:
    found = find_secrets(f"A lesson about deployment.\nWhat the agent saw: {PLANTED[kind]}\nMore text.")
    assert found and found[0].line == 2, (kind, found)


@pytest.mark.parametrize("text", ALLOWED_PROSE)
def test_prose_about_secrets_is_not_a_secret(text: str) -> None:
    assert find_secrets(text) == []


def test_a_memory_id_is_not_a_secret_even_when_it_spells_a_key_prefix() -> None:
    # A ULID's random part can contain "ACCA" then 16 more capitals: the shape of an AWS key id.
    ulid = "01ACCA7QZ3X9R2M4N6P8T0V5WQ"
    assert find_secrets(f"superseded_by: {ulid}\nSee memory {ulid} for the newer lesson.") == []
    # The same characters outside an id's shape are still a key.
    assert find_secrets(f"key {ulid[2:]}") != []


def test_the_allow_marker_lets_a_false_positive_through() -> None:
    line = f"example value {PLANTED['github token']} <!-- pragma: allowlist secret -->"
    assert find_secrets(line) == []


def test_no_planted_secret_gets_into_the_pool_the_index_or_a_commit(repo: Path, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert cli("hooks", "install").code == 0
    cli("add", "-t", "A clean memory", "-d", "When testing.", "-c", "Nothing secret here.")
    planted = sorted(PLANTED.items())
    items = [
        {"title": f"Deploy lesson {number}", "description": "When deploying.", "content": secret}
        for number, (_kind, secret) in enumerate(planted)
    ]
    values = [secret.split("=", 1)[-1] for _kind, secret in planted]
    # 1. add with options, one secret a call
    for (kind, secret), value, number in zip(planted, values, range(len(planted)), strict=True):
        result = cli("add", "-t", f"Deploy lesson {number}", "-d", "When deploying.", "-c", f"Saw {secret} in env.")
        assert result.code == 1 and "contains a" in result.err, (kind, result.output)
        assert value not in result.output
    # 2. add --items from an agent: every item refused for its secret, in one call
    answer = cli("add", "--items", "-", "--json", input=json.dumps(items))
    report = json.loads(answer.out)
    assert answer.code == 1 and report["added"] == 0 and report["rejected"] == len(PLANTED), answer.output
    assert [any("contains a" in reason for reason in item["reasons"]) for item in report["items"]] == [True] * len(
        PLANTED
    )
    # 3. import of a bank holding them all
    source = write(tmp_path / "import" / "bank.jsonl", "".join(json.dumps(item) + "\n" for item in items))
    imported = cli("import", str(source.parent), "--json")
    skips = json.loads(imported.out)["skips"]
    assert json.loads(imported.out)["imported"] == 0 and len(skips) == len(PLANTED), imported.output
    assert all("contains a" in skip["reason"] for skip in skips)
    for value in values:
        assert value not in answer.output and value not in imported.output
    assert [p.name for p in (repo / "memories").rglob("*.md")] == [
        p.name for p in (repo / "memories").rglob("*.md") if "a-clean-memory" in p.name
    ]
    # 4. a hand-written file: reported by lint, left out of the index, blocked at commit
    for number, secret in enumerate(PLANTED.values()):
        text = VALID.replace("4K9B", f"4K{number:02d}").replace("Write a short battery", f"Got {secret}. Write a short")
        write(repo / "memories" / "hand" / f"m{number}.md", text)
    lint = cli("lint", "--json")
    report = json.loads(lint.out)
    flagged = {p["path"] for p in report["problems"] if p["code"] == "secret"}
    assert len(flagged) == len(PLANTED)
    assert all(p["line"] > 0 for p in report["problems"] if p["code"] == "secret")
    recall = cli("recall", "deploy secret token key password", "--json", "-k", "50")
    assert recall.code == 0
    git(repo, "add", "-A")
    commit = subprocess.run(["git", "commit", "-qm", "leak"], cwd=repo, capture_output=True, text=True)
    assert commit.returncode == 1 and "commit blocked" in commit.stderr
    state = repo / ".git" / "mtlgit"
    everything = b"".join(p.read_bytes() for p in state.rglob("*") if p.is_file())
    everything += (lint.out + recall.out + commit.stderr).encode()
    for secret in PLANTED.values():
        assert secret.split("=", 1)[-1].encode() not in everything
    assert git(repo, "log", "--all", "--format=%H").strip().count("\n") == 0  # nothing was ever committed


@pytest.mark.skipif(not (SHARED_DATA / "scifact").is_dir(), reason="third-party data not found")
def test_real_text_is_not_flagged() -> None:
    lines = (SHARED_DATA / "scifact" / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[:1500]
    flagged = [row for row in lines if find_secrets(json.loads(row)["text"])]
    assert flagged == []
    starter = Path(__file__).resolve().parent.parent / "memories"
    assert [p for p in starter.rglob("*.md") if find_secrets(p.read_text())] == []


# --- issue 12: secrets that got through -------------------------------------------------------------------

SHAPES = [
    json.loads(line)
    for line in (Path(__file__).parent / "data" / "secrets" / "shapes.jsonl").read_text(encoding="utf-8").splitlines()
]
SECRET_SHAPES = [s for s in SHAPES if s["secret"]]
CLEAN_SHAPES = [s for s in SHAPES if not s["secret"]]
TOKEN = "ghp_" + "Xq7Lm2Np9Rs4Tv6Wy8Za1Bc3De5Fg7Hi9Jk0L"
AWS_PROSE = "The secret is wJalrXUtnFrEMI/K7MDENG/bPxRfiCYEXAMPLEKEY for the deploy."


def _values(text: str) -> list[str]:
    """The long words of a planted secret: none of them may appear in any output."""
    return [w.strip("'\"(),.;") for w in text.split() if len(w.strip("'\"(),.;")) >= 16]


def test_the_fixture_has_the_23_shapes_of_the_issue() -> None:
    assert len([s for s in SECRET_SHAPES if not s.get("extra")]) == 23
    assert sum(s["passed_in_issue"] for s in SECRET_SHAPES if not s.get("extra")) == 14


@pytest.mark.parametrize("shape", SECRET_SHAPES, ids=[s["name"] for s in SECRET_SHAPES])
def test_each_real_world_shape_is_found(shape: dict[str, str]) -> None:
    assert find_secrets(shape["text"]), shape["name"]


@pytest.mark.parametrize("shape", CLEAN_SHAPES, ids=[s["name"] for s in CLEAN_SHAPES])
def test_code_and_placeholders_are_not_secrets(shape: dict[str, str]) -> None:
    assert find_secrets(shape["text"]) == [], shape["name"]


def _hand_written(shape_text: str, number: int) -> str:
    body = "\n".join("    " + line if line.strip() else "" for line in shape_text.split("\n"))
    return VALID.replace("4K9B", f"4M{number:02d}").replace(
        "Write a short battery", f"Seen while deploying:\n\n{body}\n\nWrite a short battery"
    )


def test_every_shape_is_refused_by_add_json_import_and_the_hook(repo: Path, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The 23 shapes of the issue (and the AWS key in prose) through add --json, import and a commit;
    the clean look-alikes (zod schemas, commit hashes, env references) go through."""
    assert cli("hooks", "install").code == 0
    items = [
        {"title": f"Deploy lesson {n}", "description": "When deploying the service.", "content": s["text"]}
        for n, s in enumerate(SHAPES)
    ]
    answer = cli("add", "--json", "-", "--force", input=json.dumps(items))
    results = json.loads(answer.out)["items"]
    added = {SHAPES[r["item"] - 1]["name"] for r in results if r["added"]}
    assert added == {s["name"] for s in CLEAN_SHAPES}, answer.out
    assert all("contains a" in " ".join(r["reasons"]) for r in results if not r["added"])
    source = write(tmp_path / "bank" / "bank.jsonl", "".join(json.dumps(i) + "\n" for i in items))
    imported = json.loads(cli("import", str(source.parent), "--json", "--force").out)
    assert imported["skipped"] == len(SECRET_SHAPES), imported
    for number, shape in enumerate(SECRET_SHAPES):
        write(repo / "memories" / "hand" / f"m{number}.md", _hand_written(shape["text"], number))
    lint = json.loads(cli("lint", "--json").out)
    flagged = {p["path"] for p in lint["problems"] if p["code"] == "secret"}
    assert len(flagged) == len(SECRET_SHAPES)
    git(repo, "add", "-A")
    commit = subprocess.run(["git", "commit", "-qm", "leak"], cwd=repo, capture_output=True, text=True)
    assert commit.returncode == 1 and "commit blocked" in commit.stderr
    everything = answer.output + json.dumps(imported) + json.dumps(lint) + commit.stderr
    for shape in SECRET_SHAPES:
        for value in _values(shape["text"]):
            assert value not in everything, (shape["name"], value)


@pytest.mark.slow
@pytest.mark.parametrize("shape", SECRET_SHAPES, ids=[s["name"] for s in SECRET_SHAPES])
def test_each_shape_is_refused_by_add(cli, shape: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    result = cli("add", "-t", "Deploy lesson", "-d", "When deploying.", "-c", shape["text"])
    assert result.code == 1 and "contains a" in result.err, result.output
    assert not any(value in result.output for value in _values(shape["text"]))


@pytest.mark.parametrize("value", [TOKEN, "AKIA" + "QYLPMN5HZ3KX7RWA"])
def test_a_secret_in_the_id_field_is_refused_everywhere(repo: Path, cli, value: str) -> None:  # type: ignore[no-untyped-def]
    assert cli("hooks", "install").code == 0
    write(repo / "memories" / "hand" / "leak.md", VALID.replace("01JDQ2V6R3J8Z6TT4M0S3W4K9B", value))
    lint = cli("lint", "--json")
    problems = json.loads(lint.out)["problems"]
    assert lint.code == 1 and [p["line"] for p in problems if p["code"] == "secret"] == [2], lint.out
    recall = cli("recall", "battery of checks here-doc", "--json")
    git(repo, "add", "-A")
    commit = subprocess.run(["git", "commit", "-qm", "leak"], cwd=repo, capture_output=True, text=True)
    assert commit.returncode == 1 and "commit blocked" in commit.stderr
    state = b"".join(p.read_bytes() for p in (repo / ".git" / "mtlgit").rglob("*") if p.is_file())
    assert value.encode() not in state + (lint.output + recall.output + commit.stderr).encode()


def test_a_ulid_id_is_still_exempt(repo: Path, cli) -> None:  # type: ignore[no-untyped-def]
    # The random part of this ULID spells an AWS key id (ACCA + 16 capitals and digits).
    write(
        repo / "memories" / "hand" / "ok.md", VALID.replace("01JDQ2V6R3J8Z6TT4M0S3W4K9B", "01ACCA7QZ3X9R2M4N6P8T0V5WQ")
    )
    assert cli("lint").code == 0


@pytest.mark.parametrize("name", ["leak.Md", "leak.mD", "LEAK.MD"])
def test_a_memory_named_in_any_case_of_md_is_checked_at_commit(repo: Path, cli, name: str) -> None:  # type: ignore[no-untyped-def]
    assert cli("hooks", "install").code == 0
    write(repo / "memories" / "hand" / name, VALID.replace("Write a short battery", f"Use {TOKEN}. Write a short"))
    assert "secret" in cli("lint").out
    git(repo, "add", "-A")
    commit = subprocess.run(["git", "commit", "-qm", "leak"], cwd=repo, capture_output=True, text=True)
    assert commit.returncode == 1 and "commit blocked" in commit.stderr, commit.stderr
    assert TOKEN not in commit.stderr


def test_a_symlink_turned_into_a_memory_is_checked_at_commit(repo: Path, cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("hooks", "install").code == 0
    write(repo / "notes.txt", "notes\n")
    link = repo / "memories" / "hand" / "leak.md"
    link.parent.mkdir(parents=True)
    link.symlink_to("../../notes.txt")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "a link")
    link.unlink()
    write(link, VALID.replace("Write a short battery", f"Use {TOKEN}. Write a short"))
    git(repo, "add", "-A")
    assert git(repo, "diff", "--cached", "--name-status").startswith("T")
    commit = subprocess.run(["git", "commit", "-qm", "leak"], cwd=repo, capture_output=True, text=True)
    assert commit.returncode == 1 and "commit blocked" in commit.stderr, commit.stderr


def test_a_hidden_memories_folder_is_checked_at_commit(repo: Path, cli) -> None:  # type: ignore[no-untyped-def]
    config = repo / ".mtlgit.yaml"
    config.write_text(config.read_text().replace("memories: memories", "memories: .memories"))
    assert cli("hooks", "install").code == 0
    write(repo / ".memories" / "leak.md", VALID.replace("Write a short battery", f"Use {TOKEN}. Write a short"))
    assert "secret" in cli("lint").out
    git(repo, "add", "-A")
    commit = subprocess.run(["git", "commit", "-qm", "leak"], cwd=repo, capture_output=True, text=True)
    assert commit.returncode == 1 and "commit blocked" in commit.stderr, commit.stderr


def test_messages_quote_no_value_of_a_file_with_a_secret(repo: Path, cli) -> None:  # type: ignore[no-untyped-def]
    sid, auth = "AC" + "3f9a7c2e8b1d4f6a0c5e9b2d7f1a3c8e", "9b2d7f1a3c8e" + "3f9a7c2e8b1d4f6a"
    aws = "wJalrXUtnFrEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    files = {
        # a type error on the line of the secret, and the value of another field
        "created.md": VALID.replace("created: 2026-11-25T14:03:11Z", f"created: {TOKEN}"),
        "status.md": VALID.replace("status: active", f"status: {TOKEN}"),
        "title.md": VALID.replace("title: Validate", "title: 12345\nx: 1\nold_title: Validate").replace(
            "Write a short", f"Token {TOKEN}. Write a short"
        ),
        # the abstraction warning names what it found: a Twilio auth token in a file blocked for its SID
        "twilio.md": VALID.replace(
            "Write a short battery of checks",
            f"Send with account {sid} and token {auth} via notify_users.py and path src/app/notify.py, line 42.",
        ),
        "aws.md": VALID.replace("Write a short battery of checks", f"It names path ({aws}) and src/app/deploy.py"),
    }
    for number, (name, text) in enumerate(files.items()):
        write(repo / "memories" / "hand" / name, text.replace("4K9B", f"4N{number:02d}"))
    lint = cli("lint", "--json")
    text = cli("lint").output
    cli("index")
    problems = (repo / ".git" / "mtlgit").rglob("problems.json")
    everything = lint.output + text + "".join(p.read_text() for p in problems)
    assert json.loads(lint.out)["problems"]
    for value in (TOKEN, sid, auth, aws, aws[:6]):
        assert value not in everything, value


def test_an_aws_secret_key_in_prose_is_refused_and_fails_review(repo: Path, cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("add", "-t", "Deploy with the key", "-d", "When deploying.", "-c", AWS_PROSE)
    assert result.code == 1 and "contains a" in result.err
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    git(repo, "checkout", "-qb", "feature")
    write(repo / "memories" / "hand" / "deploy.md", VALID.replace("Write a short battery", f"{AWS_PROSE} Write a"))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "leak")  # no hooks installed: the review is the gate
    review = cli("review", "main..feature", "--check")
    assert review.code == 1 and "contains a" in review.output
    assert "wJalrXUtnFrEMI" not in review.output
    recall = cli("recall", "secret for the deploy", "--json")
    assert "wJalrXUtnFrEMI" not in recall.output


@pytest.mark.parametrize(
    "text",
    [
        "-----BEGIN" + " " * 32_000 + "x",  # split-PEM runs that overlapped
        "a." * 16_000 + " x@tcp(",  # a database address's user part from every word start
        "sk-a" * 10_000,  # detect-secrets' token patterns on one long line
        "hvs." * 30_000,  # passes the screen on every word
        "curl -u " * 30_000,  # a command on every other word, each reading the words after it
        "mysql -p'" * 30_000,  # a quoted word from every command to the end of the line
        "PGPASSWORD='" * 30_000,  # the same after every variable
    ],
    ids=["pem-spaces", "dsn-run", "sk-run", "hvs-run", "curl-run", "quote-run", "variable-run"],
)
def test_no_crafted_line_makes_the_scan_quadratic(text: str) -> None:
    import time

    start = time.perf_counter()
    find_secrets(text)
    assert time.perf_counter() - start < 5  # each took 3-30 s before the patterns were bounded and lines windowed


def test_a_secret_in_a_long_line_is_still_found_across_the_windows() -> None:
    token = "ghp_R4nd0mT0k3nV4lu3Xq8Zp2Lm9Wc7Vb1Nd5Kf"  # pragma: allowlist secret
    for at in (10, 2040, 5000):
        assert find_secrets("x" * at + " " + token + " " + "y" * 6000), at


@pytest.mark.parametrize("line", ["foo: !{token} bar", "foo: &{token} bar"], ids=["tag", "anchor"])
def test_a_secret_in_a_yaml_tag_or_anchor_is_not_quoted(repo: Path, line: str) -> None:
    from tests.conftest import run_cli

    token = "ghp_R4nd0mT0k3nV4lu3Xq8Zp2Lm9Wc7Vb1Nd5Kf"  # pragma: allowlist secret
    write(
        repo / "memories" / "leak.md",
        f"---\nid: 01JDQ2V6R3J8Z6TT4M0S3W4K9B\ntitle: t\n{line.format(token=token)}\n---\nbody\n",
    )
    result = run_cli(repo, "lint", "--json")
    assert result.code == 1 and token not in result.output and "secret" in result.output
    assert run_cli(repo, "list").code == 0
    state = repo / ".git" / "mtlgit"
    assert not [p for p in state.rglob("*") if p.is_file() and token.encode() in p.read_bytes()]


def test_add_json_quotes_no_value_of_an_item_with_a_secret(repo: Path) -> None:
    from tests.conftest import run_cli

    token = "ghp_R4nd0mT0k3nV4lu3Xq8Zp2Lm9Wc7Vb1Nd5Kf"  # pragma: allowlist secret
    items = [
        {"title": "t", "description": "When a build breaks.", "content": "c", "format": token},
        {"title": token, "description": "When a build breaks.", "content": "c"},
    ]
    result = run_cli(repo, "add", "--json", "-", input=json.dumps(items))
    assert result.code == 1 and token not in result.output
    assert json.loads(result.out)["rejected"] == 2


# --- a password given to a command, and keys spelled with look-alike letters ------------------------------

PASSWORD = "S3cr3t" + "Passw0rd"
COMMAND_LINE_PASSWORDS = [
    f"mysql -u root -p{PASSWORD} orders",
    f"mysql -uroot -phunter{22} app",
    'Run `mysqldump -u app -p"k8Rt#q2z" orders > orders.sql` nightly.',
    f"/usr/bin/mysql -uapp -p'{PASSWORD}' orders",
    f"mongosh -u admin -p {PASSWORD}",
    f"mongosh --username admin --password '{PASSWORD}' --authenticationDatabase admin",
    f"sshpass -p{PASSWORD} ssh deploy@10.0.4.12",
    f"curl -u deploy:{PASSWORD} https://api.example.com/v1/builds",
    f"curl --user 'deploy:hunter{22}' https://api.example.com",
    f"PGPASSWORD=hunter{22} psql -h db -U app",
    f"export PGPASSWORD='hunter{22}'",
    f"MYSQL_PWD=hunter{22} mysql -u app orders",
    f"redis-cli -a {PASSWORD} ping",
    f"docker login -u bot -p {PASSWORD} registry.example.com",
    f"wget --http-password=hunter{22} https://files.example.com/build.tgz",
]
# How memories describe such commands without a password in them.
COMMAND_LINES_WITHOUT_ONE = [
    "mysql -u root -p$PASSWORD orders",
    'mysql -u root -p"$DB_PASS" orders',
    "mysql -u root -p<password> orders",
    "mysql --password=*** orders",
    "mysql -u root -pPASSWORD orders",
    "mysql -u root -p your_password",
    "mysql -u root -p orders",  # -p alone asks for the password; orders is the database
    "mysql -u root -password",  # a slip for --password, which asks for it
    "mysql -uroot -proot",
    "mysql -u root -p$(cat ~/.dbpass) orders",
    "psql -h db -p 5432 -U app",
    "psql -p5432 -U app orders",
    "ssh -p 2222 deploy@10.0.4.12",
    "docker run -p 8080:80 nginx",
    "mongosh -u admin -p",
    "curl -u deploy https://api.example.com",
    'curl -u "$CI_USER:$CI_TOKEN" https://api.example.com',
    "curl -u guest:guest http://localhost:15672/api/overview",
    'sshpass -p "$SSHPASS" ssh deploy@10.0.4.12',
    "docker login -u bot --password-stdin registry.example.com",
    "The docker login -p flag puts the password in the shell's history; mongosh -p alone prompts for it.",
    "PGPASSWORD=$(cat /run/secrets/db) psql -h db",
    'redis-cli -a "${REDIS_PASSWORD}" ping',
    "mkdir -p build && curl -o build/x.tgz https://files.example.com/x.tgz",
]


@pytest.mark.parametrize("line", COMMAND_LINE_PASSWORDS)
def test_a_password_given_to_a_command_is_found(line: str) -> None:
    found = find_secrets(f"Connect to the database.\n\n    {line}\n\nThen run the migrations.")
    assert [f.line for f in found] == [3], found


@pytest.mark.parametrize("line", COMMAND_LINES_WITHOUT_ONE)
def test_a_command_line_without_a_password_is_not_a_secret(line: str) -> None:
    assert find_secrets(f"Connect to the database.\n\n    {line}\n") == []


LOOK_ALIKE_KEYS = {
    "cyrillic a": f'p\u0430ssword = "{PASSWORD}"',
    "cyrillic o and e": 't\u043ek\u0435n = "Zq8mX2pL9vR4tKw"',
    "cyrillic capital a": f"DB_P\u0410SSWORD: {PASSWORD}",
    "greek capital alpha": f'\u0391PI_KEY = "{PASSWORD}"',
    "full-width equals": f'password \uff1d "{PASSWORD}"',
    "full-width letters and colon": f"\uff50\uff41\uff53\uff53\uff57\uff4f\uff52\uff44\uff1a {PASSWORD}",
    "full-width aws": f'\uff21\uff37\uff33_SECRET \uff1d "{PASSWORD}"',
    "zero-width space": f'pass\u200bword = "{PASSWORD}"',
}


@pytest.mark.parametrize("line", LOOK_ALIKE_KEYS.values(), ids=LOOK_ALIKE_KEYS.keys())
def test_a_key_spelled_with_look_alike_letters_is_found(line: str) -> None:
    found = find_secrets(f"\u0420\u0443\u0441\u0441\u043a\u0438\u0439 \uff34\uff45\uff58\uff54.\n{line}\nMore.")
    assert [f.line for f in found] == [2], found


@pytest.mark.parametrize(
    "text",
    [
        "\u041f\u0430\u0440\u043e\u043b\u044c \u0445\u0440\u0430\u043d\u0438\u0442\u0441\u044f "
        "\u0432 vault, \u0430 \u0442\u043e\u043a\u0435\u043d \u2014 \u0432 CI_TOKEN.",  # Russian prose
        "TNF-\u03b1 and IL-1\u03b2 rose; \u03c1 = 0.42, \u03c3\u00b2 = 1.3 (p < 0.05), 10\u207b\u2076 M.",
        "Set the key in \uff08config\uff09\uff1a api_key \uff1d ${API_KEY}",
    ],
    ids=["russian", "greek-in-science", "full-width-placeholder"],
)
def test_text_in_other_scripts_is_not_a_secret(text: str) -> None:
    assert find_secrets(text) == []


def test_a_look_alike_key_is_refused_and_the_text_is_never_rewritten(repo: Path, cli) -> None:  # type: ignore[no-untyped-def]
    """The fold is for the scan only: a memory with look-alike letters and no secret is written as given."""
    leak = f"Seen in the \uff23\uff29 log:\n\n    {LOOK_ALIKE_KEYS['cyrillic a']}\n"
    refused = cli("add", "-t", "CI log lesson", "-d", "When the CI fails.", "-c", leak)
    assert refused.code == 1 and "contains a" in refused.err and "line" in refused.err, refused.output
    assert PASSWORD not in refused.output
    kept = "The \uff23\uff29 job reads p\u0430ssword from the vault \uff1a never from a file."
    added = cli("add", "-t", "CI vault lesson", "-d", "When the CI fails.", "-c", kept)
    assert added.code == 0, added.output
    [path] = (repo / "memories").rglob("*.md")
    assert kept in path.read_text(encoding="utf-8")


def test_a_password_variable_is_found_after_letters_that_lower_casing_lengthens() -> None:
    # "İ".lower() is two characters: the screen's positions in the lower-cased text are not the text's there.
    text = "\u0130" * 40 + " office.\nPGPASSWORD=hunter" + "22 pg_dump -h db orders\n" + "Then " * 20
    assert [f.line for f in find_secrets(text)] == [2]
