"""Optimizer states that move between rmsnum and PyTorch, optax and Keras 3.

An engineer who trains in a framework can take the optimizer's state of one
array of parameters into rmsnum, continue there (or compare), and hand a state
back. Each direction is one function:

====================  ====================================  ================================
framework             into rmsnum                           back to the framework
====================  ====================================  ================================
PyTorch               ``from_torch(opt, torch_opt, param)``  ``to_torch(opt, state, torch_opt, param)``
optax                 ``from_optax(opt, opt_state, params)``  ``to_optax(opt, state, opt_state)``
Keras 3               ``from_keras(opt, keras_opt, var)``    ``to_keras(opt, state, keras_opt, var)``
====================  ====================================  ================================

``opt`` is the rmsnum optimizer that reproduces the framework's: the preset of
that framework (``rn.RMSProp.torch(...)``, ``rn.Adam.optax(...)``,
``rn.Adagrad.keras(...)``...) or any equal optimizer. The slots map one to one:

- torch: ``square_avg``, ``momentum_buffer``, ``grad_avg`` (RMSprop);
  ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq`` (Adam, AdamW); ``momentum_buffer``
  (SGD); ``sum`` (Adagrad); and ``step``;
- optax: the chained state of ``optax.rmsprop`` (``nu``, ``mu`` when centered,
  the momentum ``trace``, ``count`` with bias correction) and of ``optax.adam``
  (``mu``, ``nu``, ``count``);
- Keras: the optimizer's variables for ``var`` (velocities, momentums, average
  gradients, velocity hats, accumulators) and ``iterations``.

The step count becomes ``state.t``, and the bias-correction denominators
``1 - beta**t`` follow from it. Where the framework keeps no count (optax's
rmsprop without bias correction) the rule has no bias correction, so ``t`` does
not enter the numbers; it comes in as 0 and goes out unused. torch's SGD keeps
none either, but its momentum buffer exists from the first step on (the step
that dampening leaves undamped): ``t`` comes in as 1 with a buffer and 0 without,
and a state with ``t = 0`` goes out without a buffer.

A state of another optimizer, option set, shape or dtype is refused with a
``ValueError`` that says what differs: for torch and Keras the framework's own
hyperparameters are compared with ``opt`` (the rmsnum preset they describe must
equal it); optax keeps its hyperparameters in closures, so there the state's
structure (centered, bias correction, momentum) is checked against ``opt``.

This module imports no framework itself: each function works with the objects it
is given. Importing rmsnum never imports torch, jax or keras.

Examples
--------
>>> import numpy as np, torch, rmsnum as rn  # doctest: +SKIP
>>> p = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))  # doctest: +SKIP
>>> torch_opt = torch.optim.RMSprop([p], lr=0.01, momentum=0.9)  # doctest: +SKIP
>>> opt = rn.RMSProp.torch(lr=0.01, momentum=0.9)  # doctest: +SKIP
>>> state = rn.interop.from_torch(opt, torch_opt, p)  # ... steps in torch, then in rmsnum  # doctest: +SKIP
>>> rn.interop.to_torch(opt, state, torch_opt, p)  # and back  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .optimizers import SGD, Adagrad, Adam, AdamW, Optimizer, OptimizerState, RMSProp

__all__ = ["from_torch", "to_torch", "from_optax", "to_optax", "from_keras", "to_keras"]


# --- shared -----------------------------------------------------------------


def _float_dtype(what: str, dtype: Any) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise ValueError(f"{what} must be float32 or float64, got {dt}")
    return dt


def _same(opt: Optimizer, described: Optimizer, where: str) -> None:
    """Raise unless the framework's optimizer (as the rmsnum optimizer ``described``) is ``opt``."""
    if not isinstance(opt, Optimizer):
        raise TypeError(f"opt must be an rmsnum optimizer, got {type(opt).__name__}")
    if described != opt:
        raise ValueError(f"{where} is {described!r} in rmsnum's terms, not opt = {opt!r}: "
                         "a state moves only between optimizers with the same rule and options")


