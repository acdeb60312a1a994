"""Checks for notebook 11, transfer without deep networks.

q1 the TCA projection ``tca_components(K, n_source, mu, n_components)``;
q2 the masked, biased, regularised matrix-factorisation loss ``mf_loss(R, mask, mu, user_bias, item_bias, P, Q, lam)``;
q3 the collective (shared user factors) objective ``cmf_loss(target, source, P, lam, alpha, mf_loss)``, checked
with a stand-in ``mf_loss`` so that its points do not depend on q2.

Every check runs a student's function on small fixed problems and compares the
result with expected values stored below (computed once by
tests/classical_transfer_reference.py, which is not installed), and with
properties. Eigenvectors are compared as directions: each column may be scaled
or have its sign flipped.
"""
from __future__ import annotations

import numpy as np

from ._core import NotAttempted, Question, QuestionSet, Wrong, require_scalar_tensor

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


# ---------------------------------------------------------------- q2: the masked matrix-factorisation loss

MF_PROBLEMS = ("small", "tall")


def mf_problem(name: str) -> dict:
    """A fixed problem, fresh float64 tensors: R (entries outside the mask are meaningless, some 0, some not),
    mask, mu, user_bias, item_bias, P, Q (the four parameters require grad) and lam."""
    import torch

    if name == "small":
        rng, n_users, n_items, rank, lam, density = np.random.default_rng(21), 5, 4, 2, 0.7, 0.55
    elif name == "tall":
        rng, n_users, n_items, rank, lam, density = np.random.default_rng(34), 7, 3, 3, 2.5, 0.45
    else:
        raise KeyError(name)
    mask = rng.random((n_users, n_items)) < density
    mask[0, 0] = mask[-1, -1] = True
    R = np.where(mask, rng.integers(1, 6, (n_users, n_items)), 0.0).astype(np.float64)
    junk = ~mask & (rng.random((n_users, n_items)) < 0.5)
    R[junk] = rng.normal(2.0, 2.0, int(junk.sum()))  # unobserved: not a rating, whatever is stored there
    t = lambda a, grad=True: torch.tensor(a, dtype=torch.float64, requires_grad=grad)
    return dict(R=t(R, False), mask=torch.tensor(mask), mu=float(R[mask].mean()),
                user_bias=t(rng.normal(0, 0.5, n_users)), item_bias=t(rng.normal(0, 0.5, n_items)),
                P=t(rng.normal(0, 0.7, (n_users, rank))), Q=t(rng.normal(0, 0.7, (n_items, rank))), lam=lam)


# The loss of the correct answer and of each mistake on each problem, written by tests/classical_transfer_reference.py.
MF_EXPECTED = {
    'small': {
        'correct': 3.429337109791651,
        'unmasked': 5.089154270072484,
        'R_nonzero_mask': 3.88291249497403,
        'divide_by_all': 1.543201699406243,
        'no_bias': 2.6720883879464767,
        'no_mu': 20.843421731742275,
        'bias_unregularised': 3.3113533025782607,
        'no_reg': 3.058304939635311,
        'sum_not_mean': 30.86403398812486,
        'reg_not_divided': 6.397594471042375,
        'rmse': 2.1198331707379703,
    },
    'tall': {
        'correct': 10.90303973320772,
        'unmasked': 8.656191398387985,
        'R_nonzero_mask': 7.73304947917941,
        'divide_by_all': 3.11515420948792,
        'no_bias': 10.028767563493767,
        'no_mu': 25.096234990513228,
        'bias_unregularised': 9.22883884598573,
        'no_reg': 4.187577657582023,
        'sum_not_mean': 65.41823839924632,
        'reg_not_divided': 44.480350111336215,
        'rmse': 8.76181924327313,
    },
}

_MF_MISTAKES = {
    "unmasked": "the loss counts every entry of R, observed or not. Only the observed ratings (where `mask` is "
                "True) are data: an unobserved entry is not a rating of 0, it is unknown. Multiply the squared "
                "errors by the mask (or select the observed entries) before summing.",
    "R_nonzero_mask": "you found the observed entries with `R != 0`; use `mask`. Outside the mask R holds "
                      "nothing meaningful (here some of those entries are not 0).",
    "divide_by_all": "the squared errors are summed over the observed entries but divided by the number of *all* "
                     "entries; divide by the number of observed ones (the mask's sum).",
    "no_bias": "the prediction has no user and item biases: r̂ = μ + b_u + b_i + p_u·q_i. The biases carry most "
               "of what is predictable in ratings (some users rate high, some films are liked by everyone).",
    "no_mu": "the prediction leaves out the global mean μ: r̂ = μ + b_u + b_i + p_u·q_i.",
    "bias_unregularised": "the biases are not regularised: λ multiplies ‖P‖² + ‖Q‖² + ‖b_user‖² + ‖b_item‖². "
                          "Without it, a user or film with one rating gets a bias that fits that rating exactly.",
    "no_reg": "`lam` is not used: the loss needs λ times the squared norms of P, Q and both biases.",
    "sum_not_mean": "the loss is not divided by the number of observed entries: (squared errors + λ·norms) / |Ω|.",
    "reg_not_divided": "only the squared errors are divided by |Ω|; the regulariser must be divided too: "
                       "(squared errors + λ·norms) / |Ω|.",
    "rmse": "you took the square root of the error term (an RMSE). The loss uses the squared errors themselves: "
            "(squared errors + λ·norms) / |Ω|.",
}


