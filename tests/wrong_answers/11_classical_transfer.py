"""Plausible wrong answers for notebook 11, all in one submission (see test_course.py)."""

WRONG_ANSWERS = {
    # The cross-domain entries of L get a plus sign (1/(n_s n_t) instead of -1/(n_s n_t)): L then measures the
    # size of the summed means, not the distance between them.
    "q1_tca_solution": '''
def tca_components(K: np.ndarray, n_source: int, mu: float, n_components: int) -> np.ndarray:
    n = K.shape[0]
    e = np.concatenate([np.full(n_source, 1.0 / n_source), np.full(n - n_source, 1.0 / (n - n_source))])
    H = np.eye(n) - np.ones((n, n)) / n
    vals, vecs = scipy.linalg.eigh(K @ H @ K, K @ np.outer(e, e) @ K + mu * np.eye(n))
    return vecs[:, np.argsort(vals)[::-1][:n_components]]
''',
    # The biases are left out of the penalty: only the factors are regularised.
    "q2_mf_solution": '''
def mf_loss(R, mask, mu, user_bias, item_bias, P, Q, lam):
    prediction = mu + user_bias[:, None] + item_bias[None, :] + P @ Q.T
    observed = mask.float() if prediction.dtype == torch.float32 else mask.double()
    squared_error = (((R - prediction) * observed) ** 2).sum()
    return (squared_error + lam * ((P ** 2).sum() + (Q ** 2).sum())) / observed.sum()
''',
    # alpha weights the source instead of the target.
    "q3_cmf_solution": '''
def cmf_loss(target, source, P, lam, alpha, mf_loss):
    return (1 - alpha) * mf_loss(P=P, lam=lam, **target) + alpha * mf_loss(P=P, lam=lam, **source)
''',
}

EXPECTED_LOST = {"q1_tca_tests", "q2_mf_tests", "q3_cmf_tests"}
