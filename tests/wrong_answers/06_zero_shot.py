"""Plausible wrong answers for notebook 06, all in one submission (see test_course.py)."""

WRONG_ANSWERS = {
    # Uses the raw dot product as if it were cosine similarity: the embeddings are not normalised.
    "q1_predict_solution": '''
def zero_shot_predict(embeddings: torch.Tensor, label_embeddings: torch.Tensor) -> torch.Tensor:
    return (embeddings @ label_embeddings.T).argmax(dim=1)
''',
    # Leaks the unseen classes into training (keeps every image); the step itself is right.
    "q2_projection_solution": '''
def select_seen(features: torch.Tensor, labels: torch.Tensor, seen_classes) -> tuple[torch.Tensor, torch.Tensor]:
    return features, labels


def projection_step(projection: nn.Module, optimizer, features: torch.Tensor, targets: torch.Tensor,
                    class_embeddings: torch.Tensor, temperature: float) -> float:
    z = F.normalize(projection(features), dim=1)
    loss = F.cross_entropy(z @ F.normalize(class_embeddings, dim=1).T / temperature, targets)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
''',
    # Evaluates generalised zero-shot only on the unseen classes.
    "q3_gzsl_solution": '''
def gzsl_scores(y_true: torch.Tensor, y_pred: torch.Tensor, seen_classes, unseen_classes) -> dict:
    y_true, y_pred = torch.as_tensor(y_true), torch.as_tensor(y_pred)
    u = float(np.mean([(y_pred[y_true == c] == c).float().mean().item() for c in unseen_classes]))
    return {"seen": u, "unseen": u, "H": u}
''',
    # Scores classes only by the attributes they have: a dot product of probabilities with the table.
    "q4_dap_solution": '''
def dap_predict(attribute_probs: torch.Tensor, class_attributes: torch.Tensor) -> torch.Tensor:
    a = torch.as_tensor(class_attributes, dtype=attribute_probs.dtype)
    return (attribute_probs @ a.T).argmax(dim=1)
''',
}

EXPECTED_LOST = {"q1_predict_tests", "q2_projection_tests", "q3_gzsl_tests", "q4_dap_tests"}
