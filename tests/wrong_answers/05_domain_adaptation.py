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
    # Delegates to the library's CORAL loss instead of writing it (the uncentred-covariance mistake is
    # covered in tests/test_checks_domain_adaptation.py).
    "q2_coral_solution": '''
from tlcourse.methods.adapt import CorrelationAlignmentLoss


def coral_loss(f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
    return CorrelationAlignmentLoss()(f_s, f_t)
''',
    # Delegates the adversarial part to the library's DomainAdversarialLoss (its own reversal layer and
    # labels) instead of writing the step with the student's grad_reverse.
    "q3_dann_step_solution": '''
from tlcourse.methods.adapt import DomainAdversarialLoss


def dann_step(feature_extractor, classifier, domain_classifier, optimizer, x_s, y_s, x_t, lambd):
    features = feature_extractor(torch.cat([x_s, x_t]))
    f_s, f_t = features[: len(x_s)], features[len(x_s):]
    cls_loss = F.cross_entropy(classifier(f_s), y_s)
    domain_loss = DomainAdversarialLoss(domain_classifier, coeff=lambd)(f_s, f_t)
    optimizer.zero_grad()
    (cls_loss + domain_loss).backward()
    optimizer.step()
    return {"cls_loss": cls_loss.item(), "domain_loss": domain_loss.item()}
''',
}

EXPECTED_LOST = {"q1_grl_tests", "q2_coral_tests", "q3_dann_step_tests"}
