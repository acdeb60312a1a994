"""Plausible wrong answers for notebook 04, all in one submission (see test_course.py)."""

WRONG_ANSWERS = {
    # KL arguments reversed and no T²: KL(student || teacher) at the wrong scale.
    "q1_kd_loss_solution": '''
def kd_loss(student_logits, teacher_logits, labels, T=4.0, alpha=0.9):
    soft = F.kl_div(F.log_softmax(teacher_logits / T, dim=1), F.softmax(student_logits / T, dim=1),
                    reduction="batchmean")
    return alpha * soft + (1 - alpha) * F.cross_entropy(student_logits, labels)
''',
    # Forgets optimizer.zero_grad(): gradients accumulate across batches.
    "q2_step_solution": '''
def distill_step(student, optimizer, images, labels, teacher_logits, loss_fn):
    student.train()
    loss = loss_fn(student(images), teacher_logits, labels)
    loss.backward()
    optimizer.step()
    return loss.item()
''',
}

EXPECTED_LOST = {"q1_kd_loss_tests", "q2_step_tests"}
