"""The outcome ledger: receipts, feedback, figures, lint/review/extract hooks, sharing between real clones."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mtlgit import ledger
from mtlgit.repo import find_repo
from tests.conftest import ROOT, git, run_cli, write

DATA = ROOT / "tests" / "data" / "ledger"
ITEMS = [
    {
        "title": "Reproduce the bug with a failing test first",
        "description": "Before fixing a reported bug, when a test fails or a crash is reported.",
        "content": "Write the smallest test that fails, watch it fail, then fix the code and watch it pass.",
        "domains": ["python"],
    },
    {
        "title": "Check the installed library version before calling its API",
        "description": "When a call fails after an upgrade: AttributeError, TypeError on a changed signature.",
        "content": "Read the version that is installed and its documentation before changing the call.",
        "domains": ["python"],
    },
    {
        "title": "Quote shell variables that may hold spaces",
        "description": "When a shell script breaks on file names with spaces.",
        "content": "Put double quotes around every variable expansion unless word splitting is wanted.",
        "domains": ["shell"],
    },
]


def pool(path: Path) -> Path:
    """A repository of three made-up memories, recall's confidence bar off (as in tests/conftest.py's ``repo``):
    these tests count the items of receipts, not whether a memory applies."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q")
    assert run_cli(path, "init").code == 0
    config = path / ".mtlgit.yaml"
    config.write_text(config.read_text(encoding="utf-8").replace("recall:\n", "recall:\n  min_confidence: 0\n"))
    added = run_cli(path, "add", "--force", "--json", "-", input=json.dumps(ITEMS))
    assert added.code == 0, added.output
    git(path, "add", "-A")
    git(path, "commit", "-qm", "memories")
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return pool(tmp_path / "repo")


def recall_json(repo: Path, query: str = "a test fails after a library upgrade") -> dict:  # type: ignore[type-arg]
    result = run_cli(repo, "recall", "--json", query)
    assert result.code == 0, result.output
    return json.loads(result.out)  # type: ignore[no-any-return]


def events(repo: Path, kind: str) -> list[dict]:  # type: ignore[type-arg]
    files = ledger.event_files(find_repo(repo), kind)
    return [json.loads(line) for path in files for line in path.read_text().splitlines()]


def task(
    repo: Path, outcome: str | None = None, used: tuple[str, ...] = (), hurt: tuple[str, ...] = ()
) -> tuple[str, list[dict]]:  # type: ignore[type-arg]
    """A recall and its outcome in-process, through the library calls the CLI makes (faster set-up)."""
    from mtlgit.recall import recall

    result = recall("a test fails after a library upgrade", start=repo)
    receipt = ledger.record_recall(result, repo=find_repo(repo))
    assert receipt is not None
    if outcome is not None:
        ledger.record_outcome(find_repo(repo), receipt, outcome, used, hurt)
    return receipt, [hit.to_json() for hit in result.hits]


def feedback(repo: Path, *args: str) -> None:
    result = run_cli(repo, "feedback", *args)
    assert result.code == 0, result.output


# --- receipts ----------------------------------------------------------------------------------------------


def test_a_prompt_recall_prints_its_receipt_after_the_block_and_records_ids_blobs_and_commit(repo: Path) -> None:
    result = run_cli(repo, "recall", "--prompt", "a test fails after a library upgrade")
    assert result.code == 0, result.output
    block_end = result.out.rindex("</memory-items")
    receipt_line = result.out[block_end:].splitlines()[1]
    assert receipt_line.startswith("mtlgit receipt: rc-")
    [receipt] = events(repo, "receipts")
    assert receipt["id"] in receipt_line
    assert receipt["commit"] == git(repo, "rev-parse", "HEAD").strip()
    assert receipt["tool"] == "cli" and receipt["query_sha"] == ledger.query_hash(
        "a test fails after a library upgrade"
    )
    assert "query" not in receipt
    listed = {line.split()[1]: line.split()[3] for line in git(repo, "ls-files", "-s", "memories").splitlines()}
    recalled = json.loads(run_cli(repo, "recall", "--json", "a test fails after a library upgrade").out)["results"]
    assert receipt["memories"] == [hit["id"] for hit in recalled]
    assert sorted(receipt["blobs"]) == sorted(b for b, p in listed.items() if p in {h["path"] for h in recalled})


