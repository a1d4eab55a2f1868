"""Choosing bfloat16 or float32 inference from the CPU's flags."""
import pytest
import tensorflow as tf

from colorize_tf.serving import precision


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f amx_bf16 avx512_bf16\n"
                       "processor\t: 1\nflags\t\t: fpu sse avx512f amx_bf16 avx512_bf16\n")
    assert precision.cpu_bfloat16_flags(str(cpuinfo)) == ["avx512_bf16", "amx_bf16"]
    cpuinfo.write_text("flags\t\t: fpu sse avx2 avx512f avx512_bf16x\n")  # a longer name
    assert precision.cpu_bfloat16_flags(str(cpuinfo)) == []
    assert precision.cpu_bfloat16_flags(str(tmp_path / "absent")) == []


@pytest.mark.parametrize("choice,flags,expected", [
    ("auto", ["avx512_bf16"], "bfloat16"),
    ("auto", [], "float32"),
    ("float32", ["amx_bf16"], "float32"),
    ("bfloat16", ["amx_bf16"], "bfloat16"),
])
def test_resolve(choice, flags, expected):
    assert precision.resolve(choice, flags) == expected


def test_bfloat16_without_the_cpu_or_an_unknown_name_is_refused():
    with pytest.raises(ValueError, match="no native bfloat16"):
        precision.resolve("bfloat16", [])
    with pytest.raises(ValueError, match="must be one of auto, float32, bfloat16"):
        precision.resolve("float16", ["amx_bf16"])


def test_use_sets_and_clears_the_grappler_option():
    option = "auto_mixed_precision_onednn_bfloat16"
    try:
        precision.use(precision.BFLOAT16)
        assert tf.config.optimizer.get_experimental_options()[option] is True
    finally:
        precision.use(precision.FLOAT32)
    assert tf.config.optimizer.get_experimental_options()[option] is False
