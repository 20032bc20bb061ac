"""Shared fixtures and the table of optimizer configurations every backend is tested on."""

import dataclasses
import os
from pathlib import Path

import hypothesis
import pytest

import rmsnum as rn

hypothesis.settings.register_profile("rmsnum", deadline=None, max_examples=60, derandomize=True)
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "rmsnum"))

# Every rule and every RMSProp option, alone and combined, plus each preset.
OPTIMIZERS = {
    "rmsprop": rn.RMSProp(lr=0.05),
    "rmsprop-eps-outside": rn.RMSProp(lr=0.05, gamma=0.95, eps=1e-3, eps_in_sqrt=False),
    "rmsprop-initial-s": rn.RMSProp(lr=0.05, initial_s=1.0),
    "rmsprop-centered": rn.RMSProp(lr=0.05, centered=True),
    "rmsprop-momentum-torch": rn.RMSProp(lr=0.02, momentum=0.9),
    "rmsprop-momentum-keras": rn.RMSProp(lr=0.02, momentum=0.9, lr_in_momentum=True),
    "rmsprop-nesterov": rn.RMSProp(lr=0.02, momentum=0.8, lr_in_momentum=True, nesterov=True),
    "rmsprop-nesterov-torch-style": rn.RMSProp(lr=0.02, momentum=0.8, nesterov=True),
    "rmsprop-bias-correction": rn.RMSProp(lr=0.05, bias_correction=True),
    "rmsprop-weight-decay": rn.RMSProp(lr=0.05, weight_decay=0.1),
    "rmsprop-decoupled-weight-decay": rn.RMSProp(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True),
    "rmsprop-everything": rn.RMSProp(lr=0.01, gamma=0.8, eps=1e-4, centered=True, momentum=0.5,
                                     lr_in_momentum=True, nesterov=True, bias_correction=True,
                                     weight_decay=0.05, initial_s=0.5),
    "preset-d2l": rn.RMSProp.d2l(lr=0.05),
    "preset-torch": rn.RMSProp.torch(lr=0.01, momentum=0.9, centered=True, weight_decay=0.01),
    "preset-keras": rn.RMSProp.keras(learning_rate=0.01, momentum=0.9, centered=True, weight_decay=0.01),
    "preset-tf1": rn.RMSProp.tf1(0.01, momentum=0.5, epsilon=0.0),  # TF1 allows eps = 0: s starts at 1
    # (Centered with bias correction and s0 = 0 has s_hat - g_avg_hat**2 = 0 exactly at t = 1: the
    # first step divides by sqrt(rounding + eps), which no tolerance can compare; "rmsprop-everything"
    # covers centered + bias correction with s0 > 0.)
    "preset-optax": rn.RMSProp.optax(0.01, momentum=0.9, nesterov=True, bias_correction=True),
    # MXNet's RMSProp (rescale_grad, clip_gradient, clip_weights, wd) with Keras' clip of the gradient's norm
    # too: the RMSProp rule's rarely-on options in one row (one kernel of its own)
    "rmsprop-mxnet-options-norm-clipped": dataclasses.replace(
        rn.RMSProp.mxnet(learning_rate=0.01, centered=True, wd=0.01, rescale_grad=0.5, clip_gradient=1.0,
                         clip_weights=4.0), clip_norm=2.0),  # x0 = (-5, -2): the weights clip at once
    "preset-tf-keras2": rn.RMSProp.tf_keras2(learning_rate=0.01, centered=True),  # eps outside (momentum 0)
    "sgd": rn.SGD(lr=0.05),
    "preset-sgd-torch": rn.SGD.torch(lr=0.005, weight_decay=0.1, maximize=True),  # (1 + 0.02) ** 300 stays finite
    # MXNet's SGD with momentum (rescale_grad, clip_gradient, wd), damped as torch damps (from the second step):
    # the Momentum rule's rarely-on options in one row
    "momentum-mxnet-options-damped": rn.Momentum(lr=0.01, beta=0.9, dampening=0.3, weight_decay=0.01,
                                                 rescale_grad=2.0, clip_gradient=1.0),
    "momentum": rn.Momentum(lr=0.02, beta=0.9),
    "preset-momentum-torch": rn.SGD.torch(lr=0.01, momentum=0.9, nesterov=True, weight_decay=0.01),
    "adagrad": rn.Adagrad(lr=0.3),
    # torch's Adagrad (lr_decay, initial accumulator, weight decay, maximize) with the rarely-on options of the
    # rule (a clip, a clip of the norm): one row, one kernel of its own
    "adagrad-torch-options-clipped": dataclasses.replace(
        rn.Adagrad.torch(lr=0.3, lr_decay=0.05, weight_decay=0.01, initial_accumulator_value=0.1, maximize=True),
        clip_gradient=0.5, clip_norm=1.0),
    "preset-adagrad-keras": rn.Adagrad.keras(learning_rate=0.3, weight_decay=0.01),
    "adam": rn.Adam(lr=0.05),
    "adam-amsgrad": rn.Adam(lr=0.05, amsgrad=True),
    "preset-adam-torch": rn.Adam.torch(lr=0.05, weight_decay=0.1, amsgrad=True),
    "preset-adamw-torch": rn.AdamW.torch(lr=0.05, weight_decay=0.1),
    "preset-adam-keras": rn.Adam.keras(learning_rate=0.05, amsgrad=True, weight_decay=0.01),
    "preset-adam-mxnet": rn.Adam.mxnet(learning_rate=0.05, wd=0.01, rescale_grad=0.5, clip_gradient=1.0),
}


