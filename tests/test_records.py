"""core.records.record gives what @dataclass gives for the features the start-up path uses."""

from __future__ import annotations

import dataclasses

import pytest

from smtp_tutor.core import records

pytestmark = pytest.mark.pure


def _pair(frozen: bool, slots: bool) -> tuple[type, type]:
    def make(decorate, make_field):  # type: ignore[no-untyped-def]
        @decorate(frozen=frozen, slots=slots)
        class Point:
            a: int
            b: str = "x"
            c: tuple[int, ...] = make_field(default_factory=tuple)
            d: str | None = make_field(default=None)

            def first(self) -> int:
                return self.a

        return Point

    return make(dataclasses.dataclass, dataclasses.field), make(records.record, records.field)


@pytest.mark.parametrize(("frozen", "slots"), [(False, False), (True, False), (True, True)])
def test_record_behaves_as_the_dataclass(frozen: bool, slots: bool) -> None:
    dc, rec = _pair(frozen, slots)
    for args, kwargs in [((1,), {}), ((1, "y", (2,), "z"), {}), ((), {"a": 3, "d": "q"})]:
        one, two = dc(*args, **kwargs), rec(*args, **kwargs)
        assert repr(one) == repr(two)
        assert two == rec(*args, **kwargs) and two != rec(99)
        assert two.first() == one.first()
        if frozen:
            assert hash(two) == hash(rec(*args, **kwargs))
    assert (dc.__hash__ is None) == (rec.__hash__ is None)
    assert dc.__match_args__ == rec.__match_args__
    assert rec(1).c is not rec(1).c or rec(1).c == ()
    assert hasattr(rec(1), "__dict__") == hasattr(dc(1), "__dict__")
    item = rec(1)
    if frozen:
        with pytest.raises(AttributeError):
            item.a = 5
    else:
        item.a = 5
        assert item.a == 5
    assert records.replace(rec(1), b="zz") == rec(1, "zz")
    assert records.fields(rec) == ("a", "b", "c", "d")


def test_a_mutable_default_factory_is_called_per_instance() -> None:
    @records.record
    class Bag:
        items: list[int] = records.field(default_factory=list)

    first, second = Bag(), Bag()
    first.items.append(1)
    assert second.items == []
    assert Bag.__hash__ is None


def test_what_record_does_not_do_is_refused() -> None:
    with pytest.raises(TypeError):

        @records.record
        class Late:
            a: int = 0
            b: int

    with pytest.raises(TypeError):

        @records.record
        class Post:
            a: int

            def __post_init__(self) -> None:
                pass


def test_the_init_is_made_on_first_use_and_then_is_the_dataclasses() -> None:
    """`__init__` is compiled when the first instance is made (start-up time), through a
    plain subclass too; from then on it is the real one, with the dataclass's parameters,
    and a wrong call says what the dataclass says, first call or not."""
    import inspect

    dc, rec = _pair(frozen=True, slots=True)
    stub = rec.__dict__["__init__"]

    class Sub(rec):  # type: ignore[misc, valid-type]
        pass

    assert Sub(1) == Sub(1) and Sub(1).a == 1
    assert rec.__dict__["__init__"] is not stub
    assert list(inspect.signature(rec).parameters) == list(inspect.signature(dc).parameters)
    for first in (True, False):
        _, fresh = _pair(frozen=False, slots=False) if first else (dc, rec)
        for args, kwargs in [((), {}), ((1,), {"e": 2}), ((1, 2, 3, 4, 5), {})]:
            with pytest.raises(TypeError) as theirs:
                dc(*args, **kwargs)
            with pytest.raises(TypeError) as ours:
                fresh(*args, **kwargs)
            assert str(ours.value).split("()", 1)[1] == str(theirs.value).split("()", 1)[1]
