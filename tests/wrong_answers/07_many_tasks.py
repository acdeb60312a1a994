"""Plausible, runnable wrong answers for notebook 07 (many tasks), all in one submission
(see the round-trip grading test). Each runs the notebook to the end without crashing."""

WRONG_ANSWERS = {
    # The losses are summed without their weights, so the weight sweep changes nothing; the metrics
    # are right and the forward pass too: only the weighting is wrong.
    "q1_multitask_solution": '''
def multitask_forward(trunk, heads, x):
    features = trunk(x)
    return {task: head(features) for task, head in heads.items()}


def multitask_loss(outputs, targets, weights):
    losses = {}
    for task, logits in outputs.items():
        keep = targets[task] != -1
        losses[task] = F.cross_entropy(logits[keep], targets[task][keep]) if keep.any() else logits.sum() * 0.0
    return sum(losses.values()), losses


def task_accuracies(outputs, targets):
    return {task: (z[targets[task] != -1].argmax(1) == targets[task][targets[task] != -1]).float().mean().item()
            for task, z in outputs.items()}
''',
    # The source weights are reversed (softmax of +NLL / T): the worst-fitting source gets the largest say.
    # The combination itself is right.
    "q3_sources_solution": '''
def source_weights(target_probs, y, temperature):
    names = list(target_probs)
    nll = torch.stack([-torch.log(target_probs[s][torch.arange(len(y)), y]).mean() for s in names])
    return dict(zip(names, (nll / temperature).softmax(dim=0).tolist()))


def combine_sources(probs, weights):
    return sum(weights[s] * p for s, p in probs.items())
''',
}

EXPECTED_LOST = {"q1_multitask_tests", "q3_sources_tests"}
