"""Plausible wrong answers for notebook 10, all in one submission (see test_course.py)."""

WRONG_ANSWERS = {
    # Averages every frame, the zero-padded ones included: the mask is ignored.
    "q1_pool_solution": '''
def pool_frames(frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return frames.mean(dim=1)
''',
    # Dot product with the class means, never normalised: not a cosine similarity.
    "q2_proto_solution": '''
def prototype_scores(support: torch.Tensor, support_labels: torch.Tensor, queries: torch.Tensor,
                     n_classes: int) -> torch.Tensor:
    prototypes = torch.stack([support[support_labels == c].mean(dim=0) for c in range(n_classes)])
    return queries @ prototypes.T
''',
}

EXPECTED_LOST = {"q1_pool_tests", "q2_proto_tests"}