def test_a_receipt_at_a_revision_names_the_blobs_and_commit_of_that_revision(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD").strip()
    hits = recall_json(repo)["results"]
    path = repo / hits[0]["path"]
    path.write_text(path.read_text().rstrip("\n") + " Edited since.\n")
    git(repo, "commit", "-qam", "edit")
    result = run_cli(repo, "recall", "--json", "--rev", head, "a test fails after a library upgrade")
    assert result.code == 0, result.output
    receipt = events(repo, "receipts")[-1]
    assert receipt["commit"] == head
    then, now = (git(repo, "rev-parse", f"{rev}:{hits[0]['path']}").strip() for rev in (head, "HEAD"))
    assert then in receipt["blobs"] and now not in receipt["blobs"]


def test_json_carries_the_receipt_and_the_agent_name_from_the_environment(repo: Path) -> None:
    result = run_cli(repo, "recall", "--json", "flaky shell script", env={"MTLGIT_AGENT": "codex"})
    data = json.loads(result.out)
    assert data["receipt"].startswith("rc-")
    assert events(repo, "receipts")[0]["agent"] == "codex"
    token = "ghp_" + "9f8e7d6c5b4a39281706f5e4d3c2b1a0ffee"  # pragma: allowlist secret
    for bad in ("two words", token):
        run_cli(repo, "recall", "--json", "flaky shell script", env={"MTLGIT_AGENT": bad})
        assert events(repo, "receipts")[-1]["agent"] is None
    assert run_cli(repo, "recall", "flaky shell script").out.count("rc-") == 0  # text for people: no receipt
    assert len(events(repo, "receipts")) == 3


def test_query_text_is_kept_only_when_configured_and_never_with_a_secret(repo: Path) -> None:
    config = repo / ".mtlgit.yaml"
    config.write_text(config.read_text() + "ledger:\n  query_text: true\n")
    recall_json(repo, "a test fails after a library upgrade")
    secret = "deploy fails with token=ghp_9f8e7d6c5b4a39281706f5e4d3c2b1a0ffee1234"  # pragma: allowlist secret
    recall_json(repo, secret)
    plain, withheld = events(repo, "receipts")
    assert plain["query"] == "a test fails after a library upgrade"
    assert "query" not in withheld and "secret" in withheld["query_withheld"]
    assert "ghp_" not in "".join(p.read_text() for p in (repo / ".git" / "mtlgit" / "ledger").rglob("*.jsonl"))


def test_recording_can_be_switched_off(repo: Path) -> None:
    config = repo / ".mtlgit.yaml"
    config.write_text(config.read_text() + "ledger:\n  record: false\n")
    assert recall_json(repo)["receipt"] is None
    assert events(repo, "receipts") == []
    config.write_text(config.read_text().replace("record: false", "record: maybe"))
    result = run_cli(repo, "recall", "--json", "a test fails")
    assert result.code == 1 and "'ledger.record' must be true or false" in result.err


# --- outcomes ----------------------------------------------------------------------------------------------


def test_feedback_names_items_by_number_or_id_and_refuses_what_is_not_in_the_receipt(repo: Path) -> None:
    data = recall_json(repo)
    receipt, ids = data["receipt"], [hit["id"] for hit in data["results"]]
    feedback(repo, receipt[:14], "--outcome", "success", "--used", "2", "--hurt", ids[0])
    [event] = events(repo, "outcomes")
    assert event["receipt"] == receipt and event["used"] == [ids[1]] and event["hurt"] == [ids[0]]
    assert event["memories"] == ids
    wrong = run_cli(repo, "feedback", receipt, "--outcome", "success", "--used", "9")
    assert wrong.code == 1 and "--used 9: not one of the items" in wrong.err and "Traceback" not in wrong.err
    unknown = run_cli(repo, "feedback", "rc-01JF0000000000000000000000", "--outcome", "failure")
    assert unknown.code == 1 and "no receipt rc-01JF0000000000000000000000" in unknown.err
    assert run_cli(repo, "feedback", receipt).code == 2  # no --outcome
    note = "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # pragma: allowlist secret
    leaked = run_cli(repo, "feedback", receipt, "--outcome", "failure", "--note", note)
    assert leaked.code == 1 and "never stores one" in leaked.err
    assert len(events(repo, "outcomes")) == 1


def usefulness(repo: Path) -> dict[str, dict]:  # type: ignore[type-arg]
    result = run_cli(repo, "stats", "--usefulness", "--json")
    assert result.code == 0, result.output
    return {m["id"]: m for m in json.loads(result.out)["memories"]}


def test_usefulness_separates_used_from_recalled_with_wilson_intervals(repo: Path) -> None:
    ids = []
    for n in range(12):
        # item 1 is used in the first 8 tasks: 7 of them succeed; when not used, 1 of 4 succeeds
        if n < 8:
            _receipt, hits = task(repo, "success" if n < 7 else "failure", used=("1",))
        else:
            _receipt, hits = task(repo, "success" if n == 8 else "failure")
        ids = [hit["id"] for hit in hits]
    first = usefulness(repo)[ids[0]]
    assert first["recalled"] == 12 and first["used"] == 8
    assert first["success_when_used"]["successes"] == 7 and first["success_when_used"]["n"] == 8
    low, high = ledger.wilson(7, 8)
    assert first["success_when_used"]["interval95"] == [round(low, 4), round(high, 4)]
    assert abs(low - 0.5291) < 1e-3 and abs(high - 0.9776) < 1e-3  # Wilson's published 7/8 interval
    assert first["success_when_not_used"]["n"] == 4 and first["verdict"] == "too little evidence"
    text = run_cli(repo, "stats", "--usefulness").out
    assert "too little evidence" in text and "success when used 7/8 [0.53-0.98]" in text


def test_the_latest_outcome_of_a_receipt_replaces_earlier_ones(repo: Path) -> None:
    data = recall_json(repo)
    feedback(repo, data["receipt"], "--outcome", "failure", "--used", "1")
    feedback(repo, data["receipt"], "--outcome", "success", "--used", "1")
    first = usefulness(repo)[data["results"][0]["id"]]
    assert first["success_when_used"] == {"n": 1, "successes": 1, "rate": 1.0, "interval95": [0.2065, 1.0]}


def test_figures_stay_right_as_the_ledger_grows_between_calls(repo: Path) -> None:
    r = find_repo(repo)
    for n in range(6):
        task(repo, "success" if n % 2 else "failure", used=("1",))
        cached = ledger.figures(r)
        for name in ("recalled.json", "outcomes.json"):
            (ledger.ledger_dir(r) / name).unlink()
        fresh = ledger.figures(r)
        assert cached.memories == fresh.memories and cached.receipts == fresh.receipts == n + 1


def test_an_outcome_line_written_by_another_tool_is_read_and_a_broken_line_is_counted(repo: Path) -> None:
    data = recall_json(repo)
    first = data["results"][0]["id"]
    r = find_repo(repo)
    foreign = {"receipt": data["receipt"], "id": "oc-x", "outcome": "success", "memories": [first], "used": [first]}
    path = ledger.ledger_dir(r) / "outcomes" / f"{'ab' * 8}.jsonl"
    write(path, json.dumps(foreign) + "\n{not json\n")
    known = ledger.figures(r)
    assert known.get(first).used_success == 1 and known.unreadable_lines == 1


# --- lint, review, prompt extract ---------------------------------------------------------------------------


def test_lint_warns_about_a_memory_that_keeps_failing_when_used(repo: Path) -> None:
    first = None
    for n in range(4):
        _receipt, hits = task(repo, "failure", used=("1",))
        first = hits[0]
        report = json.loads(run_cli(repo, "lint", "--json").out)
        harm = [p for p in report["problems"] if p["code"] == "harm"]
        # 3 failures out of 3: the upper bound is 0.56, not yet evidence; the 4th makes it 0.49
        assert bool(harm) == (n == 3)
    assert first is not None
    assert harm[0]["path"] == first["path"] and harm[0]["severity"] == "warning"
    assert "rewrite or retire it" in harm[0]["message"]
    assert run_cli(repo, "lint").code == 0 and run_cli(repo, "lint", "--strict").code == 1


def test_lint_warns_about_a_memory_reported_misleading_twice(repo: Path) -> None:
    for _ in range(2):
        data = recall_json(repo)
        feedback(repo, data["receipt"], "--outcome", "success", "--hurt", "3")
    report = json.loads(run_cli(repo, "lint", "--json").out)
    assert [p["path"] for p in report["problems"] if p["code"] == "harm"] == [data["results"][2]["path"]]


def test_review_shows_the_figures_of_the_memories_a_branch_changes(repo: Path) -> None:
    data = recall_json(repo)
    feedback(repo, data["receipt"], "--outcome", "success", "--used", "1")
    git(repo, "checkout", "-q", "-b", "edit")
    path = repo / data["results"][0]["path"]
    path.write_text(path.read_text().rstrip("\n") + " Keep the check once it passes.\n")
    git(repo, "commit", "-qam", "sharpen")
    result = run_cli(repo, "review", "main..edit")
    assert result.code == 0, result.output
    assert "### Outcome ledger" in result.out and "success when used 1/1" in result.out
    usefulness = json.loads(run_cli(repo, "review", "main..edit", "--json").out)["usefulness"]
    assert [u["id"] for u in usefulness] == [data["results"][0]["id"]]


def test_prompt_extract_asks_for_the_items_used_and_add_records_the_outcome(repo: Path) -> None:
    data = recall_json(repo)
    prompt = run_cli(repo, "prompt", "extract", "--outcome", "success", "--receipt", data["receipt"])
    assert prompt.code == 0 and data["receipt"] in prompt.out and '"used"' in prompt.out
    answer = {
        "receipt": data["receipt"],
        "outcome": "success",
        "used": [2],
        "hurt": [],
        "memories": [
            {
                "title": "Read the changelog before upgrading a dependency",
                "description": "When a dependency upgrade is planned or a call broke after one.",
                "content": "Scan the changelog for removed and renamed functions first.",
            }
        ],
    }
    added = run_cli(repo, "add", "--json", "-", input=json.dumps(answer))
    assert added.code == 0, added.output
    report = json.loads(added.out)
    assert report["added"] == 1 and report["outcome_recorded"].startswith("oc-")
    [event] = events(repo, "outcomes")
    assert event["used"] == [data["results"][1]["id"]] and event["tool"] == "extract"


# --- the Claude Code hook recipe -----------------------------------------------------------------------------


def test_session_end_hook_reads_using_memory_item_from_a_recorded_transcript(repo: Path, tmp_path: Path) -> None:
    first = recall_json(repo, "the date parser test fails on leap days")
    second = recall_json(repo, "a library function changed its signature after an upgrade")
    text = (DATA / "session.jsonl").read_text()
    text = text.replace("{RECEIPT_1}", first["receipt"]).replace("{RECEIPT_2}", second["receipt"])
    transcript = write(tmp_path / "session.jsonl", text)
    hook = json.dumps({"session_id": "5b1f", "transcript_path": str(transcript), "hook_event_name": "SessionEnd"})
    result = run_cli(repo, "feedback", "--hook-input", "--outcome", "success", input=hook)
    assert result.code == 0, result.output
    by_receipt = {e["receipt"]: e for e in events(repo, "outcomes")}
    # The preamble quotes "Using Memory Item 2" as an example: only the assistant's own words count.
    assert by_receipt[first["receipt"]]["used"] == [first["results"][1]["id"]]
    assert by_receipt[second["receipt"]]["used"] == [second["results"][0]["id"], second["results"][2]["id"]]
    assert {e["outcome"] for e in by_receipt.values()} == {"success"} and len(by_receipt) == 2


def test_the_hook_recipe_in_the_docs_runs_against_the_recorded_transcript(repo: Path, tmp_path: Path) -> None:
    docs = (ROOT / "docs" / "agents.md").read_text()
    settings = json.loads(docs.split("<!-- ledger-hook -->")[1].split("```json")[1].split("```")[0])
    [entry] = settings["hooks"]["SessionEnd"]
    command = entry["hooks"][0]["command"]
    data = recall_json(repo, "the date parser test fails on leap days")
    text = (DATA / "session.jsonl").read_text().replace("{RECEIPT_1}", data["receipt"])
    transcript = write(tmp_path / "t.jsonl", text.replace("{RECEIPT_2}", "rc-01JF0000000000000000000000"))
    write(repo / "check.sh", "exit 0\n")
    hook = json.dumps({"transcript_path": str(transcript), "hook_event_name": "SessionEnd"})
    bin_dir = Path(sys.executable).parent
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "MTLGIT_OUTCOME_CHECK": "sh check.sh"}
    proc = subprocess.run(["sh", "-c", command], cwd=repo, input=hook, text=True, capture_output=True, env=env)
    assert proc.returncode == 0, proc.stderr
    [event] = events(repo, "outcomes")
    assert event["outcome"] == "success" and event["used"] == [data["results"][1]["id"]]