def _state(opt: Optimizer, slots: dict[str, np.ndarray], t: int, shape: tuple, dt: np.dtype,
           source: str) -> OptimizerState:
    """An rmsnum state from the framework's arrays (slot -> NumPy array), after checking each."""
    missing = [slot for slot in opt.slots if slot not in slots]
    extra = [slot for slot in slots if slot not in opt.slots]
    if missing or extra:
        raise ValueError(f"{source} holds the slots {sorted(slots)}, opt keeps {list(opt.slots)}: "
                         "the state comes from another option set")
    arrays = {}
    for slot in opt.slots:
        arr = slots[slot]
        if arr.shape != shape or arr.dtype != dt:
            raise ValueError(f"{source}'s {slot} is {arr.dtype}{list(arr.shape)}, the parameters are "
                             f"{dt}{list(shape)}")
        arrays[slot] = np.array(arr, dtype=dt, order="C", copy=True)
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 0:
        raise ValueError(f"{source}'s step count must be an integer >= 0, got {t!r}")
    d1, d2 = _denominators(opt, int(t), dt)
    return OptimizerState(arrays, int(t), d1, d2, opt.name)


def _denominators(opt: Optimizer, t: int, dt: np.dtype) -> tuple[np.floating, np.floating]:
    """The denominators after ``t`` steps: ``1 - beta**t`` for a bias correction (from 0),
    ``d0 + t * omb`` for a decay of 1 (Adagrad's lr_decay, from ``d0``); 0 without."""
    decays = opt.decays(dt)
    if decays is None:
        return dt.type(0), dt.type(0)
    out = []
    for d0, beta, omb in zip(opt._initial_denominators(), decays[0::2], decays[1::2]):
        beta, omb = float(beta), float(omb)
        out.append(dt.type(d0 + t * omb if beta == 1 else 1.0 - beta**t))
    return out[0], out[1]


# --- PyTorch ----------------------------------------------------------------

# torch.optim class -> (the rmsnum preset its param group describes, rmsnum slot -> torch state key)
_TORCH: dict[str, tuple[Callable[[dict], Optimizer], dict[str, str]]] = {
    "RMSprop": (lambda g: RMSProp.torch(lr=float(g["lr"]), alpha=g["alpha"], eps=g["eps"],
                                        weight_decay=g["weight_decay"], momentum=g["momentum"],
                                        centered=g["centered"], maximize=g.get("maximize", False)),
                {"s": "square_avg", "m": "momentum_buffer", "g_avg": "grad_avg"}),
    "Adam": (lambda g: Adam.torch(lr=float(g["lr"]), betas=tuple(float(b) for b in g["betas"]), eps=g["eps"],
                                  weight_decay=g["weight_decay"], amsgrad=g["amsgrad"],
                                  decoupled_weight_decay=g.get("decoupled_weight_decay", False),
                                  maximize=g.get("maximize", False)),
             {"s": "exp_avg_sq", "m": "exp_avg", "v_max": "max_exp_avg_sq"}),
    "AdamW": (lambda g: AdamW.torch(lr=float(g["lr"]), betas=tuple(float(b) for b in g["betas"]), eps=g["eps"],
                                    weight_decay=g["weight_decay"], amsgrad=g["amsgrad"],
                                    maximize=g.get("maximize", False)),
              {"s": "exp_avg_sq", "m": "exp_avg", "v_max": "max_exp_avg_sq"}),
    "SGD": (lambda g: SGD.torch(lr=float(g["lr"]), momentum=g["momentum"], dampening=g["dampening"],
                                weight_decay=g["weight_decay"], nesterov=g["nesterov"],
                                maximize=g.get("maximize", False)),
            {"m": "momentum_buffer"}),
    "Adagrad": (lambda g: Adagrad.torch(lr=float(g["lr"]), lr_decay=g["lr_decay"], weight_decay=g["weight_decay"],
                                        initial_accumulator_value=g["initial_accumulator_value"], eps=g["eps"],
                                        maximize=g.get("maximize", False)),
                {"s": "sum"}),
}


