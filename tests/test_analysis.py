"""The chapter's leaky-average weights."""

import numpy as np
import pytest

from rmsnum.analysis import leaky_average_weights


def test_chapter_weights():
    gammas = [0.95, 0.9, 0.8, 0.7]
    w = leaky_average_weights(gammas, 40)
    assert w.shape == (4, 40)
    for row, gamma in zip(w, gammas):
        np.testing.assert_allclose(row, [(1 - gamma) * gamma**t for t in range(40)], rtol=1e-15)
        assert row.sum() == pytest.approx(1 - gamma**40)


@pytest.mark.parametrize("gamma, error", [(1.5, ValueError), (-0.1, ValueError), ("a", TypeError)])
def test_bad_gamma(gamma, error):
    with pytest.raises(error, match="gamma"):
        leaky_average_weights(gamma)