# --- MCP -----------------------------------------------------------------------------------------------------


def test_mcp_recall_returns_a_receipt_and_report_outcome_records_it(repo: Path) -> None:
    pytest.importorskip("mcp", reason="the MCP SDK is not installed (pip install 'mtlgit[mcp]')")
    import os

    import anyio
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    async def session() -> tuple[dict, str, bool, str]:  # type: ignore[type-arg]
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "mtlgit", "mcp"], cwd=str(repo), env=dict(os.environ)
        )
        async with Client(params, read_timeout_seconds=120) as client:
            recalled = await client.call_tool("recall", {"query": "a test fails after a library upgrade"})
            receipt = recalled.structured_content["receipt"]
            text = "".join(getattr(block, "text", "") for block in recalled.content)
            args = {"receipt": receipt, "outcome": "failure", "used": [1], "hurt": ["2"], "note": "did not fit"}
            reported = await client.call_tool("report_outcome", args)
            bad = await client.call_tool("report_outcome", {"receipt": receipt, "outcome": "meh"})
            return reported.structured_content, text, bad.is_error, receipt

    reported, text, bad_is_error, receipt = anyio.run(session)
    assert f"mtlgit receipt: {receipt}" in text and bad_is_error
    [event] = events(repo, "outcomes")
    assert reported["id"] == event["id"] and event["tool"] == "mcp" and event["note"] == "did not fit"
    assert event["used"] == [event["memories"][0]] and event["hurt"] == [event["memories"][1]]
    assert events(repo, "receipts")[0]["tool"] == "mcp"


