import pytest

from portal.lib import hooks


@pytest.fixture
def registry(monkeypatch):
    monkeypatch.setattr(hooks, "HOOKS", {"thing_done": "thing"})
    monkeypatch.setattr(hooks, "_registry", {})


def test_hooks_run_calls_every_function_in_registration_order(registry):
    hooks.register("thing_done", lambda *, thing: f"a{thing}")
    hooks.register("thing_done", lambda *, thing: None)
    assert hooks.run("thing_done", thing=1) == ["a1", None]
    assert hooks.first("thing_done", thing=2) == "a2"


def test_hooks_joined_joins_the_iterables(registry):
    hooks.register("thing_done", lambda *, thing: [thing])
    hooks.register("thing_done", lambda *, thing: {thing + 1})
    assert hooks.joined("thing_done", thing=1) == [1, 2]


def test_hooks_registering_a_function_twice_runs_it_once(registry):
    calls = []

    def done(*, thing):  # type: ignore[no-untyped-def]
        calls.append(thing)

    hooks.register("thing_done", done)
    hooks.register("thing_done", done)
    hooks.run("thing_done", thing=3)
    assert calls == [3]


def test_hooks_unknown_name_is_refused(registry):
    with pytest.raises(LookupError, match="Unknown hook 'thing_dne'"):
        hooks.register("thing_dne", lambda: None)
    with pytest.raises(LookupError):
        hooks.run("thing_dne")
    assert hooks._registry == {}


def test_hooks_with_nothing_registered_run_nothing(registry):
    assert hooks.run("thing_done", thing=1) == []
    assert hooks.first("thing_done", thing=1) is None


def test_hooks_the_apps_register_theirs_at_start_up():
    # AppConfig.ready() of the higher apps filled the real registry.
    from portal.ai.services import provenance_release_withdrawn
    from portal.linkage.services import on_release_changed

    assert hooks.get_hooks("release_withdrawn") == [on_release_changed, provenance_release_withdrawn]
    assert all(hooks.get_hooks(name) for name in hooks.HOOKS)