def _torch_group(opt: Optimizer, torch_opt: Any, param: Any) -> tuple[dict[str, str], tuple, np.dtype]:
    """Check that ``torch_opt`` steps ``param`` as ``opt`` does; its slot keys, param's shape and dtype."""
    kind = type(torch_opt).__name__
    if kind not in _TORCH or not hasattr(torch_opt, "param_groups"):
        raise TypeError(f"torch_opt must be a torch.optim optimizer of {', '.join(_TORCH)}, got {kind}")
    group = next((g for g in torch_opt.param_groups if any(p is param for p in g["params"])), None)
    if group is None:
        raise ValueError("param is not one of torch_opt's parameters")
    describe, keys = _TORCH[kind]
    _same(opt, describe(group), f"torch.optim.{kind} (param's group)")
    dt = _float_dtype("param's dtype", str(param.dtype).removeprefix("torch."))
    return keys, tuple(param.shape), dt


def from_torch(opt: Optimizer, torch_opt: Any, param: Any) -> OptimizerState:
    """The state of ``torch_opt`` for the parameter ``param``, as an rmsnum state of ``opt``.

    Parameters
    ----------
    opt : Optimizer
        The rmsnum optimizer equal to the torch one (e.g. ``rn.RMSProp.torch(...)`` with
        the same arguments): checked against ``param``'s group.
    torch_opt : torch.optim.Optimizer
        ``RMSprop``, ``Adam``, ``AdamW``, ``SGD`` or ``Adagrad``.
    param : torch.Tensor
        One of its parameters, float32 or float64.

    Returns
    -------
    OptimizerState
        NumPy copies of the slots; ``t`` from torch's ``step`` (for SGD, which keeps
        none, 1: at least one step). Before torch's first step, a fresh state.

    Raises
    ------
    TypeError, ValueError
        When ``torch_opt`` is another optimizer or option set than ``opt``, or a slot's
        shape or dtype is not the parameter's.
    """
    keys, shape, dt = _torch_group(opt, torch_opt, param)
    entries = torch_opt.state.get(param, {})
    slots = {slot: entries[key] for slot, key in keys.items() if entries.get(key) is not None}
    if not entries or not slots and opt.slots:  # torch fills its state at the first step
        return opt.init_like(shape, dt)
    arrays = {slot: tensor.detach().cpu().numpy() for slot, tensor in slots.items()}
    step = entries.get("step", 1)  # SGD counts no steps; its buffer is there from the first
    return _state(opt, arrays, int(float(step)), shape, dt, f"torch.optim.{type(torch_opt).__name__}'s state")


def to_torch(opt: Optimizer, state: OptimizerState, torch_opt: Any, param: Any) -> None:
    """Write the rmsnum ``state`` of ``opt`` into ``torch_opt``'s state for ``param``.

    The arguments are those of :func:`from_torch`, with ``state`` an rmsnum state of
    ``opt`` for arrays of ``param``'s shape and dtype. torch's next step continues
    from it. Everything is checked before anything is written.
    """
    keys, shape, dt = _torch_group(opt, torch_opt, param)
    opt.check_state(state, shape, dt)
    sgd = type(torch_opt).__name__ == "SGD"
    if sgd and state.t == 0 and any(state.arrays[slot].any() for slot in opt.slots):
        raise ValueError("state has t = 0 and a momentum buffer that is not zero: torch's SGD starts its buffer "
                         "at its first step, so a state before the first step must be fresh")
    import torch

    if sgd and state.t == 0:  # torch's next step is its first: it sets the buffer to g itself
        torch_opt.state[param] = {}
        return
    entries = {keys[slot]: torch.from_numpy(state.arrays[slot].copy()).to(param.device) for slot in opt.slots}
    if not sgd:
        scalar = torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
        entries["step"] = torch.tensor(float(state.t), dtype=scalar)
    torch_opt.state[param] = entries


