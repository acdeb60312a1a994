"""Writes the checks' stored expected outputs: tlcourse/checks/_expected/<topic>.json.

    .venv/bin/python scripts/make_check_expected.py [topic ...]

The checks in tlcourse/checks/ grade a student's function against numbers
computed once on fixed probe inputs, so that no reference implementation ships
in the installed package. This script (not installed) holds the reference code:
it builds each check's probe inputs with the check's own probe functions,
computes the correct outputs and those of each named mistake, and stores them
with a fingerprint of every input. Run it after changing a probe or a tolerance;
the tests then show whether every check still passes right answers and names
every mistake.
"""
from __future__ import annotations

import json
import pathlib
import sys

import torch
import torch.nn.functional as F

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tlcourse._io import atomic_open  # noqa: E402
from tlcourse.checks import _expected  # noqa: E402


def _list(t: torch.Tensor):
    return t.detach().double().cpu().tolist()


# ---------------------------------------------------------------- 04 distillation

def _log_softmax(z):
    z = z - z.max(1, keepdim=True).values
    return z - z.exp().sum(1, keepdim=True).log()


def _kl(log_p, log_q):
    """KL(p || q) per row, from log-probabilities."""
    return (log_p.exp() * (log_p - log_q)).sum(1)


def _ce(logits, labels):
    return -_log_softmax(logits).gather(1, labels.view(-1, 1)).squeeze(1).mean()


def kd_loss(s, t, y, T, alpha):
    """alpha · T² · mean_i KL(softmax(t_i/T) ‖ softmax(s_i/T)) + (1 − alpha) · CE(s, y)."""
    soft = _kl(_log_softmax(t / T), _log_softmax(s / T)).mean()
    return alpha * T * T * soft + (1 - alpha) * _ce(s, y)


def kd_mistakes(s, t, y, T, a):
    """The value of each plausible wrong loss, by the names the check's messages use."""
    C, N = s.shape[1], s.shape[0]
    ls, lt = _log_softmax(s / T), _log_softmax(t / T)
    kl = _kl(lt, ls).mean()
    ce = _ce(s, y)
    mix = lambda soft, hard=ce: a * soft + (1 - a) * hard  # noqa: E731
    return dict([
        ("no_T2", mix(kl)),
        ("T_not_T2", mix(T * kl)),
        ("divided_T2", mix(kl / (T * T))),
        ("reversed", mix(T * T * _kl(ls, lt).mean())),
        ("softmax_input", mix(T * T * (lt.exp() * (lt - ls.exp())).sum(1).mean())),
        ("teacher_no_T", mix(T * T * _kl(_log_softmax(t), ls).mean())),
        ("student_no_T", mix(T * T * _kl(lt, _log_softmax(s)).mean())),
        ("reduction_mean", mix(T * T * kl / C)),
        ("reduction_sum", mix(T * T * kl * N)),
        ("alpha_swapped", (1 - a) * T * T * kl + a * ce),
        ("no_hard", a * T * T * kl),
        ("no_alpha", T * T * kl + ce),
        ("ce_softened", mix(T * T * kl, _ce(s / T, y))),
    ])


def distillation() -> dict:
    from tlcourse.checks import distillation as D

    inputs, values = {}, {}
    for seed in (0, 1, 2):
        inputs[f"logit_probe/{seed}"] = _expected.fingerprint(*D._logit_probe(seed))
    for T, a in D._CONFIGS:
        for seed in (0, 1):
            s, t, y = D._logit_probe(seed)
            values[f"kd/ref/{D._key(T, a, seed)}"] = float(kd_loss(s, t, y, T, a))
            for name, v in kd_mistakes(s, t, y, T, a).items():
                values[f"kd/{name}/{D._key(T, a, seed)}"] = float(v)
    missing = set(D._MISTAKES) ^ set(kd_mistakes(*D._logit_probe(0), 4.0, 0.9))
    assert not missing, f"mistakes without a value or without a message: {missing}"
    s, t, y = D._logit_probe(2)
    s = s.clone().requires_grad_(True)
    kd_loss(s, t, y, 4.0, 0.7).backward()
    values["kd_grad"] = _list(s.grad)

    # q2: one SGD step of the given loss, done right and done in each common wrong way
    x, y, t = D._step_batch()
    inputs["step_batch"] = _expected.fingerprint(x, y, t)
    inputs["probe_student"] = _expected.fingerprint(*D._probe_student().parameters())

    def step(variant):
        net = D._probe_student()
        net.eval()
        D._stale_grads(net)
        opt = torch.optim.SGD(net.parameters(), lr=0.5)
        if variant != "eval":
            net.train()
        if variant != "no_zero":
            opt.zero_grad()
        loss = D._given_loss(net(x), t, y)
        loss.backward()
        opt.step()
        return [_list(p) for p in net.parameters()], float(loss.detach())

    for variant in ("ok", "no_zero", "eval"):
        values[f"step/{variant}"], loss = step(variant)
        if variant == "ok":
            values["step/loss"] = loss
    return {"inputs": inputs, "values": values}


