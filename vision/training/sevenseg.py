"""Train the seven-segment line reader on rendered strips and export it to ONNX.

Training only (imports torch); reading needs only the ONNX file it writes. Every rendered example
is drawn from the seed. With `real` (the sevenseg-digits folder) the training set also holds real
photographed digits: the train part of its fixed split (`digit_crops.real_crops`), each crop as its
own strip and lines of 2-6 crops side by side (half of them with a decimal point drawn after a
digit), lightly augmented. The committed reader is `--real ... --real-share 0.1 --samples 60000 --epochs 10
--seed 1 --threads 1`, its second opinion `--samples 60000 --epochs 10 --seed 0 --threads 1` (rendered strips only),
both trained with these commands on a CPU (their metadata says so). A CPU run repeats bit for bit on the same CPU and
torch build; CUDA's CTC loss is not deterministic, so a GPU run only comes close.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import torch
from rich.console import Console
from torch import nn

from annotation.errors import LineInspectError
from vision.ocr.digit_crops import padded_strip, real_crops
from vision.ocr.metrics import char_error_rate
from vision.ocr.render_display import render_training_strip
from vision.ocr.sevenseg_model import CHARSET, DOWNSAMPLE, INPUT_HEIGHT, METADATA_KEY, ctc_decode, strip_input
from vision.progress import progress_bar

OPSET = 18
PARITY_TOLERANCE = 1e-3
REAL_SHARE = 0.25  # of all training examples, with `real` (unless asked otherwise): real crops alone and in lines
POINT_SHARE = 0.5  # of real lines of several crops: a decimal point drawn after one digit


class LineReader(nn.Module):
    """Convolutions that fold the height away, then 1-D context along the line; ~130k weights."""

    def __init__(self, classes: int = len(CHARSET) + 1) -> None:
        super().__init__()

        def block(cin: int, cout: int, kernel: tuple[int, int], padding: tuple[int, int]) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, kernel, padding=padding, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

        self.body = nn.Sequential(
            *block(1, 24, (3, 3), (1, 1)),
            nn.MaxPool2d(2),  # 20 x W/2
            *block(24, 40, (3, 3), (1, 1)),
            nn.MaxPool2d(2),  # 10 x W/4
            *block(40, 56, (3, 3), (1, 1)),
            *block(56, 56, (3, 3), (1, 1)),
            nn.MaxPool2d((2, 1)),  # 5 x W/4
            *block(56, 80, (INPUT_HEIGHT // 8, 1), (0, 0)),  # 1 x W/4
            *block(80, 80, (1, 5), (0, 2)),
            *block(80, 80, (1, 5), (0, 2)),
            nn.Conv2d(80, classes, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[N, 1, H, W] -> logits [N, W/4, classes]."""
        return self.body(x).squeeze(2).transpose(1, 2)


@dataclass(frozen=True)
class TrainResult:
    out: Path
    val_exact: float
    val_char_error: float
    seconds: float


def make_examples(n: int, seed: int) -> list[tuple[np.ndarray, str]]:
    rng = np.random.default_rng(seed)
    examples = []
    for _ in range(n):
        strip, text, bright = render_training_strip(rng)
        examples.append((strip_input(strip, dark_segments=not bright)[0], text))
    return examples


