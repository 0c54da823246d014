"""Generate docs/json-schema.md (the support page) from conformance results and explain() reports.

python tests/conformance/make_support_doc.py        # from baseline.json (re-lowers the schemas)
"""

from __future__ import annotations

import collections
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

DOC = Path(__file__).resolve().parents[2] / "docs" / "json-schema.md"
DOC_FULL = Path(__file__).resolve().parents[2] / "docs" / "json-schema-support-full.md"

KEYWORDS = [
    "type",
    "enum",
    "const",
    "properties",
    "required",
    "additionalProperties",
    "patternProperties",
    "propertyNames",
    "minProperties",
    "maxProperties",
    "items",
    "prefixItems",
    "additionalItems",
    "minItems",
    "maxItems",
    "contains",
    "minContains",
    "maxContains",
    "uniqueItems",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "anyOf",
    "oneOf",
    "allOf",
    "not",
    "if",
    "dependentRequired",
    "dependentSchemas",
    "dependencies",
    "$ref",
    "$defs",
    "definitions",
    "$anchor",
    "$id",
    "$dynamicRef",
    "unevaluatedProperties",
    "unevaluatedItems",
]

HOW = {
    "type": "grammar: one alternative per allowed type (integer within number; 1.0 is an integer from draft 6 on)",
    "enum": "literals of each value's canonical text; every value is checked against all sibling keywords with jsonschema",
    "const": "a literal (same as a one-value enum)",
    "properties": "grammar: keys in schema order (option property_order='any': any order, duplicates impossible)",
    "required": "grammar: the key is not optional",
    "additionalProperties": "grammar: extra keys are strings that exclude every declared name (regex over the key trie)",
    "patternProperties": "grammar: key regex per pattern with additionalProperties: false, or trivially true pattern schemas; other combinations refused",
    "propertyNames": "checked on declared names at compile time; a regex on extra keys (enum/const become optional keys)",
    "minProperties": "grammar: counted states",
    "maxProperties": "grammar: counted states",
    "items": "grammar: element rule",
    "prefixItems": "grammar: one rule per position",
    "additionalItems": "grammar: element rule (draft 7 array-form items)",
    "minItems": "grammar: counted chain",
    "maxItems": "grammar: counted chain (up to Limits.max_repeat)",
    "contains": "grammar: states count matching elements",
    "minContains": "grammar: counted",
    "maxContains": "grammar when the negation of 'contains' is expressible, else a check on the completed array",
    "uniqueItems": "grammar over the set of used values when items are a finite set of at most 8 values; else refused",
    "minLength": "regex: bounded repeat of one JSON string character (code points, escapes count once); above Limits.max_repeat, or above 256 next to a pattern/format, a check on the completed string",
    "maxLength": "regex, intersected with a pattern/format (above Limits.max_repeat, or above 256 next to a pattern/format: a check on the completed string)",
    "pattern": "regex: ECMA pattern translated to JSON string text (unanchored unless ^/$); backreferences, lookbehind, \\p{..}: a check on the completed string (refused in key patterns)",
    "format": "regex for date-time, date, time, duration, email, hostname, ipv4, ipv6, uri, uri-reference, iri, iri-reference, uuid, json-pointer; other formats are annotations",
    "minimum": "regex: exact decimal range (positional notation)",
    "maximum": "regex: exact decimal range",
    "exclusiveMinimum": "regex: exact decimal range",
    "exclusiveMaximum": "regex: exact decimal range",
    "multipleOf": "regex/grammar: 10^-n limits fraction digits; integer moduli by a digit automaton or enumeration; other decimals: a check on the completed number",
    "anyOf": "grammar: union",
    "oneOf": "grammar: union when branches are proven disjoint, else (B_i and not B_j); else the union and a check on the completed value",
    "allOf": "intersection: fragments merged keyword by keyword",
    "not": "rewritten into positive keywords (types, excluded values, bounds, absent properties); else a check on the completed value (single excluded arrays/objects refused)",
    "if": "rewritten as (if and then) or (not if and else)",
    "dependentRequired": "union of cases (property absent / present with its dependencies)",
    "dependentSchemas": "union of cases",
    "dependencies": "union of cases (draft 7)",
    "$ref": "shared grammar rule; recursion becomes grammar recursion",
    "$defs": "container",
    "definitions": "container",
    "$anchor": "resolved by the referencing library",
    "$id": "base URI for $ref resolution",
    "$dynamicRef": "check on the completed value (the grammar drops it: resolved at validation time)",
    "unevaluatedProperties": "check on the completed value (the grammar drops it: it depends on what other keywords evaluated)",
    "unevaluatedItems": "check on the completed value (the grammar drops it: it depends on what other keywords evaluated)",
}