def _scalar(out, fn: str):
    return require_scalar_tensor(out, fn, "autograd differentiates it to fit the factors",
                                 "the loss, summed (and divided)", differentiable="the parameters")


def _eval_mf(mf_loss) -> None:
    for name in MF_PROBLEMS:
        prob = mf_problem(name)
        before = {k: v.detach().clone() for k, v in prob.items() if hasattr(v, "detach")}
        out = _scalar(mf_loss(**prob), "mf_loss")
        if any(not torch_equal(prob[k], v) for k, v in before.items()):
            raise Wrong("`mf_loss` changed a tensor passed in (an in-place operation); build new tensors instead.")
        out.backward()
        for p in ("user_bias", "item_bias", "P", "Q"):
            if prob[p].grad is None or not bool((prob[p].grad != 0).any()):
                raise Wrong(f"the loss does not change with `{p}`: every parameter enters the prediction "
                            "r̂ = μ + b_u + b_i + p_u·q_i and the regulariser.")
        value, expected = float(out.detach()), MF_EXPECTED[name]
        if np.isclose(value, expected["correct"], rtol=1e-5, atol=1e-8):
            continue
        for variant, message in _MF_MISTAKES.items():
            if np.isclose(value, expected[variant], rtol=1e-5, atol=1e-8):
                raise Wrong(message)
        raise Wrong(f"on a fixed problem ({tuple(prob['R'].shape)} ratings matrix, rank {prob['P'].shape[1]}, "
                    f"λ={prob['lam']}) the loss is {value:.6g}, expected {expected['correct']:.6g}. Check, in "
                    "order: the prediction μ + b_u + b_i + P·Qᵀ, the squared error on the observed entries only, "
                    "λ times the four squared norms, and the division of the sum by the number of observed entries.")


def torch_equal(a, b) -> bool:
    import torch
    return bool(torch.equal(a.detach(), b))


# ---------------------------------------------------------------- q3: the collective (shared-factor) objective

CMF_PROBLEMS = ("a", "b")


def probe_loss(R, mask, mu, user_bias, item_bias, P, Q, lam):
    """A stand-in for ``mf_loss`` in the q3 checks (not a factorisation loss): a smooth function of every
    argument, so that which arguments reach which term shows in its value and in P's gradient."""
    return (0.01 * (R * mask).sum() + 2.0 * mu + 3.0 * user_bias.sum() + 5.0 * item_bias.sum()
            + 0.37 * (P @ Q.T).sum() + 0.5 * (P ** 2).sum() + 11.0 * lam)


def cmf_problem(name: str):
    """A fixed problem: (target, source, P, lam, alpha) with fresh float64 tensors; the two sides share the
    users (rows) and have their own items."""
    import torch

    if name == "a":
        rng, n_users, n_t, n_s, rank, lam, alpha = np.random.default_rng(55), 4, 3, 5, 2, 0.8, 0.3
    elif name == "b":
        rng, n_users, n_t, n_s, rank, lam, alpha = np.random.default_rng(89), 6, 4, 2, 3, 2.0, 0.75
    else:
        raise KeyError(name)
    t = lambda a, grad=True: torch.tensor(a, dtype=torch.float64, requires_grad=grad)

    def side(n_items: int) -> dict:
        mask = rng.random((n_users, n_items)) < 0.5
        R = np.where(mask, rng.integers(1, 6, (n_users, n_items)), 0).astype(np.float64)
        return dict(R=t(R, False), mask=torch.tensor(mask), mu=float(rng.uniform(2.5, 4.0)),
                    user_bias=t(rng.normal(0, 0.5, n_users)), item_bias=t(rng.normal(0, 0.5, n_items)),
                    Q=t(rng.normal(0, 0.7, (n_items, rank))))

    target, source = side(n_t), side(n_s)
    return target, source, t(rng.normal(0, 0.7, (n_users, rank))), lam, alpha


