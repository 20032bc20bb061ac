"""Optimizers: frozen, validated hyperparameters; ``init`` and an in-place ``step``.

An optimizer object only holds numbers. :meth:`Optimizer.coefficients` turns
them into the tuple of coefficients that the scalar rule in
:mod:`rmsnum.rules` takes, and :meth:`Optimizer.step` hands the arrays to the
compiled kernel of :mod:`rmsnum.backends.cpu`.

Adding a rule means writing its scalar function in :mod:`rmsnum.rules` and a
small subclass here that names the rule, the bounds of its hyperparameters, its
state slots, its coefficients and its bias-correction decays.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Callable, ClassVar

import numpy as np

from . import _validation as v
from . import rules
from ._neutral import HIGHEST, LOWEST, ONE, ZERO, Neutral

# Bounds of the real hyperparameters: keyword arguments of rmsnum._validation.real.
_POSITIVE = dict(low=0.0, low_open=True)
_NON_NEGATIVE = dict(low=0.0)
_UNIT = dict(low=0.0, high=1.0)
_BELOW_ONE = dict(low=0.0, high=1.0, high_open=True)

_STATE_FIELDS = ("arrays", "t", "d1", "d2", "rule")


class OptimizerState:
    """The state of an optimizer for one array of parameters.

    Attributes
    ----------
    arrays : dict of str to array
        The state slots the optimizer keeps, by name, in its rule's order
        (:data:`rmsnum.rules.REGISTRY`): e.g. ``s`` (mean square), ``m``
        (momentum buffer or first moment), ``g_avg`` (centered mean), ``v_max``
        (AMSGrad's running maximum of ``s``). Each array has the shape and
        dtype of the parameters (NumPy, or device arrays for a GPU state). Every
        slot of the rule is also an attribute: ``state.s``; ``None`` for a slot
        the optimizer's options leave unused.
    t : int
        Number of steps taken.
    d1, d2 : numpy.floating
        Bias-correction denominators ``1 - beta**t`` in the parameters' dtype
        (unused, and left at 0, by rules without bias correction).
    rule : str
        Name of the rule this state belongs to.

    Examples
    --------
    >>> import numpy as np, rmsnum as rn
    >>> state = rn.Adam(lr=0.1, amsgrad=True).init(np.zeros(2))
    >>> state.slots, state.v_max
    (('s', 'm', 'v_max'), array([0., 0.]))
    """

    __slots__ = _STATE_FIELDS

    def __init__(self, arrays: dict[str, Any], t: int, d1: np.floating, d2: np.floating, rule: str) -> None:
        names = rules.REGISTRY[rule].slots
        unknown = sorted(set(arrays) - set(names))
        if unknown:
            raise ValueError(f"rule {rule!r} has the slots {names}, not {', '.join(unknown)}")
        object.__setattr__(self, "rule", rule)
        object.__setattr__(self, "arrays", {n: arrays[n] for n in names if arrays.get(n) is not None})
        self.t, self.d1, self.d2 = t, d1, d2

    def __getattr__(self, name: str) -> Any:  # only for names that are not fields: the slots
        if name in rules.REGISTRY[object.__getattribute__(self, "rule")].slots:
            return object.__getattribute__(self, "arrays").get(name)
        raise AttributeError(f"{type(self).__name__} of rule {self.rule!r} has no slot or attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("t", "d1", "d2"):
            object.__setattr__(self, name, value)
        elif name in rules.REGISTRY[self.rule].slots:
            if value is None:
                self.arrays.pop(name, None)
            else:
                self.arrays[name] = value
                order = rules.REGISTRY[self.rule].slots
                object.__setattr__(self, "arrays", {n: self.arrays[n] for n in order if n in self.arrays})
        else:
            raise AttributeError(f"{type(self).__name__} of rule {self.rule!r} has no slot or attribute {name!r}")

    def __repr__(self) -> str:
        arrays = ", ".join(f"{n}={a!r}" for n, a in self.arrays.items())
        return f"OptimizerState(rule={self.rule!r}, t={self.t}, d1={self.d1!r}, d2={self.d2!r}, {arrays})"

    @property
    def slots(self) -> tuple[str, ...]:
        """Names of the slots that hold an array, in the rule's order."""
        return tuple(self.arrays)

    def copy(self) -> "OptimizerState":
        """A deep copy (arrays copied)."""
        return OptimizerState({n: a.copy() for n, a in self.arrays.items()}, self.t, self.d1, self.d2, self.rule)


@dataclass(frozen=True)
class Optimizer:
    """Base class: subclasses name their ``rule`` (a function of :data:`rmsnum.rules.REGISTRY`)
    and define ``_bounds``, ``_coefficients``, and, where options decide them,
    ``slots``, ``_bias_corrected``, ``_booleans`` and ``_preset_arguments``."""

    rule: ClassVar[Callable]
    _bounds: ClassVar[dict[str, dict[str, Any]]] = {}
    """Each real hyperparameter -> its bounds, as keyword arguments of :func:`rmsnum._validation.real`."""
    _booleans: ClassVar[tuple[str, ...]] = ()
    """The boolean options, checked to be bools."""
    _preset_arguments: ClassVar[dict[str, dict[str, str]]] = {}
    """Each preset -> the fields its arguments name otherwise (field -> argument)."""
    classes: ClassVar[list[type]] = []
    """Every optimizer class, in the order they are defined (for the CLI and the tests)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Optimizer.classes.append(cls)

    def __post_init__(self) -> None:
        preset = getattr(self, "preset", None)
        if preset is not None and not isinstance(preset, str):
            raise TypeError(f"preset must be None or a str, got {preset!r} of type {type(preset).__name__}")
        if preset is not None and preset not in self._preset_arguments:
            raise ValueError(f"preset must be None or one of {', '.join(map(repr, self._preset_arguments))}, "
                             f"got {preset!r}")
        for name, bounds in self._bounds.items():
            if name == "rescale_grad" and self.rescale_grad is None:  # None: not rescaled (an exact neutral)
                continue
            object.__setattr__(self, name, v.real(self._argument(name), getattr(self, name), **bounds))
        for name in self._booleans:
            object.__setattr__(self, name, v.boolean(self._argument(name), getattr(self, name)))

    def _argument(self, name: str) -> str:
        """The name under which the user gave the field ``name`` (a preset may spell it otherwise)."""
        return self._preset_arguments.get(getattr(self, "preset", None), {}).get(name, name)

    @property
    def spec(self) -> rules.Rule:
        """The rule's entry in :data:`rmsnum.rules.REGISTRY`."""
        return rules.lookup(self.rule)

    @property
    def name(self) -> str:
        """The rule's name, e.g. ``"rmsprop"``."""
        return self.rule.__name__

    @property
    def slots(self) -> tuple[str, ...]:
        """The state slots this optimizer keeps arrays for (by default all of its rule's)."""
        return self.spec.slots

    def _coefficients(self) -> tuple[float | Neutral, ...]:
        raise NotImplementedError

    def _bias_corrected(self) -> bool:
        """Whether the bias corrections of the rule's ``decays`` are on (by default: when it has any)."""
        return bool(self.spec.decays)

    def _decays(self) -> tuple[Any, Any, Any, Any] | None:
        """``(beta1, 1 - beta1, beta2, 1 - beta2)`` for the bias corrections, or None without:
        the coefficients the registry names as the rule's decays."""
        if not self._bias_corrected():
            return None
        names, values = self.spec.coefficients, self._coefficients()
        return tuple(values[names.index(name)] for name in self.spec.decays)

    def _initial(self, slot: str) -> float:
        return 0.0

    def _initial_denominators(self) -> tuple[Any, Any]:
        """``(d1, d2)`` before the first step, from which the ``decays`` advance them (0: ``1 - beta**t``)."""
        return 0.0, 0.0

    def coefficients(self, dtype: Any = np.float64) -> tuple:
        """The rule's coefficient tuple, each value rounded once to ``dtype``.

        A coefficient of an option that is off is an exact neutral (``ZERO``, ``ONE``,
        or ``LOWEST``, ``HIGHEST`` for a clip's limits; see :mod:`rmsnum._neutral`), so
        compiled kernels skip its term.

        >>> RMSProp(lr=0.4).coefficients()[:4]
        (ONE, ZERO, LOWEST, HIGHEST)
        """
        dt = v.float_dtype("dtype", dtype)
        return tuple(c if isinstance(c, Neutral) else dt.type(c) for c in self._coefficients())

    def decays(self, dtype: Any = np.float64) -> tuple | None:
        """The bias-correction decays ``(beta1, 1 - beta1, beta2, 1 - beta2)`` in
        ``dtype``, or None for a rule (or variant) without bias correction."""
        dt = v.float_dtype("dtype", dtype)
        decays = self._decays()
        return None if decays is None else tuple(dt.type(c) for c in decays)

    def hyperparameters(self) -> dict[str, Any]:
        """The constructor arguments as a dict."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def check_dtype(self, dtype: Any) -> None:
        """Raise ``ValueError`` unless every real hyperparameter survives rounding to
        ``dtype``: a non-zero value that rounds to 0 (``lr=1e-50`` in float32 would
        never move x) or a finite one that overflows is refused, under the name the
        user gave it (``learning_rate`` for :meth:`RMSProp.keras`).

        :meth:`step` checks against the dtype of x, :func:`rmsnum.simulate` and
        :func:`rmsnum.train` against their working dtype.

        >>> RMSProp.keras(learning_rate=1e-50).check_dtype(np.float32)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: learning_rate=1e-50 rounds to 0 in float32 (the smallest positive float32 is 1.4013e-45); ...
        """
        _check_dtype(self, v.float_dtype("dtype", dtype))

    def init(self, x: Any) -> OptimizerState:
        """A fresh state for parameters shaped like ``x``.

        Parameters
        ----------
        x : numpy.ndarray or CUDA device array
            C-contiguous float32 or float64 array; only its shape and dtype are
            used. For a device array (Numba, CuPy, PyTorch: anything with
            ``__cuda_array_interface__``) the state lives on the device too.

        Raises
        ------
        ValueError
            When a hyperparameter rounds to 0 or overflows in x's dtype (see
            :meth:`check_dtype`), e.g. ``initial_s=1e39`` in float32.

        Examples
        --------
        >>> import numpy as np, rmsnum as rn
        >>> state = rn.RMSProp(lr=0.1).init(np.zeros(3))
        >>> state.s
        array([0., 0., 0.])
        """
        if v.on_device(x):
            from .backends import cuda

            cuda.require()
            x = cuda.view("x", x)
            return self._new_state(x.shape, x.dtype, cuda.full)
        x = v.float_array("x", x)
        return self.init_like(x.shape, x.dtype)

    def init_like(self, shape: tuple[int, ...], dtype: Any) -> OptimizerState:
        """A fresh state (NumPy arrays) for parameters of the given shape and dtype."""
        dt = v.float_dtype("dtype", dtype)
        return self._new_state(shape, dt, lambda shape, value, dtype: np.full(shape, value, dtype=dtype))

    def _new_state(self, shape: tuple[int, ...], dt: np.dtype, full: Callable) -> OptimizerState:
        _check_dtype(self, dt)  # an initial value must not overflow
        arrays = {slot: full(shape, self._initial(slot), dt) for slot in self.slots}
        d1, d2 = (dt.type(d) for d in self._initial_denominators())
        return OptimizerState(arrays, t=0, d1=d1, d2=d2, rule=self.name)

    def check_state(self, state: Any, shape: tuple[int, ...], dtype: np.dtype, device: bool = False) -> None:
        """Raise unless ``state`` was made by a compatible optimizer for this shape and
        dtype (with arrays on the GPU when ``device``)."""
        if not isinstance(state, OptimizerState):
            raise TypeError(f"state must be an OptimizerState from {self.name}.init(x), got {type(state).__name__}")
        if state.rule != self.name or state.slots != self.slots:
            raise ValueError(
                f"state belongs to another optimizer: it was made for rule {state.rule!r} with slots "
                f"{state.slots}, this optimizer is {self.name!r} with slots {self.slots}"
            )
        for slot in self.slots:
            arr = getattr(state, slot)
            if v.on_device(arr) != device:
                where = "a CUDA device array" if device else "a NumPy array"
                raise ValueError(f"state.{slot} must be {where} like x, got {type(arr).__name__}")
            if device:
                from .backends import cuda

                arr = cuda.view(f"state.{slot}", arr, writeable=True)
            if not device and not isinstance(arr, np.ndarray) or arr.shape != shape or arr.dtype != dtype:
                raise ValueError(
                    f"state.{slot} must be an array of shape {shape} and dtype {dtype} like x, "
                    f"got {getattr(arr, 'shape', None)} {getattr(arr, 'dtype', type(arr).__name__)}"
                )
            if not device and (not arr.flags.c_contiguous or not arr.flags.writeable):
                raise ValueError(f"state.{slot} must be C-contiguous and writeable")
        if np.dtype(type(state.d1)) != dtype or np.dtype(type(state.d2)) != dtype:
            raise ValueError(f"state.d1 and state.d2 must be {dtype} scalars like x")

    def step(self, x: np.ndarray, g: np.ndarray, state: OptimizerState, *, norm: float | None = None) -> None:
        """Apply one update to ``x`` and ``state`` in place.

        Arrays of 2**16 elements or more are updated in parallel over elements
        (``prange``); smaller ones serially. Both give bit-identical results.
        When ``x`` is a CUDA device array (Numba, CuPy, PyTorch: anything with
        ``__cuda_array_interface__``, used without copies) the update runs on
        the GPU, and ``g`` and the state must be on the device too (see
        :meth:`init`); it agrees with the CPU within a few ulp (fused
        multiply-adds).

        Parameters
        ----------
        x : numpy.ndarray or CUDA device array
            Parameters: C-contiguous, writeable, float32 or float64, any shape.
        g : numpy.ndarray or CUDA device array
            Gradient, same shape and dtype as ``x``, on the same side.
        state : OptimizerState
            From :meth:`init` of an optimizer with the same rule and slots (the
            hyperparameters may differ, so a schedule can swap optimizers).
        norm : float, optional
            The gradient's norm that ``clip_norm`` compares with: by default ``g``'s
            own (Keras' ``clipnorm``). For Keras' ``global_clipnorm`` over several
            arrays stepped together, pass their global norm, finite and >= 0,
            e.g. ``math.sqrt(sum(float(np.vdot(g, g)) for g in grads))``. Unused
            without ``clip_norm``.

        Raises
        ------
        TypeError, ValueError
            Before anything is modified, when the arrays or the state do not fit:
            among others when two of x, g and the state's slots overlap in
            memory (only ``g`` may be ``x`` itself), or when a hyperparameter
            rounds to 0 or overflows in x's dtype (see :meth:`check_dtype`).

        Examples
        --------
        >>> import numpy as np, rmsnum as rn
        >>> opt = rn.RMSProp(lr=0.4, gamma=0.9)
        >>> x = np.array([-5.0, -2.0]); state = opt.init(x)
        >>> opt.step(x, np.array([0.2, 4.0]) * x, state)
        >>> x.round(6)
        array([-3.735095, -0.735089])
        """
        from .backends import base  # the one way to a backend (a lazy import: backends sit above optimizers)

        if norm is not None:
            norm = v.real("norm", norm, low=0.0)
        device = v.on_device(x)
        kernels = base.get("cuda" if device else "cpu", ("cpu", "cuda"), "a step")
        if device:
            x, g, slots = self._check_step_device(x, g, state)
        else:
            self._check_step(x, g, state)
            slots = tuple(state.arrays.get(name) for name in self.spec.slots)
        debias = None if self._decays() is None else self._next_debias(state)
        one = x.dtype.type(1)
        r1, r2 = (ONE, ONE) if debias is None else (one / debias[0], one / debias[1])
        c = self.coefficients(x.dtype)
        if not isinstance(c[-1], Neutral):  # clip_norm: the gradient's scale for this step
            c = rules.norm_clipped(c, kernels.squares(g) if norm is None else x.dtype.type(norm) ** 2)
        kernels.step(self.rule, x, g, slots, r1, r2, c)
        if debias is not None:
            state.d1, state.d2 = debias
        state.t += 1

    def _check_step(self, x: Any, g: Any, state: Any) -> None:
        x = v.float_array("x", x)
        g = v.float_array("g", g)
        if g.dtype != x.dtype:
            raise TypeError(f"g must have the dtype of x ({x.dtype}), got {g.dtype}")
        if g.shape != x.shape:
            raise ValueError(f"g must have the shape of x {x.shape}, got {g.shape}")
        if not x.flags.writeable:
            raise ValueError("x must be writeable (it is updated in place)")
        self.check_state(state, x.shape, x.dtype)
        _check_aliasing(x, g, {slot: getattr(state, slot) for slot in state.slots}, np.may_share_memory,
                        lambda a, b: np.lib.array_utils.byte_bounds(a) == np.lib.array_utils.byte_bounds(b))
        _check_dtype(self, x.dtype)

    def _check_step_device(self, x: Any, g: Any, state: Any) -> tuple:
        """The checks of :meth:`_check_step` for device arrays; returns Numba
        views of x, g and the state's slots."""
        from .backends import cuda

        x = cuda.view("x", x, writeable=True)
        g = cuda.view("g", g)
        if g.dtype != x.dtype:
            raise TypeError(f"g must have the dtype of x ({x.dtype}), got {g.dtype}")
        if g.shape != x.shape:
            raise ValueError(f"g must have the shape of x {x.shape}, got {g.shape}")
        self.check_state(state, x.shape, x.dtype, device=True)
        names = self.spec.slots
        slots = tuple(None if getattr(state, n) is None else cuda.view(f"state.{n}", getattr(state, n))
                      for n in names)
        _check_aliasing(x, g, {n: arr for n, arr in zip(names, slots) if arr is not None}, cuda.share_memory,
                        lambda a, b: cuda._extent(a) == cuda._extent(b))
        _check_dtype(self, x.dtype)
        return x, g, slots

    def _next_debias(self, state: OptimizerState) -> tuple:
        dt = np.dtype(type(state.d1))
        b1, omb1, b2, omb2 = self.decays(dt) or (dt.type(0), dt.type(1), dt.type(0), dt.type(1))
        return rules.debias(state.d1, b1, omb1), rules.debias(state.d2, b2, omb2)


def _check_aliasing(x: Any, g: Any, slots: dict[str, Any], overlap: Callable, same: Callable) -> None:
    """Raise ``ValueError`` when x, g and the state's ``slots`` (name -> array) overlap in memory.

    The kernels read each element's inputs before they write it, so ``g`` may be
    ``x`` itself (``same``: the same bytes; both have one shape and dtype and are
    C-contiguous); any other overlap (``overlap``), a shifted view or a slot
    shared by two names, would read values already updated, or race in parallel.
    """
    arrays = [x, g, *slots.values()]
    for k in range(1, len(arrays)):
        for j in range(k):
            if not overlap(arrays[k], arrays[j]) or k == 1 and same(g, x):
                continue
            if k == 1:
                raise ValueError("g shares memory with x without being x itself (the same start, shape and "
                                 "strides); pass a separate array, e.g. g.copy()")
            names = ["x", "g", *(f"state.{name}" for name in slots)]
            raise ValueError(f"{names[k]} shares memory with {names[j]}; each state slot needs an array of its "
                             "own, apart from x and g (make the state with init)")


@functools.lru_cache(maxsize=256)
def _check_dtype(opt: Optimizer, dt: np.dtype) -> None:
    """:meth:`Optimizer.check_dtype`, remembered for the optimizers and dtypes that passed
    (equal optimizers hold equal numbers, so one that passed stands for all)."""
    for f in dataclasses.fields(opt):
        value = getattr(opt, f.name)
        if isinstance(value, float):
            v.representable(opt._argument(f.name), value, dt)


def _on(value: Any) -> bool:
    """Whether an option given by a non-negative number is switched on (value > 0).

    Written for arrays too: :func:`rmsnum.sweep` evaluates coefficients for a
    whole column of configurations at once, grouped so that each option is on
    for all of them or for none.
    """
    if isinstance(value, (int, float)):  # the common scalar case, without NumPy's overhead
        return value > 0
    return bool(np.all(np.asarray(value) > 0))


def _zero(value: Any) -> bool:
    """Whether a non-negative number (or every number of a column) is 0."""
    if isinstance(value, (int, float)):
        return value == 0
    return bool(np.any(np.asarray(value) == 0))


def _gscale(opt: Any) -> Any:
    """The factor of the gradient: MXNet's ``rescale_grad`` (a number whenever it is
    given, 1.0 included), negated to maximize (torch); the neutral ONE when neither."""
    scale = opt.rescale_grad
    if scale is None:
        return -1.0 if opt.maximize else ONE
    return -scale if opt.maximize else scale


def _limits(clip: Any) -> tuple[Any, Any]:
    """The limits ``(-clip, clip)`` of a clip, or the neutral ``(LOWEST, HIGHEST)`` for clip 0 (off)."""
    return (-clip, clip) if _on(clip) else (LOWEST, HIGHEST)


def _norm_limit(clip_norm: Any) -> Any:
    """The limit of the gradient's norm, or the neutral HIGHEST for 0 (off)."""
    return clip_norm if _on(clip_norm) else HIGHEST


def _keras_clips(clipvalue: Any, clipnorm: Any, global_clipnorm: Any) -> dict[str, float]:
    """Keras' gradient clips as rmsnum's fields: at most one of them set (as Keras
    requires); ``global_clipnorm`` clips one array's norm as ``clipnorm`` does (for
    several arrays stepped together, :meth:`Optimizer.step` takes their norm)."""
    given = {name: value for name, value in (("clipvalue", clipvalue), ("clipnorm", clipnorm),
                                             ("global_clipnorm", global_clipnorm)) if value is not None}
    if len(given) > 1:
        raise ValueError("only one of clipnorm, clipvalue and global_clipnorm can be set (as in Keras), got "
                         + ", ".join(f"{name}={value}" for name, value in given.items()))
    norm = clipnorm if clipnorm is not None else global_clipnorm
    return dict(clip_gradient=_clip_argument("clipvalue", clipvalue),
                clip_norm=_clip_argument("clipnorm" if clipnorm is not None else "global_clipnorm", norm))


def _clip_argument(name: str, value: Any) -> float:
    """A framework's clip argument as rmsnum's field: None or a number <= 0 is 0, no
    clip (MXNet's ``clip_gradient=-1``; Keras clips only with ``clipvalue > 0``)."""
    if value is None:
        return 0.0
    return max(v.real(name, value), 0.0)


# The bounds of the gradient's transformations that every rule shares: MXNet's rescale_grad and
# clip_gradient (Keras' clipvalue), and Keras' clipnorm.
_GRADIENT_BOUNDS = dict(rescale_grad=_POSITIVE, clip_gradient=_NON_NEGATIVE, clip_norm=_NON_NEGATIVE)


def _momentum_slots(momentum: float) -> tuple[str, ...]:
    return ("m",) if _on(momentum) else ()


@dataclass(frozen=True)
class RMSProp(Optimizer):
    r"""RMSProp with every variant of the major frameworks.

    ``s <- gamma * s + (1 - gamma) * g**2`` and ``x <- x - lr * g / sqrt(s + eps)``
    in the book's form, plus the options below. Every framework preset is one
    setting of these options:

    =============  ==================  ==================  ====  =======================  ==========================  ============
    preset         gamma (name, dflt)  eps (dflt, place)   s0    momentum                 centered denominator        weight decay
    =============  ==================  ==================  ====  =======================  ==========================  ============
    ``d2l``        gamma 0.9           1e-6 inside sqrt    0     none                     --                          none
    ``torch``      alpha 0.99          1e-8 sqrt(s)+eps    0     b=mu*b+g/den; x-=lr*b    sqrt(s - g_avg**2) + eps    coupled
    ``keras``      rho 0.9             1e-7 inside         0     m=mu*m+lr*g/den; x-=m    sqrt(s - g_avg**2 + eps)    decoupled
    ``tf1``        decay 0.9           1e-10 inside        1     as Keras                 as Keras                    none
    ``optax``      decay 0.9           1e-8 inside         0     after lr; opt. Nesterov  sqrt(s - g_avg**2 + eps)    none
    ``mxnet``      gamma1 0.9          1e-8 inside         0     centered only (gamma2)   sqrt(n - g_avg**2 + eps)    coupled
    ``tf_keras2``  rho 0.9             1e-7 sqrt(s)+eps    0     as Keras, eps inside     sqrt(s - g_avg**2) + eps    none
                                       at mu = 0, inside                                  at mu = 0, + eps inside
                                       at mu > 0                                          at mu > 0
    =============  ==================  ==================  ====  =======================  ==========================  ============

    Parameters
    ----------
    lr : float
        Learning rate, finite and > 0.
    gamma : float, default 0.9
        Leaky-average factor of the mean square, in [0, 1].
    eps : float, default 1e-6
        Stabiliser, finite and > 0 (0 only with ``initial_s > 0``, see Notes).
    eps_in_sqrt : bool, default True
        ``sqrt(s + eps)`` (True) or ``sqrt(s) + eps`` (False).
    initial_s : float, default 0.0
        Initial value of ``s`` (TF1 starts at 1), >= 0.
    centered : bool, default False
        Divide by an estimate of the standard deviation, ``sqrt(s - g_avg**2 ...)``.
    momentum : float, default 0.0
        Momentum factor in [0, 1).
    lr_in_momentum : bool, default False
        Keras/TF1/optax style ``m = mu*m + lr*g/den; x -= m`` (True) or
        PyTorch style ``b = mu*b + g/den; x -= lr*b`` (False).
    nesterov : bool, default False
        Nesterov momentum as optax applies it (needs ``momentum > 0``).
    bias_correction : bool, default False
        Divide ``s`` (and ``g_avg``) by ``1 - gamma**t`` as optax does.
    weight_decay : float, default 0.0
        Weight decay, >= 0.
    decoupled_weight_decay : bool, default False
        ``x -= lr * weight_decay * x`` (Keras) instead of ``g += weight_decay * x``.
    maximize : bool, default False
        Ascend: the gradient's sign is flipped before everything else (torch's ``maximize``).
    rescale_grad : float, optional
        Factor of the gradient before anything else (MXNet's ``rescale_grad``),
        finite and > 0; None (the default) does not rescale.
    clip_gradient : float, default 0.0
        Clip the rescaled gradient, weight decay included, to ``[-clip_gradient,
        clip_gradient]`` (MXNet's ``clip_gradient``, Keras' ``clipvalue``), >= 0; 0 does not clip.
    clip_weights : float, default 0.0
        Clip the parameters after each update to ``[-clip_weights, clip_weights]``
        (MXNet's ``clip_weights``), >= 0; 0 does not clip.
    clip_norm : float, default 0.0
        Scale the gradient, as given, by ``clip_norm / max(|g|, clip_norm)`` first, so
        that its L2 norm over the array is at most ``clip_norm`` (Keras' ``clipnorm``,
        and its ``global_clipnorm`` for one array; :meth:`step` takes the norm of
        several arrays stepped together), >= 0; 0 does not clip.
    preset : str, optional
        Set by the preset constructors (``"d2l"``, ``"torch"``, ``"keras"``,
        ``"tf1"``, ``"optax"``, ``"mxnet"``, ``"tf_keras2"``): a label, not
        compared, under whose argument names errors report the hyperparameters.

    Notes
    -----
    ``eps = 0`` is allowed where the first step cannot divide by zero: with
    ``initial_s > 0`` and ``gamma > 0`` (TF1 starts at ``s = 1`` and allows
    ``epsilon=0``), and refused otherwise.

    Examples
    --------
    The chapter's run on f(x) = 0.1 x1**2 + 2 x2**2:

    >>> import rmsnum as rn
    >>> traj = rn.simulate(rn.RMSProp(lr=0.4, gamma=0.9), rn.quadratic_2d(), x0=(-5.0, -2.0), steps=20)
    >>> print(f"epoch 20, x1: {traj.x[-1, 0]:f}, x2: {traj.x[-1, 1]:f}")
    epoch 20, x1: -0.010599, x2: 0.000000
    """

    rule: ClassVar[Callable] = staticmethod(rules.rmsprop)

    lr: float
    gamma: float = 0.9
    eps: float = 1e-6
    _: KW_ONLY
    eps_in_sqrt: bool = True
    initial_s: float = 0.0
    centered: bool = False
    momentum: float = 0.0
    lr_in_momentum: bool = False
    nesterov: bool = False
    bias_correction: bool = False
    weight_decay: float = 0.0
    decoupled_weight_decay: bool = False
    maximize: bool = False
    rescale_grad: float | None = None
    clip_gradient: float = 0.0
    clip_norm: float = 0.0
    clip_weights: float = 0.0
    preset: str | None = field(default=None, compare=False)

    _bounds: ClassVar[dict[str, dict[str, Any]]] = dict(
        lr=_POSITIVE, gamma=_UNIT, eps=_NON_NEGATIVE, initial_s=_NON_NEGATIVE, momentum=_BELOW_ONE,
        weight_decay=_NON_NEGATIVE, **_GRADIENT_BOUNDS, clip_weights=_NON_NEGATIVE)
    _preset_arguments: ClassVar[dict[str, dict[str, str]]] = {
        "d2l": {},
        "torch": {"gamma": "alpha"},
        "keras": {"lr": "learning_rate", "gamma": "rho", "eps": "epsilon", "clip_gradient": "clipvalue",
                  "clip_norm": "clipnorm"},
        "tf1": {"lr": "learning_rate", "gamma": "decay", "eps": "epsilon"},
        "optax": {"lr": "learning_rate", "gamma": "decay", "initial_s": "initial_scale"},
        "mxnet": {"lr": "learning_rate", "gamma": "gamma1", "eps": "epsilon", "momentum": "gamma2",
                  "weight_decay": "wd"},
        "tf_keras2": {"lr": "learning_rate", "gamma": "rho", "eps": "epsilon"},
    }
    _booleans: ClassVar[tuple[str, ...]] = ("eps_in_sqrt", "centered", "lr_in_momentum", "nesterov",
                                            "bias_correction", "decoupled_weight_decay", "maximize")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.nesterov and self.momentum == 0:
            momentum = self._argument("momentum")
            raise ValueError(f"nesterov=True needs {momentum} in (0, 1), got {momentum}=0")
        if _zero(self.eps) and not (_on(self.initial_s) and _on(self.gamma)):
            # with s0 > 0 and gamma > 0 the first mean square is >= gamma * s0 > 0 (TF1: s0 = 1)
            eps, gamma = self._argument("eps"), self._argument("gamma")
            raise ValueError(f"{eps} must be > 0 here: 0 is allowed only where the mean square starts above 0 "
                             f"(TF1's s = 1) and {gamma} > 0, else a zero gradient divides by zero at the first "
                             f"step; here s starts at {self.initial_s} and {gamma}={self.gamma}")

    @property
    def slots(self) -> tuple[str, ...]:
        return ("s",) + _momentum_slots(self.momentum) + (("g_avg",) if self.centered else ())

    def _initial(self, slot: str) -> float:
        return self.initial_s if slot == "s" else 0.0

    def _coefficients(self) -> tuple[float | Neutral, ...]:
        decay = _on(self.weight_decay)
        decoupled = self.decoupled_weight_decay
        lr_outside = _on(self.momentum) and not self.lr_in_momentum  # PyTorch-style buffer
        c_in, c_out = (ONE, self.lr) if lr_outside else (self.lr, ONE)
        return (
            _gscale(self),
            self.weight_decay if decay and not decoupled else ZERO,
            *_limits(self.clip_gradient),
            self.lr * self.weight_decay if decay and decoupled else ZERO,
            self.gamma,
            1.0 - self.gamma,
            1.0 - self.gamma if self.centered else ZERO,
            self.eps if self.eps_in_sqrt else ZERO,
            ZERO if self.eps_in_sqrt else self.eps,
            self.momentum if _on(self.momentum) else ZERO,
            c_in,
            c_out,
            ONE if self.nesterov else ZERO,
            self.momentum if self.nesterov else ONE,
            *_limits(self.clip_weights),
            _norm_limit(self.clip_norm),
        )

    def _bias_corrected(self) -> bool:
        return self.bias_correction

    # Framework presets: each framework's own argument names and defaults.

    @classmethod
    def d2l(cls, lr: float = 0.01, gamma: float = 0.9, eps: float = 1e-6) -> "RMSProp":
        """The book's rule (Dive into Deep Learning): eps inside the square root, s0 = 0.

        >>> RMSProp.d2l(lr=0.4) == RMSProp(lr=0.4)
        True
        """
        return cls(lr, gamma, eps, preset="d2l")

    @classmethod
    def torch(cls, lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0,
              momentum: float = 0, centered: bool = False, maximize: bool = False) -> "RMSProp":
        """PyTorch ``torch.optim.RMSprop``: ``sqrt(s) + eps``, coupled weight decay,
        momentum buffer without the learning rate.

        >>> RMSProp.torch().eps_in_sqrt
        False
        """
        return cls(lr, alpha, eps, eps_in_sqrt=False, centered=centered, momentum=momentum,
                   weight_decay=weight_decay, maximize=maximize, preset="torch")

    @classmethod
    def keras(cls, learning_rate: float = 0.001, rho: float = 0.9, momentum: float = 0.0,
              epsilon: float = 1e-7, centered: bool = False, weight_decay: float | None = None,
              clipvalue: float | None = None, clipnorm: float | None = None,
              global_clipnorm: float | None = None) -> "RMSProp":
        """Keras 3 ``keras.optimizers.RMSprop``: eps inside, lr inside the momentum
        buffer, decoupled weight decay; ``clipvalue``, ``clipnorm`` or ``global_clipnorm``
        clips the gradient first (Keras' base optimizer clips, then decays the weights,
        then updates; ``global_clipnorm`` over several arrays: the ``norm`` of :meth:`step`).

        >>> import numpy as np
        >>> opt = RMSProp.keras(learning_rate=0.1)
        >>> var = np.array([10.0]); state = opt.init(var)
        >>> opt.step(var, var.copy(), state)  # loss var**2 / 2, as in Keras' documentation
        >>> var.round(6)
        array([9.683772])
        """
        wd = 0.0 if weight_decay is None else weight_decay
        return cls(learning_rate, rho, epsilon, centered=centered, momentum=momentum, lr_in_momentum=True,
                   weight_decay=wd, decoupled_weight_decay=True,
                   **_keras_clips(clipvalue, clipnorm, global_clipnorm), preset="keras")

    @classmethod
    def tf1(cls, learning_rate: float, decay: float = 0.9, momentum: float = 0.0, epsilon: float = 1e-10,
            centered: bool = False) -> "RMSProp":
        """TensorFlow 1 ``tf.train.RMSPropOptimizer``: s starts at 1, eps 1e-10 inside;
        ``epsilon=0`` is allowed, as in TF1, since s starts above 0 (with ``decay > 0``).

        >>> RMSProp.tf1(0.01).initial_s
        1.0
        >>> RMSProp.tf1(0.01, epsilon=0.0).eps
        0.0
        """
        return cls(learning_rate, decay, epsilon, initial_s=1.0, centered=centered, momentum=momentum,
                   lr_in_momentum=True, preset="tf1")

    @classmethod
    def optax(cls, learning_rate: float, decay: float = 0.9, eps: float = 1e-8, initial_scale: float = 0.0,
              eps_in_sqrt: bool = True, centered: bool = False, momentum: float | None = None,
              nesterov: bool = False, bias_correction: bool = False) -> "RMSProp":
        """optax ``optax.rmsprop``: momentum (a trace) applied after the learning rate.

        >>> RMSProp.optax(0.01, momentum=0.9, nesterov=True).lr_in_momentum
        True
        """
        mu = 0.0 if momentum is None else momentum
        return cls(learning_rate, decay, eps, eps_in_sqrt=eps_in_sqrt, initial_s=initial_scale,
                   centered=centered, momentum=mu, lr_in_momentum=True, nesterov=nesterov,
                   bias_correction=bias_correction, preset="optax")

    @classmethod
    def mxnet(cls, learning_rate: float = 0.001, gamma1: float = 0.9, gamma2: float = 0.9,
              epsilon: float = 1e-8, centered: bool = False, wd: float = 0.0, rescale_grad: float = 1.0,
              clip_gradient: float | None = None, clip_weights: float | None = None) -> "RMSProp":
        """MXNet 1.x ``mxnet.optimizer.RMSProp``: momentum ``gamma2`` only when centered
        (``delta = gamma2*delta - lr*g/den``), coupled weight decay ``wd``; the
        gradient ``clip(rescale_grad * g + wd * x, clip_gradient)`` and the new
        weights ``clip(x, clip_weights)``, as MXNet's ``rmsprop_update`` and
        ``rmspropalex_update`` kernels (None or a number <= 0: no clip).

        >>> RMSProp.mxnet(centered=True).momentum
        0.9
        """
        gamma2 = v.real("gamma2", gamma2, **_BELOW_ONE)  # checked even when not centered, where it is unused
        return cls(learning_rate, gamma1, epsilon, centered=centered, momentum=gamma2 if centered else 0.0,
                   lr_in_momentum=True, weight_decay=wd, rescale_grad=rescale_grad,
                   clip_gradient=_clip_argument("clip_gradient", clip_gradient),
                   clip_weights=_clip_argument("clip_weights", clip_weights), preset="mxnet")

    @classmethod
    def tf_keras2(cls, learning_rate: float = 0.001, rho: float = 0.9, momentum: float = 0.0,
                  epsilon: float = 1e-7, centered: bool = False) -> "RMSProp":
        """TensorFlow 2.0-2.15 ``tf.keras.optimizers.RMSprop`` (the ``optimizer_v2``
        version many trained models come from), whose two code paths differ:
        without momentum its dense update is ``x -= lr * g / (sqrt(s) + eps)``
        (eps **outside** the square root, centered: ``sqrt(s - g_avg**2) + eps``);
        with ``momentum > 0`` it calls the fused ``ApplyRMSProp`` kernel,
        ``m = momentum * m + lr * g / sqrt(s + eps)``, ``x -= m`` (eps **inside**,
        centered: ``sqrt(s - g_avg**2 + eps)``). The mean square starts at 0.

        >>> RMSProp.tf_keras2().eps_in_sqrt, RMSProp.tf_keras2(momentum=0.9).eps_in_sqrt
        (False, True)
        """
        momentum = v.real("momentum", momentum, **_BELOW_ONE)  # it picks the path, so it is checked first
        return cls(learning_rate, rho, epsilon, eps_in_sqrt=momentum > 0, centered=centered, momentum=momentum,
                   lr_in_momentum=True, preset="tf_keras2")


@dataclass(frozen=True)
class SGD(Optimizer):
    """Gradient descent ``x <- x - lr * g``, with coupled weight decay and ``maximize``.

    Parameters
    ----------
    lr : float
        Learning rate, finite and > 0.
    weight_decay : float, default 0.0
        Coupled weight decay ``g += weight_decay * x``, >= 0.
    maximize : bool, default False
        Ascend: the gradient's sign is flipped first (torch's ``maximize``).
    rescale_grad : float, optional
        Factor of the gradient before anything else (MXNet's ``rescale_grad``),
        finite and > 0; None (the default) does not rescale.
    clip_gradient : float, default 0.0
        Clip the rescaled gradient, before the weight decay, to ``[-clip_gradient,
        clip_gradient]`` (MXNet's ``clip_gradient``), >= 0; 0 does not clip.
    clip_norm : float, default 0.0
        Scale the gradient, as given, by ``clip_norm / max(|g|, clip_norm)`` first, so
        that its L2 norm over the array is at most ``clip_norm`` (Keras' ``clipnorm``,
        and its ``global_clipnorm`` for one array; :meth:`step` takes the norm of
        several arrays stepped together), >= 0; 0 does not clip.
    preset : str, optional
        ``"torch"`` or ``"mxnet"`` when made by a preset: a label, not compared.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([1.0]); opt = SGD(lr=0.1); opt.step(x, np.array([2.0]), opt.init(x)); x
    array([0.8])
    """

    rule: ClassVar[Callable] = staticmethod(rules.sgd)
    _bounds: ClassVar[dict[str, dict[str, Any]]] = dict(lr=_POSITIVE, weight_decay=_NON_NEGATIVE, **_GRADIENT_BOUNDS)
    _booleans: ClassVar[tuple[str, ...]] = ("maximize",)
    _preset_arguments: ClassVar[dict[str, dict[str, str]]] = {"torch": {},
                                                              "mxnet": {"lr": "learning_rate", "weight_decay": "wd"}}
    lr: float
    _: KW_ONLY
    weight_decay: float = 0.0
    maximize: bool = False
    rescale_grad: float | None = None
    clip_gradient: float = 0.0
    clip_norm: float = 0.0
    preset: str | None = field(default=None, compare=False)

    def _coefficients(self) -> tuple[float | Neutral, ...]:
        return (_gscale(self), *_limits(self.clip_gradient), self.weight_decay if _on(self.weight_decay) else ZERO,
                self.lr, _norm_limit(self.clip_norm))

    @classmethod
    def torch(cls, lr: float = 0.001, momentum: float = 0, dampening: float = 0, weight_decay: float = 0,
              nesterov: bool = False, maximize: bool = False) -> "SGD | Momentum":
        """PyTorch ``torch.optim.SGD``, in its argument names and defaults: an
        :class:`SGD` without momentum, a :class:`Momentum` with it (torch's buffer
        ``b = momentum * b + (1 - dampening) * g; x -= lr * b`` is the heavy-ball rule,
        and its first step sets ``b = g``). Without momentum, torch ignores
        ``dampening``, and so does this.

        >>> SGD.torch(lr=0.1) == SGD(lr=0.1)
        True
        >>> SGD.torch(lr=0.1, momentum=0.9, nesterov=True).nesterov
        True
        >>> SGD.torch(lr=0.1, momentum=0.9, dampening=0.5).dampening
        0.5
        """
        momentum = v.real("momentum", momentum, **_BELOW_ONE)
        dampening = v.real("dampening", dampening, **_UNIT)
        nesterov = v.boolean("nesterov", nesterov)
        if nesterov and (momentum == 0 or dampening != 0):
            raise ValueError(f"nesterov=True needs momentum in (0, 1) and dampening=0, got momentum={momentum} "
                             f"and dampening={dampening}")
        if momentum == 0:
            return cls(lr, weight_decay=weight_decay, maximize=maximize, preset="torch")
        return Momentum(lr, momentum, nesterov=nesterov, dampening=dampening, weight_decay=weight_decay,
                        maximize=maximize, preset="torch")

    @classmethod
    def mxnet(cls, learning_rate: float = 0.01, momentum: float = 0.0, wd: float = 0.0, rescale_grad: float = 1.0,
              clip_gradient: float | None = None) -> "SGD | Momentum":
        """MXNet 1.x ``mxnet.optimizer.SGD``: the gradient ``clip(rescale_grad * g, clip_gradient)
        + wd * x`` (MXNet's ``sgd_update``, ``sgd_mom_update``: weight decay outside the
        clip; None or a number <= 0: no clip). An :class:`SGD` without momentum, a
        :class:`Momentum` with it (MXNet's ``mom = momentum * mom - lr * g; x += mom``).

        >>> SGD.mxnet(momentum=0.9, clip_gradient=1.0).clip_gradient
        1.0
        """
        momentum = v.real("momentum", momentum, **_BELOW_ONE)
        clip = _clip_argument("clip_gradient", clip_gradient)
        if momentum == 0:
            return cls(learning_rate, weight_decay=wd, rescale_grad=rescale_grad, clip_gradient=clip, preset="mxnet")
        return Momentum(learning_rate, momentum, weight_decay=wd, rescale_grad=rescale_grad, clip_gradient=clip,
                        preset="mxnet")


@dataclass(frozen=True)
class Momentum(Optimizer):
    """Heavy-ball momentum ``m <- beta * m + g; x <- x - lr * m`` (the book's form),
    which is also ``torch.optim.SGD`` with momentum (see :meth:`SGD.torch`).

    Parameters
    ----------
    lr : float
        Learning rate, finite and > 0.
    beta : float, default 0.9
        Momentum factor, in [0, 1) (torch's ``momentum``).
    nesterov : bool, default False
        Nesterov momentum as torch applies it: ``x -= lr * (g + beta * m)``
        (without dampening).
    dampening : float, default 0.0
        torch's dampening, in [0, 1]: from the second step on the buffer takes
        ``(1 - dampening) * g``; the first step sets it to ``g``, as torch does.
    weight_decay : float, default 0.0
        Coupled weight decay ``g += weight_decay * x``, >= 0.
    maximize : bool, default False
        Ascend: the gradient's sign is flipped first.
    rescale_grad : float, optional
        Factor of the gradient before anything else (MXNet's ``rescale_grad``),
        finite and > 0; None (the default) does not rescale.
    clip_gradient : float, default 0.0
        Clip the rescaled gradient, before the weight decay, to ``[-clip_gradient,
        clip_gradient]`` (MXNet's ``clip_gradient``), >= 0; 0 does not clip.
    clip_norm : float, default 0.0
        Scale the gradient, as given, by ``clip_norm / max(|g|, clip_norm)`` first, so
        that its L2 norm over the array is at most ``clip_norm`` (Keras' ``clipnorm``,
        and its ``global_clipnorm`` for one array; :meth:`step` takes the norm of
        several arrays stepped together), >= 0; 0 does not clip.
    preset : str, optional
        ``"torch"`` or ``"mxnet"`` when made by :meth:`SGD.torch` or :meth:`SGD.mxnet`:
        a label, not compared.

    >>> Momentum(lr=0.1, beta=0.5).slots
    ('m',)
    """

    rule: ClassVar[Callable] = staticmethod(rules.momentum)
    _bounds: ClassVar[dict[str, dict[str, Any]]] = dict(lr=_POSITIVE, beta=_BELOW_ONE, dampening=_UNIT,
                                                        weight_decay=_NON_NEGATIVE, **_GRADIENT_BOUNDS)
    _booleans: ClassVar[tuple[str, ...]] = ("nesterov", "maximize")
    _preset_arguments: ClassVar[dict[str, dict[str, str]]] = {
        "torch": {"beta": "momentum"},
        "mxnet": {"lr": "learning_rate", "beta": "momentum", "weight_decay": "wd"},
    }
    lr: float
    beta: float = 0.9
    _: KW_ONLY
    nesterov: bool = False
    dampening: float = 0.0
    weight_decay: float = 0.0
    maximize: bool = False
    rescale_grad: float | None = None
    clip_gradient: float = 0.0
    clip_norm: float = 0.0
    preset: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.nesterov and _on(self.dampening):
            beta, dampening = self._argument("beta"), self._argument("dampening")
            raise ValueError(f"nesterov=True needs {dampening}=0 (as torch), got {dampening}={self.dampening} "
                             f"with {beta}={self.beta}")

    def _decays(self) -> tuple[Any, Any, Any, Any] | None:
        # with dampening, the rule needs to know the first step: d1 = t (from 0, plus 1 per step) and
        # d2 = 1, so r1 = 1 / t and r2 = 1 (see rules.momentum)
        return (1.0, 1.0, 0.0, 1.0) if _on(self.dampening) else None

    def _coefficients(self) -> tuple[float | Neutral, ...]:
        damped = _on(self.dampening)
        return (_gscale(self), *_limits(self.clip_gradient), self.weight_decay if _on(self.weight_decay) else ZERO,
                self.lr, self.beta,
                ONE if self.nesterov else ZERO, self.beta if self.nesterov else ONE,
                self.dampening if damped else ZERO, 1.0 - self.dampening if damped else ONE,
                _norm_limit(self.clip_norm))


@dataclass(frozen=True)
class Adagrad(Optimizer):
    """Adagrad ``s <- s + g**2; x <- x - lr * g / sqrt(s + eps)`` (the book's form),
    with the options of torch's and Keras' Adagrad.

    Parameters
    ----------
    lr : float
        Learning rate, finite and > 0.
    eps : float, default 1e-6
        Stabiliser, finite and > 0.
    eps_in_sqrt : bool, default True
        ``sqrt(s + eps)`` (the book, Keras) or ``sqrt(s) + eps`` (torch).
    initial_s : float, default 0.0
        Initial value of the accumulator ``s``, >= 0 (torch's and Keras'
        ``initial_accumulator_value``).
    lr_decay : float, default 0.0
        torch's learning-rate decay, >= 0: step t takes ``lr / (1 + (t - 1) * lr_decay)``.
        rmsnum advances the denominator ``d = 1 + (t - 1) * lr_decay`` by adding
        ``lr_decay`` once per step (in the working dtype; see :mod:`rmsnum.rules`).
    weight_decay : float, default 0.0
        Weight decay, >= 0: coupled ``g += weight_decay * x`` (torch), or with
        ``decoupled_weight_decay`` ``x -= lr * weight_decay * x`` (Keras).
    decoupled_weight_decay : bool, default False
        Decoupled instead of coupled weight decay.
    maximize : bool, default False
        Ascend: the gradient's sign is flipped first (torch's ``maximize``).
    rescale_grad : float, optional
        Factor of the gradient before anything else, finite and > 0; None (the
        default) does not rescale.
    clip_gradient : float, default 0.0
        Clip the rescaled gradient, weight decay included, to ``[-clip_gradient,
        clip_gradient]`` (Keras' ``clipvalue``), >= 0; 0 does not clip.
    clip_norm : float, default 0.0
        Scale the gradient, as given, by ``clip_norm / max(|g|, clip_norm)`` first, so
        that its L2 norm over the array is at most ``clip_norm`` (Keras' ``clipnorm``,
        and its ``global_clipnorm`` for one array; :meth:`step` takes the norm of
        several arrays stepped together), >= 0; 0 does not clip.
    preset : str, optional
        ``"torch"`` or ``"keras"`` when made by a preset: a label, not compared.

    Examples
    --------
    >>> Adagrad(lr=0.4).eps
    1e-06
    >>> Adagrad.keras().initial_s, Adagrad.torch().eps_in_sqrt
    (0.1, False)
    """

    rule: ClassVar[Callable] = staticmethod(rules.adagrad)
    _bounds: ClassVar[dict[str, dict[str, Any]]] = dict(lr=_POSITIVE, eps=_POSITIVE, initial_s=_NON_NEGATIVE,
                                                        lr_decay=_NON_NEGATIVE, weight_decay=_NON_NEGATIVE,
                                                        **_GRADIENT_BOUNDS)
    _booleans: ClassVar[tuple[str, ...]] = ("eps_in_sqrt", "decoupled_weight_decay", "maximize")
    _preset_arguments: ClassVar[dict[str, dict[str, str]]] = {
        "torch": {"initial_s": "initial_accumulator_value"},
        "keras": {"lr": "learning_rate", "eps": "epsilon", "initial_s": "initial_accumulator_value",
                  "clip_gradient": "clipvalue", "clip_norm": "clipnorm"},
    }
    lr: float
    eps: float = 1e-6
    _: KW_ONLY
    eps_in_sqrt: bool = True
    initial_s: float = 0.0
    lr_decay: float = 0.0
    weight_decay: float = 0.0
    decoupled_weight_decay: bool = False
    maximize: bool = False
    rescale_grad: float | None = None
    clip_gradient: float = 0.0
    clip_norm: float = 0.0
    preset: str | None = field(default=None, compare=False)

    def _initial(self, slot: str) -> float:
        return self.initial_s

    def _decays(self) -> tuple[Any, Any, Any, Any] | None:
        # with lr_decay, d1 = 1 + (t - 1) * lr_decay: from 1 - lr_decay, plus lr_decay per step (r1 = 1 / d1);
        # d2 stays 1
        return (1.0, self.lr_decay, 0.0, 1.0) if _on(self.lr_decay) else None

    def _initial_denominators(self) -> tuple[Any, Any]:
        return (1.0 - self.lr_decay, 0.0) if _on(self.lr_decay) else (0.0, 0.0)

    def _coefficients(self) -> tuple[float | Neutral, ...]:
        decay = _on(self.weight_decay)
        decoupled = self.decoupled_weight_decay
        return (
            _gscale(self),
            self.weight_decay if decay and not decoupled else ZERO,
            *_limits(self.clip_gradient),
            self.lr * self.weight_decay if decay and decoupled else ZERO,
            self.lr,
            self.eps if self.eps_in_sqrt else ZERO,
            ZERO if self.eps_in_sqrt else self.eps,
            _norm_limit(self.clip_norm),
        )

    @classmethod
    def torch(cls, lr: float = 0.01, lr_decay: float = 0, weight_decay: float = 0,
              initial_accumulator_value: float = 0, eps: float = 1e-10, maximize: bool = False) -> "Adagrad":
        """PyTorch ``torch.optim.Adagrad``, in its argument names and defaults: eps
        outside the square root, coupled weight decay, step t with ``lr / (1 + (t - 1) * lr_decay)``.

        >>> Adagrad.torch(lr=0.1).eps
        1e-10
        """
        return cls(lr, eps, eps_in_sqrt=False, initial_s=initial_accumulator_value, lr_decay=lr_decay,
                   weight_decay=weight_decay, maximize=maximize, preset="torch")

    @classmethod
    def keras(cls, learning_rate: float = 0.001, initial_accumulator_value: float = 0.1, epsilon: float = 1e-7,
              weight_decay: float | None = None, clipvalue: float | None = None, clipnorm: float | None = None,
              global_clipnorm: float | None = None) -> "Adagrad":
        """Keras 3 ``keras.optimizers.Adagrad``: eps inside the square root, the
        accumulator starting at 0.1, decoupled weight decay, a clip first (see :meth:`RMSProp.keras`).

        >>> Adagrad.keras(learning_rate=0.01).initial_s
        0.1
        """
        wd = 0.0 if weight_decay is None else weight_decay
        return cls(learning_rate, epsilon, initial_s=initial_accumulator_value, weight_decay=wd,
                   decoupled_weight_decay=True, **_keras_clips(clipvalue, clipnorm, global_clipnorm), preset="keras")


@dataclass(frozen=True)
class Adam(Optimizer):
    r"""Adam with bias correction, AMSGrad and weight decay.

    ``m <- beta1 m + (1 - beta1) g``, ``s <- beta2 s + (1 - beta2) g**2`` and
    ``x <- x - lr * m_hat / (sqrt(s_hat) + eps)`` with ``m_hat = m / (1 - beta1**t)``,
    ``s_hat = s / (1 - beta2**t)``, as ``torch.optim.Adam``.

    Parameters
    ----------
    lr : float
        Learning rate, finite and > 0.
    beta1, beta2 : float, default 0.9, 0.999
        Decay rates of the first and second moments, in [0, 1).
    eps : float, default 1e-8
        Stabiliser added to ``sqrt(s_hat)``, finite and > 0.
    amsgrad : bool, default False
        Divide by the running maximum of ``s`` (kept in the slot ``v_max``), as
        ``torch.optim.Adam(amsgrad=True)`` and Keras' ``amsgrad``.
    weight_decay : float, default 0.0
        Weight decay, >= 0: coupled ``g += weight_decay * x`` (torch Adam), or,
        with ``decoupled_weight_decay``, ``x *= 1 - lr * weight_decay`` before the
        update (torch AdamW, Keras).
    decoupled_weight_decay : bool, default False
        Decoupled (AdamW) instead of coupled weight decay.
    eps_hat : bool, default False
        ``eps`` is the paper's "epsilon hat", added to ``sqrt(s)`` before the bias
        correction: ``x -= lr * m_hat / ((sqrt(s) + eps) / sqrt(1 - beta2**t))``,
        as Keras (and TensorFlow) compute Adam.
    maximize : bool, default False
        Ascend: the gradient's sign is flipped first (torch's ``maximize``).
    rescale_grad : float, optional
        Factor of the gradient before anything else (MXNet's ``rescale_grad``),
        finite and > 0; None (the default) does not rescale.
    clip_gradient : float, default 0.0
        Clip the rescaled gradient, weight decay included, to ``[-clip_gradient,
        clip_gradient]`` (MXNet's ``clip_gradient``, Keras' ``clipvalue``), >= 0; 0 does not clip.
    clip_norm : float, default 0.0
        Scale the gradient, as given, by ``clip_norm / max(|g|, clip_norm)`` first, so
        that its L2 norm over the array is at most ``clip_norm`` (Keras' ``clipnorm``,
        and its ``global_clipnorm`` for one array; :meth:`step` takes the norm of
        several arrays stepped together), >= 0; 0 does not clip.
    preset : str, optional
        Set by the preset constructors (``"torch"``, ``"optax"``, ``"keras"``, ``"mxnet"``): a
        label, not compared, under whose argument names errors report the hyperparameters.

    Examples
    --------
    >>> import numpy as np
    >>> Adam(lr=0.01).slots, Adam(lr=0.01, amsgrad=True).slots
    (('s', 'm'), ('s', 'm', 'v_max'))
    >>> opt = Adam.torch(lr=0.1, amsgrad=True, weight_decay=0.01)
    >>> x = np.array([1.0, -2.0]); state = opt.init(x)
    >>> opt.step(x, 2 * x, state); x.round(6)
    array([ 0.9, -1.9])
    """

    rule: ClassVar[Callable] = staticmethod(rules.adam)
    _bounds: ClassVar[dict[str, dict[str, Any]]] = dict(lr=_POSITIVE, beta1=_BELOW_ONE, beta2=_BELOW_ONE,
                                                        eps=_POSITIVE, weight_decay=_NON_NEGATIVE, **_GRADIENT_BOUNDS)
    _booleans: ClassVar[tuple[str, ...]] = ("amsgrad", "decoupled_weight_decay", "eps_hat", "maximize")
    _preset_arguments: ClassVar[dict[str, dict[str, str]]] = {
        "torch": {"beta1": "betas[0]", "beta2": "betas[1]"},
        "optax": {"lr": "learning_rate", "beta1": "b1", "beta2": "b2"},
        "keras": {"lr": "learning_rate", "beta1": "beta_1", "beta2": "beta_2", "eps": "epsilon",
                  "clip_gradient": "clipvalue", "clip_norm": "clipnorm"},
        "mxnet": {"lr": "learning_rate", "eps": "epsilon", "weight_decay": "wd"},
    }
    lr: float
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    _: KW_ONLY
    amsgrad: bool = False
    weight_decay: float = 0.0
    decoupled_weight_decay: bool = False
    eps_hat: bool = False
    maximize: bool = False
    rescale_grad: float | None = None
    clip_gradient: float = 0.0
    clip_norm: float = 0.0
    preset: str | None = field(default=None, compare=False)

    @property
    def slots(self) -> tuple[str, ...]:
        return ("s", "m", "v_max") if self.amsgrad else ("s", "m")

    def _coefficients(self) -> tuple[float | Neutral, ...]:
        decay = _on(self.weight_decay)
        decoupled = self.decoupled_weight_decay
        return (
            _gscale(self),
            self.weight_decay if decay and not decoupled else ZERO,
            *_limits(self.clip_gradient),
            1.0 - self.lr * self.weight_decay if decay and decoupled else ONE,
            self.lr,
            self.beta1,
            1.0 - self.beta1,
            self.beta2,
            1.0 - self.beta2,
            ZERO if self.eps_hat else self.eps,
            self.eps if self.eps_hat else ZERO,
            _norm_limit(self.clip_norm),
        )

    @classmethod
    def torch(cls, lr: float = 0.001, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
              weight_decay: float = 0, amsgrad: bool = False, decoupled_weight_decay: bool = False,
              maximize: bool = False) -> "Adam":
        """PyTorch ``torch.optim.Adam``, in its argument names and defaults.

        >>> Adam.torch(betas=(0.8, 0.99)).beta1
        0.8
        """
        beta1, beta2 = _pair("betas", betas)
        return cls(lr, beta1, beta2, eps, amsgrad=amsgrad, weight_decay=weight_decay,
                   decoupled_weight_decay=decoupled_weight_decay, maximize=maximize, preset="torch")

    @classmethod
    def optax(cls, learning_rate: float, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> "Adam":
        """optax ``optax.adam`` (``eps_root=0``, no Nesterov): eps added to the square
        root of the bias-corrected second moment, as torch.

        >>> Adam.optax(0.01, b1=0.8) == Adam(lr=0.01, beta1=0.8)
        True
        """
        return cls(learning_rate, b1, b2, eps, preset="optax")

    @classmethod
    def mxnet(cls, learning_rate: float = 0.001, beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-8,
              wd: float = 0.0, rescale_grad: float = 1.0, clip_gradient: float | None = None) -> "Adam":
        """MXNet 1.x ``mxnet.optimizer.Adam``: the gradient ``clip(rescale_grad * g + wd * x,
        clip_gradient)`` (MXNet's ``adam_update``: coupled weight decay inside the clip; None
        or a number <= 0: no clip), and epsilon hat: MXNet scales the learning rate by
        ``sqrt(1 - beta2**t) / (1 - beta1**t)`` and divides by ``sqrt(v) + epsilon``.

        >>> Adam.mxnet(wd=0.01).eps_hat
        True
        """
        return cls(learning_rate, beta1, beta2, epsilon, weight_decay=wd, eps_hat=True, rescale_grad=rescale_grad,
                   clip_gradient=_clip_argument("clip_gradient", clip_gradient), preset="mxnet")

    @classmethod
    def keras(cls, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7,
              amsgrad: bool = False, weight_decay: float | None = None, clipvalue: float | None = None,
              clipnorm: float | None = None, global_clipnorm: float | None = None) -> "Adam":
        """Keras 3 ``keras.optimizers.Adam``: epsilon hat, decoupled weight decay, a clip
        first (see :meth:`RMSProp.keras`).

        >>> Adam.keras().eps_hat
        True
        """
        wd = 0.0 if weight_decay is None else weight_decay
        return cls(learning_rate, beta_1, beta_2, epsilon, amsgrad=amsgrad, weight_decay=wd,
                   decoupled_weight_decay=True, eps_hat=True, **_keras_clips(clipvalue, clipnorm, global_clipnorm),
                   preset="keras")


@dataclass(frozen=True)
class AdamW(Adam):
    """Adam with decoupled weight decay (``torch.optim.AdamW``): ``x *= 1 - lr * weight_decay``
    before each Adam update; ``Adam(..., decoupled_weight_decay=True)`` with torch's default
    ``weight_decay=0.01``.

    >>> AdamW(lr=0.001) == Adam(lr=0.001, weight_decay=0.01, decoupled_weight_decay=True)
    True
    """

    weight_decay: float = 0.01
    decoupled_weight_decay: bool = field(default=True, init=False)
    def __eq__(self, other: object) -> bool:  # an AdamW is the Adam it spells
        if not isinstance(other, Adam):
            return NotImplemented
        return all(getattr(self, f.name) == getattr(other, f.name) for f in dataclasses.fields(Adam) if f.compare)

    __hash__ = Adam.__hash__

    @classmethod
    def torch(cls, lr: float = 0.001, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
              weight_decay: float = 0.01, amsgrad: bool = False, maximize: bool = False) -> "AdamW":
        """PyTorch ``torch.optim.AdamW``, in its argument names and defaults.

        >>> AdamW.torch().weight_decay
        0.01
        """
        beta1, beta2 = _pair("betas", betas)
        return cls(lr, beta1, beta2, eps, amsgrad=amsgrad, weight_decay=weight_decay, maximize=maximize,
                   preset="torch")

    @classmethod
    def keras(cls, learning_rate: float = 0.001, weight_decay: float = 0.004, beta_1: float = 0.9,
              beta_2: float = 0.999, epsilon: float = 1e-7, amsgrad: bool = False,
              clipvalue: float | None = None, clipnorm: float | None = None,
              global_clipnorm: float | None = None) -> "AdamW":
        """Keras 3 ``keras.optimizers.AdamW``, in its argument names and defaults.

        >>> AdamW.keras().weight_decay
        0.004
        """
        return cls(learning_rate, beta_1, beta_2, epsilon, amsgrad=amsgrad, weight_decay=weight_decay, eps_hat=True,
                   **_keras_clips(clipvalue, clipnorm, global_clipnorm), preset="keras")


def _pair(name: str, value: Any) -> tuple[Any, Any]:
    """The two numbers of a pair argument such as torch's ``betas``."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{name} must be a pair (beta1, beta2), got {value!r}")
    return value[0], value[1]
