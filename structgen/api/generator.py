"""``structgen.Generator``: compile once, generate many times.

    extract = structgen.Generator(model, schema=Invoice, max_new_tokens=200)
    invoice = extract("Invoice 17 from ACME ...")
    invoices = extract(["...", "..."])              # a batch, one compiled constraint

Compiled constraints are cached by fingerprint (spec + options + vocabulary + version) inside
:func:`structgen.compile`, so two Generators with the same schema share one compile. A progress bar
(tqdm, on stderr) appears when a compile runs longer than a second.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

PROGRESS_AFTER_SECONDS = 1.0


def compile_with_progress(vocab: Any, *, progress: bool | None = None, limits: Any = None, **kwargs: Any) -> Any:
    """``structgen.compile(vocab, **kwargs)``, with a progress bar once it has run a second."""
    from structgen.compile.compiler import compile as sg_compile

    if limits is not None:
        kwargs["limits"] = limits
    if progress is False:
        return sg_compile(vocab, **kwargs)
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = sg_compile(vocab, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    th = threading.Thread(target=work, name="structgen-compile", daemon=True)
    t0 = time.perf_counter()
    th.start()
    th.join(PROGRESS_AFTER_SECONDS)
    if th.is_alive():
        try:
            from tqdm import tqdm
        except ImportError:  # pragma: no cover - tqdm comes with transformers
            th.join()
        else:
            what = next(iter(k for k in ("json_schema", "regex", "grammar", "choices") if k in kwargs), "constraint")
            with tqdm(
                desc=f"structgen: compiling {what}",
                unit="s",
                file=sys.stderr,
                leave=False,
                bar_format="{desc} {elapsed}",
            ) as bar:
                while th.is_alive():
                    th.join(0.2)
                    bar.update(0)
                    bar.refresh()
            print(f"structgen: compiled {what} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    if "error" in box:
        raise box["error"]
    return box["value"]


class Generator:
    """A model and one constraint compiled once; call it with prompts (see :func:`structgen.generate`).

    Args:
        model: as for :func:`structgen.generate` (a LoadedModel, a path, or a transformers model
            with ``tokenizer=``).
        schema / json_schema / regex / grammar / choices: the constraint (at most one; none = free text).
        **defaults: default keyword arguments of every call (``max_new_tokens``, ``temperature``,
            ``stop``, ``system``...); a call's own keywords override them.
    """

    def __init__(
        self,
        model: Any,
        *,
        schema: Any = None,
        json_schema: Any = None,
        regex: Any = None,
        grammar: Any = None,
        choices: Any = None,
        tokenizer: Any = None,
        limits: Any = None,
        progress: bool | None = None,
        compile_options: dict[str, Any] | None = None,
        **defaults: Any,
    ) -> None:
        from structgen.api.generate import compile_constraint
        from structgen.api.loading import resolve_model

        self.loaded = resolve_model(model, tokenizer)
        given = {
            k: v
            for k, v in dict(
                schema=schema, json_schema=json_schema, regex=regex, grammar=grammar, choices=choices
            ).items()
            if v is not None
        }
        if len(given) > 1:
            raise TypeError(
                f"pass at most one of schema=, json_schema=, regex=, grammar=, choices= (got {sorted(given)})"
            )
        self.constraint = None
        if given:
            ((kind, value),) = given.items()
            self.constraint = compile_constraint(
                self.loaded.vocab, kind, value, limits=limits, progress=progress, **(compile_options or {})
            )
        self.defaults = defaults

    @property
    def compiled(self) -> Any:
        """The :class:`~structgen.CompiledConstraint` (None for free text)."""
        return None if self.constraint is None else self.constraint.compiled

    def _kw(self, overrides: dict[str, Any]) -> dict[str, Any]:
        from structgen.api.generate import DEFAULT_MAX_NEW_TOKENS

        kw: dict[str, Any] = dict(
            max_new_tokens=DEFAULT_MAX_NEW_TOKENS,
            temperature=0.0,
            top_p=None,
            top_k=None,
            seed=None,
            stop=None,
            constraint_start_after=None,
            chat=None,
            system=None,
            sampler="mask",
            limits=None,
            progress=None,
            options={},
        )
        kw.update(self.defaults)
        kw.update(overrides)
        return kw

    def __call__(self, prompt: Any, *, return_result: bool = False, **overrides: Any) -> Any:
        """Generate for one prompt or a list of prompts (see :func:`structgen.generate`)."""
        from structgen.api.generate import _Request, _run_sampler

        kw = self._kw(overrides)
        particles = int(kw.pop("particles", 16))
        req = _Request(self.loaded, prompt, tokenizer=None, constraint_kwargs={}, constraints=[self.constraint], **kw)
        if kw["sampler"] != "mask":
            res = _run_sampler(
                req,
                kw["sampler"],
                temperature=kw["temperature"],
                seed=kw["seed"],
                particles=particles,
                max_new_tokens=kw["max_new_tokens"],
            )
            vals: list[Any] = res if return_result else [r.value for r in res]
            return vals if req.batch else vals[0]
        req.decoder.run()
        results = req.results()
        out: list[Any] = results if return_result else [r.value for r in results]
        return out if req.batch else out[0]

    def stream(self, prompt: Any, *, partial: bool = False, **overrides: Any) -> Any:
        """A :class:`structgen.api.generate.TextStream` for one prompt."""
        from structgen.api.generate import TextStream, _Request

        req = _Request(
            self.loaded,
            prompt,
            tokenizer=None,
            constraint_kwargs={},
            constraints=[self.constraint],
            **self._kw(overrides),
        )
        return TextStream(req, partial)