# Value and gradient with respect to P of the correct answer and of each mistake, with probe_loss as mf_loss.
CMF_EXPECTED = {
    'a': {
        'correct': (25.149521966276133,
              [-0.9916087138, -0.4562156792, 0.3759280073, 0.9390124322, 0.1917906742, 0.9047317336, -0.7000395371, -0.0768837385]),
        'swapped': (17.380927916965582,
              [-0.6067130981, -0.5855193025, 0.7608236229, 0.8097088088, 0.5766862899, 0.7754281103, -0.3151439214, -0.2061873619]),
        'unweighted': (42.530449883241715,
              [-1.5983218119, -1.0417349817, 1.1367516302, 1.7487212409, 0.7684769642, 1.6801598439, -1.0151834584, -0.2830711004]),
        'average': (21.265224941620858,
              [-0.7991609059, -0.5208674909, 0.5683758151, 0.8743606205, 0.3842384821, 0.840079922, -0.5075917292, -0.1415355502]),
        'target_only': (3.4663447139947996,
              [-0.0954124159, -0.204749106, 0.3148486004, 0.2138193274, 0.2596074005, 0.2035351178, -0.0079416629, -0.0909495238]),
        'detached': (25.149521966276133,
              [-0.0954124159, -0.204749106, 0.3148486004, 0.2138193274, 0.2596074005, 0.2035351178, -0.0079416629, -0.0909495238]),
        'no_lam': (16.349521966276132,
              [-0.9916087138, -0.4562156792, 0.3759280073, 0.9390124322, 0.1917906742, 0.9047317336, -0.7000395371, -0.0768837385]),
    },
    'b': {
        'correct': (32.110392483836854,
              [-0.6637023115, -0.5924073117, 1.3058190227, -0.6203355368, -0.6594832118, 0.6013083793, -0.6194992785, -1.0406410618, -0.1514043174, -0.5125649863, -0.6742883205, 1.03906066, 0.2102531993, -0.9761642592, 0.0565419605, 0.2513319106, 0.5775112569, 1.1421425618]),
        'swapped': (29.93408437101604,
              [-0.3459510235, -0.1715294561, 0.9910392309, -0.3025842488, -0.2386053562, 0.2865285876, -0.3017479905, -0.6197632062, -0.4661841091, -0.1948136983, -0.2534104649, 0.7242808683, 0.5280044873, -0.5552864036, -0.2582378312, 0.5690831986, 0.9983891125, 0.8273627701]),
        'unweighted': (62.0444768548529,
              [-1.009653335, -0.7639367678, 2.2968582536, -0.9229197855, -0.8980885681, 0.887836967, -0.9212472691, -1.6604042681, -0.6175884264, -0.7073786846, -0.9276987853, 1.7633415283, 0.7382576867, -1.5314506628, -0.2016958706, 0.8204151091, 1.5759003694, 1.9695053319]),
        'average': (31.02223842742645,
              [-0.5048266675, -0.3819683839, 1.1484291268, -0.4614598928, -0.449044284, 0.4439184835, -0.4606236345, -0.830202134, -0.3087942132, -0.3536893423, -0.4638493927, 0.8816707641, 0.3691288433, -0.7657253314, -0.1008479353, 0.4102075546, 0.7879501847, 0.984752666]),
        'target_only': (24.898909905185448,
              [-0.6169334666, -0.6021346796, 1.0974066889, -0.5844083856, -0.6524416047, 0.5690237064, -0.5837811919, -0.9383099922, 0.0044891839, -0.5035804727, -0.6635454362, 0.8973379169, 0.0385331665, -0.8899523902, 0.1604488923, 0.0693421999, 0.2753042468, 0.9746493433]),
        'detached': (32.110392483836854,
              [-0.6169334666, -0.6021346796, 1.0974066889, -0.5844083856, -0.6524416047, 0.5690237064, -0.5837811919, -0.9383099922, 0.0044891839, -0.5035804727, -0.6635454362, 0.8973379169, 0.0385331665, -0.8899523902, 0.1604488923, 0.0693421999, 0.2753042468, 0.9746493433]),
        'no_lam': (10.110392483836852,
              [-0.6637023115, -0.5924073117, 1.3058190227, -0.6203355368, -0.6594832118, 0.6013083793, -0.6194992785, -1.0406410618, -0.1514043174, -0.5125649863, -0.6742883205, 1.03906066, 0.2102531993, -0.9761642592, 0.0565419605, 0.2513319106, 0.5775112569, 1.1421425618]),
    },
}

