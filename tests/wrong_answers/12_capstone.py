"""Plausible, runnable wrong answers for notebook 12 (the capstone), for the round-trip grading test.

Each entry replaces a solution cell (by grade_id). Every one passes the visible
test of its exercise, so only the hidden tests can tell.
"""

WRONG_ANSWERS: dict[str, str] = {
    # never clears the gradients: every step also replays the earlier ones
    "q1_lr_solution": '''
def lr_range_test(model: nn.Module, batches: list, optimizer: torch.optim.Optimizer, lr_min: float = 1e-5,
                  lr_max: float = 1.0, num_steps: int = 50, diverge: float = 4.0) -> tuple[list, list]:
    lrs, losses = [], []
    for i in range(num_steps):
        lr = lr_min * (lr_max / lr_min) ** (i / (num_steps - 1))
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = batches[i % len(batches)]
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        lrs.append(lr)
        losses.append(loss.item())
        if not math.isfinite(losses[-1]) or losses[-1] > diverge * min(losses):
            break
    return lrs, losses
''',
    # the learning rate at the loss minimum itself, not a tenth of it
    "q2_suggest_solution": '''
def suggest_lr(lrs: list, losses: list) -> float:
    finite = [(loss, lr) for lr, loss in zip(lrs, losses) if math.isfinite(loss)]
    return float(min(finite)[1])
''',
    # a tie counts as an improvement (<=), so a plateau keeps moving the best epoch and resetting patience
    "q3_stop_solution": '''
def early_stop(scores: list, patience: int, mode: str = "min") -> tuple[int, bool]:
    better = (lambda a, b: a <= b) if mode == "min" else (lambda a, b: a >= b)
    best_epoch = 0
    for epoch, score in enumerate(scores):
        if better(score, scores[best_epoch]):
            best_epoch = epoch
    return best_epoch, len(scores) - 1 - best_epoch >= patience
''',
    # reports the best seed as the result instead of the mean over seeds
    "capstone_solution": '''
PROJECT_MODEL_PATH = OUT / "project_model.pt"
k = sizes["project_shots"]
backbone, (pool_feats, test_feats) = probe_features["efficientnet_lite0"]
project = dict(backbone="efficientnet_lite0", strategy="linear probe", dataset="Fashion-MNIST", seeds=[0, 1, 2],
               baseline=[], transfer=[], ablation={"more steps": []})
heads = []
for seed in project["seeds"]:
    idx = stratified_indices(pool.labels, per_class=k, seed=seed)
    y = pool_feats[1][idx]
    with one_thread():
        base = train_linear_head(pool.tensor().flatten(1)[idx], y, 10, steps=sizes["probe_steps"], seed=seed)
        head = train_linear_head(pool_feats[0][idx], y, 10, steps=sizes["probe_steps"], seed=seed)
        longer = train_linear_head(pool_feats[0][idx], y, 10, steps=2 * sizes["probe_steps"], seed=seed)
    project["baseline"].append(accuracy(base, test_set.tensor().flatten(1), test_feats[1]))
    project["transfer"].append(accuracy(head, *test_feats))
    project["ablation"]["more steps"].append(accuracy(longer, *test_feats))
    heads.append(head)
project["transfer_mean"] = float(max(project["transfer"]))


def build_project_model():
    b = load_backbone("efficientnet_lite0", pretrained=False, image_size=sizes["image_size"])
    return nn.Sequential(b.transforms, b.model, nn.Linear(b.feature_dim, 10))


project_model = nn.Sequential(backbone.transforms, backbone.model, heads[0]).cpu().eval()
project_test_x, project_test_y = test_set.tensor(), torch.as_tensor(test_set.labels)
torch.save(project_model.state_dict(), PROJECT_MODEL_PATH)
print(project_summary(project))
''',
}

EXPECTED_LOST: set[str] = {"q1_lr_tests", "q2_suggest_tests", "q3_stop_tests", "capstone_sanity_tests"}
