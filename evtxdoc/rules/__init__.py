"""Rules: the model, the strict loader, matchers, templates and the fixture runner.

See docs/rule-authoring.md for the format; `evtxdoc.engine` evaluates loaded rules.
"""

from evtxdoc.rules.loader import RuleProblem, RuleSet, default_folders, load_rule, load_rules
from evtxdoc.rules.model import Rule

__all__ = ["Rule", "RuleProblem", "RuleSet", "default_folders", "load_rule", "load_rules"]
