"""The helpers of notebook 10 (tlcourse.lessons.speech): synthesis, data set, log-mel, embedder, training."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tlcourse.lessons import speech as sp


def test_synthesis_is_16khz_nearly_repeatable_and_voices_differ():
    # eSpeak NG is not bit-repeatable: the same call can differ by a few samples (its rounding and jitter)
    a, b = sp.synthesise("yes", "en", 160, 50), sp.synthesise("yes", "en", 160, 50)
    assert a.dtype == np.float32 and abs(len(a) - len(b)) < 0.01 * len(a)
    assert 0.15 * sp.SAMPLE_RATE < len(a) < 1.0 * sp.SAMPLE_RATE and 0.05 < np.abs(a).max() <= 1.0
    c = sp.synthesise("yes", "en+f3", 160, 50)
    assert len(c) != len(a) or not np.allclose(c, a)
    slow = sp.synthesise("yes", "en", 100, 50)
    assert len(slow) > len(a)
    with pytest.raises(ValueError, match="no voice"):
        sp.synthesise("yes", "no-such-voice")


def test_keyword_set_holds_out_voices_and_pads(monkeypatch):
    monkeypatch.setattr(sp, "TRAIN_VOICES", ("en", "en+f3"))
    monkeypatch.setattr(sp, "TEST_VOICES", ("en-us+m3",))
    monkeypatch.setattr(sp, "KEYWORDS", ("yes", "no"))
    ks = sp.keyword_set(variants=2, seed=0)
    clip = int(sp.CLIP_SECONDS * sp.SAMPLE_RATE)
    assert ks.audio.shape == (12, clip) and ks.test.sum() == 4
    assert {v for v, t in zip(ks.voices, ks.test) if t} == {"en-us+m3"}
    assert np.all(ks.lengths >= int(sp.MIN_SECONDS * sp.SAMPLE_RATE)) and np.all(ks.lengths <= clip)
    for wave, n in zip(ks.audio, ks.lengths):
        assert np.all(wave[n:] == 0) and np.abs(wave[:n]).max() > 0
    again = sp.keyword_set(variants=2, seed=0)
    assert np.array_equal(again.lengths, ks.lengths) and np.array_equal(again.labels, ks.labels)
    idx = sp.labelled_subset(ks.labels, np.flatnonzero(~ks.test), 2, seed=1)
    assert len(idx) == 4 and not ks.test[idx].any() and np.bincount(ks.labels[idx]).tolist() == [2, 2]


def test_log_mel_shape_and_a_tone_lands_in_the_right_bin():
    t = np.arange(sp.SAMPLE_RATE) / sp.SAMPLE_RATE
    low, high = np.sin(2 * np.pi * 300 * t), np.sin(2 * np.pi * 3000 * t)
    m = sp.log_mel(np.stack([low, high]), n_mels=40)
    assert m.shape == (2, 40, sp.SAMPLE_RATE // 160 + 1)
    peak = m.mean(-1).argmax(-1)
    assert peak[0] < peak[1]
    fb = sp.mel_filterbank(40, 400)
    assert fb.shape == (201, 40) and torch.all(fb >= 0) and torch.all(fb.max(0).values > 0.5)


def test_embedder_frames_and_mask():
    emb = sp.SpeechEmbedder(threads=1)
    clip = int(sp.CLIP_SECONDS * sp.SAMPLE_RATE)
    audio = np.zeros((2, clip), np.float32)
    word = sp.synthesise("go", "en")
    audio[0, :len(word)] = word
    audio[1, :clip] = np.resize(word, clip)
    frames, mask = emb.frames(audio, np.array([int(0.8 * sp.SAMPLE_RATE), clip]))
    assert frames.shape[0] == 2 and frames.shape[2] == 96 and mask.shape == frames.shape[:2]
    assert mask[0].sum() == 1 and mask[0, 0] and bool(mask[1].all())
    assert torch.isfinite(frames).all()
    m = sp.masked_max(frames, mask)
    assert torch.allclose(m[0], frames[0, 0])


def test_training_learns_a_separable_problem():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(4).repeat(10)
    x = torch.randn(40, 96, generator=g) + torch.nn.functional.one_hot(y, 96) * 6
    head = sp.train_classifier(sp.linear_head(96, 4), x, y, steps=60, seed=0)
    assert sp.accuracy(head, x, y) > 0.9
    cnn = sp.small_cnn(40, 4, width=4)
    out = cnn(torch.randn(3, 1, 40, 131))
    assert out.shape == (3, 4)


def test_summarize_pairs_by_seed():
    table = sp.summarize({"base": [0.1, 0.2, 0.3], "m": [0.2, 0.1, 0.5]}, "base")
    assert "| m | 0.267 ± 0.170 | +0.067 ± 0.125 | 2/3 |" in table


def test_missing_espeak_says_what_to_install(monkeypatch):
    import builtins
    real = builtins.__import__

    def no_espeak(name, *a, **k):
        if name == "espeakng_loader":
            raise ImportError(name)
        return real(name, *a, **k)
    monkeypatch.setattr(builtins, "__import__", no_espeak)
    monkeypatch.setattr(sp, "_ENGINE", None)
    with pytest.raises(RuntimeError, match="pip install espeakng-loader"):
        sp.synthesise("yes")


def test_benchmark_rows_pair_each_method_with_its_baseline(monkeypatch):
    import pathlib
    import sys
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks"))
    from experiments.speech import EXPERIMENTS, NOTEBOOK, PUBLISHED

    monkeypatch.setattr(sp, "KEYWORDS", ("yes", "no", "stop"))
    monkeypatch.setattr(sp, "TRAIN_VOICES", ("en", "en+f3"))
    monkeypatch.setattr(sp, "TEST_VOICES", ("en-us+m3",))
    rows = EXPERIMENTS["speech"](seeds=[0, 1], sizes=dict(variants=2, label_budgets=(1,), head_steps=5, cnn_steps=3))
    assert NOTEBOOK == "10" and "speech" in PUBLISHED
    assert [r["method"] for r in rows] == ["prototypes on frozen speech embedding",
                                           "linear head on frozen speech embedding", "prototypes, masked pooling"]
    for r in rows:
        assert len(r["gains"]) == 2 and all(0 <= a <= 1 for a in r["method_acc"] + r["baseline_acc"])


def _pretend_jiwer(monkeypatch):
    """jiwer importable (an empty stand-in) whether or not the [speech-asr] extra is installed here."""
    import sys
    import types
    try:
        import jiwer  # noqa: F401
    except ImportError:
        monkeypatch.setitem(sys.modules, "jiwer", types.ModuleType("jiwer"))


def test_zero_shot_section_without_jiwer_names_the_extra(monkeypatch, capsys):
    import builtins
    import sys
    real = builtins.__import__

    def no_jiwer(name, *a, **k):
        if name == "jiwer":
            raise ImportError(name, name="jiwer")
        return real(name, *a, **k)
    monkeypatch.delitem(sys.modules, "jiwer", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_jiwer)
    assert sp.zero_shot_recognition(1) is None
    out = capsys.readouterr().out
    assert "jiwer is not installed" in out and "speech-asr" in out


def test_zero_shot_section_says_what_is_missing_and_carries_on(tmp_path, monkeypatch, capsys):
    """Without Debian's pocketsphinx-testdata (a fresh machine's view via TLCOURSE_SYSTEM_ROOT) the optional
    section prints the fix and returns None instead of raising, so the notebook runs on."""
    monkeypatch.setenv("TLCOURSE_SYSTEM_ROOT", str(tmp_path))
    _pretend_jiwer(monkeypatch)  # the [speech-asr] extra may be absent too: that is checked first otherwise
    assert sp.zero_shot_recognition(1) is None
    out = capsys.readouterr().out
    assert "skipped (optional)" in out and "apt-get install pocketsphinx-testdata" in out


def test_zero_shot_section_without_whisper_package(monkeypatch, capsys):
    import builtins
    real = builtins.__import__

    def no_whisper(name, *a, **k):
        if name == "faster_whisper":
            raise ImportError(name, name="faster_whisper")
        return real(name, *a, **k)
    monkeypatch.setattr(builtins, "__import__", no_whisper)
    _pretend_jiwer(monkeypatch)
    if not _librivox_here():
        pytest.skip("pocketsphinx-testdata not installed: the clips are missing first")
    assert sp.zero_shot_recognition(1) is None
    out = capsys.readouterr().out
    assert "faster_whisper is not installed" in out and "speech-asr" in out


def _librivox_here() -> bool:
    try:
        sp.librivox_clips(1)
        return True
    except sp.OptionalMissing:
        return False


def test_transcripts_are_normalised_before_scoring():
    assert sp.normalise_transcript("And Mr. John Dashwood, ill-disposed!") == "and mister john dashwood ill disposed"
    assert sp.normalise_transcript("and mr john") == "and mister john"


def test_zero_shot_recognition_runs_when_installed():
    pytest.importorskip("faster_whisper")
    pytest.importorskip("pocketsphinx")
    pytest.importorskip("jiwer")
    if not _librivox_here():
        pytest.skip("pocketsphinx-testdata not installed")
    r = sp.zero_shot_recognition(1)
    assert r is not None and len(r["references"]) == 1
    assert r["Whisper tiny.en (zero-shot)"]["wer"] < 0.2  # near-perfect on a clean audiobook sentence
    assert 0 <= r["pocketsphinx en-us (classical)"]["wer"] <= 2


def test_training_uses_the_device_pick_device_chooses(monkeypatch):
    """As in test_train_device.py: TLCOURSE_DEVICE names a recognisable CPU device and every move there is counted."""
    chosen = torch.device("cpu", 7)
    monkeypatch.setenv("TLCOURSE_DEVICE", "cpu:7")
    moves = {"modules": 0, "tensors": 0}
    module_to, tensor_to = torch.nn.Module.to, torch.Tensor.to

    def is_chosen(where):
        try:
            return isinstance(where, (str, torch.device)) and torch.device(where) == chosen
        except RuntimeError:
            return False

    def count_module(self, *args, **kw):
        moves["modules"] += any(map(is_chosen, (*args, kw.get("device"))))
        return module_to(self, *args, **kw)

    def count_tensor(self, *args, **kw):
        moves["tensors"] += any(map(is_chosen, (*args, kw.get("device"))))
        return tensor_to(self, *args, **kw)
    monkeypatch.setattr(torch.nn.Module, "to", count_module)
    monkeypatch.setattr(torch.Tensor, "to", count_tensor)
    y = torch.arange(3).repeat(4)
    sp.train_classifier(sp.small_cnn(8, 3, width=2), torch.randn(12, 1, 8, 16), y, steps=2, seed=0)
    assert moves["modules"] >= 1 and moves["tensors"] >= 1, moves
