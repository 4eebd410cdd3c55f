"""`record`: the dataclasses the start-up path needs, without the `dataclasses` module.

`dataclasses` imports `inspect` (and with it `ast`, `dis`, `tokenize`: ~12 ms here), and
each `@dataclass` costs about 0.9 ms to build; a one-message `smtp-tutor replay` makes
some thirty of them, more than the whole dialogue takes. `record` builds the same class
for the features those classes use — fields from the class's own annotations in order,
defaults, `field(default_factory=...)`, `frozen`, `slots` — with one small `exec` for
`__init__`, run when the first instance is made; `__repr__`, `__eq__`, `__hash__` and the
frozen `__setattr__` are functions shared by every record that read its
`__record_fields__`. What it gives is what `@dataclass` gives for those: the same
signature (once an instance was made), repr, equality (same class, equal fields), hash
(frozen: of the fields; mutable: unhashable), `FrozenInstanceError` (an AttributeError) on
assignment, `__match_args__`. `replace` and `fields` stand in for `dataclasses.replace`
and `dataclasses.fields` (names only). Not supported (a TypeError at class creation
where it matters): `__post_init__`, inheritance between records, `InitVar`, `KW_ONLY`.
"""

from __future__ import annotations

from collections.abc import Callable

# `typing` is not imported at run time on the start-up path: it costs about 3 ms, more than
# a one-message replay's dialogue, and a one-shot smtplib script does without it. Each module
# there says `TYPE_CHECKING = False` (type checkers read it as true), keeps its annotations
# as strings and its aliases under the `if`; here `overload` and `dataclass_transform` are
# what typing's do at run time, less typing's registry that nothing here reads.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypeVar, dataclass_transform, overload

    _T = TypeVar("_T")
else:

    def overload(function: Callable[..., object]) -> Callable[..., object]:
        return function

    def dataclass_transform(**_parameters: object) -> Callable[..., object]:
        return overload


class FrozenInstanceError(AttributeError):
    """Assignment to a field of a frozen record (as `dataclasses.FrozenInstanceError`)."""


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class _Field:
    __slots__ = ("default", "default_factory")

    def __init__(self, default: Any, default_factory: Any) -> None:
        self.default = default
        self.default_factory = default_factory


def field(*, default: Any = MISSING, default_factory: Callable[[], Any] = MISSING) -> Any:
    """A field's default, or a factory called for each instance (as `dataclasses.field`)."""
    if default is not MISSING and default_factory is not MISSING:
        raise ValueError("cannot specify both default and default_factory")
    return _Field(default, default_factory)


def _repr(self: Any) -> str:
    shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__record_fields__)
    return f"{type(self).__qualname__}({shown})"


def _key(self: Any) -> tuple[Any, ...]:
    return tuple(getattr(self, name) for name in self.__record_fields__)


def _eq(self: Any, other: object) -> bool:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _key(self) == _key(other)


def _hash(self: Any) -> int:
    return hash(_key(self))


def _frozen_setattr(self: Any, name: str, value: object) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: Any, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")


@overload
def record(cls: type[_T], /) -> type[_T]: ...
@overload  # (the F811s: ruff takes this overload for a plain function)
def record(*, frozen: bool = False, slots: bool = False) -> Callable[[type[_T]], type[_T]]: ...  # noqa: F811


@dataclass_transform(field_specifiers=(field,))
def record(  # noqa: F811
    cls: type[_T] | None = None, /, *, frozen: bool = False, slots: bool = False
) -> type[_T] | Callable[[type[_T]], type[_T]]:
    """`@record`, `@record(frozen=True, slots=True)`: as `@dataclass` with the same flags."""

    def wrap(cls: type[_T]) -> type[_T]:
        return _build(cls, frozen, slots)

    return wrap if cls is None else wrap(cls)