def _augment_crop(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One real crop scaled, shifted, squeezed a little and with its brightness and contrast changed."""
    h, w = image.shape[:2]
    scale = rng.uniform(0.88, 1.12)
    sx = scale * rng.uniform(0.9, 1.1)
    dx, dy = rng.uniform(-0.06, 0.06) * w, rng.uniform(-0.06, 0.06) * h
    matrix = np.float32([[sx, 0, (1 - sx) * w / 2 + dx], [0, scale, (1 - scale) * h / 2 + dy]])
    out = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    out = out.astype(np.float32)
    mean = out.mean()
    out = (out - mean) * rng.uniform(0.7, 1.3) + mean + rng.uniform(-30, 30)
    return np.clip(out, 0, 255).astype(np.uint8)


def _with_point(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A crop with a decimal point after it: a gap of its glass with a dot of its darkest ink on the baseline
    (the crops hold none, and a model trained with them missed the points of real displays)."""
    h = image.shape[0]
    glass = np.median(np.concatenate([image[:, -3:], image[:, :3]]).reshape(-1, 3), axis=0)
    ink = np.percentile(image.reshape(-1, 3), 3, axis=0)
    gap = np.empty((h, round(h * rng.uniform(0.14, 0.22)), 3), np.uint8)
    gap[:] = glass.astype(np.uint8)
    centre = (gap.shape[1] // 2, round(h * rng.uniform(0.8, 0.88)))
    cv2.circle(gap, centre, max(2, round(h * rng.uniform(0.045, 0.065))), ink.tolist(), -1, cv2.LINE_AA)
    return np.hstack([image, gap])


def _real_example(crops: list[tuple[np.ndarray, str]], rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Crops side by side (one or more; a line of several has a decimal point after one of its digits half
    of the time), padded like a display window, slightly blurred, as model input."""
    pieces, text = [_augment_crop(image, rng) for image, _ in crops], [label for _, label in crops]
    digits = [i for i, label in enumerate(text[:-1]) if label]
    if digits and rng.random() < POINT_SHARE:
        at = int(rng.choice(digits))
        pieces[at], text[at] = _with_point(pieces[at], rng), text[at] + "."
    line = np.hstack(pieces)
    if rng.random() < 0.5:
        line = cv2.GaussianBlur(line, (0, 0), float(rng.uniform(0.3, 1.5)))
    return strip_input(padded_strip(line), dark_segments=True)[0], "".join(text)


def make_real_examples(root: Path, n: int, seed: int) -> list[tuple[np.ndarray, str]]:
    """`n` examples from the train part of the real crops: each crop once on its own (n of them
    drawn at random when n is fewer), the rest lines of 2-6 random crops (an empty position adds
    no character)."""
    crops = [(cv2.imread(str(path)), label) for path, label in real_crops(root, "train")]
    rng = np.random.default_rng(seed)
    alone = crops if n >= len(crops) else [crops[i] for i in sorted(rng.choice(len(crops), n, replace=False))]
    examples = [_real_example([crop], rng) for crop in alone]
    while len(examples) < n:
        picked = rng.integers(0, len(crops), int(rng.integers(2, 7)))
        examples.append(_real_example([crops[i] for i in picked], rng))
    return examples


def load_onnx_weights(model: LineReader, path: Path) -> None:
    """Start from an exported model: its convolutions carry the batch norms folded in, so each
    norm becomes the identity with the folded bias (keep the norms in eval mode when training on)."""
    import onnx
    from onnx import numpy_helper

    weights = {
        i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in onnx.load(str(path)).graph.initializer
    }
    layers = list(model.body)
    with torch.no_grad():
        for i, layer in enumerate(layers):
            if not isinstance(layer, nn.Conv2d):
                continue
            layer.weight.copy_(weights[f"body.{i}.weight"])
            if layer.bias is not None:
                layer.bias.copy_(weights[f"body.{i}.bias"])
                continue
            norm = layers[i + 1]
            norm.running_mean.zero_()
            norm.running_var.fill_(1 - norm.eps)
            norm.weight.fill_(1)
            norm.bias.copy_(weights[f"body.{i}.weight_bias"])


def _batch(examples: list[tuple[np.ndarray, str]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    width = max(x.shape[1] for x, _ in examples)
    width += -width % DOWNSAMPLE
    x = np.zeros((len(examples), 1, INPUT_HEIGHT, width), np.float32)
    for i, (img, _) in enumerate(examples):
        x[i, 0, :, : img.shape[1]] = img
    targets = torch.tensor([CHARSET.index(c) + 1 for _, t in examples for c in t], dtype=torch.long)
    target_lengths = torch.tensor([len(t) for _, t in examples], dtype=torch.long)
    input_lengths = torch.tensor([img.shape[1] // DOWNSAMPLE for img, _ in examples], dtype=torch.long)
    return torch.from_numpy(x), targets, input_lengths, target_lengths


def _evaluate(model: LineReader, examples: list[tuple[np.ndarray, str]]) -> tuple[float, float]:
    """Exact-match rate and character error rate on rendered strips."""
    model.eval()
    device = next(model.parameters()).device
    pairs = []
    with torch.no_grad():
        for x, text in examples:
            logits = model(torch.from_numpy(x)[None, None].to(device))[0]
            probabilities = torch.softmax(logits, 1).cpu().numpy()
            pairs.append(("".join(c.char for c in ctc_decode(probabilities, x.shape[1])), text))
    return sum(a == b for a, b in pairs) / len(pairs), char_error_rate(pairs)


def train_digits(
    out: Path,
    samples: int = 30_000,
    epochs: int = 6,
    seed: int = 0,
    batch_size: int = 64,
    console: Console | None = None,
    real: Path | None = None,
    min_samples: int = 1000,
    init: Path | None = None,
    lr: float = 3e-3,
    real_share: float = REAL_SHARE,
) -> TrainResult:
    """Render `samples` strips, train the line reader (on a GPU when there is one), export it
    with its metadata. Only a CPU run rebuilds the committed model bit for bit.

    `real` (the sevenseg-digits folder) adds real examples from its train part, `real_share` of the
    whole set; without it the run is the rendered-only one, unchanged. `init` (an exported model)
    trains on from its weights, batch norms frozen, instead of from scratch."""
    console = console or Console(stderr=True)
    if samples < min_samples or epochs < 1:
        raise LineInspectError(f"train-digits needs at least {min_samples} samples and 1 epoch")
    if not 0 < real_share < 1:
        raise LineInspectError(f"the real share must be between 0 and 1 (exclusive), not {real_share}")
    start = time.perf_counter()
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    with progress_bar(console, "strips") as bar:
        task = bar.add_task("rendering strips", total=samples)
        rng_seed = np.random.SeedSequence(seed).generate_state(2)
        examples = []
        for chunk in range(0, samples, 1000):
            examples += make_examples(min(1000, samples - chunk), int(rng_seed[0]) + chunk)
            bar.update(task, completed=len(examples))
    real_count = 0
    if real is not None:
        real_count = round(samples * real_share / (1 - real_share))
        examples += make_real_examples(real, real_count, int(np.random.SeedSequence([seed, 1]).generate_state(1)[0]))
        console.print(f"{real_count} real examples from the train part of {real}")
    val = make_examples(max(min(500, min_samples), samples // 40), int(rng_seed[1]))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = LineReader()
    if init is not None:
        load_onnx_weights(model, init)
    model = model.to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * math.ceil(len(examples) / batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=steps, pct_start=0.15)
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    order_rng = np.random.default_rng(seed)
    # batches of similar width waste less padding
    by_width = np.argsort([x.shape[1] for x, _ in examples], kind="stable")
    groups = [by_width[i : i + batch_size] for i in range(0, len(by_width), batch_size)]
    for epoch in range(epochs):
        model.train()
        if init is not None:  # the folded norms have no batch statistics to go on from
            for layer in model.modules():
                if isinstance(layer, nn.BatchNorm2d):
                    layer.eval()
        total = 0.0
        with progress_bar(console, "batches") as bar:
            task = bar.add_task(f"epoch {epoch + 1}/{epochs}", total=len(groups))
            for g in order_rng.permutation(len(groups)):
                x, targets, input_lengths, target_lengths = _batch([examples[i] for i in groups[g]])
                log_probs = model(x.to(device)).log_softmax(2).transpose(0, 1)  # T, N, C
                loss = ctc(log_probs, targets.to(device), input_lengths, target_lengths)
                optimiser.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                optimiser.step()
                schedule.step()
                total += loss.item()
                bar.advance(task)
        exact, cer = _evaluate(model, val)
        console.print(
            f"epoch {epoch + 1}/{epochs}: loss {total / len(groups):.4f}, rendered val exact {exact:.2%}, CER {cer:.2%}"
        )
    model.eval().cpu()
    meta = {
        "kind": "sevenseg-ctc",
        "charset": CHARSET,
        "input_height": INPUT_HEIGHT,
        "downsample": DOWNSAMPLE,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "training": {
            "seed": seed,
            "samples": samples,
            "epochs": epochs,
            "device": device.type,
            "data": "rendered strips only"
            if real is None
            else f"rendered strips + real crops (odd-indexed files of {Path(real).resolve().name})",
            **({"real_examples": real_count, "real_share": real_share} if real is not None else {}),
            **({"init": f"{Path(init).name} ({_model_meta(init).get('training')})", "lr": lr} if init else {}),
        },
        "val_rendered": {"exact": exact, "char_error_rate": cer, "strips": len(val)},
    }
    _export(model, out, meta, val[:64])
    seconds = time.perf_counter() - start
    console.print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KB) in {seconds / 60:.1f} min")
    return TrainResult(out, exact, cer, seconds)


def _model_meta(path: Path) -> dict:
    import onnx

    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    return json.loads(props.get(METADATA_KEY, "{}"))


def _export(model: LineReader, out: Path, meta: dict, check: list[tuple[np.ndarray, str]]) -> None:
    """ONNX with a dynamic width, metadata attached, and refused if it disagrees with PyTorch."""
    import onnx
    import onnxruntime as ort

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.onnx")
    try:
        example = torch.zeros(1, 1, INPUT_HEIGHT, 160)
        width = torch.export.Dim("width4", min=4, max=1024)
        torch.onnx.export(
            model,
            (example,),
            str(tmp),
            input_names=["strip"],
            output_names=["logits"],
            dynamic_shapes=({3: DOWNSAMPLE * width},),
            opset_version=OPSET,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
        proto = onnx.load(str(tmp))
        entry = proto.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, json.dumps(meta)
        proto.doc_string = "lineinspect seven-segment line reader (CTC)"
        onnx.save(proto, str(tmp))
        session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        worst = 0.0
        with torch.no_grad():
            for x, _ in check:
                x = x[:, : x.shape[1] - x.shape[1] % DOWNSAMPLE]
                expected = model(torch.from_numpy(x)[None, None]).numpy()
                got = session.run(None, {"strip": x[None, None]})[0]
                worst = max(worst, float(np.abs(expected - got).max()))
        if worst > PARITY_TOLERANCE:
            raise LineInspectError(
                f"ONNX export differs from PyTorch by {worst:.2e} (> {PARITY_TOLERANCE}); not written"
            )
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
