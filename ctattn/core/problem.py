"""The attention problem a circuit solves: weights, tokens and the choice of variant.

``AttentionWeights`` holds the per-head projections of MODEL.md section 1 (``W_Q, W_K
(H, d_k, D)``, ``W_V (H, d_v, D)``, ``W_O (H, D, d_v)``, optional biases and ``beta``);
``Tokens`` holds ``X (N, D)`` and, for cross-attention, ``X_kv (M, D)``; ``AttentionSpec``
the variant, feature map, ``beta``, causality and head layout. All three validate on
construction and raise :class:`InputError` (a ``ValueError``) that names the offending field.

Random problems are drawn at a documented scale so that scores and outputs are O(1):
``W_Q, W_K, W_V ~ N(0, 1/D)``, ``W_O ~ N(0, 1/(H d_v))``, ``X ~ N(0, 1)``, biases
``~ N(0, 0.1^2)`` when asked for.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import numpy as np

from ctattn.core.feature_maps import CIRCUIT_FEATURE_MAPS, FEATURE_MAPS
from ctattn.core.seeding import rng_for

__all__ = [
    "InputError",
    "AttentionWeights",
    "Tokens",
    "AttentionSpec",
    "LAYOUTS",
    "VARIANTS",
    "random_weights",
    "random_tokens",
    "HeadSizes",
    "head_shapes",
    "load_npz",
    "as_real_array",
    "check_positive_int",
    "check_seed",
]

LAYOUTS = ("mask", "memory")
#: The attention variants of MODEL.md section 1.
VARIANTS = ("linear", "normalized", "softmax")


class InputError(ValueError):
    """Bad user input; the message names the field and what was expected."""


def _as_array(name: str, value, ndim: int) -> np.ndarray:
    # Only real numbers: complex values would lose their imaginary part, strings and booleans
    # would be read as numbers by numpy, and a dict or object array has no numeric meaning.
    if isinstance(value, (str, bytes, dict, set)) or value is None:
        raise InputError(f"{name}: expected a numeric array, got {type(value).__name__}")
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError):
        raise InputError(f"{name}: expected a numeric array, got {type(value).__name__}") from None
    if raw.dtype.kind not in "iuf":
        kind = {"b": "boolean", "c": "complex", "U": "string", "S": "bytes", "O": "object"}
        raise InputError(
            f"{name}: expected real numbers, got a {kind.get(raw.dtype.kind, str(raw.dtype))} array"
        )
    try:
        arr = raw.astype(float)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{name}: expected a numeric array") from None
    if arr.ndim != ndim:
        raise InputError(f"{name}: expected {ndim} dimensions, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name}: contains NaN or infinite values")
    return arr


def _expect_shape(name: str, arr: np.ndarray, shape: tuple[int, ...]) -> None:
    if arr.shape != shape:
        raise InputError(f"{name}: expected shape {shape}, got {arr.shape}")


def load_npz(path: str | os.PathLike, what: str) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` archive at ``path``; any unreadable file is an
    :class:`InputError` naming ``what`` (missing, a folder, empty, truncated, not a zip archive,
    a ``.npy`` array, pickled objects)."""
    import zipfile

    if not isinstance(path, (str, os.PathLike)):
        raise InputError(f"{what}: expected a file path, got {type(path).__name__}")
    if os.path.isdir(path):
        raise InputError(f"{what}: {path} is a folder, not an .npz file")
    try:
        if not os.path.exists(path):
            raise FileNotFoundError(path)
        if os.path.getsize(path) == 0:
            raise InputError(f"{what}: {path} is empty")
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise InputError(f"{what}: {path} holds a single .npy array, not an .npz archive of named arrays")
        with data:
            return {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise InputError(f"{what}: file not found: {path}") from None
    except InputError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, TypeError, RuntimeError) as exc:
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise InputError(f"{what}: cannot read {path} as .npz ({reason})") from None


_load_npz = load_npz
as_real_array = _as_array


def _as_scalar(name: str, value) -> float:
    """A real number (not a boolean, string, complex or array with more than one element)."""
    arr = value if isinstance(value, np.ndarray) else None
    if arr is not None and arr.ndim == 0:
        value = arr.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(f"{name}: expected a real number, got {value!r}")
    return float(value)