def _build(cls: type[_T], frozen: bool, slots: bool) -> type[_T]:
    if "__post_init__" in cls.__dict__:
        raise TypeError(f"{cls.__qualname__}: record does not call __post_init__")
    if any(hasattr(base, "__record_fields__") for base in cls.__mro__[1:]):
        raise TypeError(f"{cls.__qualname__}: a record cannot inherit from a record")
    annotations = cls.__dict__.get("__annotations__", {})  # noqa: RUF063 - own, no inspect
    names: list[str] = []
    defaults: dict[str, Any] = {}
    factories: dict[str, Callable[[], Any]] = {}
    for name, annotation in annotations.items():
        text = annotation if isinstance(annotation, str) else repr(annotation)
        if "ClassVar" in text or "InitVar" in text or "KW_ONLY" in text:
            if "ClassVar" not in text:
                raise TypeError(f"{cls.__qualname__}.{name}: not supported by record")
            continue
        value = cls.__dict__.get(name, MISSING)
        if isinstance(value, _Field):
            if value.default_factory is not MISSING:
                factories[name] = value.default_factory
            elif value.default is not MISSING:
                defaults[name] = value.default
        elif value is not MISSING:
            defaults[name] = value
        if (names and (names[-1] in defaults or names[-1] in factories)) and not (
            name in defaults or name in factories
        ):
            raise TypeError(f"non-default argument {name!r} follows default argument")
        names.append(name)

    namespace: dict[str, Any] = {"_set": object.__setattr__, "_MISSING": MISSING}
    parameters, body = [], []
    for name in names:
        if name in factories:
            namespace[f"_f_{name}"] = factories[name]
            parameters.append(f"{name}=_MISSING")
            value = f"_f_{name}() if {name} is _MISSING else {name}"
        elif name in defaults:
            namespace[f"_d_{name}"] = defaults[name]
            parameters.append(f"{name}=_d_{name}")
            value = name
        else:
            parameters.append(name)
            value = name
        body.append(f"_set(self, {name!r}, {value})" if frozen else f"self.{name} = {value}")
    source = f"def __init__(self, {', '.join(parameters)}):\n"
    source += "".join(f" {line}\n" for line in body) if body else " pass\n"
    if not names:
        source = "def __init__(self):\n pass\n"
    init = _deferred_init(source, namespace, f"{cls.__qualname__}.__init__")

    methods: dict[str, Any] = {
        "__init__": init,
        "__record_fields__": tuple(names),
        "__match_args__": tuple(names),
    }
    own = cls.__dict__
    if "__repr__" not in own:
        methods["__repr__"] = _repr
    if "__eq__" not in own:
        methods["__eq__"] = _eq
    explicit_hash = "__hash__" in own and not (own["__hash__"] is None and "__eq__" in own)
    if not explicit_hash:
        methods["__hash__"] = _hash if frozen else None
    if frozen:
        methods["__setattr__"] = _frozen_setattr
        methods["__delattr__"] = _frozen_delattr
    if not slots:  # the class itself, as @dataclass does; plain defaults stay on it
        for name, value in methods.items():
            setattr(cls, name, value)
        for name, value in defaults.items():
            setattr(cls, name, value)
        for name in factories:
            delattr(cls, name)
        return cls
    # slots: a new class, as @dataclass(slots=True) makes (no class attribute per field)
    attributes = {
        key: value
        for key, value in own.items()
        if key not in ("__dict__", "__weakref__") and key not in names
    }
    attributes.update(methods, __slots__=tuple(names))
    built = type(cls)(cls.__name__, cls.__bases__, attributes)
    built.__qualname__ = cls.__qualname__
    return built  # type: ignore[return-value]


def _deferred_init(source: str, namespace: dict[str, Any], qualname: str) -> Callable[..., None]:
    """An `__init__` that compiles the real one when the first instance is made.

    Compiling costs ~0.1 ms a record and most records of a module are not made before the
    console's first prompt (36 imported, a few made): each pays on its first use instead.
    The real `__init__` then replaces this one on the class, so later instances call it
    directly, and its errors (a missing or unknown argument) are the ones it always gave.
    """

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        exec(source, namespace)
        real = namespace["__init__"]
        real.__qualname__ = qualname
        for owner in type(self).__mro__:  # the record class, under any plain subclass
            if owner.__dict__.get("__init__") is __init__:
                type.__setattr__(owner, "__init__", real)
                break
        real(self, *args, **kwargs)

    __init__.__qualname__ = qualname
    return __init__


def fields(item: object) -> tuple[str, ...]:
    """The names of a record's fields, in order (a record class or an instance)."""
    return getattr(item, "__record_fields__", ())


def replace(item: _T, /, **changes: Any) -> _T:
    """A copy of the record `item` with `changes` (as `dataclasses.replace`, which a
    dataclass is handed to: code that copies either kind calls this one)."""
    names = fields(item)
    if not names and hasattr(item, "__dataclass_fields__"):
        import dataclasses

        return dataclasses.replace(item, **changes)  # type: ignore[type-var]
    unknown = set(changes) - set(names)
    if unknown:
        raise TypeError(f"{type(item).__qualname__} has no field {sorted(unknown)[0]!r}")
    values = {name: changes.get(name, getattr(item, name)) for name in names}
    return type(item)(**values)
