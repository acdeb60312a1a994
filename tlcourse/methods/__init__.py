"""Methods only, one concept per class or function, after TLlib: ``adapt`` (DANN, CORAL, MMD, importance
weights) and ``distill`` (FitNets' hint loss). No data, loops, plots or widgets: those live in ``tlcourse.lessons``."""
