"""Checks for notebook 11, transfer without deep networks.

q1 the TCA projection ``tca_components(K, n_source, mu, n_components)``.

Every check runs a student's function on small fixed problems and compares the
result with expected values stored below (computed once by
tests/classical_transfer_reference.py, which is not installed), and with
properties. Eigenvectors are compared as directions: each column may be scaled
or have its sign flipped.
"""
from __future__ import annotations

import numpy as np

from ._core import NotAttempted, Question, QuestionSet, Wrong

# ---------------------------------------------------------------- q1: TCA

TCA_PROBLEMS = ("small", "unequal")


def tca_problem(name: str):
    """A fixed problem: (K, n_source, mu, n_components) with a Gaussian kernel on seeded points."""
    if name == "small":
        rng, n_s, n_t, d, shift, gamma, mu, m = np.random.default_rng(3), 6, 4, 3, (1.0, -0.5, 0.3), 0.3, 1.0, 2
    elif name == "unequal":
        rng, n_s, n_t, d, shift, gamma, mu, m = np.random.default_rng(8), 4, 7, 2, (1.5, 0.5), 0.5, 0.2, 3
    else:
        raise KeyError(name)
    x = np.concatenate([rng.normal(size=(n_s, d)), rng.normal(size=(n_t, d)) * 1.3 + np.asarray(shift)])
    d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    return np.exp(-gamma * d2), n_s, mu, m


