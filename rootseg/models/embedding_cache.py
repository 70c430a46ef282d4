"""An on-disk cache of frozen-encoder image embeddings, so RootSAM training pays for the encoder once.

With the image encoder frozen, a tile's embeddings depend only on its pixels, the resize / tiling that made
it, and the encoder weights. The key hashes all three (`EmbeddingCache.key`); the encoder part is the
`encoder_fingerprint` of the weights, so loading a different checkpoint can never serve stale features.
RootSAMModule refuses the cache (`StaleEmbeddingsError`) while any weight that computes the embeddings trains
(the encoder, or the high-res projections when they run in `encode`).

Layout: `root/<fingerprint[:16]>/<key[:2]>/<key>/` holding one `.npy` per tensor (float16 unless a value
overflows it, then float32) and `meta.json`, written last: an entry without `meta.json` does not exist.
Every file is written atomically (`rootseg.io.atomic.atomic_path`), so a crash or two DataLoader workers
writing the same entry never leave a torn file. Arrays are memory-mapped on read and stay mapped: `get`
returns views of the maps (or converts straight from them), so a value is read from disk when it is used.

Sizes per tile (fp16, SAM image_size 1024): 8 MiB with the high-res projections applied in `encode`,
42 MiB with raw high-res features (`RootSAM(project_high_res_in_decode=True)`, the default).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rootseg.io.atomic import atomic_path

CACHE_FORMAT = 1


class StaleEmbeddingsError(ValueError):
    """Cached embeddings were asked of a model whose embeddings change while it trains."""


def encoder_fingerprint(module: nn.Module | Mapping[str, torch.Tensor], extra: str = "") -> str:
    """sha256 of the weights (names, dtypes, shapes, bytes) of `module` or a state dict, plus `extra`.

    Any change to a weight changes the fingerprint. Hashes ~1 GB/s: about a second for Hiera-L.
    """
    state = module.state_dict() if isinstance(module, nn.Module) else module
    digest = hashlib.sha256(f"rootseg-encoder-v{CACHE_FORMAT};{extra}".encode())
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name};{tensor.dtype};{tuple(tensor.shape)}".encode())
        if tensor.numel():
            digest.update(memoryview(tensor.reshape(-1).view(torch.uint8).numpy()))
    return digest.hexdigest()


def _flatten(value: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an embeddings dict into named tensors (lists become name.0, name.1, ...) and JSON scalars."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    lists: dict[str, int] = {}
    for name, item in value.items():
        if isinstance(item, torch.Tensor):
            tensors[name] = item
        elif isinstance(item, list | tuple) and all(isinstance(t, torch.Tensor) for t in item):
            lists[name] = len(item)
            tensors.update({f"{name}.{i}": t for i, t in enumerate(item)})
        elif isinstance(item, bool | int | float | str) or item is None:
            scalars[name] = item
        else:
            raise TypeError(f"cannot cache {name!r} of type {type(item).__name__}")
    return tensors, {"scalars": scalars, "lists": lists}


class EmbeddingCache:
    """Embeddings of tiles on disk, keyed by tile content, preprocessing and encoder weights.

    Usage:
        cache = EmbeddingCache(root, model.encoder_fingerprint())
        key = cache.key(tile_uint8, resize=2560, tile=(x, y, 512))
        embeddings = cache.get(key)
        if embeddings is None:
            embeddings = model.encode(sam_normalize(tile_tensor))  # one tile: batch dim 1
            cache.put(key, embeddings)
    """

    def __init__(self, root: str | Path, encoder_fingerprint: str) -> None:
        if not encoder_fingerprint:
            raise ValueError("encoder_fingerprint must not be empty")
        self.root = Path(root)
        self.encoder_fingerprint = encoder_fingerprint
        self.directory = self.root / encoder_fingerprint[:16]

    def key(self, pixels: np.ndarray | torch.Tensor, **spec: Any) -> str:
        """Hash of the tile's pixels (bytes, dtype, shape), the JSON of `spec` (resize, tile position, ...)
        and the encoder fingerprint."""
        array = pixels.detach().cpu().numpy() if isinstance(pixels, torch.Tensor) else np.asarray(pixels)
        array = np.ascontiguousarray(array)
        digest = hashlib.sha256(self.encoder_fingerprint.encode())
        digest.update(f"{array.dtype};{array.shape};".encode())
        digest.update(json.dumps(spec, sort_keys=True, default=str).encode())
        digest.update(memoryview(array).cast("B"))
        return digest.hexdigest()

    def path(self, key: str) -> Path:
        return self.directory / key[:2] / key

    def __contains__(self, key: str) -> bool:
        return (self.path(key) / "meta.json").is_file()

    def put(self, key: str, embeddings: Mapping[str, Any]) -> Path:
        """Store one tile's embeddings (tensors or lists of tensors, batch dim of 1 or none, plus scalars)."""
        tensors, meta = _flatten(embeddings)
        entry = self.path(key)
        entry.mkdir(parents=True, exist_ok=True)
        dtypes = {}
        for name, tensor in tensors.items():
            array = tensor.detach().float().cpu().numpy()
            half = array.astype(np.float16)
            if np.isfinite(half).all() or not np.isfinite(array).all():
                array = half
            dtypes[name] = str(array.dtype)
            with atomic_path(entry / f"{name}.npy") as tmp, open(tmp, "wb") as handle:
                np.save(handle, array)
        meta.update(
            format=CACHE_FORMAT,
            key=key,
            encoder=self.encoder_fingerprint,
            dtypes=dtypes,
            tensors=list(tensors),
        )
        with atomic_path(entry / "meta.json") as tmp:
            tmp.write_text(json.dumps(meta))
        return entry

    def get(
        self, key: str, dtype: torch.dtype | None = torch.float32, device: torch.device | str | None = None
    ) -> dict[str, Any] | None:
        """The stored embeddings as tensors of `dtype` (None: as stored, float16) on `device`, or None if the
        entry is absent, incomplete or written for another encoder.

        Each file is memory-mapped and nothing is read here: with `dtype=None` on the CPU the tensors are
        views of the maps (copy-on-write: writing to them never changes the file), so only the values a
        caller uses are read, and a slice converted or moved later copies only that slice. A conversion
        (float16 -> `dtype`, or a move to `device`) reads each value once, straight from the map.
        """
        entry = self.path(key)
        try:
            meta = json.loads((entry / "meta.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        if meta.get("format") != CACHE_FORMAT or meta.get("encoder") != self.encoder_fingerprint:
            return None
        tensors: dict[str, torch.Tensor] = {}
        try:
            for name in meta["tensors"]:
                # "c": a private map, writable without touching the file (torch needs writable memory)
                array = np.load(entry / f"{name}.npy", mmap_mode="c")
                tensor = torch.from_numpy(array)  # a view of the map, no read yet
                tensors[name] = tensor.to(device=device, dtype=dtype or tensor.dtype)  # a no-op when unchanged
        except (FileNotFoundError, ValueError, OSError):
            return None
        out: dict[str, Any] = dict(meta["scalars"])
        listed = {f"{name}.{i}" for name, n in meta["lists"].items() for i in range(n)}
        out.update({name: t for name, t in tensors.items() if name not in listed})
        for name, n in meta["lists"].items():
            out[name] = [tensors[f"{name}.{i}"] for i in range(n)]
        return out


def split_embeddings(embeddings: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Batched embeddings (tensors [B, ...], lists of them, scalars) -> B single-tile dicts ([1, ...])."""
    batch = next(v for v in embeddings.values() if isinstance(v, torch.Tensor)).shape[0]

    def pick(value: Any, i: int) -> Any:
        if isinstance(value, torch.Tensor):
            return value[i : i + 1]
        if isinstance(value, list | tuple):
            return [pick(v, i) for v in value]
        return value

    return [{name: pick(value, i) for name, value in embeddings.items()} for i in range(batch)]


def stack_embeddings(items: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Inverse of `split_embeddings`: concatenate single-tile dicts along the batch dim (a collate_fn part).

    Scalars (e.g. "input_size") must agree across items.
    """
    if not items:
        raise ValueError("no embeddings to stack")
    out: dict[str, Any] = {}
    for name, first in items[0].items():
        values = [item[name] for item in items]
        if isinstance(first, torch.Tensor):
            out[name] = torch.cat(values)
        elif isinstance(first, list | tuple):
            out[name] = [torch.cat(level) for level in zip(*values)]
        else:
            if any(v != first for v in values):
                raise ValueError(f"cannot stack embeddings with different {name!r}: {sorted(set(values))}")
            out[name] = first
    return out
