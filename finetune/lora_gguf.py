"""A PEFT LoRA adapter of a Llama-architecture model (SmolLM2) as a llama.cpp GGUF adapter, so the
specialist expert ships as a few MB that llama.cpp applies to the embedded GGUF base.

llama.cpp's adapter format: ``general.type = adapter``, ``adapter.type = lora``,
``adapter.lora.alpha``, and for each adapted weight ``<base tensor>.lora_a`` (numpy shape
``(rank, in)``) and ``.lora_b`` (``(out, rank)``); llama.cpp scales ``B @ A`` by ``alpha / rank``,
as PEFT does. Its converter stores the query and key weights of Llama models with their rows
permuted (rotary halves interleaved): the rows of ``lora_b`` are permuted the same way, or the
adapter would add its update to the wrong rows.

The adapter is stored as Q5_1 by default, for answers that do not depend on the batch. llama.cpp
computes the tokens of consecutive sequences in one micro-batch, and a float (F16 or F32) matrix
multiplies one token with other kernels than several (llamafile's ``sgemm`` from two tokens on): the
adapter's update then moves in its last bits with what shares the micro-batch, and the base model's
8-bit quantized activations turn that into other greedy tokens. Measured on the shipped specialist:
7 of 8 rewrites decoded in one batch differed from the same requests alone with its F16 adapter,
none of 16 with the Q5_1 one, at the same speed (the Q4_1 base has no ``sgemm`` kernel, so one path
serves every batch size; Q5_1 has none either). Q5_1 blocks are 32 values long, so the rank is
padded with zero rows to a multiple of 32 and alpha raised with it (the update ``alpha / rank * B @ A``
is unchanged).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

GGUF_NAMES = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
"""transformers module of a Llama decoder layer -> llama.cpp tensor name."""

_PEFT_KEY = re.compile(r"(?:.*\.)?layers\.(\d+)\.(\w+\.\w+)\.lora_([AB])\.weight$")


def permute_rows(weights: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's row order for a query or key projection with ``n_head`` heads: each head's two
    rotary halves interleaved."""
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def gguf_tensors(state: dict[str, np.ndarray], *, n_head: int, n_head_kv: int) -> dict[str, np.ndarray]:
    """llama.cpp adapter tensors from a PEFT adapter's state dict (numpy arrays)."""
    tensors: dict[str, np.ndarray] = {}
    for key, value in state.items():
        match = _PEFT_KEY.fullmatch(key)
        if match is None or match.group(2) not in GGUF_NAMES:
            raise ValueError(
                f"adapter tensor '{key}' is not a LoRA weight of a Llama attention or MLP projection; "
                f"supported modules: {', '.join(GGUF_NAMES)}"
            )
        layer, module, side = match.groups()
        if side == "B" and module == "self_attn.q_proj":
            value = permute_rows(value, n_head)
        elif side == "B" and module == "self_attn.k_proj":
            value = permute_rows(value, n_head_kv)
        tensors[f"blk.{layer}.{GGUF_NAMES[module]}.weight.lora_{side.lower()}"] = value
    return tensors


ADAPTER_DTYPES = ("q5_1", "f16", "f32")
"""Storage of a GGUF adapter; ``q5_1`` (the default) is the one whose answers do not depend on the
batch (see the module docstring)."""

QUANT_BLOCK = 32
"""Values per Q5_1 block: the rank (the inner size of ``B @ A``) is padded to a multiple of it."""


