"""A long memory (an imported guide) is screened at a cost in proportion to its length, and loses no finding
to the ways the screen saves work: patterns skipped on lines without their strings, detect-secrets run only
on lines its patterns match, betterleaks run on overlapping pieces."""

from __future__ import annotations

import base64
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mtlgit import secrets
from mtlgit.secrets import find_secrets
from tests.conftest import run_cli, write
from tests.test_secrets import PLANTED


def long_body(size: int = 200_000) -> str:
    """A long guide as agents import them: prose, YAML and Python blocks, configuration with placeholders,
    links, commit hashes and long identifiers (the hashes pass the screen, so every layer runs)."""
    parts = []
    length = 0
    number = 0
    while length < size:
        number += 1
        part = (
            f"## Step {number}: configure the service\n\n"
            f"Set the connection in `config/settings_{number}.yaml` before the first deploy; see "
            f"https://docs.example.com/guides/deployment/step-{number}#configuration-reference for every key.\n\n"
            "```yaml\n"
            "database:\n"
            f"  host: db-{number}.internal.example\n"
            "  password: ${DB_PASSWORD}\n"
            "  api_key: <your-api-key>\n"
            "```\n\n"
            "```python\n"
            f"def load_settings_{number}(path: str) -> dict[str, object]:\n"
            '    token = os.environ["SERVICE_TOKEN"]  # never hard-code it\n'
            f'    return yaml.safe_load(Path(path).read_text())["step_{number}"]\n'
            "```\n\n"
            f"Fixed in commit {number:04x}e1c9a7b3f2d84c6e0b5a9d3f7c1e8b2a4d6f0c: the retry wrapper now backs off "
            "exponentially, and `RetryPolicyConfigurationBuilder` reads the limits from the environment.\n\n"
        )
        parts.append(part)
        length += len(part)
    return "".join(parts)[:size]


BODY = long_body()


def test_the_long_body_holds_no_secret_but_passes_the_screen() -> None:
    assert secrets._screen(BODY)  # so that the layers below all run on it
    assert find_secrets(BODY) == []


@pytest.mark.parametrize("kind", sorted(PLANTED))
def test_a_secret_at_the_end_of_a_200k_body_is_found_on_its_line(kind: str) -> None:
    text = BODY + "\n" + PLANTED[kind]
    found = find_secrets(text)
    assert [f.line for f in found] == [BODY.count("\n") + 2], (kind, found)


def pem_key(seed: int) -> str:
    lines = base64.b64encode(random.Random(seed).randbytes(1190)).decode()
    body = "\n".join(lines[at : at + 64] for at in range(0, len(lines), 64))
    return f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----"