def test_an_mcp_answer_never_carries_a_second_receipt_the_ledger_could_not_take(repo: Path) -> None:
    """The server appends a receipt after its answer. When that fails (here the receipts folder is a file),
    the next answers append theirs before answering and carry none while the ledger cannot take it; once it
    can again, receipts come back and can be reported on."""
    pytest.importorskip("mcp", reason="the MCP SDK is not installed (pip install 'mtlgit[mcp]')")
    import os
    import shlex
    import shutil

    import anyio
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    receipts = find_repo(repo).state_dir / "ledger" / "receipts"
    errors = repo.parent / "server-stderr.txt"

    async def session() -> list[str | None]:
        server = f"exec {shlex.quote(sys.executable)} -m mtlgit mcp 2>{shlex.quote(str(errors))}"
        params = StdioServerParameters(command="sh", args=["-c", server], cwd=str(repo), env=dict(os.environ))
        given: list[str | None] = []
        async with Client(params, read_timeout_seconds=120) as client:

            async def recall() -> None:
                found = await client.call_tool("recall", {"query": "a test fails after a library upgrade"})
                given.append(found.structured_content["receipt"])

            await recall()  # appended: the ledger is writable
            shutil.rmtree(receipts)
            receipts.write_text("not a folder", encoding="utf-8")
            await recall()  # answered, then its append fails
            await recall()  # appended first: fails, so no receipt
            receipts.unlink()
            await recall()  # appended first, then answered
            args = {"receipt": given[-1], "outcome": "success", "used": [1]}
            assert not (await client.call_tool("report_outcome", args)).is_error
            await recall()  # after the answer again
        return given

    given = anyio.run(session)
    assert all(given[i] for i in (0, 1, 3, 4)) and given[2] is None, given
    assert f"receipt {given[1]} could not be written" in errors.read_text(encoding="utf-8")
    assert [event["id"] for event in events(repo, "receipts")] == [given[3], given[4]]