def check_positive_int(name: str, value) -> int:
    """``value`` as an ``int >= 1``; booleans, floats (even 2.0 from a string) and strings fail."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise InputError(f"{name}: expected a positive integer, got {value!r}")
    if value < 1:
        raise InputError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def check_seed(value) -> int:
    """A master seed: an ``int >= 0`` (``1.5`` or ``True`` would be silently truncated)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 0:
        raise InputError(f"seed: expected a non-negative integer, got {value!r}")
    return int(value)


def head_shapes(H: int, d_k: int, d_v: int, D: int) -> dict[str, tuple[int, ...]]:
    """Shapes of every per-head array (MODEL.md section 1) but ``W_Q (H, d_k, D)``, which sets them."""
    return {
        "W_K": (H, d_k, D),
        "W_V": (H, d_v, D),
        "W_O": (H, D, d_v),
        "b_Q": (H, d_k),
        "b_K": (H, d_k),
        "b_V": (H, d_v),
        "b_O": (D,),
    }


class HeadSizes:
    """``n_heads``, ``d_model``, ``d_k``, ``d_v`` of anything holding ``W_Q (H, d_k, D)`` and
    ``W_V (H, d_v, D)``."""

    @property
    def n_heads(self) -> int:
        return self.W_Q.shape[0]

    @property
    def d_model(self) -> int:
        return self.W_Q.shape[2]

    @property
    def d_k(self) -> int:
        return self.W_Q.shape[1]

    @property
    def d_v(self) -> int:
        return self.W_V.shape[1]


@dataclass(frozen=True, eq=False)
class AttentionWeights(HeadSizes):
    """Per-head projections ``W_Q, W_K (H,d_k,D)``, ``W_V (H,d_v,D)``, ``W_O (H,D,d_v)``.

    Optional biases ``b_Q, b_K (H,d_k)``, ``b_V (H,d_v)``, ``b_O (D,)`` (tonic drive in the
    circuit) and ``beta``, the softmax inverse temperature (``None``: ``1/sqrt(d_k)``).
    """

    W_Q: np.ndarray
    W_K: np.ndarray
    W_V: np.ndarray
    W_O: np.ndarray
    b_Q: np.ndarray | None = None
    b_K: np.ndarray | None = None
    b_V: np.ndarray | None = None
    b_O: np.ndarray | None = None
    beta: float | None = None

    KEYS = ("W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V", "b_O", "beta")

    def __post_init__(self):
        for name in ("W_Q", "W_K", "W_V", "W_O"):
            object.__setattr__(self, name, _as_array(name, getattr(self, name), 3))
        H, d_k, D = self.W_Q.shape
        d_v = self.W_V.shape[1]
        if min(H, d_k, D, d_v) < 1:
            raise InputError(
                f"W_Q/W_V: every dimension must be at least 1, got {self.W_Q.shape}, {self.W_V.shape}"
            )
        shapes = head_shapes(H, d_k, d_v, D)
        for name in ("W_K", "W_V", "W_O"):
            _expect_shape(name, getattr(self, name), shapes[name])
        for name in ("b_Q", "b_K", "b_V", "b_O"):
            shape = shapes[name]
            value = getattr(self, name)
            if value is not None:
                arr = _as_array(name, value, len(shape))
                _expect_shape(name, arr, shape)
                object.__setattr__(self, name, arr)
        if self.beta is not None:
            beta = _as_scalar("beta", self.beta)
            if not np.isfinite(beta) or beta < 0:
                raise InputError(f"beta: expected a finite non-negative scalar, got {self.beta!r}")
            object.__setattr__(self, "beta", float(beta))

    @property
    def has_biases(self) -> bool:
        return any(getattr(self, b) is not None for b in ("b_Q", "b_K", "b_V", "b_O"))

    def arrays(self) -> dict[str, np.ndarray]:
        """The projections and biases present, as keyword arguments of the reference."""
        return {k: getattr(self, k) for k in self.KEYS[:-1] if getattr(self, k) is not None}

    def replace(self, **changes) -> AttentionWeights:
        return replace(self, **changes)

    def save(self, path: str | os.PathLike) -> None:
        data = self.arrays()
        if self.beta is not None:
            data["beta"] = np.asarray(self.beta)
        np.savez(path, **data)

    @classmethod
    def load(cls, path: str | os.PathLike) -> AttentionWeights:
        """Read ``W.npz``; unknown keys and missing projections are errors naming the key."""
        data = _load_npz(path, "weights")
        unknown = sorted(set(data) - set(cls.KEYS))
        if unknown:
            raise InputError(f"weights: unknown key(s) {unknown} in {path}; allowed: {list(cls.KEYS)}")
        missing = [k for k in ("W_Q", "W_K", "W_V", "W_O") if k not in data]
        if missing:
            raise InputError(f"weights: missing key(s) {missing} in {path}")
        if "beta" in data:
            data["beta"] = data["beta"].item() if data["beta"].ndim == 0 else data["beta"]
        return cls(**data)


