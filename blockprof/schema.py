"""The vocabulary of blockprof, in one place: spec fields, metrics, point keys, record fields.

Every list of variant fields (labels, click options, grid and suite keys, plot
legends, report columns, the record schema's docs) is derived from the tables
below, so a new variant field is one :class:`Field` entry here plus its formula
in the block that takes it. Values enter through :func:`coerce`, which holds
the bounds: a whole-number field stays ``int`` (``4.0`` from a TOML file or a
data frame becomes ``4``; ``4.5`` is refused) and a size has a sane ceiling.

Pure: no torch, no pandas, no click (``python -m blockprof.schema`` prints the
Markdown reference, ``--write`` updates docs/reference/schema.md).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from blockprof.errors import BlockprofError

#: the activations a block may use, by name (elementwise: no parameters, no MACs)
ACTIVATIONS = ("relu", "relu6", "hardswish", "silu")
#: where an SE's squeeze width and its activations come from (see blockprof.blocks.shapes.se_plan)
SE_STYLES = ("standard", "mobilenetv3", "efficientnet", "regnet")
#: the kernel sizes of a block's spatial (depthwise / expansion) conv: odd, so padding k//2 keeps 'same'
KERNELS = (3, 5, 7)


@dataclass(frozen=True)
class Field:
    """One BlockSpec field: its type, default, bounds, label mark, option help and description.

    ``mark`` is a format string for labels (``"s{}"`` → ``s2``); empty for fields a
    label shows otherwise (block, widths, input). A mark starting with ``:`` is glued
    to the mark before it (``se0.25:efficientnet``). ``variant`` fields are the options
    a block may or may not take (``BlockDef.accepts``); the others every block has.
    """

    name: str
    kind: type
    default: Any
    description: str
    help: str = ""
    mark: str = ""
    variant: bool = False
    minimum: float | None = None
    maximum: float | None = None
    min_open: bool = False
    max_open: bool = False
    choices: tuple[Any, ...] | None = None
    example: str = ""
    #: the default in words where ``default`` alone would mislead (None means "the block's own")
    default_text: str = ""

    @property
    def option(self) -> str:
        """The CLI flag: ``--width-per-group``."""
        return "--" + self.name.replace("_", "-")

    @property
    def optional(self) -> bool:
        return self.default is None

    def rule(self) -> str:
        """What the field accepts, in words: ``a whole number in [1, 1048576]``."""
        if self.choices is not None:
            return "one of " + ", ".join(map(str, self.choices))
        what = "a whole number" if self.kind is int else "a number" if self.kind is float else "a name"
        if self.minimum is None:
            return what
        low = f"({_number_text(self.minimum)}" if self.min_open else f"[{_number_text(self.minimum)}"
        high = f"{_number_text(self.maximum)})" if self.max_open else f"{_number_text(self.maximum)}]"
        return f"{what} in {low}, {high}"

    def format(self, value: Any) -> str:
        """A value as a label shows it: numbers with ``:g``."""
        return self.mark.format(f"{value:g}" if isinstance(value, (int, float)) else value)


_WIDTH = 2**20
#: every BlockSpec field, in BlockSpec order (the label order of the marks is this order too)
FIELDS: tuple[Field, ...] = (
    Field("block", str, None, "block name, or 'package.module:callable' for a user block"),
    Field(
        "in_channels",
        int,
        None,
        "input width C_in",
        "Residual-stream width C_in.",
        minimum=1,
        maximum=_WIDTH,
        example="256",
    ),
    Field(
        "out_channels",
        int,
        None,
        "output width C_out (default: C_in)",
        "Output width when it differs from --channels.",
        variant=True,
        minimum=1,
        maximum=_WIDTH,
        example="512",
        default_text="in_channels",
    ),
    Field(
        "stride",
        int,
        1,
        "stride of the block",
        "Stride of the block (on its spatial conv).",
        mark="s{}",
        variant=True,
        minimum=1,
        maximum=64,
        example="2",
    ),
    Field(
        "expansion",
        float,
        None,
        "bottleneck: out/inner width; inverted residual: t; basic: 1",
        "Bottleneck: out/inner (default 4). Inverted residual: t (default 6).",
        mark="t{}",
        variant=True,
        minimum=0,
        min_open=True,
        maximum=1024,
        example="4",
    ),
    Field(
        "groups",
        int,
        1,
        "groups of the bottleneck's 3×3",
        "Bottleneck: groups of the 3×3 conv (ResNeXt).",
        mark="g{}",
        variant=True,
        minimum=1,
        maximum=_WIDTH,
        example="32",
    ),
    Field(
        "width_per_group",
        int,
        None,
        "torchvision's ResNeXt width_per_group, or null",
        "Bottleneck: torchvision's width_per_group (ResNeXt 32×4d: --groups 32 --width-per-group 4).",
        mark="w{}",
        variant=True,
        minimum=1,
        maximum=_WIDTH,
        example="4",
        default_text="none",
    ),
    Field(
        "kernel",
        int,
        None,
        "kernel side of the block's spatial conv (3 unless the block says otherwise)",
        "Kernel side of the depthwise / expansion conv (odd: 3, 5, 7).",
        mark="k{}",
        variant=True,
        choices=KERNELS,
        example="5",
    ),
    Field(
        "activation",
        str,
        None,
        "the block's activation (relu, relu6, hardswish, silu)",
        "Activation of the block's convs (default: the block's own, e.g. relu, relu6).",
        mark="{}",
        variant=True,
        choices=ACTIVATIONS,
        example="silu",
    ),
    Field(
        "se",
        float,
        0.0,
        "squeeze-excitation ratio (0 = none)",
        "Squeeze-excitation ratio (squeeze width = int(C_in·se)), e.g. 0.25.",
        mark="se{}",
        variant=True,
        minimum=0,
        maximum=1,
        max_open=True,
        example="0.25",
    ),
    Field(
        "se_style",
        str,
        None,
        "where the SE's squeeze width and activations come from (standard, mobilenetv3, ...)",
        "SE flavour: standard, mobilenetv3, efficientnet or regnet.",
        mark=":{}",
        variant=True,
        choices=SE_STYLES,
        example="efficientnet",
    ),
    Field(
        "spatial",
        int,
        56,
        "input height = width",
        "Input height = width, e.g. 56 or 56,28.",
        minimum=1,
        maximum=2**16,
        example="56",
    ),
    Field("batch", int, 1, "batch size", "Batch size(s).", minimum=1, maximum=2**16, example="32"),
)
BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}
#: the variant options, in label order
VARIANT_FIELDS: tuple[Field, ...] = tuple(f for f in FIELDS if f.variant)
VARIANT_NAMES: tuple[str, ...] = tuple(f.name for f in VARIANT_FIELDS)

#: the timing conditions that multiply a timed sweep's cells
CONDITIONS: dict[str, str] = {"dtype": "compute dtype of a timing", "device": "device of a timing"}
#: the values of the two conditions (``auto``: CUDA when available, else CPU)
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
DTYPES: tuple[str, ...] = ("float32", "bfloat16", "float16")
#: bytes per value of each dtype (parameters stay float32: autocast casts per op)
DTYPE_BYTES: dict[str, int] = {"float32": 4, "bfloat16": 2, "float16": 2}
#: the keys that make one comparison point of a sweep: rows at the same point are compared across blocks
POINT_KEYS: tuple[str, ...] = ("in_channels", "out_channels", "stride", "spatial", "batch", "dtype", "device")


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    description: str


#: what a record measures; ``count`` metrics are exact and compared exactly, the rest are timings
METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("params", "parameters", "trainable parameters (scalars), BN included"),
        Metric("params_conv", "parameters", "conv weights only (no bias, no BN)"),
        Metric("macs", "MAC", "forward multiply-accumulates of conv and linear layers"),
        Metric(
            "train_flops",
            "FLOP",
            "forward + backward FLOPs, conv and linear (2 × (macs + bwd_input_macs + bwd_weight_macs))",
        ),
        Metric("fwd_ms", "ms", "median forward time (eval, inference mode)"),
        Metric("train_ms", "ms", "median training-step time (forward + backward)"),
        Metric("fwd_gflops_per_s", "GFLOP/s", "forward FLOPs over the median forward time"),
        Metric("train_gflops_per_s", "GFLOP/s", "training FLOPs over the median training-step time"),
        Metric("time", "s", "a regression check's timing: rounds of samples per cell, compared by a significance test"),
    )
}
#: the exact counts a comparison or a regression check relates across blocks
COUNT_METRICS: tuple[str, ...] = ("params", "params_conv", "macs", "train_flops")
#: the median times of a timed comparison
TIME_METRICS: tuple[str, ...] = ("fwd_ms", "train_ms")

#: record field → what it holds: a public interface (``--format json``, CSV columns, saved runs, baselines):
#: add fields, never rename or drop one
RECORD_FIELDS: dict[str, str] = {
    **{f.name: f.description for f in FIELDS},
    "model": "a model cell's target 'package.module:callable' (null for a block cell, whose spec fields are then null)",
    "input_shape": "a model cell's input shape, batch first, e.g. [1, 3, 224, 224]",
    "inner_width": "width inside the block (bottleneck inner, inverted-residual hidden), or null",
    "count_source": "'analytic' (closed form) or 'trace' (a user block, or a network of them: traced op by op)",
    "params": METRICS["params"].description,
    "module_params": "sum(p.numel() for p in module.parameters()): the independent check of params",
    "params_conv": METRICS["params_conv"].description,
    "macs": METRICS["macs"].description,
    "flops": "2 × macs (1 MAC = 2 FLOPs)",
    "bwd_input_macs": "backward: input-gradient MACs",
    "bwd_weight_macs": "backward: weight-gradient MACs",
    "train_flops": METRICS["train_flops"].description,
    "fvcore_macs": "fvcore FlopCountAnalysis total (its 'flops' are MACs; includes BN and pooling)",
    "fvcore_agrees": "fvcore equals the analytic count under fvcore's convention",
    "fvcore_note": "what fvcore's number is made of, or why it differs",
    "thop_macs": "thop.profile total (MACs; includes BN and pooling)",
    "thop_agrees": "thop equals the analytic count under thop's convention",
    "thop_note": "what thop's number is made of, or why it differs",
    "torch_macs": "torch.utils.flop_counter forward FLOPs ÷ 2 (conv and matmul only)",
    "torch_agrees": "torch's forward equals analytic macs",
    "torch_note": "what torch's number is made of, or why it differs",
    "torch_train_flops": "torch.utils.flop_counter forward + backward FLOPs",
    "torch_train_agrees": "torch's forward + backward equals analytic train_flops",
    "torch_train_note": "why torch's training count differs, when it does",
    "modules": "a model cell's per-module counts to depth 2, in definition order: name, type, depth, params, macs, flops, train_flops",
    "status": "'ok' or 'error'",
    "error": "the one-line error of a failed cell, else null",
}

#: what a timing adds to a record (compare --time, sweep --time), beside :data:`RECORD_FIELDS`
TIMING_RECORD_FIELDS: dict[str, str] = {
    "label": "what was timed (the spec's label, or the module's name)",
    "device": "'cpu' or 'cuda' (an untimed sweep keeps its grid's value, which may be 'auto')",
    "device_name": "GPU name on CUDA, CPU model on CPU",
    "cpu_model": "CPU model (from /proc/cpuinfo)",
    "threads": "torch intra-op threads every Timer ran with",
    "dtype": "compute dtype: float32, or bfloat16/float16 under autocast (parameters stay float32); an untimed sweep keeps its grid's",
    "memory_format": "'contiguous' or 'channels_last' (module and input)",
    "compile": "whether the module ran under torch.compile",
    "torch_version": "torch.__version__",
    "load_average": "1-minute load average when timing began (above the CPU count, other work competed for the cores)",
    "fwd_ms": "median time of one forward (eval mode, torch.inference_mode), milliseconds",
    "fwd_iqr_ms": "interquartile range of the forward samples, milliseconds",
    "fwd_runs": "number of forward samples behind the median (at least 10)",
    "fwd_calls": "forward calls timed in all (a sample may average several back-to-back calls)",
    "fwd_total_s": "seconds spent in timed forward calls",
    "fwd_noisy": "forward IQR above 10% of its median: do not trust the median alone",
    "fwd_samples_ms": "the raw forward samples (per-call milliseconds), for significance tests",
    "train_ms": "median time of one training step (train mode: forward, backward of the output's mean, fresh gradients), milliseconds",
    "train_iqr_ms": "interquartile range of the training-step samples, milliseconds",
    "train_runs": "number of training-step samples behind the median (at least 10)",
    "train_calls": "training steps timed in all",
    "train_total_s": "seconds spent in timed training steps",
    "train_noisy": "training-step IQR above 10% of its median",
    "train_samples_ms": "the raw training-step samples (per-call milliseconds)",
    "runs": "the fewest samples behind any time in the row: min(fwd_runs, train_runs)",
    "noisy": "any of the row's times is noisy",
    "fwd_cpu_wall_ratio": "share of the forward samples' wall time the timed code was on the CPU (timing thread, or process / threads)",
    "train_cpu_wall_ratio": "share of the training-step samples' wall time the timed code was on the CPU",
    "cpu_wall_ratio": "the lower of fwd_cpu_wall_ratio and train_cpu_wall_ratio",
    "steal_share": "share of all CPU time the hypervisor stole while the run was timed (/proc/stat; null where unknown)",
    "load_after": "1-minute load average when timing ended (load_average is the one when it began)",
    "contended": "the times are spoiled by other work: cpu_wall_ratio below 0.9 or steal_share above 5%; do not rank them",
    "contention": "why the row is contended (one line), else null",
    "fwd_gflops_per_s": "achieved forward GFLOP/s: analytic flops (conv + linear) / fwd median / 1e9",
    "train_gflops_per_s": "achieved training GFLOP/s: analytic train_flops / train median / 1e9",
    "param_bytes": "analytic: parameters × 4 bytes (float32 storage)",
    "saved_activation_bytes": "analytic: tensors autograd saves for backward, summed per op (a tensor two ops save counts twice)",
    "saved_bytes_measured": "measured: distinct storages autograd saved in one training step (saved_tensors_hooks), parameters excluded",
    "fwd_min_bytes": "analytic minimum forward traffic: input read once, output written once, parameters read once",
    "train_min_bytes": "analytic minimum training traffic: twice the forward's (gradients of the same tensors)",
    "fwd_intensity": "forward arithmetic intensity: flops / fwd_min_bytes (FLOP per byte)",
    "train_intensity": "training arithmetic intensity: train_flops / train_min_bytes (FLOP per byte)",
    "peak_gflops_per_s": "device compute peak from 'blockprof calibrate' (fastest sample of the faster of a large matmul and a 3×3 conv, in this dtype)",
    "peak_gbytes_per_s": "device bandwidth peak from 'blockprof calibrate' (fastest sample of a large copy)",
    "fwd_bound": "'memory' when fwd_intensity is below the ridge point peak FLOP/s ÷ peak bytes/s, else 'compute'",
    "fwd_roofline_fraction": "fwd_gflops_per_s / min(peak GFLOP/s, fwd_intensity × peak GB/s)",
    "train_roofline_fraction": "train_gflops_per_s / min(peak GFLOP/s, train_intensity × peak GB/s)",
    "roofline_fraction": "the forward's roofline fraction (fwd_roofline_fraction)",
    "fwd_peak_bytes": "CUDA: peak allocated bytes of one forward (its parameters, buffers and input included); null on CPU",
    "train_peak_bytes": "CUDA: peak allocated bytes of one training step; null on CPU",
    "error": "one line per failed mode, else null",
}
#: what a sweep adds to each record of its run (records.jsonl): the cell's bookkeeping
SWEEP_RECORD_FIELDS: dict[str, str] = {
    "cell": "the cell's key: 16 hex digits of the SHA-256 of its grid fields (see blockprof.grid.Cell.key)",
    "index": "the cell's position in the grid's cell order (shards hold index % n == i - 1)",
    "count_s": "seconds blockprof spent counting the cell (analytic + tools)",
    "timing_group": "how many cells were timed together, interleaved (the blocks at one width, size, batch, dtype, device)",
    "timing_group_s": "wall seconds of the whole group's timing (warm-up, memory probes and timed calls)",
}


def _json_type(kind: type) -> str:
    return {int: "integer", float: "number", str: "string", bool: "boolean"}[kind]


#: record field → its JSON type; "or null" where a record may hold null (a count a tool did not take, a time
#: of a mode not timed, a field the block does not take). Every key of every record is here (a test sweeps).
RECORD_TYPES: dict[str, str] = {
    # a variant field with no default of its own is null for the blocks that do not take it (out_channels is C_in)
    **{
        f.name: _json_type(f.kind)
        + (" or null" if f.variant and f.default is None and f.name != "out_channels" else "")
        for f in FIELDS
    },
    "inner_width": "integer or null",
    "count_source": "string",
    "params": "integer",
    "module_params": "integer",
    # a model cell's own (MODEL_FIELDS)
    "model": "string",
    "input_shape": "list of integers",
    "modules": "list of objects",
    **dict.fromkeys(
        ("params_conv", "macs", "flops", "bwd_input_macs", "bwd_weight_macs", "train_flops"), "integer or null"
    ),
    **{f"{tool}_macs": "number or null" for tool in ("fvcore", "thop", "torch")},
    **{f"{tool}_agrees": "boolean or null" for tool in ("fvcore", "thop", "torch", "torch_train")},
    **{f"{tool}_note": "string" for tool in ("fvcore", "thop", "torch", "torch_train")},
    "torch_train_flops": "integer or null",
    "status": "string",
    "error": "string or null",
    # timing
    **dict.fromkeys(("label", "device", "dtype", "memory_format", "torch_version"), "string"),
    **dict.fromkeys(("device_name", "cpu_model"), "string"),
    "threads": "integer",
    "compile": "boolean",
    **dict.fromkeys(("load_average", "load_after", "steal_share", "cpu_wall_ratio"), "number or null"),
    **{
        f"{mode}_{name}": kind
        for mode in ("fwd", "train")
        for name, kind in (
            ("ms", "number or null"),
            ("iqr_ms", "number or null"),
            ("runs", "integer or null"),
            ("calls", "integer or null"),
            ("total_s", "number or null"),
            ("noisy", "boolean or null"),
            ("cpu_wall_ratio", "number or null"),
            ("samples_ms", "list of numbers or null"),
            ("gflops_per_s", "number or null"),
            ("min_bytes", "integer or null"),
            ("intensity", "number or null"),
            ("roofline_fraction", "number or null"),
            ("peak_bytes", "integer or null"),
        )
    },
    "runs": "integer or null",
    "noisy": "boolean",
    "contended": "boolean",
    "contention": "string or null",
    **dict.fromkeys(("param_bytes", "saved_activation_bytes", "saved_bytes_measured"), "integer or null"),
    **dict.fromkeys(("peak_gflops_per_s", "peak_gbytes_per_s", "roofline_fraction"), "number or null"),
    "fwd_bound": "string or null",
    # sweep bookkeeping
    "cell": "string",
    "index": "integer",
    "count_s": "number",
    "timing_group": "integer",
    "timing_group_s": "number",
}


#: a network record's fields (``blockprof network --format json``) beyond a block record's count fields
NETWORK_RECORD_FIELDS: dict[str, str] = {
    "network": "one of torchvision's 43 classification networks of the three block families (blockprof.networks.names())",
    "swapped": "true when --block replaced the network's own block",
    "published_params": "torchvision's published parameter count (unswapped networks), else null",
    "published_gflops": "torchvision's published GFLOPS (conv + linear MACs in G, 3 decimals) at its default input size, else null",
    "stages": "per-stage rows: stage, modules, layout, output, the totals' fields, module_params, torch_macs",
}
#: a stage row's fields beyond the totals (params, params_conv, macs, flops, bwd_*_macs, train_flops)
STAGE_RECORD_FIELDS: dict[str, str] = {
    "stage": "stem, the stages (layer1..4 for ResNet, block1..4 for RegNet, stage1.. or stack1..), head",
    "modules": "the torch modules the stage holds, e.g. layer1 or features.2–3",
    "layout": "what the stage is, e.g. '1× bottleneck 64→256 t4, 2× bottleneck 256→256 t4'",
    "output": "the stage's output, C×H×W",
    "module_params": "parameters of the stage's modules: the independent check of params",
    "torch_macs": "PyTorch's flop counter's MACs for the stage's modules (null if torch did not run)",
}
#: the JSON type of each network and stage field
NETWORK_TYPES: dict[str, str] = {
    "network": "string",
    "swapped": "boolean",
    "published_params": "integer or null",
    "published_gflops": "number or null",
    "stages": "list of objects",
    "stage": "string",
    "modules": "string",
    "layout": "string",
    "output": "string",
    "module_params": "integer",
    "torch_macs": "number or null",
}


#: the record fields only a model cell has (a block cell's record leaves them out)
MODEL_FIELDS: tuple[str, ...] = ("model", "input_shape", "modules")


def field(name: str) -> Field:
    try:
        return BY_NAME[name]
    except KeyError:
        raise BlockprofError(f"unknown field {name!r}; known: {', '.join(BY_NAME)}") from None


def coerce(name: str, value: Any, what: str | None = None) -> Any:
    """``value`` checked against field ``name``'s type, bounds and choices, in the field's type.

    ``None`` stays ``None`` for an optional field (a NaN from a data frame too). A whole
    float (``4.0``) becomes the int a whole-number field needs; strings from a command
    line are parsed. Raises BlockprofError naming the field (or ``what``) and what it accepts.
    """
    f = field(name)
    what = what or name
    if value is None or (isinstance(value, float) and math.isnan(value) and f.optional):
        if f.optional:
            return None
        raise BlockprofError(f"{what} must be {f.rule()}, got None")
    if f.kind is str:
        if not isinstance(value, str) or (f.choices is not None and value not in f.choices):
            raise BlockprofError(f"{what} must be {f.rule()}, got {value!r}")
        return value
    number = _number(value)
    if number is None or (
        isinstance(number, float) and (not math.isfinite(number) or (f.kind is int and not number.is_integer()))
    ):
        raise BlockprofError(f"{what} must be {f.rule()}, got {value!r}")
    typed = int(number) if f.kind is int else float(number)
    if f.choices is not None and typed not in f.choices:
        raise BlockprofError(f"{what} must be {f.rule()}, got {value!r}")
    low_ok = f.minimum is None or (typed > f.minimum if f.min_open else typed >= f.minimum)
    high_ok = f.maximum is None or (typed < f.maximum if f.max_open else typed <= f.maximum)
    if not (low_ok and high_ok):
        raise BlockprofError(f"{what} must be {f.rule()}, got {value!r}")
    return typed


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars from a data frame
        return _number(value.item())
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            try:
                return float(value)
            except ValueError:
                return None
    return None


def marks(values: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> list[str]:
    """The label marks of the variant fields that ``values`` sets to something other than ``defaults``
    (each field's schema default, overridden by a block's own): ``["s2", "t2", "se0.25:efficientnet"]``.
    None and NaN count as not given."""
    defaults = {**{f.name: f.default for f in VARIANT_FIELDS}, **(defaults or {})}
    out: list[str] = []
    shown_last = False  # a glued mark (":efficientnet") needs the mark just before it
    for f in VARIANT_FIELDS:
        value = values.get(f.name)
        if not f.mark or value is None or value != value or value == defaults.get(f.name):
            shown_last = False
            continue
        if not f.mark.startswith(":"):
            out.append(f.format(value))
        elif shown_last:
            out[-1] += f.format(value)
        shown_last = True
    return out


def label(values: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> str:
    """``bottleneck 256→512 s2 g32``: block, widths and the marks of :func:`marks`."""
    c_in, c_out = values["in_channels"], values.get("out_channels")
    width = f"{c_in}→{c_out if c_out is not None else c_in}"
    return " ".join([str(values["block"]), width, *marks(values, defaults)])


def markdown() -> str:
    """The schema as Markdown: spec fields, metrics and record fields (docs/reference/schema.md)."""
    lines = [
        "# The record schema",
        "",
        "Generated from `blockprof/schema.py` by `python -m blockprof.schema --write`; do not edit by hand.",
        "",
        "## Block spec fields",
        "",
        "Variant fields apply only to the blocks that take them (`blockprof blocks`); a field a block",
        "does not take is an error. Grid and suite files use the field name as the key.",
        "",
        "| field | type | default | accepts | CLI option | label mark | what it is |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in FIELDS:
        default = f.default_text or ("per block" if f.variant else "—") if f.default is None else f"{f.default:g}"
        option = (
            f"`{f.option}`"
            if f.variant
            else "`--channels`"
            if f.name == "in_channels"
            else f"`--{f.name}`"
            if f.name != "block"
            else "`--blocks`"
        )
        glued = BY_NAME["se"].format(0.25) if f.mark.startswith(":") else ""  # a glued mark follows the se mark
        mark = f"`{glued}{f.mark.format(f.example)}`" if f.mark else "—"
        accepts = f.rule() if f.name != "block" else "a registered name or a path"
        lines.append(
            f"| `{f.name}` | {f.kind.__name__} | {default} | {accepts} | {option} | {mark} | {_cell(f.description)} |"
        )
    lines += ["", "## Metrics", "", "| metric | unit | what it is |", "|---|---|---|"]
    lines += [f"| `{m.name}` | {m.unit} | {_cell(m.description)} |" for m in METRICS.values()]
    lines += [
        "",
        "## Point keys",
        "",
        "Rows of a sweep at the same " + ", ".join(f"`{k}`" for k in POINT_KEYS) + " are one comparison point.",
        "",
        "## Record fields",
        "",
        "A record is one flat JSON object: `--format json`, a CSV row, a line of a run's `records.jsonl`.",
        "A counted record has the count fields (a failed one: its spec fields, `status` and `error`); a timed",
        "one (`compare --time`, `sweep --time`) also the timing fields; a sweep's records also the cell's",
        "bookkeeping. A field in two groups is listed once, in the first. The type is the JSON type; `or null`",
        "where a record may hold null.",
    ]
    groups = (
        ("Count fields", RECORD_FIELDS),
        ("Timing fields", TIMING_RECORD_FIELDS),
        ("Sweep bookkeeping", SWEEP_RECORD_FIELDS),
    )
    listed: set[str] = set()
    for title, fields in groups:
        lines += ["", f"### {title}", "", "| field | type | what it holds |", "|---|---|---|"]
        lines += [
            f"| `{name}` | {RECORD_TYPES[name]} | {_cell(text)} |"
            for name, text in fields.items()
            if name not in listed
        ]
        listed.update(fields)
    lines += [
        "",
        "## Network records",
        "",
        "`blockprof network NAME --format json` gives one object: the count fields above (totals of the whole",
        "network, the tools' fields when they ran), these fields, and `stages`, one row per stage with the",
        "totals' fields and the stage fields below.",
    ]
    for title, fields in (("Network fields", NETWORK_RECORD_FIELDS), ("Stage fields", STAGE_RECORD_FIELDS)):
        lines += ["", f"### {title}", "", "| field | type | what it holds |", "|---|---|---|"]
        lines += [f"| `{name}` | {NETWORK_TYPES[name]} | {_cell(text)} |" for name, text in fields.items()]
    return "\n".join(lines) + "\n"


def _number_text(number: float | None) -> str:
    return str(int(number)) if number is not None and float(number).is_integer() else str(number)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def variant_values(given: Mapping[str, Any], names: Iterable[str] = VARIANT_NAMES) -> dict[str, Any]:
    """The variant options actually given (not None), keyed by field name."""
    return {k: given[k] for k in names if given.get(k) is not None}


if __name__ == "__main__":
    import sys
    from pathlib import Path

    text = markdown()
    if "--write" in sys.argv[1:]:
        target = Path(__file__).resolve().parent.parent / "docs" / "reference" / "schema.md"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        print(f"wrote {target}")
    else:
        sys.stdout.write(text)
