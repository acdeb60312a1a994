"""Plausible wrong answers for notebook 03, one per solution cell (see tests/wrong_answers)."""

WRONG_ANSWERS: dict[str, str] = {
    # averages the padding positions too
    "q1_pool_solution": '''
def mean_pool(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    return last_hidden_state.mean(dim=1)
''',
    # [CLS] pooling, and freeze_encoder=False never unfreezes
    "q2_head_solution": '''
class SentimentClassifier(nn.Module):
    def __init__(self, encoder: nn.Module, num_classes: int = 2, freeze_encoder: bool = False):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.config.hidden_size, num_classes)
        if freeze_encoder:
            for p in self.encoder.parameters():
                p.requires_grad = False

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.head(hidden[:, 0])
''',
    # scores only the first token of the label, and leaves the model in train mode
    "q3_score_solution": '''
def label_logprob(model, tokenizer, prompt: str, label: str) -> float:
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    label_ids = tokenizer(label, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([prompt_ids + label_ids[:1]])).logits[0]
    return torch.log_softmax(logits[len(prompt_ids) - 1], dim=-1)[label_ids[0]].item()
''',
}

EXPECTED_LOST: set[str] = {"q1_pool_tests", "q2_head_tests", "q3_score_tests"}
