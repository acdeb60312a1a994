"""Plausible, runnable wrong answers for notebook 02 (fine-tuning), for the round-trip grading test.

Each entry replaces a solution cell (by grade_id). Every one passes the visible
test of its exercise, so only the hidden tests can tell.
"""

WRONG_ANSWERS: dict[str, str] = {
    # stacks a new layer on top of the old 1000-way ImageNet layer instead of replacing it
    "q1_head_solution": '''
def replace_head(model: nn.Module, num_classes: int) -> nn.Module:
    model.classifier.append(nn.Linear(model.classifier[-1].out_features, num_classes))
    return model
''',
    # every parameter exactly once, but the learning rates are swapped: the body gets head_lr
    "q2_groups_solution": '''
def make_param_groups(model: nn.Module, head: nn.Module, body_lr: float, head_lr: float) -> list[dict]:
    head_ids = {id(p) for p in head.parameters()}
    body = [p for p in model.parameters() if id(p) not in head_ids]
    return [{"params": body, "lr": head_lr}, {"params": list(head.parameters()), "lr": body_lr}]
''',
    # unfreezes the right blocks but never hands their parameters to the optimizer
    "q3_unfreeze_solution": '''
def unfreeze_last(blocks: list[nn.Module], k: int, optimizer: torch.optim.Optimizer, lr: float) -> None:
    n = len(blocks)
    for i, block in enumerate(blocks):
        for p in block.parameters():
            p.requires_grad_(i >= n - k)
''',
}

# comparison_tests: with swapped LRs discriminative fine-tuning diverges (0.10), and with the
# optimizer never given the unfrozen blocks, gradual unfreezing leaves ImageNet top-1 untouched.
EXPECTED_LOST: set[str] = {"q1_head_tests", "q2_groups_tests", "q3_unfreeze_tests", "comparison_tests"}