def _dumps(data: dict) -> str:
    """One stored value per line: readable diffs when a maintainer regenerates."""
    parts = []
    for section in ("inputs", "values"):
        rows = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in sorted(data[section].items()))
        parts.append(f"{json.dumps(section)}: {{\n{rows}\n}}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


# ---------------------------------------------------------------- 01 feature_extraction

def feature_extraction() -> dict:
    from tlcourse.checks import feature_extraction as FE

    net = FE._probe_backbone(seed=3)
    x = FE._probe_images(37, seed=4)
    inputs = {"extract_probe": _expected.fingerprint(x, *net.state_dict().values())}
    with torch.no_grad():
        features = net.eval()(x)  # the backbone's eval-mode output: what extraction must return
    values = {"eval_features": _list(features)}
    fx, fy = FE._train_probe()
    inputs["train_probe"] = _expected.fingerprint(fx, fy)
    for name, kw in HEAD_RUNS.items():  # the head after a few seeded steps: right, and each named mistake
        torch.manual_seed(FE._TRAIN_SEED)
        head = train_head_reference(fx, fy, FE._TRAIN_CLASSES, **{**FE._TRAIN_ARGS, **kw})
        values[f"head/{name}"] = [_list(head.weight), _list(head.bias)]
    return {"inputs": inputs, "values": values}


def train_head_reference(features, labels, num_classes, steps, lr, weight_decay, zero_grad=True,
                         optimizer="adamw", softmax=False):
    """Full-batch AdamW on cross-entropy from a fresh nn.Linear; the flags make the named mistakes."""
    head = torch.nn.Linear(features.shape[1], num_classes)
    opt = (torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay) if optimizer == "adamw"
           else torch.optim.Adam(head.parameters(), lr=lr))
    for _ in range(steps):
        if zero_grad:
            opt.zero_grad()
        out = head(features)
        F.cross_entropy(out.softmax(1) if softmax else out, labels).backward()
        opt.step()
    return head


HEAD_RUNS = {"right": {}, "no_zero_grad": {"zero_grad": False}, "adam": {"optimizer": "adam"},
             "softmax": {"softmax": True}, "defaults": {"steps": 300, "lr": 1e-2, "weight_decay": 1e-3}}


# ---------------------------------------------------------------- 03 nlp_transfer

def masked_mean(hidden, mask):
    w = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * w).sum(1) / w.sum(1)


def token_logprobs(model, tokenizer, prompt, label):
    """log P(label token i | prompt, label tokens before i), for each label token, in eval mode."""
    p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    lab = tokenizer(label, add_special_tokens=False)["input_ids"]
    model.eval()
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([p + lab])).logits[0].float()
    logp = torch.log_softmax(logits, -1)
    return torch.stack([logp[len(p) - 1 + i, t] for i, t in enumerate(lab)])


def nlp_transfer() -> dict:
    from tlcourse.checks import nlp_transfer as N

    inputs, values = {}, {}
    hidden, mask = N._probe_hidden()
    inputs["probe_hidden"] = _expected.fingerprint(hidden, mask)
    values["pooled"] = _list(masked_mean(hidden, mask))
    enc = N._tiny_bert()
    ids, mask = N._probe_tokens()
    with torch.no_grad():
        hidden = enc(input_ids=ids, attention_mask=mask).last_hidden_state
    inputs["bert_hidden"] = _expected.fingerprint(hidden)
    values["bert_pooled"] = _list(masked_mean(hidden, mask))
    model, tok = N._tiny_llama(), N._byte_tokenizer()
    inputs["llama"] = _expected.fingerprint(torch.cat([p.detach().flatten() for p in model.parameters()]))
    for i, (prompt, label) in enumerate(N._PROMPTS):
        values[f"label_logprobs/{i}"] = _list(token_logprobs(model, tok, prompt, label))
    return {"inputs": inputs, "values": values}


# ---------------------------------------------------------------- 05 domain_adaptation

def covariance(f):
    return torch.cov(f.T.double())  # unbiased and centred


def coral(f_s, f_t):
    d = f_s.shape[1]
    return ((covariance(f_s) - covariance(f_t)) ** 2).sum() / (4 * d ** 2)


