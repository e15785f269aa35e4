"""Reading Hugging Face style checkpoints without torch.

A checkpoint directory holds ``config.json`` and either one ``*.safetensors`` file or shards
listed in ``model.safetensors.index.json``. Tensors are read with ``safetensors.safe_open``
(``framework="np"``); bfloat16 arrives as ``ml_dtypes.bfloat16`` and, like float16/float32, is
converted to float64. Every problem (missing file, missing tensor, wrong shape, unreadable
file) raises ``ValueError`` with one message naming the file or tensor.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = ["read_config", "TensorStore", "open_checkpoint"]


def read_config(directory: str | Path) -> dict:
    """``config.json`` of ``directory`` as a dict."""
    path = Path(directory) / "config.json"
    if not path.is_file():
        raise ValueError(f"checkpoint: missing config file {path}")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"checkpoint: cannot parse {path} as JSON ({exc})") from None
    if not isinstance(config, dict):
        raise ValueError(f"checkpoint: {path} must hold a JSON object")
    return config


def _to_float64(name: str, arr: np.ndarray) -> np.ndarray:
    """Floating/integer tensors (bfloat16 via ml_dtypes included) as float64; bools unchanged."""
    if arr.dtype.kind == "b":
        return arr
    if arr.dtype.kind not in "fiu" and arr.dtype.name not in ("bfloat16", "float8_e4m3fn", "float8_e5m2"):
        raise ValueError(f"checkpoint tensor {name}: unsupported dtype {arr.dtype}")
    return np.asarray(arr, dtype=np.float64)


class TensorStore:
    """Lazy name -> tensor mapping over one or more safetensors files.

    ``get(name, shape)`` returns a float64 copy and checks its shape; ``find(*names)`` returns
    the first name present (for optional prefixes); ``unused()`` lists tensors never read.
    """

    def __init__(self, files: dict[str, Path], directory: Path):
        self.directory = directory
        self._where = files  # tensor name -> file
        self._used: set[str] = set()

    def __contains__(self, name: str) -> bool:
        return name in self._where

    def keys(self) -> list[str]:
        return sorted(self._where)

    def find(self, *names: str) -> str | None:
        for name in names:
            if name in self._where:
                return name
        return None

    def get(self, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
        if name not in self._where:
            raise ValueError(f"checkpoint {self.directory}: missing tensor {name!r}")
        from safetensors import safe_open

        path = self._where[name]
        try:
            with safe_open(str(path), framework="np") as f:
                arr = f.get_tensor(name)
        except Exception as exc:  # safetensors raises its own error types
            raise ValueError(f"checkpoint: cannot read tensor {name!r} from {path} ({exc})") from None
        arr = _to_float64(name, arr)
        if shape is not None and tuple(arr.shape) != tuple(shape):
            raise ValueError(
                f"checkpoint tensor {name!r} in {path.name}: expected shape {tuple(shape)}, "
                f"got {tuple(arr.shape)}"
            )
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise ValueError(f"checkpoint tensor {name!r} in {path.name}: contains NaN or infinite values")
        self._used.add(name)
        return arr

    def get_optional(self, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray | None:
        return self.get(name, shape) if name in self._where else None

    def unused(self) -> list[str]:
        return sorted(set(self._where) - self._used)


def open_checkpoint(directory: str | Path) -> tuple[dict, TensorStore]:
    """``(config, tensors)`` of a checkpoint directory; see the module docstring."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"checkpoint: directory not found: {directory}")
    config = read_config(directory)
    index = directory / "model.safetensors.index.json"
    where: dict[str, Path] = {}
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"checkpoint: cannot read weight_map from {index} ({exc})") from None
        for name, fname in weight_map.items():
            path = directory / fname
            if not path.is_file():
                raise ValueError(f"checkpoint: shard {path} listed in {index.name} for {name!r} is missing")
            where[name] = path
    else:
        files = sorted(directory.glob("*.safetensors"))
        if not files:
            raise ValueError(f"checkpoint: no *.safetensors file in {directory}")
        from safetensors import safe_open

        for path in files:
            try:
                with safe_open(str(path), framework="np") as f:
                    names = list(f.keys())
            except Exception as exc:
                raise ValueError(f"checkpoint: cannot open {path} as safetensors ({exc})") from None
            for name in names:
                if name in where:
                    raise ValueError(
                        f"checkpoint: tensor {name!r} appears in both {where[name].name} and {path.name}"
                    )
                where[name] = path
    return config, TensorStore(where, directory)
