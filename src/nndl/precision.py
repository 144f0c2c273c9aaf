"""The Trainer's numerical precision chosen from what the hardware computes natively: ``trainer.precision=auto``.

bf16 mixed precision halves the bytes each activation takes and, where the hardware multiplies bf16 natively, runs
the matrix products (convolutions, linear layers) in a fraction of float32's time: on x86 CPUs with AMX
(``amx_bf16``) or AVX512-BF16 (``avx512_bf16``), and on GPUs from NVIDIA's Ampere on. Elsewhere (an AVX2-only CPU,
an older GPU) the same products are emulated, converting to and from float32 around each, and take several times
longer than float32 itself. ``auto`` thus takes ``bf16-mixed`` where bf16 is native and ``32-true`` elsewhere;
every other value of ``trainer.precision`` is Lightning's own and passes through unchanged.
"""

from __future__ import annotations

from pathlib import Path

AUTO = "auto"
NATIVE = "bf16-mixed"
FALLBACK = "32-true"
CPUINFO = Path("/proc/cpuinfo")
# The x86 CPU flags (Linux's /proc/cpuinfo) of instructions that compute with bf16 natively.
CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")
GPU_ACCELERATORS = ("gpu", "cuda")


def cpu_bf16_flags() -> list[str] | None:
    """The flags of ``CPU_BF16_FLAGS`` that every processor in ``/proc/cpuinfo`` lists; None where there is no
    such file to read (macOS, Windows) or it lists no flags (not an x86 CPU)."""
    try:
        text = CPUINFO.read_text(errors="replace")
    except OSError:
        return None
    # x86 Linux: one "flags<tab>: fpu vme ... amx_bf16 ..." line per logical processor.
    lines = [line.partition(":")[2].split() for line in text.splitlines() if line.split(":")[0].strip() == "flags"]
    if not lines:
        return None
    return [flag for flag in CPU_BF16_FLAGS if all(flag in flags for flags in lines)]


def native_bf16(accelerator: str) -> bool:
    """Whether ``accelerator`` (a Lightning ``trainer.accelerator``: cpu, gpu, cuda, auto, ...) computes bf16
    natively: a CPU with AMX or AVX512-BF16 (False where ``/proc/cpuinfo`` cannot tell), a CUDA GPU that
    ``torch.cuda`` reports bf16-capable without emulation. ``auto`` is the GPU when torch sees one, else the CPU;
    any other accelerator (mps, tpu, ...) is taken as not native."""
    return bool(_bf16_support(_device(accelerator))[0])


def resolve_precision(precision: str | int, accelerator: str) -> tuple[str | int, str]:
    """The Lightning precision for ``trainer.precision`` on ``accelerator``, and a one-line reason to log.

    ``auto`` becomes ``bf16-mixed`` where bf16 is native (``native_bf16``), ``32-true`` elsewhere; any other value
    is returned unchanged (the reason then warns when it asks for bf16 on hardware known to emulate it).
    """
    native, why = _bf16_support(_device(accelerator))
    if str(precision) == AUTO:
        chosen = NATIVE if native else FALLBACK
        return chosen, f"trainer.precision={AUTO} → {chosen}: {why}"
    reason = f"trainer.precision={precision}"
    if str(precision).startswith("bf16") and native is False:
        reason += (
            f", though {why}: bf16 is emulated there, several times slower than {FALLBACK} "
            f"(trainer.precision={AUTO} chooses from the hardware)"
        )
    return precision, reason


def _device(accelerator: str) -> str:
    """``cuda``, ``cpu`` or the accelerator's own name; ``auto`` resolved as Lightning resolves it between the two."""
    name = str(accelerator).lower()
    if name in GPU_ACCELERATORS:
        return "cuda"
    if name == AUTO:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def _bf16_support(device: str) -> tuple[bool | None, str]:
    """Whether ``device`` computes bf16 natively (None: it cannot be told), and the hardware fact that says so."""
    if device == "cpu":
        flags = cpu_bf16_flags()
        if flags is None:
            return None, f"{CPUINFO} lists no x86 CPU flags to tell whether this CPU has native bf16"
        if flags:
            return True, f"this CPU has native bf16 ({', '.join(flags)})"
        return False, f"this CPU has no native bf16 (no {'/'.join(CPU_BF16_FLAGS)} flag)"
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            return None, "torch sees no CUDA GPU"
        name = torch.cuda.get_device_name()
        try:
            native = torch.cuda.is_bf16_supported(including_emulation=False)
        except TypeError:  # torch before 2.3 counts no emulation: nothing to exclude
            native = torch.cuda.is_bf16_supported()
        if native:
            return True, f"this GPU ({name}) has native bf16"
        return False, f"this GPU ({name}) has no native bf16 (NVIDIA's before Ampere emulate it)"
    return None, f"native bf16 on accelerator={device} is not known to this lab"