def _keywords_in(node: Any, acc: set[str]) -> None:
    if isinstance(node, dict):
        acc.update(k for k in node if isinstance(k, str))
        for v in node.values():
            _keywords_in(v, acc)
    elif isinstance(node, list):
        for v in node:
            _keywords_in(v, acc)


def write(results: dict[str, dict[str, Any]]) -> None:
    summary = harness.summarize(results)
    refusals: collections.Counter[str] = collections.Counter()
    for r in results.values():
        if r["status"].startswith("refused:"):
            refusals[r["status"][len("refused:") :]] += 1
    # per keyword: schemas using it in the suite, and how many of those compiled and passed
    usage: dict[str, list[int]] = {k: [0, 0, 0] for k in KEYWORDS}
    cases: dict[str, dict[str, Any]] = {}
    for draft in harness.DRAFTS:
        for c in harness.suite_cases(draft):
            cases[c["id"]] = c
    for split in harness.SPLITS:
        for c in harness.bench_cases(split, harness.BENCH_DEFAULT_N):
            cases[c["id"]] = c
    for cid, r in results.items():
        case = cases.get(cid)
        if case is None:
            continue
        kws: set[str] = set()
        _keywords_in(case["schema"], kws)
        for k in KEYWORDS:
            if k in kws:
                usage[k][0] += 1
                usage[k][1] += r["status"] == "compiled"
                usage[k][2] += harness.passed(r) and r["status"] == "compiled"
    lines = [
        "# JSON Schema support",
        "",
        "Generated by `python tests/conformance/run_conformance.py --update` from the conformance baseline",
        "(`tests/conformance/baseline.json`); do not edit by hand.",
        "",
        "structgen enforces every keyword exactly: in the grammar, or (where a token automaton cannot express",
        "it) by a check on each completed value that rejects the token closing an invalid one, or it refuses",
        "the schema with `UnsupportedSchema` naming the keyword and its JSON pointer (`lenient=True` drops",
        "refused keywords instead and lists them in",
        "`compiled.info['dropped']`). `structgen.explain(schema)` shows, per pointer and keyword, how each",
        "part is enforced.",
        "",
        "## Output formatting",
        "",
        '- `style=\'default\'`: `{"a": 1, "b": [1, 2]}` (separators `", "` and `": "`, one line).',
        "- `style='compact'`: `{\"a\":1,\"b\":[1,2]}`; `style='pretty'` (`indent=2`): like `json.dumps(v, indent=2)`,",
        "  nesting limited to `Limits.max_schema_depth`; `style='flexible'`: up to `max_ws` whitespace characters",
        "  around each punctuation mark.",
        "- Properties come in schema order; `property_order='any'` allows any order (required keys enforced, no",
        "  duplicates; refused with `LimitExceeded` beyond 16 properties per object).",
        "- Numbers with bounds are written in positional notation (no exponent); unbounded numbers may use one.",
        "  Strings constrained by `pattern`, `format` or an excluded-name set use the canonical escaping of",
        "  `json.dumps(s, ensure_ascii=False)`; other strings accept any JSON escape.",
        "",
        "## Conformance (default tier)",
        "",
        "A case passes when the schema compiles and every valid instance is accepted (as text in the default",
        "formatting, and for one valid instance per case as Llama-3 tokens) and every invalid instance is",
        "rejected, or when the schema is refused with a named error. Instances are re-serialized with the",
        "default formatting (`formatting.dumps`); object keys are fed in whichever order the grammar accepts.",
        "The Test Suite's `format.json` is left out: it checks that `format` is only an annotation, and",
        "structgen asserts the formats it knows.",
        "",
        "| group | cases | compiled | passed | valid accepted | invalid rejected |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for g, s in summary.items():
        lines.append(
            f"| {g} | {s['cases']} | {s['compiled']} | {s['passed']} | {s['valid_ok']}/{s['valid']} | {s['invalid_ok']}/{s['invalid']} |"
        )
    if harness.BASELINE_SLOW.exists():
        lines += [
            "",
            "Every schema of the dev splits (the full tier, `baseline_full.json`): see",
            f"[{DOC_FULL.name}]({DOC_FULL.name}).",
        ]
    lines += [
        "",
        "## Limits and fallbacks",
        "",
        "Schemas stop at the documented limits of `structgen.Limits` with `LimitExceeded` naming the limit.",
        "Before that, three fallbacks keep a schema compiling exactly, with part of it checked on completed",
        "values instead of masked by the grammar (`explain` names the reason):",
        "",
        "- a string whose exact regex (pattern, format and length together) exceeds `max_dfa_states` or",
        "  `max_nfa_states` takes any string there, its keywords checked on the completed string;",
        "- when the lexer of all terminals together (their product) exceeds `max_dfa_states`, the schema is",
        "  lowered again with every pattern/format/length string checked that way (many unanchored patterns",
        "  side by side, e.g. one per `anyOf` branch, are the usual cause);",
        '- when rewriting overlapping `oneOf` branches into "this branch and not the others" exceeds',
        "  `max_grammar_rules`, the schema is lowered again with those `oneOf`s as unions whose",
        "  exclusivity is checked on the completed value.",
        "",
        "The cost is guidance, not correctness: the mask there is a superset, and a value that fails its",
        "check is rejected at the token that completes it, so decoding backtracks.",
    ]
    lines += ["", "## Refusals", "", "| error | keyword or limit | cases |", "|---|---|---:|"]
    for what, n in refusals.most_common():
        err, _, kw = what.partition(":")
        lines.append(f"| {err} | {kw or '-'} | {n} |")
    lines += [
        "",
        "## Keywords",
        "",
        "Cases: schemas of the default tier that use the keyword anywhere; compiled and passed among them.",
        "",
        "| keyword | how it is enforced | cases | compiled | compiled and passed |",
        "|---|---|---:|---:|---:|",
    ]
    for k in KEYWORDS:
        u = usage[k]
        lines.append(f"| `{k}` | {HOW.get(k, '')} | {u[0]} | {u[1]} | {u[2]} |")
    lines += [
        "",
        "Annotations (`title`, `description`, `default`, `examples`, `$comment`, `deprecated`, `readOnly`,",
        "`writeOnly`, `contentMediaType`, ...) and unknown keywords are ignored, as JSON Schema requires.",
        "",
    ]
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text("\n".join(lines))
    print("wrote", DOC)


def write_full(results: dict[str, dict[str, Any]]) -> None:
    """The full tier's page: per split totals and refusals, from ``run_conformance.py --full``."""
    summary = harness.summarize(results)
    lines = [
        "# JSON Schema support: every dev-split schema",
        "",
        "Generated by `python tests/conformance/run_conformance.py --full --update` from",
        "`tests/conformance/baseline_full.json`; do not edit by hand. Same pass rule as the default tier",
        "([json-schema.md](json-schema.md)); invalid instances are searched with a budget of",
        f"{harness.FULL_INVALID_STEPS:,} key-order steps; when that runs out, a proof that no key order is",
        f"accepted is tried (`decide.py`, {harness.DECIDE_STEPS:,} matcher steps). Instances left undecided",
        "are re-run with larger budgets (`run_conformance.py --full --undecided --search-steps 20000",
        "--decide-steps 200000 --workers 2 --update`, then `--decide-steps 2000000` for what is left), which",
        "replaces their entries. *undecided* counts invalid",
        "instances with neither a finished search nor a proof: no key order tried was accepted, but not",
        "every order was excluded (they are not counted as accepted; a full cross-check is open work).",
        "",
        "| split | schemas | compiled | passed | valid accepted | invalid rejected | valid rejected | invalid accepted | undecided |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for g, s in summary.items():
        lines.append(
            f"| {g} | {s['cases']} | {s['compiled']} | {s['passed']} | {s['valid_ok']}/{s['valid']} "
            f"| {s['invalid_ok']}/{s['invalid']} | {s['valid_rejected']} | {s['invalid_accepted']} | {s['undecided']} |"
        )
    failing = sorted(cid for cid, r in results.items() if r["status"] == "compiled" and not harness.passed(r))
    lines += ["", f"Compiled schemas with a wrong result: {len(failing)}", ""]
    lines += [f"- `{cid}`: valid {results[cid]['valid']}, invalid {results[cid]['invalid']}" for cid in failing]
    refusals: collections.Counter[str] = collections.Counter()
    for r in results.values():
        if not r["status"].startswith("compiled"):
            refusals[r["status"]] += 1
    lines += ["", "## Refusals", "", "| status | schemas |", "|---|---:|"]
    lines += [f"| {what} | {n} |" for what, n in refusals.most_common()]
    lines.append("")
    DOC_FULL.parent.mkdir(parents=True, exist_ok=True)
    DOC_FULL.write_text("\n".join(lines))
    print("wrote", DOC_FULL)


if __name__ == "__main__":
    if "--full" in sys.argv:
        write_full(json.loads(harness.BASELINE_SLOW.read_text()))
    else:
        write(json.loads(harness.BASELINE.read_text()))
