"""Compile every Triton kernel ahead of time for real GPU targets (no GPU needed): run as a script.

Triton's CUDA backend lowers to PTX and runs ptxas without a device, so this catches what the
interpreter cannot: compiled-mode typing of loop-carried values, constexpr branches, reductions.
Prints one line per kernel variant and exits non-zero on the first failure.
"""

from __future__ import annotations

import itertools
import os
import sys

if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
    sys.exit("run without TRITON_INTERPRET: this compiles for the GPU")

import structgen.kernels.triton_kernels as K  # noqa: E402
import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

TARGETS = [GPUTarget("cuda", 90, 32)]  # Hopper; add (80, 32) etc. when touching arch-specific code
DTYPES = ["fp32", "bf16", "fp16"]


def compile_one(fn, signature: dict, constexprs: dict, target: GPUTarget, warps: int) -> None:
    compiled = triton.compile(
        ASTSource(fn, signature, constexprs=constexprs), target=target, options={"num_warps": warps}
    )
    assert "cubin" in compiled.asm, "ptxas produced no cubin"


def main() -> int:
    for target, dtype in itertools.product(TARGETS, DTYPES):
        sig = {
            "logits_ptr": f"*{dtype}", "bitmask_ptr": "*i32", "indices_ptr": "*i64", "n_logit_rows": "i32",
            "n_mask_rows": "i32", "width": "i32", "vocab_size": "i32", "stride_lr": "i32", "stride_lc": "i32",
            "stride_mr": "i32", "stride_mc": "i32", "row_offset": "i32", "HAS_INDICES": "constexpr", "BLOCK": "constexpr",
        }  # fmt: skip
        for has_indices in (False, True) if dtype == "bf16" else (True,):
            compile_one(K._apply_bitmask_kernel, sig, {"HAS_INDICES": has_indices, "BLOCK": 4096}, target, 8)
        print(f"apply sm_{target.arch} {dtype} ok", flush=True)
        base = {
            "logits_ptr": f"*{dtype}", "stride_lr": "i32", "stride_lc": "i32", "bitmask_ptr": "*i32",
            "stride_mr": "i32", "rows_ptr": "*i64", "temp_ptr": "*fp32", "seed_ptr": "*i64",
        }  # fmt: skip
        parts = {"part_m_ptr": "*fp32", "part_s_ptr": "*fp32", "part_key_ptr": "*fp32", "part_idx_ptr": "*i32"}
        partial = base | parts | {"vocab_size": "i32", "chunk": "i32", "nsplit": "i32"}
        partial |= {"HAS_MASK": "constexpr", "HAS_ROWS": "constexpr", "BLOCK": "constexpr"}
        finish = base | {"topk_ptr": "*i32", "topp_ptr": "*fp32"} | parts
        finish |= {"out_tok_ptr": "*i64", "out_lp_ptr": "*fp32", "vocab_size": "i32", "nsplit": "i32"}
        finish |= {k: "constexpr" for k in ("HAS_MASK", "HAS_ROWS", "HAS_TRUNC", "NSPLIT_P2", "MAX_ROUNDS", "BLOCK")}
        if dtype == "bf16":  # the sampler's arithmetic is fp32 whatever the logits' dtype
            for has_mask, has_rows in ((True, True), (False, False)):
                flags = {"HAS_MASK": has_mask, "HAS_ROWS": has_rows, "BLOCK": 1024}
                compile_one(K._sample_partial_kernel, partial, flags, target, 4)
                for trunc in (False, True) if has_mask else (False,):
                    more = flags | {"HAS_TRUNC": trunc, "NSPLIT_P2": 64, "MAX_ROUNDS": 64}
                    compile_one(K._sample_finish_kernel, finish, more, target, 4)
            print(f"sample sm_{target.arch} {dtype} ok", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
