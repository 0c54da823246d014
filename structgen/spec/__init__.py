"""Constraint specs (inert, hashable)."""

from structgen.spec.specs import ChoiceSpec, GrammarSpec, JsonSchemaSpec, RegexSpec, Spec, spec_fingerprint

__all__ = ["ChoiceSpec", "GrammarSpec", "JsonSchemaSpec", "RegexSpec", "Spec", "spec_fingerprint"]