# --- optax ------------------------------------------------------------------


def _optax_layout(opt: Optimizer) -> tuple[tuple[str, dict[str, str]], ...]:
    """The chained state ``opt`` has in optax: per link, its type name and field -> rmsnum slot
    (``count`` -> "t"; "-m": optax's momentum trace follows ``scale_by_learning_rate``, which
    negates, so it holds ``-m``)."""
    if isinstance(opt, RMSProp):
        if opt.weight_decay or opt.maximize or opt.momentum and not opt.lr_in_momentum:
            raise ValueError(f"opt = {opt!r} has no optax.rmsprop counterpart (weight decay, maximize or "
                             "torch-style momentum)")
        name = "ScaleByRStdDev" if opt.centered else "ScaleByRms"
        fields = {"mu": "g_avg", "nu": "s"} if opt.centered else {"nu": "s"}
        if opt.bias_correction:
            name, fields = name + "WithCount", {"count": "t", **fields}
        trace = ("TraceState", {"trace": "-m"}) if opt.momentum else ("EmptyState", {})
        return (name + "State", fields), ("EmptyState", {}), trace
    if type(opt) is Adam:
        if opt.amsgrad or opt.weight_decay or opt.eps_hat or opt.maximize:
            raise ValueError(f"opt = {opt!r} has no optax.adam counterpart (AMSGrad, weight decay, "
                             "epsilon hat or maximize)")
        return ("ScaleByAdamState", {"count": "t", "mu": "m", "nu": "s"}), ("EmptyState", {})
    raise ValueError(f"opt must be an RMSProp or Adam with an optax counterpart (optax.rmsprop, optax.adam), "
                     f"got {type(opt).__name__}")


def _optax_links(opt: Optimizer, opt_state: Any) -> tuple:
    layout = _optax_layout(opt)
    links = tuple(opt_state) if isinstance(opt_state, tuple) else (opt_state,)
    got = tuple(type(link).__name__ for link in links)
    want = tuple(name for name, _ in layout)
    if got != want:
        raise ValueError(f"opt_state is the chain {got}, opt = {opt!r} has the chain {want} in optax: "
                         "the state comes from another optimizer or option set")
    return tuple(zip(links, layout))


def from_optax(opt: Optimizer, opt_state: Any, params: Any) -> OptimizerState:
    """The optax state ``opt_state`` of one array ``params``, as an rmsnum state of ``opt``.

    Parameters
    ----------
    opt : RMSProp or Adam
        The rmsnum optimizer equal to the optax one: ``rn.RMSProp.optax(...)`` for
        ``optax.rmsprop(...)``, ``rn.Adam.optax(...)`` for ``optax.adam(...)``.
    opt_state : tuple
        ``tx.init(params)`` or a later state: a chain whose links must be those of ``opt``.
    params : jax.Array or numpy.ndarray
        The parameters (one array, float32 or float64): their shape and dtype.

    Returns
    -------
    OptimizerState
        NumPy copies; ``t`` from ``count`` (0 where the chain keeps none).
    """
    shape, dt = tuple(np.shape(params)), _float_dtype("params' dtype", np.asarray(params).dtype)
    slots, t = {}, 0
    for link, (_, fields) in _optax_links(opt, opt_state):
        for field, slot in fields.items():
            value = np.asarray(getattr(link, field))
            if slot != "t" and (value.shape != shape or value.dtype != dt):
                raise ValueError(f"opt_state's {field} is {value.dtype}{list(value.shape)}, the parameters are "
                                 f"{dt}{list(shape)}")
            if slot == "t":
                t = int(value)
            else:
                slots[slot.lstrip("-")] = -value if slot.startswith("-") else value
    return _state(opt, slots, t, shape, dt, "opt_state")