# --- the prior -----------------------------------------------------------------------------------------------


def test_the_prior_is_bounded_signed_and_zero_without_evidence(repo: Path) -> None:
    r = find_repo(repo)
    helpful = harmful = ""
    for n in range(16):
        used = "1" if n % 2 else "2"
        _receipt, hits = task(repo, "success" if used == "1" else "failure", used=(used,))
        helpful, harmful = hits[0]["id"], hits[1]["id"]
    values = ledger.prior([helpful, harmful, "01JF0000000000000000000000"], r, weight=0.5)
    assert 0 < values[0] <= 0.5 and -0.5 <= values[1] < 0 and values[2] == 0
    assert values[0] > 0.4 and values[1] < -0.4  # 8 outcomes each way: at the bound
    assert not ledger.prior([helpful], r, weight=0).any()
    shown = usefulness(repo)
    assert shown[helpful]["prior"] == round(float(values[0]), 4) and shown[harmful]["prior"] < 0
    assert "recall prior +0.5" in run_cli(repo, "stats", "--usefulness").out
    config = repo / ".mtlgit.yaml"
    config.write_text(config.read_text().replace("recall:\n", "recall:\n  feedback_weight: 0.2\n"))
    assert 0.19 < float(ledger.prior([helpful], r)[0]) <= 0.2 + 1e-6


QUERY = "a test fails after a library upgrade"


def set_weight(repo: Path, weight: float) -> None:
    config = repo / ".mtlgit.yaml"
    text = config.read_text()
    if "feedback_weight" in text:
        text = "".join(
            f"  feedback_weight: {weight}\n" if "feedback_weight" in line else line
            for line in text.splitlines(keepends=True)
        )
    else:
        text = text.replace("recall:\n", f"recall:\n  feedback_weight: {weight}\n")
    config.write_text(text)


def judge(repo: Path, harmful: str, helpful: str, rounds: int = 6, pools: tuple[str, ...] | None = None) -> None:
    """Outcomes in-process: ``harmful`` used in failing tasks, ``helpful`` in succeeding ones."""
    from mtlgit.recall import recall

    r = find_repo(repo)
    for _ in range(rounds):
        for memory_id, outcome in ((harmful, "failure"), (helpful, "success")):
            receipt = ledger.record_recall(recall(QUERY, start=repo, pools=pools), repo=r)
            assert receipt is not None
            ledger.record_outcome(r, receipt, outcome, used=[memory_id])


def scores(results: list[dict]) -> dict[str, float]:  # type: ignore[type-arg]
    return {hit["id"]: hit["score"] for hit in results}


@pytest.fixture
def judged(repo: Path) -> tuple[Path, list[dict], str, str]:  # type: ignore[type-arg]
    """The pool with a ledger that says today's first hit for QUERY hurts and the second helps; and the results
    before any outcome was recorded."""
    before = recall_json(repo, QUERY)["results"]
    assert all(hit["scores"]["prior"] == 0 for hit in before)
    harmful, helpful = before[0]["id"], before[1]["id"]
    judge(repo, harmful, helpful)
    return repo, before, harmful, helpful


def test_recall_moves_a_harmful_memory_down_and_a_helpful_one_up_by_the_bound_and_weight_0_is_off(
    judged: tuple[Path, list[dict], str, str],  # type: ignore[type-arg]
) -> None:
    import statistics

    repo, before, harmful, helpful = judged
    # The bound is in standard deviations of the fused scores of the candidates (all three memories here).
    bound = 0.5 * statistics.pstdev(hit["score"] for hit in before)
    after = run_cli(repo, "recall", "--json", "--explain", QUERY)  # the argparse fast path
    assert after.code == 0, after.output
    results = json.loads(after.out)["results"]
    prior = {hit["id"]: hit["scores"]["prior"] for hit in results}
    # 6 failures when used (and successes when not) are a steady record: the full bound, no more.
    assert prior[harmful] == pytest.approx(-bound, abs=1e-4) and prior[helpful] == pytest.approx(bound, abs=1e-4)
    assert all(abs(value) <= bound + 1e-4 for value in prior.values())
    for hit in results:
        assert hit["score"] == pytest.approx(scores(before)[hit["id"]] + prior[hit["id"]], abs=1e-5)
        assert hit["explain"]["prior"] == hit["scores"]["prior"] and hit["explain"]["fused"] == hit["score"]
    assert [hit["id"] for hit in results][:2] == [helpful, harmful]  # the order of the two flipped
    # The prior's cache, damaged under a valid key, is rebuilt, not trusted.
    cache = ledger.ledger_dir(find_repo(repo)) / "prior.json"
    damaged = json.loads(cache.read_text())
    assert sorted(damaged["ids"]) == sorted([harmful, helpful])
    for bad in ({"values": ["x"] * len(damaged["values"])}, {"ids": damaged["ids"][::-1]}):
        cache.write_text(json.dumps({**damaged, **bad}))
        assert {hit["id"]: hit["scores"]["prior"] for hit in recall_json(repo, QUERY)["results"]} == prior
    set_weight(repo, 0)
    assert recall_json(repo, QUERY)["results"] == before  # exactly as without a ledger
    set_weight(repo, 0.1)
    weak = {hit["id"]: hit["scores"]["prior"] for hit in recall_json(repo, QUERY)["results"]}
    assert weak[harmful] == pytest.approx(-bound / 5, abs=1e-4)