# Canonical columns (unit length, largest entry positive) of the correct answer and of each mistake,
# written by tests/classical_transfer_reference.py.
TCA_EXPECTED = {
    # small: the 3 largest eigenvalues are [4.20814, 2.05218, 1.09064]
    'small': {
        'correct': [[0.13191559, -0.26918116, -0.13772392, 0.52892856, -0.20632669, -0.2298445, 0.26406638, 0.52398864, -0.29699654, -0.28897264], [0.4388061, -0.35243018, -0.20991866, -0.34202666, -0.34817275, -0.32875565, -0.03589355, -0.34873792, 0.31884425, 0.26138366]],
        'sign_L': [[0.12106561, -0.42009016, -0.29128041, 0.41585712, -0.37528864, -0.36820868, 0.30727975, 0.42364307, 0.02724252, 0.00550379], [0.20254003, -0.15172712, -0.1730315, -0.34852468, -0.19744464, -0.14716345, 0.00593364, -0.33888293, 0.56716217, 0.53605581]],
        'unnormalised_L': [[0.09515394, -0.0657662, -0.00346783, 0.57212684, -0.01537583, -0.0483742, 0.27583599, 0.56894874, -0.38294861, -0.33206191], [0.85084285, -0.12047968, -0.04875094, -0.25105556, -0.08162894, -0.13752499, 0.23176511, -0.23408424, -0.24536346, -0.04307441]],
        'no_H': [[0.13909187, 0.4079995, 0.22573306, 0.34424065, 0.35441391, 0.35901301, 0.38207795, 0.36829086, 0.16110003, 0.28750361], [0.13115608, -0.27697335, -0.14164883, 0.52347574, -0.21313792, -0.23674731, 0.25818349, 0.51810238, -0.29892799, -0.29337485]],
        'H_no_1_over_n': [[0.13157418, -0.27274172, -0.13951746, 0.52646298, -0.20943795, -0.23299835, 0.26139517, 0.52132537, -0.29788755, -0.29098924], [0.5632889, -0.18366937, -0.18815822, -0.23885507, -0.21144599, -0.18064069, 0.17601164, -0.22944382, 0.41675306, 0.47102842]],
        'mu_times_K': [[0.19369802, -0.27292049, -0.13447449, 0.59703068, -0.21138298, -0.22682007, 0.21332155, 0.43942994, -0.29912292, -0.29875924], [0.67501554, -0.24357604, -0.12812288, -0.17776634, -0.23912566, -0.21677622, 0.04021259, -0.35280353, 0.32696865, 0.31597389]],
        'smallest': [[0.39050041, -0.25223611, 0.34880963, 0.53542925, 0.31923777, 0.30366987, 0.03540401, -0.12773464, 0.35626369, 0.19212546], [0.22633191, -0.12239687, 0.17838547, -0.48607249, 0.15836391, 0.14297859, -0.10255657, 0.75214099, 0.1748074, 0.11572156]],
        'ascending': [[0.4388061, -0.35243018, -0.20991866, -0.34202666, -0.34817275, -0.32875565, -0.03589355, -0.34873792, 0.31884425, 0.26138366], [0.13191559, -0.26918116, -0.13772392, 0.52892856, -0.20632669, -0.2298445, 0.26406638, 0.52398864, -0.29699654, -0.28897264]],
    },
    # unequal: the 4 largest eigenvalues are [15.84655, 9.06884, 3.90664, 2.93757]
    'unequal': {
        'correct': [[0.12431217, 0.05124553, 0.11340033, -0.15315643, 0.49423827, -0.24581292, 0.51095406, -0.34157052, 0.19356509, -0.39472923, -0.26435829], [0.19799362, 0.03237057, 0.13907974, -0.3309615, -0.03524583, 0.58739608, -0.076509, -0.36845852, -0.22474557, -0.34023031, 0.42037248], [-0.46913553, -0.00739488, -0.13811953, 0.62819459, 0.21576724, 0.20827814, 0.17031876, -0.30674049, -0.38868189, 0.02456579, 0.03796232]],
        'sign_L': [[-0.30888739, -0.38698278, -0.33952101, -0.20243563, 0.41442878, 0.22979148, 0.41657943, 0.11635156, 0.31890715, -0.03607055, 0.28973076], [0.19722281, 0.13528889, 0.18929208, -0.12779804, 0.39266519, -0.34147554, 0.41066685, -0.38371038, 0.1120405, -0.38900414, -0.37428138], [0.22839567, 0.05953571, 0.16724905, -0.33802066, -0.04108522, 0.55976487, -0.08159907, -0.38955785, -0.23690851, -0.3481762, 0.3889344]],
        'unnormalised_L': [[0.11141378, 0.03130385, 0.09784335, -0.17007339, 0.47181843, -0.26649749, 0.48861383, -0.36362095, 0.1719688, -0.41112758, -0.2913973], [0.18661113, 0.01499772, 0.12523787, -0.34315634, -0.04473935, 0.57667214, -0.08592903, -0.38209562, -0.23533287, -0.35160528, 0.40567167], [0.52846942, 0.18817133, 0.27260019, -0.48012849, -0.11093353, -0.11828407, -0.07053764, 0.38474984, 0.43582329, 0.07110509, 0.07857577]],
        'no_H': [[0.29154679, 0.39552581, 0.32714228, 0.28742054, 0.31136473, 0.23198702, 0.31260055, 0.2852301, 0.28770725, 0.24256456, 0.31220642], [0.09933766, 0.01545063, 0.08435993, -0.17915919, 0.46829537, -0.26733893, 0.48497912, -0.36868742, 0.16832519, -0.41728878, -0.29378492], [0.19718874, 0.03108941, 0.13807831, -0.33193152, -0.03598709, 0.58656071, -0.07724593, -0.3695678, -0.22559485, -0.34114016, 0.41921405]],
        'H_no_1_over_n': [[0.11122831, 0.03236956, 0.09815732, -0.16705979, 0.48101192, -0.25744076, 0.49772738, -0.35624949, 0.18041162, -0.40705324, -0.28018116], [0.19740814, 0.03143836, 0.13835118, -0.33166767, -0.03578525, 0.58678881, -0.0770453, -0.36926607, -0.22536378, -0.34089271, 0.41952996], [-0.46853983, -0.00595729, -0.13697822, 0.62932738, 0.21658902, 0.20912855, 0.17114859, -0.30547547, -0.38754196, 0.02518822, 0.03928208]],
        'mu_times_K': [[0.11643198, 0.03627697, 0.10217675, -0.14575975, 0.486134, -0.2491493, 0.50256456, -0.35372565, 0.18491083, -0.41755066, -0.26230974], [0.19715086, 0.03027741, 0.13772166, -0.32001117, -0.03799072, 0.58784223, -0.07932941, -0.36839916, -0.22591272, -0.34518585, 0.42383689], [-0.44047834, 0.01138765, -0.11533612, 0.65241063, 0.20718181, 0.19490815, 0.16198175, -0.31765621, -0.39705398, 0.00931711, 0.03333756]],
        'smallest': [[0.37641903, -0.13657354, 0.30720165, 0.30694303, 0.37518624, 0.51765848, -0.07515935, 0.12959491, 0.28236293, 0.2980977, -0.22649424], [0.13512466, -0.04471929, 0.10979011, 0.10895957, -0.5970195, 0.19638007, 0.73745119, 0.07220954, 0.01529148, 0.09242843, -0.05470584], [0.27475967, -0.28207126, 0.21114339, 0.29182915, 0.02586265, -0.4188486, 0.03736845, -0.2529393, 0.13490849, 0.18524393, 0.64900217]],
        'ascending': [[-0.46913553, -0.00739488, -0.13811953, 0.62819459, 0.21576724, 0.20827814, 0.17031876, -0.30674049, -0.38868189, 0.02456579, 0.03796232], [0.19799362, 0.03237057, 0.13907974, -0.3309615, -0.03524583, 0.58739608, -0.076509, -0.36845852, -0.22474557, -0.34023031, 0.42037248], [0.12431217, 0.05124553, 0.11340033, -0.15315643, 0.49423827, -0.24581292, 0.51095406, -0.34157052, 0.19356509, -0.39472923, -0.26435829]],
    },
}