def to_optax(opt: Optimizer, state: OptimizerState, opt_state: Any) -> Any:
    """``opt_state`` (a state of the same optax chain, e.g. ``tx.init(params)``) with the
    values of the rmsnum ``state`` of ``opt``: the new optax state (optax states are immutable).

    float64 needs JAX's x64 mode on (``jax.enable_x64``): otherwise JAX would keep
    float32 copies, which is refused.
    """
    import jax.numpy as jnp

    linked = _optax_links(opt, opt_state)
    first = next((getattr(link, f) for link, (_, fields) in linked for f, slot in fields.items() if slot != "t"), None)
    shape, dt = tuple(np.shape(first)), _float_dtype("opt_state's dtype", np.asarray(first).dtype)
    opt.check_state(state, shape, dt)
    out = []
    for link, (_, fields) in linked:
        values = {}
        for field, slot in fields.items():
            old = getattr(link, field)
            if slot == "t":
                values[field] = jnp.asarray(state.t, dtype=jnp.asarray(old).dtype)
            else:
                arr = state.arrays[slot.lstrip("-")]
                values[field] = jnp.asarray(-arr if slot.startswith("-") else arr)
            if slot != "t" and values[field].dtype != dt:
                raise ValueError(f"JAX made {values[field].dtype} of the {dt} slot {slot}: enable x64 "
                                 "(jax.enable_x64) to hand float64 states to optax")
        out.append(link._replace(**values) if values else link)
    return tuple(out) if isinstance(opt_state, tuple) else out[0]


# --- Keras 3 ----------------------------------------------------------------

# keras.optimizers class -> (the rmsnum preset it describes, rmsnum slot -> its list of variables)
_KERAS: dict[str, tuple[Callable[[Any, float], Optimizer], dict[str, str]]] = {
    "RMSprop": (lambda k, lr: RMSProp.keras(learning_rate=lr, rho=k.rho, momentum=k.momentum, epsilon=k.epsilon,
                                            centered=k.centered, weight_decay=k.weight_decay, **_keras_clips(k)),
                {"s": "_velocities", "m": "_momentums", "g_avg": "_average_gradients"}),
    "Adam": (lambda k, lr: Adam.keras(learning_rate=lr, beta_1=k.beta_1, beta_2=k.beta_2, epsilon=k.epsilon,
                                      amsgrad=k.amsgrad, weight_decay=k.weight_decay, **_keras_clips(k)),
             {"s": "_velocities", "m": "_momentums", "v_max": "_velocity_hats"}),
    "AdamW": (lambda k, lr: AdamW.keras(learning_rate=lr, weight_decay=k.weight_decay, beta_1=k.beta_1,
                                        beta_2=k.beta_2, epsilon=k.epsilon, amsgrad=k.amsgrad, **_keras_clips(k)),
              {"s": "_velocities", "m": "_momentums", "v_max": "_velocity_hats"}),
    "Adagrad": (lambda k, lr: Adagrad.keras(learning_rate=lr, initial_accumulator_value=k.initial_accumulator_value,
                                            epsilon=k.epsilon, weight_decay=k.weight_decay, **_keras_clips(k)),
                {"s": "_accumulators"}),
}
def _keras_clips(keras_opt: Any) -> dict[str, Any]:
    """The clip arguments of a Keras optimizer (``clipnorm`` and ``global_clipnorm``: one
    array's norm, as rmsnum steps it; for several arrays, the ``norm`` of ``opt.step``)."""
    return {name: getattr(keras_opt, name, None) for name in ("clipvalue", "clipnorm", "global_clipnorm")}


_KERAS_UNEXPRESSED = ("use_ema", "gradient_accumulation_steps", "loss_scale_factor")