_CMF_MISTAKES = {
    "swapped": "the weights are swapped: α weights the *target* term and 1 − α the source term "
               "(α = 1 ignores the source; α = 0 ignores the target).",
    "unweighted": "the two terms are added without the weights α and 1 − α.",
    "average": "the two terms are averaged (½ each) whatever α is; weight them by α and 1 − α.",
    "target_only": "the source term is missing: the shared user factors must be fitted to both domains, "
                   "α·(target loss) + (1 − α)·(source loss).",
    "no_lam": "the regularisation weight was not passed on (λ = 0 in a term): call `mf_loss` with `lam` for both domains.",
}


def _eval_cmf(cmf_loss) -> None:
    for name in CMF_PROBLEMS:
        target, source, P, lam, alpha = cmf_problem(name)
        calls = []

        def recording_loss(*args, **kwargs):
            calls.append(1)
            return probe_loss(*args, **kwargs)

        out = _scalar(cmf_loss(target, source, P, lam, alpha, recording_loss), "cmf_loss")
        if not calls:
            raise Wrong("`cmf_loss` did not call the `mf_loss` it was given (the last argument): compute each "
                        "domain's term with that function, so that the objective works with any loss.")
        if not P.requires_grad or P.grad is not None:
            raise Wrong("`cmf_loss` changed P's state; leave the tensors passed in as they are.")
        out.backward()
        value, grad = float(out.detach()), P.grad.detach().numpy().ravel()
        expected = CMF_EXPECTED[name]

        def same(key: str) -> bool:
            v, g = expected[key]
            return bool(np.isclose(value, v, rtol=1e-6, atol=1e-9) and np.allclose(grad, g, rtol=1e-6, atol=1e-9))

        if same("correct"):
            continue
        if np.isclose(value, expected["correct"][0], rtol=1e-6):
            raise Wrong("the value is right but the gradient with respect to P is not: the source term must reach "
                        "the shared user factors too (did you detach P, or pass a copy, in one of the terms?). "
                        "Sharing P is what carries what the source teaches about each user into the target.")
        for variant, message in _CMF_MISTAKES.items():
            if same(variant):
                raise Wrong(message)
        raise Wrong(f"on a fixed problem (α={alpha}, λ={lam}) the objective is {value:.6g}, expected "
                    f"{expected['correct'][0]:.6g}. It is α·mf_loss(target's data and parameters, P, λ) + "
                    "(1 − α)·mf_loss(source's data and parameters, the same P, λ).")


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

q2 = Question(
    "q2", "the masked matrix-factorisation loss", ["mf_loss"], _eval_mf,
    hints=["A rating matrix is mostly unknown: only the observed ratings are data. The model predicts every "
           "entry as the global mean plus a user bias, an item bias and the dot product of a user factor and an "
           "item factor; the loss compares predictions with ratings only where a rating exists, and a ridge "
           "penalty keeps every parameter small.",
           "Broadcasting gives the whole prediction matrix at once: the user biases as a column, the item biases "
           "as a row, the factor products as P times Q transposed. The boolean `mask` says which entries count "
           "(convert it to the tensor's dtype to multiply); its sum is the number of observed ratings, |Ω|.",
           "Build the prediction matrix; take the error against R, squared, kept only where the mask is True, "
           "and summed; add λ times the sum of squares of P, of Q, of the user biases and of the item biases; "
           "divide the whole by the number of observed entries and return that scalar tensor."],
    why="Minimising this loss over the observed entries alone is what makes matrix factorisation a *completion* "
        "method: the fitted factors predict the ratings nobody gave, and the biases absorb the easy part "
        "(generous users, popular films) so that the factors can model taste.")

q3 = Question(
    "q3", "the collective (shared user factor) objective", ["cmf_loss"], _eval_cmf,
    hints=["Collective matrix factorisation fits two rating matrices at once with the *same* user factors: "
           "each domain keeps its own items, biases and mean, and a weight α decides how much each domain's "
           "error counts. What the source teaches about a user reaches the target through the shared factors.",
           "`target` and `source` are dictionaries whose keys are the names of `mf_loss`'s arguments except "
           "P and lam; the `mf_loss` argument is the loss to use for each domain's term (the checks pass their "
           "own). Keyword unpacking of a dictionary fills a call's named arguments.",
           "Compute the target's loss with its own data and parameters, the shared P and λ; compute the source's "
           "the same way with the same P; return α times the first plus one minus α times the second."],
    why="One objective, two domains, one set of user factors: a user with three comedy ratings but fifty drama "
        "ratings gets factors shaped mostly by the dramas, which is the transfer.")

questions = QuestionSet(q1, q2, q3)
check, hint, grade = questions.check, questions.hint, questions.grade

__all__ = ["q1", "q2", "q3", "questions", "check", "hint", "grade", "NotAttempted", "TCA_PROBLEMS", "tca_problem",
           "MF_PROBLEMS", "mf_problem", "CMF_PROBLEMS", "cmf_problem", "probe_loss"]
