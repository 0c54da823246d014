"""JSON Schema front end: schema (or pydantic type) -> grammar IR, with per-keyword reports.

Modules: ``pydantic_source`` (types -> schema dicts), ``lowering`` (schema -> IR), ``regexes``
(string/number regexes over JSON text), ``formats`` (enforced ``format`` values), ``formatting``
(output styles and canonical text), ``explain`` (how each keyword is enforced).
"""
