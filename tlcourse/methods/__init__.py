"""Method implementations the notebooks call in one line (zero-shot, distillation, ...)."""
