"""Non-negative matrix factorization as scikit-learn 1.9 computes `NMF(init="nndsvd", solver="cd")`, step for step.

dns_failure_graph bisects its co-clusters with rank-2 NMF. Importing
scikit-learn for it costs ~0.7 s of CPU, more than the NMF itself on a day's
failure graph, so this module repeats scikit-learn's arithmetic with numpy
and scipy.linalg: the NNDSVD start from the randomized SVD (LU power
iterations, random_state 0), then coordinate descent, Frobenius loss, no
regularization, no shuffling. The same BLAS and LAPACK calls in the same
order give the same floating-point results (`tests/test_analyze_nmf.py`
checks W and H bit for bit against scikit-learn), so the co-clusters found do
not depend on which of the two ran.
"""
from __future__ import annotations

from math import sqrt

import numpy as np


def nmf(X: np.ndarray, n_components: int, *, max_iter: int = 200, tol: float = 1e-4, random_state: int = 0,
        ) -> tuple[np.ndarray, np.ndarray, int]:
    """W, H and the iterations run for X ≈ W·H (X dense, float64, non-negative)."""
    X = np.asarray(X, dtype=np.float64)
    if X.min(initial=0.0) < 0:
        raise ValueError("NMF needs a non-negative matrix")
    W, H = nndsvd(X, n_components, np.random.RandomState(random_state))
    W, Ht = np.ascontiguousarray(W), np.ascontiguousarray(H.T)
    violation_init = 0.0
    for n_iter in range(1, max_iter + 1):
        violation = 0.0
        violation += _update(X, W, Ht)
        violation += _update(X.T, Ht, W)
        if n_iter == 1:
            violation_init = violation
        if violation_init == 0 or violation / violation_init <= tol:
            break
    return W, Ht.T, n_iter


def _update(X: np.ndarray, W: np.ndarray, Ht: np.ndarray) -> float:
    """One pass of coordinate descent over W's entries, in place; the projected gradient's size.

    scikit-learn's Cython loop visits component t, then every row i; a row's update reads only that row, so
    each component's rows are updated at once here, with the same operations in the same order."""
    HHt = np.dot(Ht.T, Ht)
    XHt = X @ Ht
    parts = []
    for t in range(W.shape[1]):
        grad = -XHt[:, t]
        for r in range(W.shape[1]):
            grad = grad + HHt[t, r] * W[:, r]
        pg = np.where(W[:, t] == 0, np.where(grad < 0, grad, 0.0), grad)  # min(0., grad) when W is 0
        parts.append(np.abs(pg))
        hess = HHt[t, t]
        if hess != 0:
            step = W[:, t] - grad / hess
            W[:, t] = np.where(0.0 > step, 0.0, step)  # Cython's max(step, 0.): -0.0 stays -0.0
    # the violation is summed one entry after the other, as the loop does (np.sum would sum pairwise)
    return float(np.cumsum(np.concatenate(parts))[-1]) if parts and len(parts[0]) else 0.0


def nndsvd(X: np.ndarray, n_components: int, random_state: np.random.RandomState, eps: float = 1e-6,
           ) -> tuple[np.ndarray, np.ndarray]:
    """Boutsidis & Gallopoulos' NNDSVD start (zeros kept), from scikit-learn's randomized SVD."""
    U, S, V = randomized_svd(X, n_components, random_state)
    W, H = np.zeros_like(U), np.zeros_like(V)
    W[:, 0] = np.sqrt(S[0]) * np.abs(U[:, 0])
    H[0, :] = np.sqrt(S[0]) * np.abs(V[0, :])
    for j in range(1, n_components):
        x, y = U[:, j], V[j, :]
        x_p, y_p = np.maximum(x, 0), np.maximum(y, 0)
        x_n, y_n = np.abs(np.minimum(x, 0)), np.abs(np.minimum(y, 0))
        x_p_nrm, y_p_nrm = _norm(x_p), _norm(y_p)
        x_n_nrm, y_n_nrm = _norm(x_n), _norm(y_n)
        m_p, m_n = x_p_nrm * y_p_nrm, x_n_nrm * y_n_nrm
        if m_p > m_n:
            u, v, sigma = x_p / x_p_nrm, y_p / y_p_nrm, m_p
        else:
            u, v, sigma = x_n / x_n_nrm, y_n / y_n_nrm, m_n
        lbd = np.sqrt(S[j] * sigma)
        W[:, j] = lbd * u
        H[j, :] = lbd * v
    W[W < eps] = 0
    H[H < eps] = 0
    return W, H


def _norm(x: np.ndarray) -> float:
    x = np.ravel(x, order="K")
    return sqrt(np.dot(x, x))


def randomized_svd(M: np.ndarray, n_components: int, random_state: np.random.RandomState, n_oversamples: int = 10,
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Halko et al.'s randomized SVD with scikit-learn's defaults: n_iter 'auto', LU-normalized power
    iterations, the thinner side transposed, signs flipped as `svd_flip` does."""
    from scipy import linalg

    n_iter = 7 if n_components < 0.1 * min(M.shape) else 4
    transpose = M.shape[0] < M.shape[1]
    if transpose:
        M = M.T
    Q = random_state.normal(size=(M.shape[1], n_components + n_oversamples))
    for _ in range(n_iter):  # n_iter >= 4, so scikit-learn normalizes with LU
        Q, _ = linalg.lu(M @ Q, permute_l=True, check_finite=False)
        Q, _ = linalg.lu(M.T @ Q, permute_l=True, check_finite=False)
    Q, _ = linalg.qr(M @ Q, mode="economic", check_finite=False)
    Uhat, s, Vt = linalg.svd(Q.T @ M, full_matrices=False, lapack_driver="gesdd")
    U = Q @ Uhat
    if transpose:  # signs from the rows of Vt
        signs = np.sign(Vt[np.arange(Vt.shape[0]), np.argmax(np.abs(Vt), axis=1)])
        U *= signs[np.newaxis, :]
        Vt *= signs[:, np.newaxis]
        return Vt[:n_components, :].T, s[:n_components], U[:, :n_components].T
    signs = np.sign(U.T[np.arange(U.shape[1]), np.argmax(np.abs(U.T), axis=1)])
    U *= signs[np.newaxis, :]
    Vt *= signs[:, np.newaxis]
    return U[:, :n_components], s[:n_components], Vt[:n_components, :]
