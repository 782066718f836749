"""Hook dispatch over a per-hook table instead of every addon on every event.

mitmproxy's AddonManager walks the whole addon chain for each hook of each flow: per addon a
`traverse()` generator, a `getattr`, a `safecall()` context manager, and after every flow
event an `update` hook that nobody here handles. In the node that walk was ~23 % of the
CPU (py-spy). `HookDispatch` keeps mitmproxy's semantics and calls only the addons that
define the hook, from a table built when first needed and dropped whenever the chain
changes (add, register, remove, clear):

- chain order; sync and async hooks (awaitables awaited; an async hook through the sync
  `trigger()` is an error, logged, as in mitmproxy);
- an exception is logged ("Addon error: ...") and the next addon still runs; AddonHalt
  stops the event; OptionsError propagates (configure);
- an addon with sub-addons (an `addons` attribute, e.g. mitmproxy's ScriptLoader, which
  reorders and swaps its children itself) is walked at call time exactly as mitmproxy does;
  only leaf addons are looked up ahead. A leaf's hook methods are read when it is added:
  assigning a new hook to an addon already in the chain needs `invalidate()`.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
import types
from collections.abc import Callable
from typing import Any

from mitmproxy import addonmanager, exceptions, flow, hooks

# (hook callable, sub-addon tree walked at call time or None, the addon if the hook is a
# coroutine function else None)
_Entry = tuple[Callable[..., Any], Any, Any]


def _arg_names(cls: type) -> tuple[str, ...]:
    names = _ARG_NAMES.get(cls)
    if names is None:
        names = _ARG_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


_ARG_NAMES: dict[type, tuple[str, ...]] = {}


def _args(event: hooks.Hook) -> list:
    """`event.args()` without `dataclasses.fields()` on every call."""
    return [getattr(event, n) for n in _arg_names(type(event))]


def _not_callable(name: str, addon: Any) -> Callable[..., None]:
    def raise_(*_: Any) -> None:
        raise exceptions.AddonManagerError(f"Addon handler {name} ({addon}) not callable")
    return raise_


def _log_error() -> None:
    """What mitmproxy's `safecall()` logs, with the traceback cut at the dispatcher."""
    etype, value, tb = sys.exc_info()
    for frame in ("trigger_event", "trigger", "invoke_addon_sync", "invoke_addon"):
        tb = addonmanager.cut_traceback(tb, frame)
    assert etype and value
    addonmanager.logger.error(f"Addon error: {value}", exc_info=(etype, value, tb))


class HookDispatch(addonmanager.AddonManager):
    def __init__(self, master) -> None:
        super().__init__(master)
        self._table: dict[str, tuple[_Entry, ...]] = {}

    # -- the table ---------------------------------------------------------------------
    def invalidate(self) -> None:
        self._table = {}

    def handlers(self, name: str) -> tuple[_Entry, ...]:
        entries = self._table.get(name)
        if entries is None:
            entries = self._table[name] = tuple(self._build(name))
        return entries

    def _build(self, name: str):
        for a in self.chain:
            if hasattr(a, "addons"):
                yield (a, a, None)      # walked at call time (children may change)
                continue
            func = getattr(a, name, None)
            if not func or isinstance(func, types.ModuleType):
                continue                # a module imported under a hook's name is no hook
            if not callable(func):
                yield (_not_callable(name, a), None, None)
            else:
                yield (func, None, a if inspect.iscoroutinefunction(func) else None)

    # -- chain changes -----------------------------------------------------------------
    def register(self, addon):
        try:
            return super().register(addon)
        finally:
            self.invalidate()

    def add(self, *addons) -> None:
        try:
            super().add(*addons)
        finally:
            self.invalidate()

    def remove(self, addon) -> None:
        try:
            super().remove(addon)
        finally:
            self.invalidate()

    def clear(self) -> None:
        try:
            super().clear()
        finally:
            self.invalidate()

    # -- dispatch ----------------------------------------------------------------------
    async def handle_lifecycle(self, event: hooks.Hook) -> None:
        await self.trigger_event(event)
        if self.handlers("update"):
            message = _args(event)[0]
            if isinstance(message, flow.Flow):
                await self.trigger_event(hooks.UpdateHook([message]))

    async def trigger_event(self, event: hooks.Hook) -> None:
        entries = self.handlers(event.name)
        if not entries:
            return
        args = _args(event)
        for func, tree, _ in entries:
            try:
                if tree is not None:
                    await self.invoke_addon(tree, event)
                else:
                    res = func(*args)
                    if res is not None and inspect.isawaitable(res):
                        await res
            except exceptions.AddonHalt:
                return
            except exceptions.OptionsError:
                raise
            except Exception:
                _log_error()

    def trigger(self, event: hooks.Hook) -> None:
        entries = self.handlers(event.name)
        if not entries:
            return
        args = _args(event)
        for func, tree, coro_owner in entries:
            try:
                if tree is not None:
                    self.invoke_addon_sync(tree, event)
                elif coro_owner is not None:
                    raise exceptions.AddonManagerError(
                        f"Async handler {event.name} ({coro_owner}) cannot be called "
                        "from sync context")
                else:
                    func(*args)
            except exceptions.AddonHalt:
                return
            except exceptions.OptionsError:
                raise
            except Exception:
                _log_error()


def install(master) -> HookDispatch:
    """Replace a fresh master's AddonManager (before any addon is added) by HookDispatch."""
    old = master.addons
    assert not old.chain, "install the dispatcher before adding addons"
    master.options.changed.disconnect(old._configure_all)
    master.addons = HookDispatch(master)
    return master.addons