def test_a_private_key_across_the_end_of_a_betterleaks_piece_is_found() -> None:
    """The multi-line rule of betterleaks sees the whole key in the piece after the one it starts in."""
    key = pem_key(7)
    head = BODY[: secrets._PIECE - len(key) // 2]
    head = head[: head.rindex("\n")]
    text = head + "\n" + key + "\n" + BODY
    line = head.count("\n") + 2
    starts = [before for before, _ in secrets._pieces(text)]
    assert len(starts) > 2 and not any(before == line - 1 for before in starts)  # the key is cut by a piece's end
    assert any(f.line == line and f.kind == "private key" for f in secrets._betterleaks(text))
    assert find_secrets(text)[0].line == line


def spans(text: str) -> Iterator[tuple[int, int]]:
    """Where each of ``text``'s pieces starts and ends, in characters."""
    starts = secrets._line_starts(text)
    for before, piece in secrets._pieces(text):
        assert piece == "\n".join(text.split("\n")[before : before + piece.count("\n") + 1])
        yield starts[before], starts[before] + len(piece)


@pytest.mark.parametrize(("first_line", "short_lines"), [(31_000, 27), (30_500, 35), (40_000, 0), (24_000, 60)])
def test_a_key_over_two_lines_beside_a_line_longer_than_most_of_a_piece_is_found(
    first_line: int, short_lines: int
) -> None:
    """A piece that is mostly one long line left no overlap with the next: a key's name and its value on the
    next line (a match only betterleaks makes) fell across the cut, in neither piece."""
    prose = " ".join(["the quick brown fox jumps over the lazy dog"] * (first_line // 44 + 1))[:first_line]
    lines = [prose, *(["notes about parsing a long log line, one by one"] * short_lines)]
    text = "\n".join([*lines, "my api_key", "= 'Zx9kQ2mP7vR4tL8wB3nY6cH1'", "end of note"]) + "\n"
    assert [(f.line, f.kind) for f in find_secrets(text)] == [(len(lines) + 1, "generic api key")]
    pieces = [(before, before + piece.count("\n") + 1) for before, piece in secrets._pieces(text)]
    for line in range(len(lines) + 2):  # every two adjacent lines lie in one piece
        assert any(start <= line and line + 1 < end for start, end in pieces), line


@pytest.mark.parametrize("seed", range(20))
def test_pieces_hold_whole_lines_and_every_short_stretch_lies_in_one(seed: int) -> None:
    rng = random.Random(seed)
    lines = ["a" * rng.choice([0, 5, 80, 700, 3000]) for _ in range(rng.randint(1, 300))]
    text = "\n".join(lines)
    ranges = list(spans(text))
    assert ranges[0][0] == 0 and ranges[-1][1] == len(text)
    for _ in range(300):
        start = rng.randrange(len(text) + 1)
        end = min(len(text), start + rng.randint(0, secrets._PIECE_OVERLAP))
        assert any(low <= start and end <= high for low, high in ranges)


class Counting:
    """A compiled pattern that counts its passes over a line."""

    def __init__(self, pattern: re.Pattern[str], counts: dict[str, int]) -> None:
        self.pattern = pattern
        self.counts = counts

    def finditer(self, line: str) -> Iterator[re.Match[str]]:
        self.counts["passes"] += 1
        return self.pattern.finditer(line)


def test_the_screen_of_a_long_body_costs_less_than_a_pass_a_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """A guard that cannot flake: counts, not seconds. Before, each of the 13 own patterns ran over each of the
    5,500 lines (1.2 s of CPU for this body) and detect-secrets' dispatch saw 870 lines; now the
    patterns run where their strings are and the dispatch sees only lines a plugin's pattern matches."""
    counts = {"passes": 0, "dispatched": 0}
    monkeypatch.setattr(
        secrets,
        "_EXTRA",
        tuple((*entry[:4], Counting(entry[4], counts)) for entry in secrets._EXTRA),
    )
    for name in ("_ASSIGNMENT", "_NEAR_KEYWORD"):
        monkeypatch.setattr(secrets, name, Counting(getattr(secrets, name), counts))
    from detect_secrets.core import scan

    real = scan._process_line_based_plugins

    def dispatch(lines: list[tuple[int, str]], filename: str) -> Any:
        counts["dispatched"] += len(lines)
        return real(lines, filename)

    monkeypatch.setattr(scan, "_process_line_based_plugins", dispatch)
    text = BODY + "\n" + PLANTED["github token"]
    assert [f.line for f in find_secrets(text)] == [BODY.count("\n") + 2]
    lines = text.count("\n") + 1
    assert counts["passes"] < lines, counts  # 13 a line before
    assert counts["dispatched"] <= 5, counts  # the token's line


def test_lint_reports_a_secret_at_the_end_of_a_long_memory(repo: Path) -> None:
    write(repo / "memories" / "guide.md", long_memory())
    result = run_cli(repo, "lint")
    assert result.code == 1 and "guide.md" in result.output and "GitHub" in result.output, result.output
    assert PLANTED["github token"] not in result.output


def long_memory() -> str:
    from tests.conftest import VALID

    head, _, _ = VALID.partition("---\nWrite")
    return head + "---\n" + BODY + "\n" + PLANTED["github token"] + "\n"
