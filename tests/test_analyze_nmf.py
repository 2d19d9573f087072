"""necoma.analyze.nmf gives scikit-learn's NMF(init="nndsvd", solver="cd") results bit for bit, without its import."""
from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

from necoma.analyze.cocluster import cocluster
from necoma.analyze.nmf import nmf

NMF = pytest.importorskip("sklearn.decomposition").NMF


def matrices(n: int):
    """0/1 matrices like the co-cluster parts: sparse, dense, with a block, some with empty rows or columns."""
    rng = np.random.default_rng(7)
    for i in range(n):
        r, c = int(rng.integers(2, 90)), int(rng.integers(2, 150))
        A = (rng.random((r, c)) < rng.uniform(0.02, 0.6)).astype(float)
        if i % 3 == 0:
            A[: r // 2, : c // 2] = rng.random((r // 2, c // 2)) < 0.8
        if i % 5 == 0:
            A[0, :] = 0
        if A.any():
            yield A


@pytest.mark.parametrize("max_iter", [1000, 200, 3])
def test_nmf_is_scikit_learns_bit_for_bit(max_iter):
    checked = 0
    for A in matrices(60):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter 3
            model = NMF(n_components=2, init="nndsvd", max_iter=max_iter, random_state=0)
            W_sk = model.fit_transform(A)
        W, H, n_iter = nmf(A, 2, max_iter=max_iter)
        assert np.array_equal(W, W_sk) and np.array_equal(H, model.components_), A.shape
        assert n_iter == model.n_iter_
        checked += 1
    assert checked > 50


def test_three_components_and_a_wide_matrix_too():
    A = np.kron(np.eye(3), np.ones((4, 9))) + (np.random.default_rng(1).random((12, 27)) < 0.1)
    for X in (A, A.T):
        model = NMF(n_components=3, init="nndsvd", max_iter=500, random_state=0)
        W_sk = model.fit_transform(X)
        W, H, _ = nmf(X, 3, max_iter=500)
        assert np.array_equal(W, W_sk) and np.array_equal(H, model.components_)


def test_negative_input_is_refused():
    with pytest.raises(ValueError, match="non-negative"):
        nmf(-np.ones((3, 3)), 2)


def test_co_clustering_does_not_import_scikit_learn():
    code = ("from necoma.analyze.cocluster import cocluster\n"
            "edges = {(f'h{i}', f'n{j}'): 1 for i in range(12) for j in range(12) if (i < 6) == (j < 6) or (i + j) % 7 == 0}\n"
            "parts = cocluster(edges, 0.9, 10)\n"
            "import sys\nassert len(parts) >= 2, parts\nprint('sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_co_clusters_split_two_blocks():
    edges = {(f"h{i}", f"n{j}"): 1 for i in range(8) for j in range(8) if (i < 4) == (j < 4)}
    edges[("h0", "n7")] = 1  # one link joins the blocks into one connected part, so NMF must split it
    parts = cocluster(edges, 0.9, 10)
    assert sorted(len(h) for h, _ in parts) == [4, 4]