def pad_rank(tensors: dict[str, np.ndarray], alpha: float) -> tuple[dict[str, np.ndarray], float]:
    """The adapter with its rank padded by zero rows of ``lora_a`` and zero columns of ``lora_b`` to a
    multiple of :data:`QUANT_BLOCK`, and the alpha that keeps ``alpha / rank`` (the same update; after
    quantization the padded rows of ``lora_a`` stay exactly zero, so whatever the padded columns of
    ``lora_b`` round to adds nothing)."""
    ranks = {
        name: value.shape[0] if name.endswith(".lora_a") else value.shape[1]
        for name, value in tensors.items()
    }
    if not ranks:
        raise ValueError("the adapter has no tensors")
    rank = next(iter(ranks.values()))
    for name, other in ranks.items():
        if other != rank:  # one alpha serves every tensor: their padding must be the same
            raise ValueError(f"adapter tensor '{name}' has rank {other}, others {rank}: Q5_1 needs one rank")
    padded = -(-rank // QUANT_BLOCK) * QUANT_BLOCK
    if padded == rank:
        return tensors, alpha
    result = {}
    for name, value in tensors.items():
        if name.endswith(".lora_a"):
            result[name] = np.pad(value, ((0, padded - rank), (0, 0)))
        else:
            result[name] = np.pad(value, ((0, 0), (0, padded - rank)))
    return result, alpha * padded / rank


def write_adapter_tensors(
    tensors: dict[str, np.ndarray], alpha: float, out: str | Path, *, dtype: str = "q5_1"
) -> Path:
    """Write llama.cpp adapter tensors (names and numpy shapes as :func:`gguf_tensors` gives them)
    as a GGUF adapter at ``out``, stored as ``dtype`` (one of :data:`ADAPTER_DTYPES`)."""
    import gguf
    from gguf.quants import QuantError, quantize

    if dtype not in ADAPTER_DTYPES:
        raise ValueError(f"adapter dtype must be one of {', '.join(ADAPTER_DTYPES)}, got '{dtype}'")
    if dtype == "q5_1":
        tensors, alpha = pad_rank(tensors, alpha)
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(target.name + ".partial")
    writer = gguf.GGUFWriter(str(staging), "llama")
    try:
        writer.add_type("adapter")
        writer.add_string("adapter.type", "lora")
        writer.add_float32("adapter.lora.alpha", float(alpha))
        for name in sorted(tensors):
            value = np.ascontiguousarray(tensors[name], dtype=np.float32)
            if dtype == "q5_1":
                q5_1 = gguf.GGMLQuantizationType.Q5_1
                try:
                    stored = quantize(value, q5_1)
                except QuantError as error:  # rows must be whole 32-value blocks
                    raise ValueError(f"{target}: adapter tensor '{name}' {value.shape}: {error}") from None
                writer.add_tensor(name, stored, raw_dtype=q5_1)
            else:
                writer.add_tensor(name, value.astype(np.float16 if dtype == "f16" else np.float32))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    except BaseException:
        writer.close()
        staging.unlink(missing_ok=True)
        raise
    writer.close()
    staging.replace(target)
    return target


def write_gguf_adapter(
    adapter_dir: str | Path, base_config: dict, out: str | Path, *, dtype: str = "q5_1"
) -> Path:
    """Write the PEFT adapter in ``adapter_dir`` (``adapter_config.json`` and
    ``adapter_model.safetensors``) as a llama.cpp GGUF adapter at ``out``. ``base_config`` is the base
    model's ``config.json`` (head counts for the query/key row order)."""
    from safetensors.numpy import load_file

    folder = Path(adapter_dir)
    config = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    if config.get("use_rslora") or config.get("use_dora"):
        raise ValueError(f"{folder}: rsLoRA and DoRA adapters have no llama.cpp equivalent; train plain LoRA")
    if base_config.get("model_type") != "llama":
        raise ValueError(
            f"{folder}: only Llama-architecture bases convert (SmolLM2 is one), got '{base_config.get('model_type')}'"
        )
    n_head = int(base_config["num_attention_heads"])
    n_head_kv = int(base_config.get("num_key_value_heads", n_head))
    state = load_file(str(folder / "adapter_model.safetensors"))
    tensors = gguf_tensors(state, n_head=n_head, n_head_kv=n_head_kv)
    return write_adapter_tensors(tensors, float(config["lora_alpha"]), out, dtype=dtype)


def read_adapter_tensors(path: str | Path) -> tuple[dict[str, np.ndarray], float]:
    """A GGUF adapter's tensors as float32 arrays (llama.cpp names, numpy shapes) and its alpha."""
    import gguf
    from gguf.quants import dequantize

    reader = gguf.GGUFReader(str(path))
    alpha = float(reader.fields["adapter.lora.alpha"].contents())
    tensors = {}
    for tensor in reader.tensors:
        shape = tuple(int(d) for d in reversed(list(tensor.shape)))
        tensors[tensor.name] = dequantize(tensor.data, tensor.tensor_type).astype(np.float32).reshape(shape)
    return tensors, alpha


def convert_adapter(source: str | Path, out: str | Path, *, dtype: str = "q5_1") -> Path:
    """A GGUF adapter written again as ``dtype`` (an F16 one from an earlier ``train-expert`` as Q5_1)."""
    tensors, alpha = read_adapter_tensors(source)
    return write_adapter_tensors(tensors, alpha, out, dtype=dtype)


def unpermute_rows(weights: np.ndarray, n_head: int) -> np.ndarray:
    """The inverse of :func:`permute_rows`: transformers' row order of a query or key projection."""
    return (
        weights.reshape(n_head, weights.shape[0] // n_head // 2, 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def read_gguf_adapter(
    path: str | Path, *, n_head: int, n_head_kv: int
) -> tuple[dict[str, np.ndarray], float]:
    """A llama.cpp GGUF adapter back as PEFT module weights (``layers.N.self_attn.q_proj.lora_A``
    -> array, in transformers' row order) and its alpha: to load it into the transformers model it
    was trained on and check that both compute the same."""
    tensors, alpha = read_adapter_tensors(path)
    module_of = {short: long for long, short in GGUF_NAMES.items()}
    weights = {}
    for name, value in tensors.items():
        match = re.fullmatch(r"blk\.(\d+)\.(\w+)\.weight\.lora_([ab])", name)
        if match is None or match.group(2) not in module_of:
            raise ValueError(f"{path}: tensor '{name}' is not a LoRA weight this reader knows")
        layer, short, side = match.groups()
        if side == "b" and short == "attn_q":
            value = unpermute_rows(value, n_head)
        elif side == "b" and short == "attn_k":
            value = unpermute_rows(value, n_head_kv)
        weights[f"layers.{layer}.{module_of[short]}.lora_{side.upper()}"] = value
    return weights, alpha
