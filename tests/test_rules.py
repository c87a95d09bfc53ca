"""The rule model, the strict loader, matchers, fixtures and the `evtxdoc rules` commands."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from evtxdoc.catalog import RULES_DIR
from evtxdoc.cli import app
from evtxdoc.cli.rules import schema_text
from evtxdoc.fixtures import run_rule_tests
from evtxdoc.rules import Rule, load_rules
from evtxdoc.rules.matchers import MatcherError, compile_matcher

FILES = Path(__file__).parent / "files"
runner = CliRunner()
KNOWLEDGE_BASE = load_rules([RULES_DIR])


def test_the_knowledge_base_loads_without_problems() -> None:
    assert KNOWLEDGE_BASE.problems == []
    assert len(KNOWLEDGE_BASE.rules) >= 40
    for rule in KNOWLEDGE_BASE.rules:
        assert rule.references, rule.id
        assert rule.confidence in ("documented", "community", "inferred")


@pytest.mark.parametrize("rule", KNOWLEDGE_BASE.rules, ids=lambda r: r.id)
def test_every_rule_passes_its_own_cases(rule: Rule) -> None:
    results, problems = run_rule_tests(rule)
    assert problems == []
    assert {r.name for r in results if not r.passed} == set()
    assert len(results) >= 2


def test_every_row_of_domain_c_has_a_rule() -> None:
    """domain.md (c) rows 1–20 and the brief's symptoms, by the rule that covers each."""
    covering = {
        1: "connector-access-denied-msa",
        2: "connector-computer-quota",
        3: "no-connector-answered",
        4: "no-connector-answered",
        5: "stale-odj-blob",
        6: "device-proxy-drs-discovery",
        7: "dc-unreachable-no-skip",
        8: "dns-resolution-failed",
        9: "connector-legacy-not-serving",
        10: "connector-ou-dn-invalid",
        11: "name-prefix-invalid",
        12: "hybrid-registration-sync-pending",
        13: "clock-skew-kerberos",
        14: "connector-ie-esc-signin",
        15: "exchange-connector-bad-request",
        16: "exchange-connector-cas-unreachable",
        17: "assign-user-hybrid",
        18: "entra-device-deleted",
        19: "hybrid-esp-80004005-unpatched",
        20: "duplicate-entra-objects",
    }
    ids = {r.id for r in KNOWLEDGE_BASE.rules}
    assert set(covering.values()) <= ids
    for extra in (
        "connector-proxy-failure",
        "vpn-not-connected",
        "connector-access-denied-legacy",
        "offline-join-failed",
        "service-cannot-log-on",
        "device-clock-offset",
    ):
        assert extra in ids


def test_the_shipped_json_schema_is_the_one_the_loader_uses() -> None:
    assert (RULES_DIR / "rule.schema.json").read_text("utf-8") == schema_text()
    assert json.loads(schema_text())["properties"]["scope"]["enum"] == [
        "event",
        "host",
        "attempt",
        "bundle",
    ]


def test_lint_reports_each_broken_rule_at_its_line() -> None:
    result = runner.invoke(app, ["rules", "lint", "--only", str(FILES / "rules-broken")])
    assert result.exit_code == 1
    out = result.output
    broken = FILES / "rules-broken"
    assert (
        f"{broken / 'bad-keys.yaml'}:10: match.events.failed.chanel: unknown key 'chanel'"
        " — did you mean 'channel'?" in out
    )
    assert (
        f"{broken / 'bad-regex.yaml'}:11: match.events.text.fields.Message.regex: bad regex" in out
    )
    assert f"{broken / 'duplicate-key.yaml'}:4: duplicate key 'severity' (first at line 3)" in out
    assert f"{broken / 'wrong-type.yaml'}:3: severity: 'fatal' is not one of" in out
    # found in the same run although the rule has type errors (issue 17)
    assert f"{broken / 'wrong-type.yaml'}:11: cause: unknown placeholder {{computre_name}}" in out
    assert (
        f"{broken / 'wrong-type.yaml'}:10: match.events.failed.event_id: 'forty' is not "
        "an event id" in out
    )
    assert "6 problem(s)" in out


def test_test_names_the_failing_case_and_why() -> None:
    result = runner.invoke(app, ["rules", "test", "--only", str(FILES / "rules-failing")])
    assert result.exit_code == 1
    assert "FAIL join-failed-wrongly · 4099 after the blob" in result.output
    assert "join-failed-wrongly.test.yaml:2" in result.output
    assert "expected a finding, got none" in result.output
    assert "1 passed, 1 failed" in result.output


def test_lint_and_test_pass_on_the_knowledge_base() -> None:
    assert runner.invoke(app, ["rules", "lint"]).exit_code == 0
    result = runner.invoke(app, ["rules", "test"])
    assert result.exit_code == 0, result.output
    assert " 0 failed, 0 problem(s)" in result.output