@pytest.fixture(params=list(OPTIMIZERS), ids=list(OPTIMIZERS))
def optimizer(request):
    return OPTIMIZERS[request.param]


@pytest.fixture(params=["float64", "float32"])
def dtype(request):
    return request.param


# float64 ~1e-12 relative, float32 ~1e-5 relative (DESIGN.md).
RTOL = {"float64": 1e-12, "float32": 1e-5}


def _cuda_runtime():
    """"simulator", "gpu", or None when the CUDA backend cannot run here."""
    from numba.core import config

    if config.ENABLE_CUDASIM:
        return "simulator"
    from rmsnum.backends import cuda

    return "gpu" if cuda.missing() is None else None


DATA_FIXTURES = ("regression_data", "airfoil")


# The test files that compile the most kernels, first: pytest-xdist's --dist loadfile hands files out
# in collection order, and a long file near the end keeps one worker busy while the other waits.
LONGEST_FIRST = ("test_training.py", "test_schedule.py", "test_classification.py", "test_sweep.py",
                 "test_objectives.py", "test_simulate.py", "test_kernels.py", "test_notebooks.py", "test_rules.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: k for k, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the others keep their order
    for item in items:  # "data": the tests that read the datasets' folder (run with -m data)
        if any(name in getattr(item, "fixturenames", ()) for name in DATA_FIXTURES):
            item.add_marker(pytest.mark.data)
    marked = [item for item in items if "gpu" in item.keywords or "cuda" in item.keywords]
    if not marked:
        return
    runtime = _cuda_runtime()
    for item in marked:
        if "gpu" in item.keywords and runtime != "gpu":
            item.add_marker(pytest.mark.skip(reason="needs a real CUDA GPU"))
        elif runtime is None:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU or NUMBA_ENABLE_CUDASIM=1"))


# The datasets' folder: ../shared/data beside the checkout (present in CI), or $RMSNUM_TEST_DATA.
# Tests that need a file skip without it; tests with a fallback run on synthetic data. .ci/run runs
# the data-dependent tests once with RMSNUM_TEST_DATA pointing at an empty folder, as on a clone
# without ../shared (and with RMSNUM_DATA and XDG_CACHE_HOME there too, so that rmsnum's own lookup
# and the notebook's find nothing either).
DATA_DIR = Path(os.environ.get("RMSNUM_TEST_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
AIRFOIL = DATA_DIR / "airfoil_self_noise.dat"
_SHARED_AIRFOIL = Path(__file__).resolve().parents[2] / "shared" / "data" / AIRFOIL.name  # notebooks look here


def pytest_report_header(config):
    """The framework versions the comparisons run against (tests/frameworks.py), where any is installed."""
    from frameworks import versions

    found = versions()
    return f"frameworks: {', '.join(f'{name} {version}' for name, version in found.items())}" if found else None


def pytest_configure(config):
    """The "data" marker; and a run that hides the data from the tests must hide it from rmsnum
    and the notebook too."""
    config.addinivalue_line("markers", "data: uses a dataset of the datasets' folder, or its fallback (conftest.py)")
    if not os.environ.get("RMSNUM_TEST_DATA") or AIRFOIL.exists():
        return
    if "RMSNUM_DATA" not in os.environ and _SHARED_AIRFOIL.exists():
        found = _SHARED_AIRFOIL
    else:
        try:
            found = rn.data.load_airfoil(download=False).source
        except FileNotFoundError:
            return
    raise pytest.UsageError(f"RMSNUM_TEST_DATA hides the airfoil data from the tests, but rmsnum or the "
                            f"notebook would still find {found}: point RMSNUM_DATA and XDG_CACHE_HOME at an "
                            f"empty folder too (as .ci/run does)")


@pytest.fixture(scope="session")
def regression_data():
    """The chapter's airfoil data when a local copy exists, else synthetic data of the same shape."""
    if AIRFOIL.exists():
        return rn.data.load_airfoil(AIRFOIL)
    return rn.data.synthetic_regression(n=1500, d=5, noise=0.5, seed=0)


@pytest.fixture(scope="session")
def airfoil():
    """The chapter's airfoil data; skips the test without a local copy."""
    if not AIRFOIL.exists():
        pytest.skip(f"needs the airfoil data at {AIRFOIL} (the folder is $RMSNUM_TEST_DATA when set)")
    return rn.data.load_airfoil(AIRFOIL)
