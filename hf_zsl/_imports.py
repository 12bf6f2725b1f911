"""Post-import hooks: run a function once a named module has been imported.

``import hf_zsl`` must stay cheap (the command line's ``--help`` must not load torch), yet it promises
that hf_zsl models are registered with transformers' Auto classes and pipeline (DESIGN §3.6). Those
registrations can only matter once transformers' own modules are imported, so :func:`when_imported`
runs them then: at once when the module is already imported, otherwise as soon as the import that
loaded it is over. Not earlier: transformers' modules import each other in cycles, and a registration
run while one of them is half-executed would import from it. So while hooks are pending, every
``transformers`` and ``hf_zsl`` module is loaded through :class:`_HookLoader`, which counts the ones
executing; the callbacks whose module is loaded run when that count returns to zero. Standard
library only.
"""

from __future__ import annotations

import importlib.abc
import sys
from collections.abc import Callable
from types import ModuleType

WATCHED = ("transformers", "hf_zsl")
"""Top-level packages whose modules are counted while they execute (see the module docstring)."""

_PENDING: dict[str, list[Callable[[ModuleType], None]]] = {}
_READY: list[tuple[Callable[[ModuleType], None], ModuleType]] = []
_executing = 0


def when_imported(name: str, callback: Callable[[ModuleType], None]) -> None:
    """Call ``callback(module)`` once the module ``name`` is imported (now, if it already is)."""
    module = sys.modules.get(name)
    if module is not None:
        callback(module)
        return
    _PENDING.setdefault(name, []).append(callback)
    if not any(isinstance(finder, _HookFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _HookFinder())


class _HookFinder(importlib.abc.MetaPathFinder):
    """Finds a watched module with the other finders and wraps its loader in a :class:`_HookLoader`."""

    def find_spec(self, fullname, path, target=None):
        if fullname.partition(".")[0] not in WATCHED:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _HookLoader(spec.loader)
                return spec
        return None


class _HookLoader:
    """Executes the module with the real loader; once no watched module is executing any more, runs
    the callbacks of the hooked modules loaded meanwhile."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        global _executing
        _executing += 1
        try:
            self._loader.exec_module(module)
        finally:
            _executing -= 1
        name = module.__spec__.name if module.__spec__ is not None else module.__name__
        _READY.extend((callback, module) for callback in _PENDING.pop(name, []))
        if _executing == 0:
            _run_ready()

    def __getattr__(self, name):  # get_source, get_filename, get_resource_reader... of the real loader
        return getattr(self._loader, name)


def _run_ready() -> None:
    """Run the callbacks whose module is loaded; drop the finder once none is pending."""
    if not _PENDING:
        sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, _HookFinder)]
    while _READY:
        callback, module = _READY.pop(0)
        callback(sys.modules.get(module.__name__, module))