@dataclass(frozen=True, eq=False)
class Tokens:
    """Query tokens ``X (N, D)`` and, for cross-attention, key/value tokens ``X_kv (M, D)``."""

    X: np.ndarray
    X_kv: np.ndarray | None = None

    def __post_init__(self):
        object.__setattr__(self, "X", _as_array("X", self.X, 2))
        if self.X.shape[0] < 1:
            raise InputError("X: needs at least one token")
        if self.X_kv is not None:
            object.__setattr__(self, "X_kv", _as_array("X_kv", self.X_kv, 2))
            if self.X_kv.shape[0] < 1:
                raise InputError("X_kv: needs at least one token")
            if self.X_kv.shape[1] != self.X.shape[1]:
                raise InputError(f"X_kv: d_model {self.X_kv.shape[1]} differs from X's {self.X.shape[1]}")

    @property
    def cross(self) -> bool:
        return self.X_kv is not None

    @property
    def n_tokens(self) -> int:
        return self.X.shape[0]

    @property
    def n_kv(self) -> int:
        return self.kv.shape[0]

    @property
    def kv(self) -> np.ndarray:
        """The key/value tokens: ``X_kv`` for cross-attention, ``X`` for self-attention."""
        return self.X if self.X_kv is None else self.X_kv

    def check_against(self, weights: AttentionWeights) -> None:
        if self.X.shape[1] != weights.d_model:
            raise InputError(
                f"X: d_model {self.X.shape[1]} does not match the weights' d_model {weights.d_model}"
            )

    def save(self, path: str | os.PathLike) -> None:
        data = {"X": self.X}
        if self.X_kv is not None:
            data["X_kv"] = self.X_kv
        np.savez(path, **data)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Tokens:
        data = _load_npz(path, "inputs")
        unknown = sorted(set(data) - {"X", "X_kv"})
        if unknown:
            raise InputError(f"inputs: unknown key(s) {unknown} in {path}; allowed: ['X', 'X_kv']")
        if "X" not in data:
            raise InputError(f"inputs: missing key 'X' in {path}")
        return cls(**data)


