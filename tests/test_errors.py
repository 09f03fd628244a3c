"""Errors are told apart by their code: each class has its own, and a client rebuilds the same class from it."""

from __future__ import annotations

import pytest

from palot import errors
from palot.errors import OpenCodeHTTPError, PalotError, error_for


def _all() -> list[type[PalotError]]:
    def walk(cls: type[PalotError]) -> list[type[PalotError]]:
        return [cls, *(c for sub in cls.__subclasses__() for c in walk(sub))]

    return walk(PalotError)


def test_every_error_class_has_its_own_code() -> None:
    codes = [cls.code for cls in _all()]
    assert len(codes) == len(set(codes)), sorted(c for c in codes if codes.count(c) > 1)


def test_every_error_class_is_defined_in_errors_py() -> None:
    assert {cls.__module__ for cls in _all()} == {errors.__name__}


@pytest.mark.parametrize("cls", [c for c in _all() if c is not OpenCodeHTTPError], ids=lambda c: c.code)
def test_a_client_rebuilds_each_error_from_its_code(cls: type[PalotError]) -> None:
    rebuilt = error_for(cls.code, "what failed", "what to do")
    assert type(rebuilt) is cls and rebuilt.code == cls.code and str(rebuilt) == "what failed — what to do"


def test_an_unknown_code_is_kept() -> None:
    rebuilt = error_for("from_a_newer_service", "what failed", None)
    assert type(rebuilt) is PalotError and rebuilt.code == "from_a_newer_service"
