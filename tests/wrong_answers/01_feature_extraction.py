"""Plausible wrong answers for notebook 01, all in one submission (see test_course.py)."""

WRONG_ANSWERS = {
    # Freezes the parameters but leaves BatchNorm/Dropout in training mode.
    "q1_freeze_solution": '''
def freeze_backbone(model: nn.Module) -> nn.Module:
    for p in model.parameters():
        p.requires_grad = False
    return model
''',
    # Squeezes each batch's features: right until the last batch holds one image, then (1280,) joins (16, 1280).
    "q2_extract_solution": '''
def extract(backbone: nn.Module, loader: DataLoader) -> tuple[torch.Tensor, torch.Tensor]:
    backbone.eval()
    features, labels = [], []
    with torch.no_grad():
        for x, y in loader:
            features.append(backbone(x).squeeze())
            labels.append(y)
    return torch.cat(features), torch.cat(labels)
''',
    # Never clears the gradients: every step follows the sum of all past gradients. On easy data the head
    # still learns (the old accuracy tests passed it); the weights after seeded steps differ from the reference.
    "q3_head_solution": '''
def make_head(feature_dim: int, num_classes: int) -> nn.Module:
    return nn.Linear(feature_dim, num_classes)


def train_head(features, labels, num_classes, steps=300, lr=1e-2, weight_decay=1e-3):
    head = make_head(features.shape[1], num_classes)
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(steps):
        nn.CrossEntropyLoss()(head(features), labels).backward()
        optimizer.step()
    return head.eval()
''',
}

EXPECTED_LOST = {"q1_freeze_tests", "q2_extract_tests", "q3_head_tests"}
