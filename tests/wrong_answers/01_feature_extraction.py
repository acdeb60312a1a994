"""Plausible wrong answers for notebook 01, all in one submission (see test_course.py)."""

WRONG_ANSWERS = {
    # Freezes the parameters but leaves BatchNorm/Dropout in training mode.
    "q1_freeze_solution": '''
def freeze_backbone(model: nn.Module) -> nn.Module:
    for p in model.parameters():
        p.requires_grad = False
    return model
''',
    # Forgets torch.no_grad(): features carry an autograd graph.
    "q2_extract_solution": '''
def extract(backbone: nn.Module, loader: DataLoader) -> tuple[torch.Tensor, torch.Tensor]:
    backbone.eval()
    features, labels = [], []
    for x, y in loader:
        features.append(backbone(x))
        labels.append(y)
    return torch.cat(features), torch.cat(labels)
''',
    # Ends the head in a softmax before CrossEntropyLoss.
    "q3_head_solution": '''
def make_head(feature_dim: int, num_classes: int) -> nn.Module:
    return nn.Sequential(nn.Linear(feature_dim, num_classes), nn.Softmax(dim=1))


def train_head(features, labels, num_classes, steps=300, lr=1e-2, weight_decay=1e-3):
    head = make_head(features.shape[1], num_classes)
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(steps):
        optimizer.zero_grad()
        nn.CrossEntropyLoss()(head(features), labels).backward()
        optimizer.step()
    return head.eval()
''',
}

EXPECTED_LOST = {"q1_freeze_tests", "q2_extract_tests", "q3_head_tests"}
