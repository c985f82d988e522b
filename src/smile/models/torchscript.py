"""The weights of a TorchScript archive (OpenAI's CLIP ``ViT-B-16.pt``), read without running it.

``torch.jit.load`` compiles and runs the Python code the archive carries (``code/``), so a crafted
archive runs whatever it wants. The weights do not need it: a TorchScript zip stores every tensor
under ``<root>/data/<key>`` and pickles the module tree in ``<root>/data.pkl``, one object per
module (``__torch__.<Class>``) holding its attributes. :func:`read_torchscript_state_dict`
unpickles ``data.pkl`` with a restricted Unpickler that knows only tensor and storage rebuilding,
``collections.OrderedDict``, the typed-list helpers of ``torch.jit._pickle`` (identities) and inert
stand-ins for the ``__torch__`` classes; anything else is refused. Which attributes are parameters
and buffers is read, as text, from the ``__parameters__`` / ``__buffers__`` lines of the class
definitions in ``code/``, so the result equals ``torch.jit.load(path).state_dict()``.
"""

from __future__ import annotations

import ast
import io
import pickle
import re
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from smile.models.checkpoint_file import CheckpointError

__all__ = ["is_torchscript", "read_torchscript_state_dict"]

_TYPED_LISTS = {"build_intlist", "build_tensorlist", "build_doublelist", "build_boollist", "restore_type_tag"}
_CLASS = re.compile(r"^class (\w+)\(Module\):\s*$")
_MEMBERS = re.compile(r"^\s+__(parameters|buffers)__ = (\[.*\])\s*$")


def is_torchscript(path: Path) -> bool:
    """TorchScript archives are zips holding ``<root>/constants.pkl`` (plain torch.save zips do not)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any(n == "constants.pkl" or n.endswith("/constants.pkl") for n in zf.namelist())


class ScriptObject:
    """Stands for one ``__torch__`` module object of the archive: its attributes, nothing callable."""

    qualname = ""
    attrs: dict[str, Any]  # set by unpickling (BUILD); absent when the pickle never built it

    def __setstate__(self, state: object) -> None:
        self.attrs = dict(state) if isinstance(state, dict) else {}


# The storage classes a persistent id may name, as the dtypes of their elements.
_STORAGE_DTYPES = {
    "DoubleStorage": torch.float64,
    "FloatStorage": torch.float32,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}


@dataclass(frozen=True)
class _Storage:
    """A storage type named in a persistent id (``torch.HalfStorage``): only its dtype is used."""

    dtype: torch.dtype


@dataclass(frozen=True)
class _Stored:
    """The bytes of one ``<root>/data/<key>`` and the dtype they hold."""

    data: torch.UntypedStorage
    dtype: torch.dtype


def _rebuild(storage: object, offset: int, size: tuple, stride: tuple, *_: object) -> Tensor:
    """``torch._utils._rebuild_tensor_v2`` restricted to storages this reader made (hooks, grad flags dropped)."""
    if not isinstance(storage, _Stored):
        raise pickle.UnpicklingError("a tensor without a storage of the archive")
    return torch.empty((0,), dtype=storage.dtype).set_(storage.data, offset, size, stride)


class _Unpickler(pickle.Unpickler):
    """``data.pkl`` of one archive; storages come from ``<root>/data/<key>`` of the same zip."""

    def __init__(self, data: bytes, zf: zipfile.ZipFile, root: str) -> None:
        super().__init__(io.BytesIO(data))
        self.zf, self.root = zf, root
        self.storages: dict[str, _Stored] = {}
        self.classes: dict[str, type[ScriptObject]] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "__torch__" or module.startswith("__torch__."):
            qualname = f"{module}.{name}"
            if qualname not in self.classes:
                self.classes[qualname] = type(name, (ScriptObject,), {"qualname": qualname})
            return self.classes[qualname]
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return _rebuild
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "torch.jit._pickle" and name in _TYPED_LISTS:
            return lambda value, *_: value
        if module == "torch" and name in _STORAGE_DTYPES:
            return _Storage(_STORAGE_DTYPES[name])
        raise pickle.UnpicklingError(f"GLOBAL {module}.{name} is not allowed")

    def persistent_load(self, pid: Any) -> _Stored:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], _Storage)):
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
        _, kind, key, _, numel = pid
        if key not in self.storages:
            data = self.zf.read(f"{self.root}/data/{key}")
            nbytes = int(numel) * kind.dtype.itemsize
            if len(data) != nbytes:
                raise pickle.UnpicklingError(f"storage {key} holds {len(data)} bytes, expected {nbytes}")
            untyped = torch.UntypedStorage.from_buffer(data, dtype=torch.uint8) if data else torch.UntypedStorage(0)
            self.storages[key] = _Stored(untyped, kind.dtype)
        return self.storages[key]


def _members(zf: zipfile.ZipFile, root: str) -> dict[str, set[str]]:
    """``{qualified class name: parameter and buffer names}`` from the class definitions in ``code/``."""
    out: dict[str, set[str]] = {}
    prefix = f"{root}/code/"
    for name in zf.namelist():
        if not (name.startswith(prefix) and name.endswith(".py")):
            continue
        module = name[len(prefix) : -len(".py")].replace("/", ".")
        current = None
        for line in zf.read(name).decode("utf-8", "replace").splitlines():
            if found := _CLASS.match(line):
                current = out.setdefault(f"{module}.{found.group(1)}", set())
            elif current is not None and (found := _MEMBERS.match(line)):
                current.update(str(v) for v in ast.literal_eval(found.group(2)))
    return out


def _flatten(obj: ScriptObject, members: dict[str, set[str]], prefix: str = "") -> dict[str, Tensor]:
    """Parameters and buffers of ``obj`` and its submodules, keyed like ``state_dict()``."""
    known = members.get(obj.qualname)
    out: dict[str, Tensor] = {}
    for name, value in getattr(obj, "attrs", {}).items():
        if isinstance(value, Tensor) and (known is None or name in known):
            out[prefix + name] = value
        elif isinstance(value, ScriptObject):
            out.update(_flatten(value, members, f"{prefix}{name}."))
    return out


def read_torchscript_state_dict(path: str | Path) -> dict[str, Tensor]:
    """``{key: tensor}`` of a TorchScript archive, as ``torch.jit.load(path).state_dict()``, code not run.

    Raises:
        CheckpointError: the archive is damaged or pickles anything but modules and tensors (named).
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            roots = [n.removesuffix("/data.pkl") for n in zf.namelist() if n.endswith("/data.pkl")]
            if len(roots) != 1:
                raise pickle.UnpicklingError(f"expected one <root>/data.pkl, found {len(roots)}")
            root = _Unpickler(zf.read(f"{roots[0]}/data.pkl"), zf, roots[0]).load()
            members = _members(zf, roots[0])
    except (pickle.UnpicklingError, zipfile.BadZipFile, KeyError, EOFError, ValueError, TypeError) as err:
        text = str(err).replace("GLOBAL ", "")
        raise CheckpointError(
            f"{path}: TorchScript archive refused or unreadable ({text}); its weights are read without running "
            "the archive's code, so it may hold only modules and tensors"
        ) from None
    if not isinstance(root, ScriptObject):
        raise CheckpointError(f"{path}: TorchScript archive whose data.pkl holds no module ({type(root).__name__})")
    return _flatten(root, members)
