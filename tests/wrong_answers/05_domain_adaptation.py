"""Plausible, runnable wrong answers for notebook 05 (domain adaptation), all in one submission
(see the round-trip grading test). Each runs the notebook to the end without crashing."""

WRONG_ANSWERS = {
    # Scales by lambda but forgets the minus sign: the features then *help* the domain classifier.
    "q1_grl_solution": '''
class GradientReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, lambd):
        ctx.lambd = lambd
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output):
        return ctx.lambd * grad_output, None


def grad_reverse(x: torch.Tensor, lambd: float = 1.0) -> torch.Tensor:
    return GradientReverse.apply(x, lambd)
''',
    # Second moments instead of centred covariances.
    "q2_coral_solution": '''
def coral_loss(f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
    d = f_s.shape[1]
    c_s = f_s.T @ f_s / (len(f_s) - 1)
    c_t = f_t.T @ f_t / (len(f_t) - 1)
    return ((c_s - c_t) ** 2).sum() / (4 * d * d)
''',
    # Domain labels swapped: target = 1, source = 0.
    "q3_dann_step_solution": '''
def dann_step(feature_extractor, classifier, domain_classifier, optimizer, x_s, y_s, x_t, lambd):
    features = feature_extractor(torch.cat([x_s, x_t]))
    cls_loss = F.cross_entropy(classifier(features[: len(x_s)]), y_s)
    domain_logits = domain_classifier(grad_reverse(features, lambd)).squeeze(1)
    domain_labels = torch.cat([torch.zeros(len(x_s)), torch.ones(len(x_t))])
    domain_loss = F.binary_cross_entropy_with_logits(domain_logits, domain_labels)
    optimizer.zero_grad()
    (cls_loss + domain_loss).backward()
    optimizer.step()
    return {"cls_loss": cls_loss.item(), "domain_loss": domain_loss.item()}
''',
}

EXPECTED_LOST = {"q1_grl_tests", "q2_coral_tests", "q3_dann_step_tests"}
