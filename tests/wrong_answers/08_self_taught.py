"""Plausible wrong answers for notebook 08, all in one submission (see test_course.py)."""

WRONG_ANSWERS = {
    # Raw dot products instead of cosine similarities: the embeddings are never normalised.
    "q1_ntxent_solution": '''
def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    n = z1.shape[0]
    z = torch.cat([z1, z2])
    similarity = z @ z.T / temperature
    similarity = similarity.masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    positives = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(similarity, positives)
''',
    # The lateral input is added after the layer's ReLU instead of to its pre-activation.
    "q2_progressive_solution": '''
class Lateral(nn.Module):
    "The adapter from a frozen column's layer k-1 into the new column's layer k: U ReLU(V (alpha h))."

    def __init__(self, in_features: int, out_features: int, hidden: int = 16):
        super().__init__()
        self.alpha = nn.Parameter(torch.tensor(0.1))
        self.V = nn.Linear(in_features, hidden)
        self.U = nn.Linear(hidden, out_features, bias=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.U(F.relu(self.V(self.alpha * h)))


class ProgressiveColumn(nn.Module):
    def __init__(self, sizes, num_classes: int, previous: nn.Module | None = None, adapter_dim: int = 16):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.head = nn.Linear(sizes[-1], num_classes)
        self.previous = previous
        self.laterals = nn.ModuleList()
        if previous is not None:
            outputs = list(sizes[2:]) + [num_classes]
            self.laterals = nn.ModuleList(Lateral(a, b, adapter_dim) for a, b in zip(sizes[1:], outputs))

    def forward(self, x: torch.Tensor, return_hiddens: bool = False):
        previous_hiddens = self.previous(x, return_hiddens=True)[1] if self.previous is not None else None
        h = x.flatten(1)
        hiddens = []
        for k, layer in enumerate(self.layers):
            h = F.relu(layer(h))
            if previous_hiddens is not None and k > 0:
                h = h + self.laterals[k - 1](previous_hiddens[k - 1])
            hiddens.append(h)
        logits = self.head(h)
        if previous_hiddens is not None:
            logits = logits + self.laterals[-1](previous_hiddens[-1])
        return (logits, hiddens) if return_hiddens else logits
''',
}

EXPECTED_LOST = {"q1_ntxent_tests", "q2_progressive_tests"}
