"""Should the rule spec layer be pydantic v2? Measures what the choice costs and buys.

    python benchmarks/spec_layer.py

Three figures, each in fresh interpreters (median of 5): the import + model-build cost a
`rules` command pays before its first rule (pydantic: the BaseModel machinery and one model of
the rule's top level; ours: rules.schema + rules.loader), the time to check all shipped rules
(warm), and what each says about one rule with four mistakes (a key typo, a bad severity, a
bad source pattern, a short title) — the wording a rule author reads.
The pydantic model covers only the top level (match/applies_to as plain dicts): a full one
would cost more to build, so its figures are a lower bound.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PYDANTIC_MODEL = r"""
from typing import Annotated, Any, Literal
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
class RuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*[a-z0-9]$")
    title: str = Field(min_length=8)
    description: str | None = None
    severity: Literal["critical", "error", "warning", "info"]
    confidence: Literal["documented", "community", "inferred"]
    scope: Literal["event", "host", "attempt", "bundle"]
    applies_to: dict[str, Any] | None = None
    match: dict[str, Any]
    cause: str = Field(min_length=10)
    fix: str = Field(min_length=10)
    references: list[str] | None = None
    sources: list[Annotated[str, StringConstraints(pattern=r"^S[0-9]+[a-z]?$")]] | None = None
    evidence: list[str] | None = None
    supersedes: list[str] | None = None
    tags: list[str] | None = None
RuleSpec.model_json_schema()
"""

STARTUP = {
    "python alone": "pass",
    "ours: rules.loader (all a `rules` command needs)": "import evtxdoc.rules.loader",
    "ours + pydantic (BaseModel, one top-level model, its schema)": "import evtxdoc.rules.loader\n"
    + PYDANTIC_MODEL,
}

BROKEN = {
    "id": "demo-rule",
    "title": "short",
    "severity": "fatal",
    "confidence": "documented",
    "scope": "attempt",
    "match": {"outcome": "failed"},
    "cause": "A cause long enough.",
    "fix": "1. A fix long enough.",
    "sources": ["S7", "seven"],
    "referenses": ["https://example.invalid"],
}


def _startup_ms(code: str) -> float:
    runs = []
    for _ in range(5):
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                f"import time; t=time.perf_counter()\n{code}\nprint((time.perf_counter()-t)*1000)",
            ],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        runs.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(runs)


def _check_all() -> None:
    import time

    import yaml

    from evtxdoc.rules import schema
    from evtxdoc.rules.loader import rule_files

    texts = [yaml.safe_load(p.read_text("utf-8")) for p in rule_files(ROOT / "rules")]
    namespace: dict[str, object] = {}
    exec(compile(PYDANTIC_MODEL, "<model>", "exec", dont_inherit=True), namespace)
    model = namespace["RuleSpec"]
    for name, check in (
        ("ours", lambda data: list(schema.check(data))),
        ("pydantic", lambda data: model.model_validate(data)),  # type: ignore[attr-defined]
    ):
        times = []
        for _ in range(20):
            start = time.perf_counter()
            for data in texts:
                check(data)
            times.append(time.perf_counter() - start)
        print(f"  check {len(texts)} rules, {name:8}: {statistics.median(times) * 1000:6.2f} ms")
    print("\n  one rule, four mistakes — ours:")
    for path, message, hint in schema.check(BROKEN):
        print(f"    {'.'.join(map(str, path))}: {message}" + (f" — {hint}" if hint else ""))
    print("  — pydantic:")
    try:
        model.model_validate(BROKEN)  # type: ignore[attr-defined]
    except namespace["ValidationError"] as error:  # type: ignore[misc]
        for item in error.errors():
            print(f"    {'.'.join(map(str, item['loc']))}: {item['msg']}")


def main() -> None:
    for name, code in STARTUP.items():
        print(f"  startup {name:62}: {_startup_ms(code):6.1f} ms")
    _check_all()


if __name__ == "__main__":
    main()
