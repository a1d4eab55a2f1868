"""The arithmetic of inference on a CPU: float32, or bfloat16 where the CPU has it.

TensorFlow's grappler rewrites graphs for oneDNN's bfloat16 kernels when its
auto_mixed_precision_onednn_bfloat16 option is on: convolutions and matrix products in
bfloat16, the rest in float32. The SavedModel is unchanged (TF Serving can do the
same from its session config), so the choice belongs to the process that runs it
and must be made before any graph runs. Measured with bench/precision.py on a CPU with
AVX512_BF16 and AMX: the model 2.1x the float32 rate (colorize_luma, batch 4 of 256 px),
mean PSNR on 120 test photos 0.003 dB lower.
"""

from colorize_tf import errors

AUTO = "auto"
FLOAT32 = "float32"
BFLOAT16 = "bfloat16"
PRECISIONS = (AUTO, FLOAT32, BFLOAT16)
# /proc/cpuinfo flags of CPUs with native bfloat16 arithmetic (Intel Cooper Lake and
# later, AMD Zen 4 and later); without them oneDNN emulates bfloat16, slower than float32.
BFLOAT16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
_GRAPPLER_OPTION = "auto_mixed_precision_onednn_bfloat16"


def cpu_bfloat16_flags(cpuinfo="/proc/cpuinfo"):
    """The BFLOAT16_CPU_FLAGS this CPU has (empty where cpuinfo cannot be read)."""
    try:
        with open(cpuinfo) as f:
            flags = next((line.split(":", 1)[1].split() for line in f
                          if line.startswith("flags")), [])
    except OSError:
        return []
    return [flag for flag in BFLOAT16_CPU_FLAGS if flag in flags]


def resolve(choice, cpu_flags):
    """(PRECISIONS value, the CPU's bfloat16 flags) -> FLOAT32 or BFLOAT16; ValueError
    for bfloat16 on a CPU without it (emulated, it would be slower) or an unknown name."""
    if choice not in PRECISIONS:
        raise errors.Error(f"precision must be one of {', '.join(PRECISIONS)}, got {choice!r}")
    if choice == FLOAT32:
        return FLOAT32
    if cpu_flags:
        return BFLOAT16
    if choice == BFLOAT16:
        raise errors.Error("this CPU has no native bfloat16 (none of "
                           f"{', '.join(BFLOAT16_CPU_FLAGS)} in /proc/cpuinfo)")
    return FLOAT32


def use(precision):
    """Sets the process's graphs to FLOAT32 or BFLOAT16 arithmetic; call before any
    graph runs (grappler rewrites a function when it is first instantiated)."""
    import tensorflow as tf  # here: flags are checked before TensorFlow loads
    tf.config.optimizer.set_experimental_options({_GRAPPLER_OPTION: precision == BFLOAT16})