def coral_mistakes(f_s, f_t) -> dict:
    n_s, d = f_s.shape
    n_t = len(f_t)

    def fro2(cs, ct):
        return ((cs - ct) ** 2).sum()

    def uncentred(f, n):
        f = f.double()
        return f.T @ f / (n - 1)

    def biased(f):
        c = f.double() - f.double().mean(0)
        return c.T @ c / len(f)

    cs, ct = covariance(f_s), covariance(f_t)
    return {"no_norm": fro2(cs, ct), "d2": fro2(cs, ct) / d ** 2, "4d": fro2(cs, ct) / (4 * d),
            "sqrt": fro2(cs, ct).sqrt() / (4 * d ** 2),
            "uncentred": fro2(uncentred(f_s, n_s), uncentred(f_t, n_t)) / (4 * d ** 2),
            "uncentred_n1": fro2(uncentred(f_s, n_s + 1), uncentred(f_t, n_t + 1)) / (4 * d ** 2),
            "biased": fro2(biased(f_s), biased(f_t)) / (4 * d ** 2)}


class Reverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, c):
        ctx.c = c
        return x.clone()

    @staticmethod
    def backward(ctx, g):
        return -ctx.c * g, None


def dann_step(models, opt, x_s, y_s, x_t, lambd, variant: str = "correct"):
    """One DANN step done right ("correct", "labels_flipped") or in one of the check's named wrong ways."""
    fe, clf, disc = models
    f_s, f_t = fe(x_s), fe(x_t)
    cls_loss = F.cross_entropy(clf(f_s), y_s)
    src_label, tgt_label = (0.0, 1.0) if variant == "labels_flipped" else (1.0, 0.0)
    coeff = 1.0 if variant in ("lambda_in_loss", "grl_no_lambda") else lambd
    f = torch.cat([f_s, f_t])
    if variant in ("no_grl", "negated_loss"):
        rev = f
    elif variant == "detached":
        rev = f.detach()
    else:
        rev = Reverse.apply(f, coeff)
    d = disc(rev).squeeze(1)
    labels = torch.cat([torch.full((len(x_s),), src_label), torch.full((len(x_t),), tgt_label)])
    domain_loss = F.binary_cross_entropy_with_logits(d, labels)
    if variant == "sum_domain":
        domain_loss = 2 * domain_loss
    total = cls_loss + (lambd * domain_loss if variant == "lambda_in_loss" else domain_loss)
    if variant == "negated_loss":
        total = cls_loss - lambd * domain_loss
    if variant != "no_zero_grad":
        opt.zero_grad()
    total.backward()
    opt.step()
    return cls_loss.item(), domain_loss.item()


def domain_adaptation() -> dict:
    import copy

    from tlcourse.checks import domain_adaptation as DA

    inputs, values = {}, {}
    f_s, f_t = DA._coral_inputs()
    inputs["coral_inputs"] = _expected.fingerprint(f_s, f_t)
    values["coral/ref"] = float(coral(f_s, f_t))
    for name, v in coral_mistakes(f_s, f_t).items():
        values[f"coral/{name}"] = float(v)
    g = torch.Generator().manual_seed(11)
    a, b = torch.randn(16, 3, generator=g), torch.randn(16, 3, generator=g) * 2
    inputs["coral_second_pair"] = _expected.fingerprint(a, b)
    values["coral/second_pair"] = float(coral(a, b))

    lambd = 0.5
    x_s, y_s, x_t = DA._probe_batch()
    base = DA._probe_models()
    inputs["dann_batch"] = _expected.fingerprint(x_s, y_s, x_t)
    inputs["dann_models"] = _expected.fingerprint(*DA._params(base))
    for variant in ("correct", "labels_flipped", *DA._STEP_MISTAKES):
        with torch.random.fork_rng(devices=[]):
            models = tuple(copy.deepcopy(m) for m in base)
            opt = torch.optim.SGD([p for m in models for p in m.parameters()], lr=0.5)
            DA._stale_grads(models)
            cls_loss, dom_loss = dann_step(models, opt, x_s, y_s, x_t, lambd, variant)
        values[f"dann/{variant}/params"] = [_list(p) for p in DA._params(models)]
        values[f"dann/{variant}/cls_loss"] = cls_loss
        values[f"dann/{variant}/domain_loss"] = dom_loss
    return {"inputs": inputs, "values": values}


# ---------------------------------------------------------------- 06 zero_shot

def cosine_predict(q, k):
    qn = q / q.norm(dim=1, keepdim=True)
    kn = k / k.norm(dim=1, keepdim=True)
    return (qn @ kn.T).argmax(1)


