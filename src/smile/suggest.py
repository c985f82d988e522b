""" "Did you mean ...?" for a misspelled override key, which Hydra refuses without a suggestion.

Hydra answers ``model.optimzer.lr=1`` with ``Key 'optimzer' is not in struct``. :func:`suggest_key`
composes the same overrides, finds the key OmegaConf refused and the config node it was looked up
in, and proposes the closest existing key there (difflib). :func:`suggest_on_failure` wraps a
``@hydra.main`` entry point: Hydra prints its own error and exits 1, and the suggestion follows it.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

__all__ = ["closest_keys", "hydra_overrides", "suggest_key", "suggest_on_failure"]

# Hydra command-line flags that take the next argument as their value (``--cfg job``, ``-cn train``).
_FLAGS_WITH_VALUE = {"-cn", "--config-name", "-cp", "--config-path", "-cd", "--config-dir", "-c", "--cfg"}
_FLAGS_WITH_VALUE |= {"-p", "--package", "-i", "--info", "--experimental-rerun"}


def closest_keys(key: str, candidates: Sequence[str], n: int = 3) -> list[str]:
    """The existing keys nearest to the misspelled ``key``, best first (at most ``n``)."""
    return difflib.get_close_matches(key, [str(c) for c in candidates], n=n, cutoff=0.6)


def hydra_overrides(argv: Sequence[str]) -> list[str]:
    """The ``key=value`` overrides of a Hydra command line, without its flags (``-m``, ``--cfg job``)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg.startswith("-"):
            skip = arg in _FLAGS_WITH_VALUE
        else:
            out.append(arg)
    return out


def _first_of_sweeps(overrides: Sequence[str]) -> list[str]:
    """Sweep overrides (``a=1,2``, ``a=range(3)``) replaced by their first value, so one job composes."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    out = []
    for text, parsed in zip(overrides, OverridesParser.create().parse_overrides(list(overrides)), strict=True):
        if parsed.is_sweep_override():
            first = next(iter(parsed.sweep_string_iterator()), None)
            text = f"{parsed.get_key_element()}={first}" if first is not None else text
        out.append(text)
    return out


def _refused_key(err: BaseException) -> OmegaConfBaseException | None:
    """The OmegaConf error inside Hydra's composition error that names a missing key, if any."""
    seen: set[int] = set()
    node: BaseException | None = err
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        if isinstance(node, OmegaConfBaseException) and isinstance(getattr(node, "parent_node", None), DictConfig):
            if node.key is not None:
                return node
        node = node.__cause__ or node.__context__
    return None


def suggest_key(config_dir: str, overrides: Sequence[str], config_name: str = "train") -> str | None:
    """A one-line "did you mean" for the key Hydra refuses in ``overrides``; None when they compose.

    Args:
        config_dir: Absolute path of the config tree (``smile.build.CONFIG_DIR``).
        overrides: The command line's overrides (:func:`hydra_overrides` of ``sys.argv[1:]``).
        config_name: Primary config (``train`` or ``eval``).

    Returns:
        E.g. ``no key 'optimzer' in 'model'; did you mean 'optimizer'? (model.optimizer.lr=1)``, or
        None when the overrides compose, fail for another reason, or no key is close enough.
    """
    from hydra import compose, initialize_config_dir

    try:
        with initialize_config_dir(config_dir=config_dir, version_base="1.3"):
            compose(config_name=config_name, overrides=_first_of_sweeps(overrides))
    except Exception as err:  # noqa: BLE001 - any composition failure: look for a refused key inside
        refused = _refused_key(err)
        if refused is None:
            return None
        key, parent = str(refused.key), refused.parent_node
        assert isinstance(parent, DictConfig)
        matches = closest_keys(key, [str(k) for k in parent.keys()])
        if not matches:
            return None
        where = str(refused.full_key).rpartition(".")[0]
        line = f"no key '{key}' {f'in {where!r}' if where else 'at the top level'}; did you mean '{matches[0]}'?"
        fixed = [o for o in overrides if _has_segment(o, key)]
        if fixed:
            line += f" ({_replace_segment(fixed[0], key, matches[0])})"
        return line
    return None


def _key_of(override: str) -> str:
    return override.partition("=")[0].lstrip("+~")


def _has_segment(override: str, key: str) -> bool:
    return key in _key_of(override).split(".")


def _replace_segment(override: str, key: str, new: str) -> str:
    """``model.optimzer.lr=1`` with segment ``optimzer`` -> ``model.optimizer.lr=1`` (first occurrence)."""
    head, sep, value = override.partition("=")
    prefix = head[: len(head) - len(head.lstrip("+~"))]
    parts = head[len(prefix) :].split(".")
    parts[parts.index(key)] = new
    return f"{prefix}{'.'.join(parts)}{sep}{value}"


@contextmanager
def suggest_on_failure(config_dir: str, config_name: str, argv: Sequence[str] | None = None) -> Iterator[None]:
    """Around a ``@hydra.main`` call: when it exits with an error, print the "did you mean" line too.

    Composition is repeated only after a failure, so a good command costs nothing extra.
    """
    try:
        yield
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            args = sys.argv[1:] if argv is None else argv
            hint = suggest_key(config_dir, hydra_overrides(args), config_name)
            if hint:
                print(f"hint: {hint}", file=sys.stderr, flush=True)
        raise
