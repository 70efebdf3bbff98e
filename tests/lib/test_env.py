from __future__ import annotations

from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from portal.lib.env import env_bool, env_choice, env_int, env_int_list, env_list, env_path


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("yes", True), ("ON", True), ("0", False), ("off", False), ("", False)])
def test_env_bool_reads_common_spellings(monkeypatch, raw, expected):
    monkeypatch.setenv("X_FLAG", raw)
    assert env_bool("X_FLAG", not expected) is expected


def test_env_bool_bad_value_names_variable(monkeypatch):
    monkeypatch.setenv("X_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="X_FLAG"):
        env_bool("X_FLAG", False)


def test_env_int_bad_value_names_variable(monkeypatch):
    monkeypatch.setenv("X_NUM", "ten")
    with pytest.raises(ImproperlyConfigured, match="X_NUM must be a whole number"):
        env_int("X_NUM", 1)


def test_env_int_default_when_unset(monkeypatch):
    monkeypatch.delenv("X_NUM", raising=False)
    assert env_int("X_NUM", 7) == 7


def test_env_list_splits_and_trims(monkeypatch):
    monkeypatch.setenv("X_LIST", " a.example, b.example ,,")
    assert env_list("X_LIST", []) == ["a.example", "b.example"]


def test_env_choice_refuses_unknown(monkeypatch):
    monkeypatch.setenv("X_CHOICE", "ftp")
    with pytest.raises(ImproperlyConfigured, match="X_CHOICE must be one of local, s3"):
        env_choice("X_CHOICE", "local", ("local", "s3"))


def test_env_path_resolves(monkeypatch, tmp_path):
    monkeypatch.setenv("X_PATH", str(tmp_path / "d"))
    assert env_path("X_PATH", Path("/nowhere")) == (tmp_path / "d").resolve()


def test_env_int_list_parses_and_refuses_bad_values(monkeypatch):
    monkeypatch.delenv("X_DAYS", raising=False)
    assert env_int_list("X_DAYS", [90, 60, 30]) == [90, 60, 30]
    monkeypatch.setenv("X_DAYS", " 14, 7 ,")
    assert env_int_list("X_DAYS", [90], minimum=1) == [14, 7]
    monkeypatch.setenv("X_DAYS", "90,sixty")
    with pytest.raises(ImproperlyConfigured, match="X_DAYS must be whole numbers separated by commas"):
        env_int_list("X_DAYS", [90])
    monkeypatch.setenv("X_DAYS", "30,0")
    with pytest.raises(ImproperlyConfigured, match="X_DAYS must be whole numbers of at least 1"):
        env_int_list("X_DAYS", [90], minimum=1)