@dataclass(frozen=True)
class AttentionSpec:
    """Which attention the circuit computes.

    ``variant`` in ``linear | normalized | softmax``; ``phi`` the feature map (the neurons'
    transfer function; non-negative for a circuit); ``beta`` softmax inverse temperature
    (``None``: the weights' ``beta`` or ``1/sqrt(d_k)``); ``causal``; ``layout`` of a head,
    ``mask`` (paper v1) or ``memory`` (paper v3, ``linear`` only).
    """

    variant: str = "linear"
    phi: str = "relu"
    beta: float | None = None
    causal: bool = False
    layout: str = "mask"

    def __post_init__(self):
        for name in ("variant", "phi", "layout"):
            if not isinstance(getattr(self, name), str):
                raise InputError(f"{name}: expected a string, got {getattr(self, name)!r}")
        if self.variant not in VARIANTS:
            raise InputError(f"variant: unknown {self.variant!r}; choose one of {list(VARIANTS)}")
        if self.phi not in FEATURE_MAPS:
            raise InputError(f"phi: unknown {self.phi!r}; choose one of {sorted(FEATURE_MAPS)}")
        if self.layout not in LAYOUTS:
            raise InputError(f"layout: unknown {self.layout!r}; choose one of {list(LAYOUTS)}")
        if self.beta is not None:
            beta = _as_scalar("beta", self.beta)
            if not np.isfinite(beta) or beta < 0:
                raise InputError(f"beta: expected a finite non-negative number, got {self.beta!r}")
            object.__setattr__(self, "beta", beta)
        if not isinstance(self.causal, (bool, np.bool_)):
            raise InputError(f"causal: expected true or false, got {self.causal!r}")

    def check_circuit(self) -> None:
        """Raise if a circuit cannot run this spec (the reference can run any)."""
        if self.phi not in CIRCUIT_FEATURE_MAPS and self.variant != "softmax":
            raise InputError(
                f"phi: {self.phi!r} can be negative and is not a firing-rate transfer function; "
                f"a circuit needs one of {list(CIRCUIT_FEATURE_MAPS)}"
            )
        if self.layout == "memory" and self.variant != "linear":
            raise InputError(
                f"layout: the key-value memory layout computes 'linear' attention only, "
                f"not {self.variant!r}; use layout 'mask'"
            )

    def resolved_beta(self, weights: AttentionWeights) -> float:
        """``beta`` from the spec, else from the weights, else ``1/sqrt(d_k)``."""
        if self.beta is not None:
            return self.beta
        if weights.beta is not None:
            return weights.beta
        return 1.0 / np.sqrt(weights.d_k)

    def reference_kwargs(self, weights: AttentionWeights) -> dict:
        return dict(variant=self.variant, phi=self.phi, beta=self.resolved_beta(weights), causal=self.causal)


def random_weights(
    seed: int, n_heads: int, d_model: int, d_k: int, d_v: int, *, biases: bool = False, scale: float = 1.0
) -> AttentionWeights:
    """Weights drawn from stream ``"weights"`` of ``seed`` at the scale in the module docstring,
    times ``scale`` for ``W_Q, W_K, W_V, W_O`` (the same draws, scaled; biases unscaled)."""
    for name, value in (("n_heads", n_heads), ("d_model", d_model), ("d_k", d_k), ("d_v", d_v)):
        check_positive_int(name, value)
    seed = check_seed(seed)
    if not isinstance(biases, (bool, np.bool_)):
        raise InputError(f"biases: expected true or false, got {biases!r}")
    rng = rng_for(seed, "weights")
    H, D = n_heads, d_model
    W = dict(
        W_Q=rng.normal(0, 1 / np.sqrt(D), (H, d_k, D)),
        W_K=rng.normal(0, 1 / np.sqrt(D), (H, d_k, D)),
        W_V=rng.normal(0, 1 / np.sqrt(D), (H, d_v, D)),
        W_O=rng.normal(0, 1 / np.sqrt(H * d_v), (H, D, d_v)),
    )
    if scale != 1.0:
        if not (0 < scale < np.inf):
            raise InputError(f"weight_scale: must be a positive number, got {scale!r}")
        W = {k: v * scale for k, v in W.items()}
    if biases:
        W.update(
            b_Q=rng.normal(0, 0.1, (H, d_k)),
            b_K=rng.normal(0, 0.1, (H, d_k)),
            b_V=rng.normal(0, 0.1, (H, d_v)),
            b_O=rng.normal(0, 0.1, (D,)),
        )
    return AttentionWeights(**W)


def random_tokens(seed: int, n_tokens: int, d_model: int, *, n_kv: int | None = None) -> Tokens:
    """Tokens ``X ~ N(0,1)`` from stream ``"tokens"`` (and ``X_kv`` if ``n_kv`` is given)."""
    for name, value in (("n_tokens", n_tokens), ("d_model", d_model)):
        check_positive_int(name, value)
    if n_kv is not None:
        check_positive_int("n_kv", n_kv)
    seed = check_seed(seed)
    rng = rng_for(seed, "tokens")
    X = rng.normal(0, 1, (n_tokens, d_model))
    X_kv = None if n_kv is None else rng_for(seed, "tokens_kv").normal(0, 1, (n_kv, d_model))
    return Tokens(X=X, X_kv=X_kv)