_TCA_MISTAKES = {
    "sign_L": "the cross-domain entries of L have the wrong sign. L compares the two domains' *means*: "
              "L_ij is 1/n_s² when i and j are both source, 1/n_t² when both are target, and **−**1/(n_s·n_t) "
              "when they come from different domains, so that tr(KL) is the squared distance between the means. "
              "With a plus sign it measures how large the means are, not how far apart.",
    "unnormalised_L": "L is not normalised by the domain sizes: its entries must be 1/n_s², 1/n_t² and "
                      "−1/(n_s·n_t), not ±1. Without the normalisation the MMD term grows with the sample "
                      "sizes and μ no longer means the same thing from one problem to the next.",
    "no_H": "the centring matrix H is missing (you used KK, or K·I·K, in place of KHK). KHK is the variance of "
            "the embedded data around its mean; without H the objective rewards directions that only move "
            "every point the same way.",
    "H_no_1_over_n": "H should be I − (1/n)·11ᵀ with n = n_s + n_t; you subtracted the all-ones matrix "
                     "without dividing by n.",
    "mu_times_K": "the regulariser is μ times the identity (μI), not μK: the constraint is on the size of W.",
    "smallest": "these are the eigenvectors of the *smallest* eigenvalues. TCA maximises the variance kept per "
                "unit of distance between the domains, so it keeps the *largest* eigenvalues "
                "(`scipy.linalg.eigh` returns them in ascending order: take them from the end).",
    "ascending": "you have the right eigenvectors but in ascending order of eigenvalue; put the largest first "
                 "(column 0 is the leading component).",
}