def test_new_writes_a_rule_whose_cases_pass_and_lint_wants_its_todos_replaced(
    tmp_path: Path,
) -> None:
    result = runner.invoke(app, ["rules", "new", "my-first-rule", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    rule = tmp_path / "my-first-rule.yaml"
    linted = runner.invoke(app, ["rules", "lint", str(tmp_path)])
    assert linted.exit_code == 1
    assert [line.split(": ")[1] for line in linted.output.splitlines()[:-1]] == [
        "title",
        "cause",
        "fix",
    ], linted.output
    rule.write_text(rule.read_text().replace("TODO: ", ""))
    assert runner.invoke(app, ["rules", "lint", str(tmp_path)]).exit_code == 0
    tested = runner.invoke(app, ["rules", "test", str(tmp_path), "--rule", "my-first-rule"])
    assert tested.exit_code == 0, tested.output
    again = runner.invoke(app, ["rules", "new", "my-first-rule", "--dir", str(tmp_path)])
    assert again.exit_code == 2 and "not overwriting" in again.output


@pytest.mark.parametrize("scope", ["host", "event", "bundle"])
def test_new_templates_of_other_scopes_test_clean(tmp_path: Path, scope: str) -> None:
    assert (
        runner.invoke(
            app, ["rules", "new", f"x-{scope}", "--dir", str(tmp_path), "--scope", scope]
        ).exit_code
        == 0
    )
    tested = runner.invoke(app, ["rules", "test", "--only", str(tmp_path)])
    assert tested.exit_code == 0, tested.output


def test_duplicate_ids_and_unknown_supersedes_are_reported(tmp_path: Path) -> None:
    source = (RULES_DIR / "device" / "offline-join-failed.yaml").read_text("utf-8")
    (tmp_path / "offline-join-failed.yaml").write_text(source)
    (tmp_path / "other.yaml").write_text(
        source.replace("id: offline-join-failed", "id: other").replace(
            "supersedes: [odj-blob-timeout]", "supersedes: [odj-blob-timeuot]"
        )
    )
    result = load_rules([RULES_DIR, tmp_path])
    messages = [str(p) for p in result.problems]
    assert any("duplicate rule id 'offline-join-failed'" in m for m in messages)
    assert any(
        "unknown rule 'odj-blob-timeuot'" in m and "did you mean 'odj-blob-timeout'" in m
        for m in messages
    )


def test_show_and_list() -> None:
    shown = runner.invoke(app, ["rules", "show", "stale-odj-blob"])
    assert shown.exit_code == 0
    assert "confidence community" in shown.output
    assert "nf-lmjoin-netprovisioncomputeraccount" in shown.output
    missing = runner.invoke(app, ["rules", "show", "stale-odj-blobs"])
    assert missing.exit_code == 1 and "did you mean 'stale-odj-blob'" in missing.output
    listed = runner.invoke(app, ["rules", "list"])
    assert "connector-access-denied-msa" in listed.output


@pytest.mark.parametrize(
    ("spec", "value", "expected"),
    [
        ({"code": "0x80070774"}, "80070774", True),
        ({"code": "0x80070774"}, -2147022988, True),
        ({"code": "0x80070774"}, 1908, True),
        ({"code": "0x80070774"}, "0x774", True),
        ({"code": "ERROR_DOMAIN_CONTROLLER_NOT_FOUND"}, "0x80070774", True),
        ({"code": "NERR_BadOfflineJoinInfo"}, 2710, True),
        ({"code": "NERR_BadOfflineJoinInfo"}, "0x00000A96", True),
        ({"code": "NERR_BadOfflineJoinInfo"}, 2709, False),
        ({"code": 0}, "0", True),
        ({"not": {"code": 0}}, "5", True),
        ("Stopped", "stopped", True),
        (5, "5", True),
        (5, "0x00000005", True),
        (["a", "b"], "B", True),
        ({"regex": "^odj"}, "ODJConnector", True),
        ({"contains": "Base"}, "OdjServiceBaseUrl", True),
        ({"ge": 3, "lt": 5}, "4", True),
        ({"ge": 3, "lt": 5}, 5, False),
        ({"gt": 1}, "not a number", False),
        ({"exists": True}, None, False),
        ({"exists": False}, "", True),
        (True, "true", True),
    ],
)
def test_matchers(spec: object, value: object, expected: bool) -> None:
    matcher = compile_matcher(spec)
    assert matcher(value) is expected
    column = matcher.column(pd.Series([value, value], dtype=object))
    assert column.tolist() == [expected, expected]


def test_unknown_code_names_are_rejected() -> None:
    with pytest.raises(MatcherError, match="neither a number nor a code name"):
        compile_matcher({"code": "ERROR_NOT_A_REAL_NAME"})


def test_analyze_with_a_local_rule_folder(tmp_path: Path) -> None:
    bundle = Path(__file__).parent.parent / "sample_logs" / "blob-rejected" / "bundle"
    result = runner.invoke(
        app, ["analyze", str(bundle), "--format", "json", "--rules", str(FILES / "rules-local")]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    rules = [f["rule"] for f in data["findings"]]
    assert "local-blob-rejected-escalate" in rules and "offline-join-failed" in rules
    local = next(f for f in data["findings"] if f["rule"] == "local-blob-rejected-escalate")
    assert local["cause"].startswith("AP-5H8J2K4L6MN could not join contoso.local")
    assert local["references"] == ["https://example.org/runbooks/odj"]


def test_analyze_with_a_broken_rule_folder_names_the_line() -> None:
    bundle = Path(__file__).parent.parent / "sample_logs" / "blob-rejected" / "bundle"
    result = runner.invoke(app, ["analyze", str(bundle), "--rules", str(FILES / "rules-broken")])
    assert result.exit_code == 2
    assert "bad-keys.yaml:10" in result.output


def test_lint_finds_every_kind_of_problem_in_one_run(tmp_path: Path) -> None:
    """Issue 17: type errors used to hide the unknown source, the placeholder and the id, so
    a second and a third run found the rest."""
    (tmp_path / "bad.yaml").write_text(
        "id: bad-rule\ntitle: A bad rule\nseverity: dreadful\nconfidence: documented\n"
        "scope: attempt\nmatch:\n  attempt: {outcome: timed_out}\n"
        'cause: "{nope} timed out for a while"\nfix: "1. do the right thing"\n'
        "sources: [S999]\n"
    )
    result = runner.invoke(app, ["rules", "lint", "--only", str(tmp_path)])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if "bad.yaml:" in line]
    assert [line.split(":")[1] for line in lines] == sorted(
        (line.split(":")[1] for line in lines), key=int
    )
    text = "\n".join(lines)
    for wanted in (
        "'dreadful' is not one of",
        "unknown source 'S999'",
        "unknown placeholder {nope}",
        "differs from the file name",
    ):
        assert wanted in text, wanted


def test_an_event_id_written_as_text_is_the_same_id_and_a_typo_gets_its_neighbour(
    tmp_path: Path,
) -> None:
    """The docs say 5 equals "5": `event_id: "30130"` was refused (issue 19)."""
    (tmp_path / "quoted-id.yaml").write_text(
        "id: quoted-id\ntitle: A quoted event id\nseverity: info\nconfidence: inferred\n"
        'scope: event\nmatch:\n  events:\n    request: {channel: connector, event_id: "30130"}\n'
        'cause: "{hots} logged a request"\nfix: "1. nothing to do here"\n'
    )
    result = runner.invoke(app, ["rules", "lint", "--only", str(tmp_path)])
    assert "match.events.request.event_id" not in result.output, result.output
    assert "unknown placeholder {hots} — did you mean {host}?" in result.output


def test_show_finds_a_rule_by_its_file_or_in_a_rules_folder(tmp_path: Path) -> None:
    assert (
        runner.invoke(app, ["rules", "new", "my-own-rule", "--dir", str(tmp_path)]).exit_code == 0
    )
    by_file = runner.invoke(app, ["rules", "show", str(tmp_path / "my-own-rule.yaml")])
    assert by_file.exit_code == 0 and by_file.output.startswith("my-own-rule:")
    by_option = runner.invoke(app, ["rules", "show", "my-own-rule", "--rules", str(tmp_path)])
    assert by_option.exit_code == 0, by_option.output


def test_a_folder_that_is_not_one_is_named_without_a_line(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-rules"
    result = runner.invoke(app, ["rules", "lint", str(missing)])
    assert result.exit_code == 1
    assert f"{missing}: not a folder of rules" in result.output
    assert f"{missing}:1:" not in result.output


def test_an_unknown_source_gets_its_neighbour_or_the_way_to_cite_ones_own(tmp_path: Path) -> None:
    (tmp_path / "src-test.yaml").write_text(
        "id: src-test\ntitle: A rule with a bad source\nseverity: info\nconfidence: inferred\n"
        'scope: attempt\nmatch:\n  attempt: {outcome: failed}\ncause: "something failed here"\n'
        'fix: "1. do the thing now"\nsources:\n  - S7x\n  - S9999\n'
    )
    out = runner.invoke(app, ["rules", "lint", "--only", str(tmp_path)]).output
    assert "src-test.yaml:11: sources.0: unknown source 'S7x' — did you mean 'S7'?" in out
    assert "src-test.yaml:12: sources.1: unknown source 'S9999' — S-numbers are those" in out
    assert "`references:` as its https:// URL" in out


def test_a_channel_alias_typo_in_a_test_is_named_with_its_neighbour(tmp_path: Path) -> None:
    """A wrong alias used to become a channel of that name: the case failed, pointing at the
    rule instead of the typo (issue 19)."""
    assert runner.invoke(app, ["rules", "new", "alias-typo", "--dir", str(tmp_path)]).exit_code == 0
    test_file = tmp_path / "alias-typo.test.yaml"
    test_file.write_text(test_file.read_text().replace("channel: system", "channel: sytem", 1))
    result = runner.invoke(app, ["rules", "test", str(tmp_path), "--rule", "alias-typo"])
    assert result.exit_code == 1
    assert "unknown channel 'sytem': not an alias, nor a full channel name" in result.output
    assert "did you mean 'system'?" in result.output
