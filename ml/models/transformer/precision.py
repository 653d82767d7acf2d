"""Whether a transformer scores in bf16 autocast on this machine (``cpu_bf16``: off, on or auto).

Why ``auto`` probes the speed instead of trusting the CPU flag: docs/decisions/cpu-bf16-scoring.md.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import time

from ml.predictor import check_cpu_bf16

log = logging.getLogger(__name__)

#: ``auto`` scores in bf16 only where a bf16 matrix product measures at least this much faster than fp32.
CPU_BF16_MIN_SPEEDUP = 1.3


def cpu_bf16_native(cpuinfo: str | os.PathLike[str] = "/proc/cpuinfo") -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware (Intel AMX, Sapphire Rapids and later: the
    ``amx_bf16`` flag of ``/proc/cpuinfo``); ``False`` where that file is absent (not Linux)."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return "amx_bf16" in line.split(":", 1)[-1].split()
    except OSError:
        pass
    return False


@functools.lru_cache(maxsize=1)
def cpu_bf16_speedup(rows: int = 256, width: int = 768, reps: int = 5) -> float:
    """How much faster one CPU thread multiplies a ``rows`` x ``width`` batch by a square weight in bf16 autocast
    than in fp32: the best of 5 timings of ``reps`` products each, the two precisions alternating. About 0.1 s,
    measured once per process, at its first transformer scoring under ``auto``
    (docs/decisions/cpu-bf16-scoring.md)."""
    import torch

    a, w = torch.randn(rows, width), torch.randn(width, width)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        best = {False: math.inf, True: math.inf}
        with torch.no_grad():
            for bf16 in (False, True):  # warm-up: oneDNN picks its kernel on the first call
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    torch.nn.functional.linear(a, w)
            for _ in range(5):
                for bf16 in (False, True):
                    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                        started = time.perf_counter()
                        for _ in range(reps):
                            torch.nn.functional.linear(a, w)
                        best[bf16] = min(best[bf16], time.perf_counter() - started)
    finally:
        torch.set_num_threads(threads)
    speedup = best[False] / max(best[True], 1e-9)
    log.info("cpu_bf16=auto: a bf16 matrix product runs %.2fx the speed of fp32 here (bf16 scoring needs %.1fx)",
             speedup, CPU_BF16_MIN_SPEEDUP)
    return speedup


def inference_bf16(device, setting: str) -> bool | None:
    """Whether to score in bf16 autocast on ``device``: ``None`` (the loop's default: bf16 on CUDA) for a GPU;
    on a CPU what ``setting`` (``cpu_bf16``) says: off, on, or auto = the CPU lists AMX
    (:func:`cpu_bf16_native`), oneDNN is there, and a bf16 product measures at least
    :data:`CPU_BF16_MIN_SPEEDUP` times faster (:func:`cpu_bf16_speedup`)."""
    if device.type != "cpu":
        return None
    if check_cpu_bf16(setting) == "auto":
        import torch

        return (cpu_bf16_native() and torch.backends.mkldnn.is_available()  # oneDNN runs the AMX kernels
                and cpu_bf16_speedup() >= CPU_BF16_MIN_SPEEDUP)
    return setting == "on"
