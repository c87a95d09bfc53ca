"""Rules: the model, the strict loader, matchers, templates and the engine.

See docs/rule-authoring.md for the format; `engine.evaluate` runs loaded rules over a timeline
and its correlation (`windows`, `context`, `verdict` are its parts); `evtxdoc.fixtures` runs
the rule authors' test cases. The names below load on first use, so that a light part
(`evtxdoc.rules.schema` for the command line's help) does not load the loader.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evtxdoc.rules.loader import RuleSet, default_folders, load_rule, load_rules
    from evtxdoc.rules.model import Rule

_WHERE = {
    "RuleSet": "evtxdoc.rules.loader",
    "default_folders": "evtxdoc.rules.loader",
    "load_rule": "evtxdoc.rules.loader",
    "load_rules": "evtxdoc.rules.loader",
    "Rule": "evtxdoc.rules.model",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'evtxdoc.rules' has no attribute {name!r}")


__all__ = ["Rule", "RuleSet", "default_folders", "load_rule", "load_rules"]