def test_explain_shows_the_prior_and_prompt_paths_and_rev_apply_it(
    judged: tuple[Path, list[dict], str, str],  # type: ignore[type-arg]
) -> None:
    repo, _before, harmful, helpful = judged
    text = run_cli(repo, "recall", "--explain", QUERY)
    assert text.code == 0, text.output
    lines = {line.split("(")[-1].rstrip(")"): n for n, line in enumerate(text.out.splitlines()) if "(01" in line}
    why = text.out.splitlines()
    assert "(outcome ledger -0." in why[lines[harmful] + 1] and "(outcome ledger +0." in why[lines[helpful] + 1]
    assert lines[helpful] < lines[harmful]
    prompt = run_cli(repo, "recall", "--prompt", "--explain", QUERY)
    assert prompt.code == 0, prompt.output
    first_item = prompt.out.split("# Memory Item 2")[0]
    assert "Reproduce the bug" in first_item or "Check the installed" in first_item
    explained = prompt.err.splitlines()
    assert explained[0].startswith(f"1. {helpful}: ") and "(outcome ledger +0." in explained[0]
    assert explained[1].startswith(f"2. {harmful}: ") and "(outcome ledger -0." in explained[1]
    paths = run_cli(repo, "recall", "--paths", "--explain", QUERY)
    assert paths.err.splitlines()[:2] == explained[:2]
    at_rev = run_cli(repo, "recall", "--json", "--rev", "HEAD", QUERY)
    assert at_rev.code == 0, at_rev.output
    results = json.loads(at_rev.out)["results"]
    assert [hit["id"] for hit in results][:2] == [helpful, harmful] and results[1]["scores"]["prior"] < 0


def prior_cache(repo: Path) -> dict | None:  # type: ignore[type-arg]
    """The recall prior's cache when it is up to date with the outcomes files, else None."""
    r = find_repo(repo)
    key: list[object] = [0.5]
    for path in ledger.event_files(r, "outcomes"):
        stat = path.stat()
        key.append([path.name, stat.st_size, stat.st_mtime_ns])
    cache = json.loads((ledger.ledger_dir(r) / "prior.json").read_text())
    return cache if cache["key"] == key else None  # type: ignore[no-any-return]


def test_an_outcome_recorded_or_synced_rebuilds_the_prior_so_the_next_recall_only_reads_it(
    repo: Path, tmp_path: Path
) -> None:
    data = recall_json(repo)
    feedback(repo, data["receipt"], "--outcome", "failure", "--used", "1")
    cache = prior_cache(repo)
    assert cache is not None
    assert dict(zip(cache["ids"], cache["values"], strict=True))[data["results"][0]["id"]] < 0
    second = recall_json(repo, "the date parser test fails on leap days")
    text = (DATA / "session.jsonl").read_text().replace("{RECEIPT_1}", second["receipt"])
    transcript = write(tmp_path / "t.jsonl", text.replace("{RECEIPT_2}", "rc-01JF0000000000000000000000"))
    assert run_cli(repo, "feedback", "--transcript", str(transcript), "--outcome", "success").code == 0
    assert prior_cache(repo) is not None


def test_recall_without_outcomes_never_imports_the_ledger(repo: Path) -> None:
    recall_json(repo)  # a receipt, no outcome
    probe = (
        "import sys; from mtlgit.cli.recall_run import run; from mtlgit.recall_request import RecallRequest; "
        "run(RecallRequest(query='a test fails'), 'json'); "
        "print('mtlgit.ledger' in sys.modules, file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", probe], cwd=repo, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "False"
    data = json.loads(proc.stdout)
    assert data["receipt"] and all(hit["scores"]["prior"] == 0 for hit in data["results"])


def test_memories_of_another_pool_get_their_prior_too(repo: Path, tmp_path: Path) -> None:
    from tests.test_pools import upstream

    team = upstream(
        tmp_path,
        "team",
        {
            "Pin the library version a test relies on": "A test that fails after an upgrade: pin, then update.",
            "Read the upgrade notes before a library upgrade": "Breaking changes are listed there first.",
        },
    )
    added = run_cli(repo, "pool", "add", "team", str(team))
    assert added.code == 0, added.output
    before = json.loads(run_cli(repo, "recall", "--json", "-k", "5", "--pool", "team", QUERY).out)["results"]
    assert {hit["pool"] for hit in before} == {"team"}
    judge(repo, before[0]["id"], before[1]["id"], rounds=3, pools=("team",))
    after = json.loads(run_cli(repo, "recall", "--json", "-k", "5", QUERY).out)["results"]
    prior = {hit["id"]: hit["scores"]["prior"] for hit in after if hit["pool"] == "team"}
    assert prior[before[0]["id"]] < 0 < prior[before[1]["id"]]


