"""nndl.precision: trainer.precision=auto takes bf16 where the hardware computes it natively, float32 elsewhere."""

from pathlib import Path

import pytest
import torch

from nndl import precision
from nndl.precision import native_bf16, resolve_precision

AVX2 = "fpu vme de pse tsc msr sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi1 bmi2"
SAPPHIRE_RAPIDS = f"{AVX2} avx512f avx512bw avx512_bf16 avx512_fp16 amx_bf16 amx_tile amx_int8"
COOPER_LAKE = f"{AVX2} avx512f avx512bw avx512_bf16"


def cpuinfo(flags: str, processors: int = 2) -> str:
    """/proc/cpuinfo of an x86 Linux machine with ``processors`` logical processors listing ``flags``."""
    return "".join(
        f"processor\t: {n}\nvendor_id\t: GenuineIntel\nmodel name\t: Some CPU\nflags\t\t: {flags}\n"
        f"bugs\t\t: spectre_v1\nbogomips\t: 4000.00\n\n"
        for n in range(processors)
    )


def assert_auto(resolved: tuple[str | int, str], chosen: str, *facts: str) -> None:
    """``resolved`` chose ``chosen`` for ``trainer.precision=auto``, saying so, and its reason names ``facts``."""
    assert resolved[0] == chosen
    assert resolved[1].startswith(f"trainer.precision=auto → {chosen}: "), resolved[1]
    assert all(fact in resolved[1] for fact in facts), (resolved[1], facts)


@pytest.fixture
def cpu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Set the text of this machine's /proc/cpuinfo (None: no such file)."""

    def set_cpuinfo(text: str | None) -> None:
        path = tmp_path / ("no_cpuinfo" if text is None else "cpuinfo")
        if text is not None:
            path.write_text(text)
        monkeypatch.setattr(precision, "CPUINFO", path)

    return set_cpuinfo


@pytest.mark.parametrize(
    ("flags", "native"), [(SAPPHIRE_RAPIDS, True), (COOPER_LAKE, True), (AVX2, False), (f"{AVX2} avx512f", False)]
)
def test_native_bf16_on_a_cpu_reads_its_flags(cpu, flags, native):
    cpu(cpuinfo(flags))
    assert native_bf16("cpu") is native


def test_a_flag_must_be_whole_and_on_every_processor(cpu):
    cpu(cpuinfo(f"{AVX2} amx_bf16x avx512_bf16_like"))  # names that merely contain a flag's name
    assert not native_bf16("cpu")
    cpu(cpuinfo(SAPPHIRE_RAPIDS) + cpuinfo(AVX2, processors=1).replace("processor\t: 0", "processor\t: 2"))
    assert not native_bf16("cpu")


@pytest.mark.parametrize("text", [None, "", "processor\t: 0\nFeatures\t: fp asimd bf16\n"])
def test_no_flags_to_read_is_not_native(cpu, text):
    """No /proc/cpuinfo (macOS, Windows), an empty one, or an ARM one (no x86 flags line): not known native."""
    cpu(text)
    assert not native_bf16("cpu")
    chosen, reason = resolve_precision("auto", "cpu")
    assert chosen == "32-true" and "lists no x86 CPU flags" in reason


def test_auto_takes_bf16_on_a_cpu_that_has_it(cpu):
    cpu(cpuinfo(SAPPHIRE_RAPIDS))
    assert_auto(resolve_precision("auto", "cpu"), "bf16-mixed", "CPU has native bf16", "(amx_bf16, avx512_bf16)")


def test_auto_takes_float32_on_an_avx2_cpu(cpu):
    cpu(cpuinfo(AVX2))
    assert_auto(resolve_precision("auto", "cpu"), "32-true", "CPU has no native bf16", "amx_bf16/avx512_bf16")


@pytest.mark.parametrize("value", ["32-true", "16-mixed", "64-true", 32, "bf16-true"])
def test_other_values_pass_through(cpu, value):
    cpu(cpuinfo(SAPPHIRE_RAPIDS))
    assert resolve_precision(value, "cpu") == (value, f"trainer.precision={value}")


def test_bf16_asked_on_a_cpu_that_emulates_it_passes_with_a_warning(cpu):
    cpu(cpuinfo(AVX2))
    chosen, reason = resolve_precision("bf16-mixed", "cpu")
    assert chosen == "bf16-mixed"
    assert reason.startswith("trainer.precision=bf16-mixed, though this CPU has no native bf16 (no amx_bf16/")
    assert "trainer.precision=auto chooses from the hardware" in reason
    cpu(None)  # cannot tell: no warning
    assert resolve_precision("bf16-mixed", "cpu") == ("bf16-mixed", "trainer.precision=bf16-mixed")


def test_gpus_ask_torch(cpu, monkeypatch):
    cpu(cpuinfo(SAPPHIRE_RAPIDS))  # the CPU's flags do not matter for a GPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *args: "NVIDIA Tesla T4")
    asked = []

    def is_bf16_supported(including_emulation: bool = True) -> bool:
        asked.append(including_emulation)
        return including_emulation  # a T4: bf16 only by emulation

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
    for accelerator in ("gpu", "cuda", "auto"):
        assert not native_bf16(accelerator)
        assert_auto(resolve_precision("auto", accelerator), "32-true", "(NVIDIA Tesla T4) has no native bf16")
    assert set(asked) == {False}  # emulation never counts as native
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *args: "NVIDIA H100")
    assert_auto(resolve_precision("auto", "gpu"), "bf16-mixed", "(NVIDIA H100) has native bf16")


def test_auto_accelerator_without_a_gpu_is_the_cpu(cpu, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cpu(cpuinfo(AVX2))
    assert resolve_precision("auto", "auto")[0] == "32-true"
    cpu(cpuinfo(COOPER_LAKE))
    assert_auto(resolve_precision("auto", "auto"), "bf16-mixed", "CPU has native bf16", "(avx512_bf16)")
    assert_auto(resolve_precision("auto", "gpu"), "32-true", "no CUDA GPU")


def test_other_accelerators_are_not_known_native(cpu):
    cpu(cpuinfo(SAPPHIRE_RAPIDS))
    assert not native_bf16("mps")
    assert_auto(resolve_precision("auto", "mps"), "32-true", "accelerator=mps")


def test_this_machine_gets_an_answer():
    """Whatever this machine is, ``auto`` resolves to one of the two and says why in one line."""
    chosen, reason = resolve_precision("auto", "cpu")
    assert chosen in ("bf16-mixed", "32-true") and reason.startswith(f"trainer.precision=auto → {chosen}: ")
    assert "\n" not in reason
