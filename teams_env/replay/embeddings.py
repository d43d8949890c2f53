"""The embeddings of every text a replay env can observe or score, stored beside a transition pack.

A text observation holds the current instruction's sentence embedding, and the novelty reward
compares a rewrite's embedding with the episode's earlier texts. Running the encoder for them would
cost a replay step more than everything else together, so the embeddings of every seed text, every
node's ``state`` and every rewrite are computed once and kept in ``embeddings.npz`` in the pack directory:
the vectors (at :data:`~teams_env.base_env.OBSERVATION_EMBEDDING_DTYPE`, the precision of every
observation, so a looked-up row equals what the encoder gives the live env), the encoder's name
and dimension, and the SHA-256 of the texts in order. A file made for other texts or by another
encoder is recomputed, never used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zipfile
from pathlib import Path

import numpy as np

from teams_env.base_env import OBSERVATION_EMBEDDING_DTYPE
from teams_env.encoder import SentenceEncoder, shared_encoder
from teams_env.replay.pack import MANIFEST_FILE, Pack, PackError, load_pack

logger = logging.getLogger(__name__)

EMBEDDINGS_FILE = "embeddings.npz"
ENCODE_CHUNK = 512
"""Texts per encoder call while computing a table (each call advances the progress bar)."""


class EmbeddingTable:
    """Text -> embedding row, for the texts of one pack."""

    def __init__(self, texts: list[str], vectors: np.ndarray) -> None:
        self.rows = {text: row for row, text in enumerate(texts)}
        self.vectors = vectors

    def vector(self, text: str) -> np.ndarray:
        return self.vectors[self.rows[text]]

    def __contains__(self, text: object) -> bool:
        return text in self.rows


def pack_texts(pack: Pack) -> list[str]:
    """Every text a replay env of ``pack`` can observe or score (each seed, each node's state and
    each rewrite), sorted so that the same pack always gives the same list."""
    nodes = pack.nodes.values()
    return sorted(
        {seed["text"] for seed in pack.seeds}
        | {node.state for node in nodes}
        | {node.instruction for node in nodes}
    )


def texts_sha256(texts: list[str]) -> str:
    return hashlib.sha256(json.dumps(texts, ensure_ascii=False).encode("utf-8")).hexdigest()


def load_embeddings(pack: Pack, encoder: SentenceEncoder) -> EmbeddingTable:
    """The table of ``pack``'s texts by ``encoder``: read from the pack's file when it was made for
    these texts by this encoder; else computed, and written there when the directory allows."""
    texts = pack_texts(pack)
    digest = texts_sha256(texts)
    path = pack.directory / EMBEDDINGS_FILE
    vectors = _read(path, digest, encoder, len(texts))
    if vectors is None:
        vectors = _compute(texts, encoder, path)
        try:
            _save(path, vectors, digest, encoder)
        except OSError as error:
            logger.info("%s: cannot write (%s); the embeddings stay in memory", path, error)
    return EmbeddingTable(texts, vectors)


_shared: dict[tuple[Path, str, str, int], EmbeddingTable] = {}


def shared_embeddings(pack: Pack, encoder: SentenceEncoder) -> EmbeddingTable:
    """One table per pack content and encoder in this process: vector envs share it."""
    key = (pack.directory.resolve(), str(pack.manifest.get("content_sha256")), encoder.name, encoder.dim)
    if key not in _shared:
        _shared[key] = load_embeddings(pack, encoder)
    return _shared[key]


def write_embeddings(pack: str | os.PathLike[str] | Pack, encoder: str | SentenceEncoder) -> Path:
    """(Re)compute the embeddings file of a finished pack with the encoder it was recorded with (an
    encoder spec such as ``"default"``, or the encoder itself); returns the file's path."""
    pack = pack if isinstance(pack, Pack) else load_pack(pack)
    encoder = shared_encoder(encoder) if isinstance(encoder, str) else encoder
    recorded = pack.manifest.get("encoder")
    if encoder.name != recorded or encoder.dim != pack.manifest.get("encoder_dim"):
        raise PackError(
            f"{pack.directory / MANIFEST_FILE}: recorded with encoder '{recorded}' "
            f"({pack.manifest.get('encoder_dim')} dims), not '{encoder.name}' ({encoder.dim} dims)"
        )
    texts = pack_texts(pack)
    path = pack.directory / EMBEDDINGS_FILE
    _save(path, _compute(texts, encoder, path), texts_sha256(texts), encoder)
    return path


def _read(path: Path, digest: str, encoder: SentenceEncoder, count: int) -> np.ndarray | None:
    """The stored vectors, or None when there is no file or it is for other texts or another encoder."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            made_for = (str(stored["texts_sha256"]), str(stored["encoder"]), int(stored["dim"]))
            vectors = stored["vectors"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        logger.info("%s: unreadable (%s); computing the embeddings again", path, error)
        return None
    wanted = (digest, encoder.name, encoder.dim)
    if made_for != wanted or vectors.shape != (count, encoder.dim):
        logger.info("%s: made for other texts or another encoder; computing the embeddings again", path)
        return None
    return vectors.astype(OBSERVATION_EMBEDDING_DTYPE, copy=False)


def _compute(texts: list[str], encoder: SentenceEncoder, path: Path) -> np.ndarray:
    from tqdm.auto import tqdm

    logger.info("%s: embedding %d texts with %s (once per pack)", path, len(texts), encoder.name)
    chunks = [texts[start : start + ENCODE_CHUNK] for start in range(0, len(texts), ENCODE_CHUNK)]
    parts = [encoder.encode(chunk) for chunk in tqdm(chunks, desc="embed pack texts", disable=None)]
    vectors = np.concatenate(parts) if parts else np.zeros((0, encoder.dim), np.float32)
    return vectors.astype(OBSERVATION_EMBEDDING_DTYPE)


def _save(path: Path, vectors: np.ndarray, digest: str, encoder: SentenceEncoder) -> None:
    """Write the file whole under a name of this process, then rename it into place, so that a
    reader (or another process writing the same file) never sees half of one."""
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            np.savez_compressed(
                handle, vectors=vectors, texts_sha256=digest, encoder=encoder.name, dim=encoder.dim
            )
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
