"""Rules: the model, the strict loader, matchers, templates and the engine.

See docs/rule-authoring.md for the format; `engine.evaluate` runs loaded rules over a timeline
and its correlation (`windows`, `context`, `verdict` are its parts); `evtxdoc.fixtures` runs
the rule authors' test cases.
"""

from evtxdoc.rules.loader import RuleSet, default_folders, load_rule, load_rules
from evtxdoc.rules.model import Rule

__all__ = ["Rule", "RuleSet", "default_folders", "load_rule", "load_rules"]
