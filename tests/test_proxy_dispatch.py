"""HookDispatch calls the same hooks, in the same order, as mitmproxy's AddonManager."""

from __future__ import annotations

import logging
import warnings

import pytest

with warnings.catch_warnings():
    # mitmproxy 12.2 calls pyparsing names that pyparsing 3.3 deprecates, at import time
    warnings.simplefilter("ignore", DeprecationWarning)
    from mitmproxy import eventsequence, exceptions, hooks, master, options
    from mitmproxy.test import tflow

    from node.proxy.dispatch import HookDispatch, install


class Rec:
    """Records every hook it defines into a shared log."""

    def __init__(self, name: str, log: list, hooks_: tuple[str, ...] = ()) -> None:
        self.name, self.log = name, log
        for h in hooks_:
            setattr(self, h, self._make(h))

    def _make(self, hook: str):
        def handler(*args):
            self.log.append((self.name, hook))
        return handler


class Full:
    """A typical addon: sync and async hooks, one of them raising."""

    def __init__(self, log: list) -> None:
        self.log = log

    def load(self, loader) -> None:
        loader.add_option("full_opt", int, 0, "a test option")

    def configure(self, updated) -> None:
        self.log.append(("full", "configure", "full_opt" in updated))

    def running(self) -> None:
        self.log.append(("full", "running"))

    async def request(self, flow) -> None:
        self.log.append(("full", "request"))

    def response(self, flow) -> None:
        self.log.append(("full", "response"))
        raise ValueError("boom")

    def update(self, flows) -> None:
        self.log.append(("full", "update"))


class Parent:
    """An addon with sub-addons it manages itself (as mitmproxy's ScriptLoader does)."""

    def __init__(self, log: list, children: list) -> None:
        self.log = log
        self.addons = children

    def request(self, flow) -> None:
        self.log.append(("parent", "request"))


def _masters(kind):
    m = master.Master(options.Options())
    if kind == "dispatch":
        install(m)
    return m


def _addons(log: list) -> list:
    return [Rec("a", log, ("request", "response")), Full(log),
            Parent(log, [Rec("child", log, ("request", "error"))]),
            Rec("b", log, ("requestheaders", "done")), Rec("quiet", log)]


async def _run(kind: str) -> list:
    log: list = []
    m = _masters(kind)
    m.addons.add(*_addons(log))
    m.options.update(full_opt=3)
    await m.running()
    for f in (tflow.tflow(resp=True), tflow.tflow(err=True)):
        for ev in eventsequence.iterate(f):
            await m.addons.handle_lifecycle(ev)
    await m.done()
    return log


async def test_same_calls_as_mitmproxy(caplog):
    caplog.set_level(logging.ERROR, "mitmproxy")
    stock = await _run("stock")
    n_errors = len(caplog.records)
    ours = await _run("dispatch")
    assert ours == stock
    assert ("full", "update") in ours and ("child", "error") in ours
    # the raising response hook was logged both times, the same way
    errs = [r.getMessage() for r in caplog.records]
    assert errs[:n_errors] == errs[n_errors:] == ["Addon error: boom"] * 1


async def test_only_defining_addons_in_table():
    log: list = []
    m = _masters("dispatch")
    a, b = Rec("a", log, ("request",)), Rec("b", log, ("response",))
    m.addons.add(a, b)
    assert isinstance(m.addons, HookDispatch)
    assert [e[0] for e in m.addons.handlers("request")] == [a.request]
    assert m.addons.handlers("update") == ()
    assert m.addons.handlers("tcp_message") == ()


async def test_chain_changes_rebuild_the_table():
    log: list = []
    m = _masters("dispatch")
    a = Rec("a", log, ("request",))
    m.addons.add(a)
    f = tflow.tflow()
    await m.addons.trigger_event(hooks.all_hooks["request"](f))
    late = Rec("late", log, ("request",))
    m.addons.add(late)
    await m.addons.trigger_event(hooks.all_hooks["request"](f))
    m.addons.remove(a)
    await m.addons.trigger_event(hooks.all_hooks["request"](f))
    assert log == [("a", "request"), ("a", "request"), ("late", "request"), ("late", "request")]


async def test_sub_addons_walked_at_call_time():
    log: list = []
    m = _masters("dispatch")
    children: list = []
    m.addons.add(Parent(log, children))
    f = tflow.tflow()
    await m.addons.trigger_event(hooks.all_hooks["request"](f))
    children.append(Rec("child", log, ("request",)))   # a parent swaps its children itself
    await m.addons.trigger_event(hooks.all_hooks["request"](f))
    assert log == [("parent", "request"), ("parent", "request"), ("child", "request")]


async def test_halt_stops_and_options_error_propagates():
    log: list = []

    class Halt:
        def request(self, flow):
            raise exceptions.AddonHalt

        def configure(self, updated):
            if "bad" in updated:
                raise exceptions.OptionsError("bad value")

    m = _masters("dispatch")
    m.addons.add(Halt(), Rec("after", log, ("request",)))
    await m.addons.trigger_event(hooks.all_hooks["request"](tflow.tflow()))
    assert log == []
    with pytest.raises(exceptions.OptionsError):
        m.addons.trigger(hooks.ConfigureHook({"bad"}))


async def test_async_hook_from_sync_trigger_is_logged(caplog):
    class Async:
        async def running(self):
            pass

    m = _masters("dispatch")
    m.addons.add(Async())
    m.addons.trigger(hooks.RunningHook())
    assert any("cannot be called from sync context" in r.getMessage()
               for r in caplog.records)


async def test_node_master_uses_it(tmp_path):
    from node.config.model import EngineConfig
    from node.proxy.run import RunningNode
    from node.proxy.settings import NodeSettings

    s = NodeSettings(listen_host="127.0.0.1", listen_port=0, upstream="http://127.0.0.1:9",
                     state_dir=str(tmp_path), admin_host=None)
    rn = RunningNode(s, EngineConfig(), with_engine=False)
    from node.proxy.master import NodeMaster

    m = NodeMaster(s, rn.node, rn.guard)
    try:
        assert isinstance(m.addons, HookDispatch)
        assert m.options.connection_strategy == "lazy"    # configure reached the addons
        names = [type(e[0].__self__).__name__ for e in m.addons.handlers("response")]
        assert names == ["Record", "Detect"]
    finally:
        rn.store.close()