def projection_losses(proj, x, t, e, temperature) -> dict:
    """The DeViSE-style loss ("ref") and each named wrong loss, before any step."""
    with torch.no_grad():
        z = proj(x)
        zn, en = z / z.norm(dim=1, keepdim=True), e / e.norm(dim=1, keepdim=True)
        cos = zn @ en.T
        return {
            "ref": F.cross_entropy(cos / temperature, t).item(),
            "no_temperature": F.cross_entropy(cos, t).item(),
            "times_temperature": F.cross_entropy(cos * temperature, t).item(),
            "raw_dot": F.cross_entropy(z @ e.T / temperature, t).item(),
            "raw_dot_no_t": F.cross_entropy(z @ e.T, t).item(),
            "only_images": F.cross_entropy(zn @ e.T / temperature, t).item(),
            "only_labels": F.cross_entropy(z @ en.T / temperature, t).item(),
            "mse": F.mse_loss(z, e[t]).item(),
            "mse_unit": F.mse_loss(zn, en[t]).item(),
            "cos_emb": (1 - (zn * en[t]).sum(1)).mean().item(),
        }


def projection_step(proj, x, t, e, temperature, lr):
    opt = torch.optim.SGD(proj.parameters(), lr=lr)
    z = proj(x)
    logits = (z / z.norm(dim=1, keepdim=True)) @ (e / e.norm(dim=1, keepdim=True)).T / temperature
    opt.zero_grad()
    F.cross_entropy(logits, t).backward()
    opt.step()
    return proj


def dap(p, a, eps: float = 1e-6):
    p = p.clamp(eps, 1 - eps)
    return (torch.log(p) @ a.T + torch.log1p(-p) @ (1 - a).T).argmax(1)


def gzsl(y, pred, seen, unseen):
    def acc(classes):
        per = [float((pred[y == c] == c).float().mean()) for c in classes if (y == c).any()]
        return sum(per) / len(per)
    s, u = acc(seen), acc(unseen)
    return s, u, (2 * s * u / (s + u) if s + u > 0 else 0.0)


def zero_shot() -> dict:
    from tlcourse.checks import zero_shot as Z

    inputs, values = {}, {}
    for case, (q, k) in enumerate(Z._q1_cases()):
        inputs[f"q1_case/{case}"] = _expected.fingerprint(q, k)
        values[f"cosine_predict/{case}"] = cosine_predict(q, k).tolist()
    x, t, e = Z._step_data()
    proj = Z._probe_projection()
    inputs["step_data"] = _expected.fingerprint(x, t, e, *proj.parameters())
    for name, v in projection_losses(proj, x, t, e, 0.2).items():
        values[f"projection/loss/{name}"] = v
    for k, v in projection_step(proj, x, t, e, 0.2, 0.05).state_dict().items():
        values[f"projection/after/{k}"] = _list(v)
    p = Z._q3_probs()
    inputs["dap_probs"] = _expected.fingerprint(p, Z._ATTR)
    values["dap/0"] = dap(p, Z._ATTR).tolist()
    unclamped = torch.log(p) @ Z._ATTR.T + torch.log(1 - p) @ (1 - Z._ATTR).T  # log(0) * 0 = NaN
    values["dap/unclamped"] = unclamped.argmax(1).tolist()
    values["dap/unclamped_nan_inf"] = torch.nan_to_num(unclamped, nan=-float("inf")).argmax(1).tolist()
    p2 = torch.rand(3, 4, generator=Z._gen(42)).clamp(0.05, 0.95)
    inputs["dap_probs_2"] = _expected.fingerprint(p2)
    values["dap/1"] = dap(p2, Z._ATTR).tolist()
    y, pred, seen, unseen = Z._q4_case()
    inputs["gzsl_case"] = _expected.fingerprint(y, pred)
    for key, v in zip(("seen", "unseen", "H"), gzsl(y, pred, seen, unseen)):
        values[f"gzsl/{key}"] = v
    return {"inputs": inputs, "values": values}


TOPICS = {"feature_extraction": feature_extraction, "nlp_transfer": nlp_transfer, "distillation": distillation,
          "domain_adaptation": domain_adaptation, "zero_shot": zero_shot}


def main(argv=None) -> None:
    names = (argv if argv is not None else sys.argv[1:]) or list(TOPICS)
    unknown = set(names) - set(TOPICS)
    if unknown:
        raise SystemExit(f"unknown topic(s) {sorted(unknown)}; known: {', '.join(TOPICS)}")
    torch.set_num_threads(1)  # the same reductions every run
    for name in names:
        data = TOPICS[name]()
        path = _expected.DIR / f"{name}.json"
        with atomic_open(path, "w") as f:
            f.write(_dumps(data))
        path.chmod(0o644)  # package data: readable by everyone who installs it
        _expected.load.cache_clear()
        print(f"wrote {path.relative_to(ROOT)} ({len(data['values'])} values)")


if __name__ == "__main__":
    main()