def test_mcp_recall_applies_the_prior_and_sees_an_outcome_reported_in_the_same_session(repo: Path) -> None:
    pytest.importorskip("mcp", reason="the MCP SDK is not installed (pip install 'mtlgit[mcp]')")
    import os

    import anyio
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    async def session() -> list[list[dict]]:  # type: ignore[type-arg]
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "mtlgit", "mcp"], cwd=str(repo), env=dict(os.environ)
        )
        answers = []
        async with Client(params, read_timeout_seconds=120) as client:
            for outcome in ("failure", "success", None):
                recalled = await client.call_tool("recall", {"query": QUERY})
                answers.append(recalled.structured_content["results"])
                if outcome is not None:  # the first answer's top memory used in the failure, not in the success
                    used = [answers[0][0]["id"]] if outcome == "failure" else []
                    args = {"receipt": recalled.structured_content["receipt"], "outcome": outcome, "used": used}
                    await client.call_tool("report_outcome", args)
        return answers

    first, *later = anyio.run(session)
    assert all(hit["scores"]["prior"] == 0 for hit in first)
    top = first[0]["id"]
    priors = [next(hit["scores"]["prior"] for hit in answer if hit["id"] == top) for answer in later]
    # An outcome reported through the server changes the next recall's prior at once.
    assert 0 > priors[0] > priors[1]


# --- sharing through git -------------------------------------------------------------------------------------


def clones(tmp_path: Path) -> tuple[Path, Path, Path]:
    origin = tmp_path / "origin.git"
    source = pool(tmp_path / "source")
    git(tmp_path, "clone", "-q", "--bare", str(source), str(origin))
    a, b = tmp_path / "a", tmp_path / "b"
    git(tmp_path, "clone", "-q", str(origin), str(a))
    git(tmp_path, "clone", "-q", str(origin), str(b))
    return origin, a, b


def ledger_lines(repo: Path) -> set[str]:
    files = (repo / ".git" / "mtlgit" / "ledger").rglob("*.jsonl")
    return {line for path in files for line in path.read_text().splitlines()}


def test_two_clones_share_their_ledgers_through_git_without_conflict_or_loss(tmp_path: Path) -> None:
    origin, a, b = clones(tmp_path)
    for round_ in range(3):
        for clone in (a, b):
            task(clone, "success", used=("1",))
        assert run_cli(a, "ledger", "sync").code == 0
        assert run_cli(b, "ledger", "sync").code == 0
        assert run_cli(a, "ledger", "sync").code == 0
        assert ledger_lines(a) == ledger_lines(b) and len(ledger_lines(a)) == 4 * (round_ + 1)
    assert prior_cache(b) is not None  # the outcomes a sync brings are tallied by the sync, not by a recall
    counts = json.loads(run_cli(b, "stats", "--usefulness", "--json").out)
    assert counts["receipts"] == 6 and counts["outcomes"] == 6
    tree = git(origin, "ls-tree", "-r", "--name-only", "refs/mtlgit/ledger").split()
    assert len(tree) == 4 and all(p.startswith(("receipts/", "outcomes/")) for p in tree)
    assert "Test Author" not in git(origin, "log", "--format=%an %cn", "refs/mtlgit/ledger")


def test_git_merges_two_clones_ledger_commits_with_no_conflict(tmp_path: Path) -> None:
    origin, a, b = clones(tmp_path)
    other = tmp_path / "other.git"
    git(tmp_path, "init", "-q", "--bare", str(other))
    git(b, "remote", "add", "other", str(other))
    for clone in (a, b):
        recall_json(clone)
    assert run_cli(a, "ledger", "sync").code == 0
    assert run_cli(b, "ledger", "sync", "other").code == 0  # b's ledger commit does not know a's
    git(b, "fetch", "-q", "origin", "refs/mtlgit/ledger:refs/theirs")
    command = ["git", "merge-tree", "--write-tree", "--allow-unrelated-histories", "refs/mtlgit/ledger", "refs/theirs"]
    merged = subprocess.run(command, cwd=b, capture_output=True, text=True)
    assert merged.returncode == 0, merged.stdout  # 1 would mean a conflict
    assert len(git(b, "ls-tree", "-r", merged.stdout.split()[0]).splitlines()) == 2
    assert run_cli(b, "ledger", "sync").code == 0  # b's own commit joins origin's as a second parent
    assert len(git(origin, "rev-list", "--parents", "-1", "refs/mtlgit/ledger").split()) == 3
    assert run_cli(a, "ledger", "sync").code == 0
    assert ledger_lines(a) == ledger_lines(b) and len(ledger_lines(a)) == 2