def _unit_columns(W: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(W, axis=0, keepdims=True)
    return W / np.where(norms == 0, 1.0, norms)


def _same_directions(W: np.ndarray, expected, tol: float = 1e-4) -> bool:
    ref = np.asarray(expected, dtype=np.float64).T
    if W.shape != ref.shape:
        return False
    cos = np.abs((_unit_columns(W) * ref).sum(axis=0))
    return bool(np.all(cos > 1 - tol))


def _as_matrix(out, n: int, m: int) -> np.ndarray:
    try:
        import torch
        if isinstance(out, torch.Tensor):
            out = out.detach().cpu().numpy()
    except ImportError:
        pass
    if out is None:
        raise Wrong("`tca_components` returned None: return the (n, n_components) matrix W.")
    W = np.asarray(out)
    if np.iscomplexobj(W):
        if np.abs(W.imag).max() > 1e-8 * max(1.0, np.abs(W.real).max()):
            raise Wrong("W has complex entries. The two matrices of the TCA eigenproblem are symmetric, so "
                        "the eigenvectors are real: use a symmetric solver such as `scipy.linalg.eigh(A, B)`, "
                        "or take the real part if a general solver returned tiny imaginary parts.")
        W = W.real
    if W.ndim != 2:
        raise Wrong(f"W must be a matrix (n, n_components); got shape {W.shape}.")
    if W.shape == (m, n) and m != n:
        raise Wrong(f"W has shape {W.shape}: the components must be the *columns* of W, shape ({n}, {m}). "
                    "Eigen-solvers return eigenvectors as columns: select columns, not rows.")
    if W.shape != (n, m):
        raise Wrong(f"W has shape {W.shape}; expected (n, n_components) = ({n}, {m}): one row per example "
                    "(source then target) and one column per component, only the n_components leading ones.")
    W = W.astype(np.float64)
    if not np.all(np.isfinite(W)):
        raise Wrong("W contains NaN or inf. Is μ added to KLK (KLK alone is singular, so the eigenproblem "
                    "without μ is ill-posed)?")
    if np.any(np.linalg.norm(W, axis=0) == 0):
        raise Wrong("a column of W is all zeros; every column must be an eigenvector.")
    return W


def _eval_tca(tca_components) -> None:
    for name in TCA_PROBLEMS:
        K, n_s, mu, m = tca_problem(name)
        n = len(K)
        K_in = K.copy()
        out = tca_components(K_in, n_s, mu, m)
        if not np.array_equal(K_in, K):
            raise Wrong("`tca_components` changed the kernel matrix passed in (an in-place operation); "
                        "build new matrices instead.")
        W = _as_matrix(out, n, m)
        expected = TCA_EXPECTED[name]
        if _same_directions(W, expected["correct"]):
            continue
        for variant, message in _TCA_MISTAKES.items():
            if _same_directions(W, expected[variant]):
                raise Wrong(message)
        first = _same_directions(W[:, :1], np.asarray(expected["correct"])[:1])
        where = ("the first component is right but a later one is not" if first else
                 "the first component is not the expected direction")
        raise Wrong(f"on a fixed problem (n_s={n_s}, n_t={n - n_s}, μ={mu}, n_components={m}) {where}. "
                    "Check, in order: L (1/n_s², 1/n_t², −1/(n_s·n_t)), H = I − (1/n)·11ᵀ, the two matrices "
                    "KHK and KLK + μI, the generalised eigenproblem between them, and the columns of the "
                    "n_components largest eigenvalues, largest first.")


# ---------------------------------------------------------------- questions

q1 = Question(
    "q1", "the TCA projection", ["tca_components"], _eval_tca,
    hints=["TCA looks for a few directions in the kernel's feature space along which the two domains' means "
           "are close (a small MMD) while the data still spreads out (a large variance). Trading the two "
           "off is a generalised eigenvalue problem: variance on one side, MMD plus μ on the other.",
           "Everything is n × n with n = n_s + n_t, the source rows first. L holds the MMD weights (three "
           "values: source-source, target-target, cross-domain), H is the centring matrix. "
           "`scipy.linalg.eigh(a, b)` solves a·w = λ·b·w for symmetric a and positive definite b, and "
           "returns the eigenvalues in ascending order with the eigenvectors as columns.",
           "Build L and H; form the variance matrix K·H·K and the constraint matrix K·L·K plus μ times the "
           "identity; solve the generalised problem with the first as a and the second as b; return the "
           "eigenvectors of the n_components largest eigenvalues, largest first, as the columns of W."],
    why="W turns any example into n_components coordinates, K(x, ·)·W, in which the source and target "
        "means nearly coincide: a classifier trained on the embedded source then sees target points where "
        "it expects them, with no network and no gradient step, only one eigen-decomposition.")

questions = QuestionSet(q1)
check, hint, grade = questions.check, questions.hint, questions.grade

__all__ = ["q1", "questions", "check", "hint", "grade", "NotAttempted", "TCA_PROBLEMS", "tca_problem"]
