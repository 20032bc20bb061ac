"""The reference backend's step on an optimizer and its state, as the tests call it."""

from rmsnum.backends import reference


def reference_step(opt, x, g, state) -> None:
    """``opt``'s update of ``x`` and ``state`` in place by the NumPy reference, after
    the checks of :meth:`rmsnum.Optimizer.step` (``state.t`` counts it)."""
    opt._check_step(x, g, state)
    state.t += 1
    slots = tuple(state.arrays.get(name) for name in opt.spec.slots)
    reference.step(opt.rule, x, g, slots, None, None, (), hyper=opt.hyperparameters(), t=state.t)