def _keras_lists(opt: Optimizer, keras_opt: Any, variable: Any) -> tuple[dict[str, str], tuple, np.dtype]:
    """Check that ``keras_opt`` steps ``variable`` as ``opt`` does; its slot lists, the shape and dtype."""
    kind = type(keras_opt).__name__
    if kind not in _KERAS or not hasattr(keras_opt, "iterations"):
        raise TypeError(f"keras_opt must be a keras.optimizers optimizer of {', '.join(_KERAS)}, got {kind}")
    unexpressed = [name for name in _KERAS_UNEXPRESSED if getattr(keras_opt, name, None)]
    if unexpressed:
        raise ValueError(f"keras_opt sets {', '.join(unexpressed)}, which rmsnum's presets do not express")
    if not isinstance(keras_opt._learning_rate, type(keras_opt.iterations)):
        raise ValueError("keras_opt's learning rate is a schedule; rmsnum's presets take a number")
    lr_var = np.asarray(keras_opt.learning_rate)
    lr = float(lr_var)
    if isinstance(opt, Optimizer) and lr_var.dtype.type(opt.lr) == lr_var:  # Keras keeps lr in its floatx
        lr = opt.lr
    describe, lists = _KERAS[kind]
    _same(opt, describe(keras_opt, lr), f"keras.optimizers.{kind}")
    dt = _float_dtype("variable's dtype", np.dtype(variable.dtype))
    return lists, tuple(variable.shape), dt


def _keras_index(keras_opt: Any, variable: Any) -> int:
    try:
        return keras_opt._get_variable_index(variable)
    except KeyError:
        raise ValueError("variable is not one of the variables keras_opt was built for") from None


def from_keras(opt: Optimizer, keras_opt: Any, variable: Any) -> OptimizerState:
    """The state of ``keras_opt`` for ``variable``, as an rmsnum state of ``opt``.

    Parameters
    ----------
    opt : Optimizer
        The rmsnum optimizer equal to the Keras one (``rn.RMSProp.keras(...)``,
        ``rn.Adam.keras(...)``, ``rn.AdamW.keras(...)``, ``rn.Adagrad.keras(...)``).
    keras_opt : keras.optimizers.Optimizer
        ``RMSprop``, ``Adam``, ``AdamW`` or ``Adagrad`` (``clipvalue``, ``clipnorm`` and
        ``global_clipnorm`` included), without EMA, gradient accumulation or a learning-rate schedule.
    variable : keras.Variable
        One of the variables it steps (float32 or float64).

    Returns
    -------
    OptimizerState
        NumPy copies; ``t`` from ``iterations``. Before Keras builds its
        variables, a fresh state.
    """
    lists, shape, dt = _keras_lists(opt, keras_opt, variable)
    if not keras_opt.built:
        return opt.init_like(shape, dt)
    i = _keras_index(keras_opt, variable)
    slots = {slot: np.asarray(getattr(keras_opt, name)[i].value) for slot, name in lists.items()
             if len(getattr(keras_opt, name, [])) > i}
    return _state(opt, slots, int(np.asarray(keras_opt.iterations)), shape, dt,
                  f"keras.optimizers.{type(keras_opt).__name__}'s variables")


def to_keras(opt: Optimizer, state: OptimizerState, keras_opt: Any, variable: Any) -> None:
    """Assign the rmsnum ``state`` of ``opt`` to ``keras_opt``'s variables for ``variable``
    and its ``iterations`` (building it for ``[variable]`` if it is not built yet).

    The arguments are those of :func:`from_keras`. Everything is checked before
    anything is assigned.
    """
    lists, shape, dt = _keras_lists(opt, keras_opt, variable)
    opt.check_state(state, shape, dt)
    if not keras_opt.built:
        keras_opt.build([variable])
    i = _keras_index(keras_opt, variable)
    targets = {slot: getattr(keras_opt, lists[slot])[i] for slot in opt.slots}
    for slot, target in targets.items():
        if tuple(target.shape) != shape or np.dtype(target.dtype) != dt:
            raise ValueError(f"keras_opt's variable for {slot} is {target.dtype}{list(target.shape)}, "
                             f"the state's is {dt}{list(shape)}")
    for slot, target in targets.items():
        target.assign(state.arrays[slot])
    keras_opt.iterations.assign(state.t)