def test_concurrent_syncs_lose_nothing(tmp_path: Path) -> None:
    _origin, a, b = clones(tmp_path)
    for clone in (a, b):
        for _ in range(2):
            recall_json(clone)
    command = [sys.executable, "-m", "mtlgit", "ledger", "sync"]
    procs = [subprocess.Popen(command, cwd=c, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for c in (a, b)]
    for proc in procs:
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    for clone in (a, b):
        assert run_cli(clone, "ledger", "sync").code == 0
    assert ledger_lines(a) == ledger_lines(b) and len(ledger_lines(a)) == 4


def test_a_deleted_private_ledger_comes_back_from_the_shared_one(tmp_path: Path) -> None:
    _origin, a, _b = clones(tmp_path)
    data = recall_json(a)
    assert run_cli(a, "ledger", "sync").code == 0
    for path in (a / ".git" / "mtlgit" / "ledger" / "receipts").iterdir():
        path.unlink()
    assert run_cli(a, "ledger", "sync").code == 0
    assert [e["id"] for e in events(a, "receipts")] == [data["receipt"]]


def test_sync_refuses_received_lines_that_hold_a_secret_or_are_not_ledger_events(tmp_path: Path) -> None:
    origin, a, b = clones(tmp_path)
    data = recall_json(b)
    feedback(b, data["receipt"], "--outcome", "success", "--used", "1")
    [own] = events(b, "outcomes")
    # Lines another tool (or a hand) added to b's file: mtlgit never wrote them, so nothing scanned them.
    token = "ghp_" + "9f8e7d6c5b4a39281706f5e4d3c2b1a0ffee"  # pragma: allowlist secret
    bad = [
        {**own, "id": "oc-01JF0000000000000000000001", "note": f"used the token {token}"},
        {**own, "id": "oc-01JF0000000000000000000002", "used": ["not one of the memories"]},
        {**own, "id": "oc-01JF0000000000000000000003", "memories": ["a b"]},
    ]
    [path] = (b / ".git" / "mtlgit" / "ledger" / "outcomes").iterdir()
    with path.open("a") as handle:
        handle.write("".join(json.dumps(e, separators=(",", ":")) + "\n" for e in bad) + "{not json\n")
    assert run_cli(b, "ledger", "sync").code == 0
    result = run_cli(a, "ledger", "sync")
    assert result.code == 0, result.output
    assert "2 line(s) received" in result.out  # b's receipt and its outcome
    assert "4 line(s) of origin's ledger refused: not ledger events, or holding a secret" in result.err
    assert [e["id"] for e in events(a, "outcomes")] == [own["id"]]
    assert "ghp_" not in "".join(ledger_lines(a))
    # a pushed the union it holds: the shared ledger no longer passes the refused lines on.
    shared = git(origin, "show", f"refs/mtlgit/ledger:outcomes/{path.name}")
    assert "ghp_" not in shared and own["id"] in shared
    assert json.loads(run_cli(a, "ledger", "sync", "--json").out)["refused"] == 0


def test_sync_with_an_unknown_remote_says_what_to_check(repo: Path) -> None:
    recall_json(repo)
    result = run_cli(repo, "ledger", "sync", "nowhere")
    assert result.code == 1 and "git remote -v" in result.err and "Traceback" not in result.output


def test_a_long_lived_process_names_the_commit_head_moved_to(repo: Path) -> None:
    """A receipt names HEAD's commit: read from git's files, and in a long-lived process (the MCP server) kept
    with their stat, so it follows a commit, a branch switch, packed refs and a detached HEAD."""
    from mtlgit import receipts

    found = find_repo(repo)

    def head() -> str:
        return git(repo, "rev-parse", "HEAD").strip()

    first = git(repo, "symbolic-ref", "--short", "HEAD").strip()
    assert receipts._head_commit(found) == head()
    git(repo, "commit", "-q", "--allow-empty", "-m", "more")
    assert receipts._head_commit(found) == head()
    git(repo, "checkout", "-qb", "other", "HEAD~1")
    assert receipts._head_commit(found) == head()
    git(repo, "pack-refs", "--all")
    assert not (repo / ".git" / "refs" / "heads" / "other").exists()
    assert receipts._head_commit(found) == head()
    git(repo, "commit", "-q", "--allow-empty", "-m", "after packing")  # a loose ref again, beside packed-refs
    assert receipts._head_commit(found) == head()
    git(repo, "checkout", "-q", "--detach", first)
    assert receipts._head_commit(found) == head()
    # A ref moved twice within a file system's timestamp step, its inode reused and its size the same: what a
    # cache keyed by the ref file's stat would miss. Here the ref is rewritten in place and its times restored.
    git(repo, "checkout", "-q", first)
    git(repo, "commit", "-q", "--allow-empty", "-m", "a loose ref again")
    ref = repo / ".git" / "refs" / "heads" / first
    assert receipts._head_commit(found) == head()
    before = ref.stat()
    older = git(repo, "rev-parse", "HEAD~1").strip()
    with open(ref, "r+", encoding="ascii") as handle:
        handle.write(older + "\n")
    os.utime(ref, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (ref.stat().st_ino, ref.stat().st_size, ref.stat().st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )
    assert receipts._head_commit(found) == older == head()
