"""Two demo models trained on synthetic images, mirroring the source document's prototype AIs.

Demo models, synthetic data, not for clinical use: they show the portal's model registry and
inference path working end to end, nothing more.

- "endoscopy-organ": which organ an endoscopy view shows (esophagus 食道 / stomach 胃 /
  duodenum 十二指腸), from synthetic views: pale pink oesophagus with longitudinal folds around a
  dark lumen, red stomach with thick tortuous rugae, yellowish duodenum with villi and circular
  folds; random white balance, lighting, lumen position, vignette and specular highlights.
- "pathology-tile": normal 正常 / abnormal 異常 H&E-like tiles: pink stroma with fibres, purple
  nuclei, regular small round ones around glands (normal) or crowded, large, irregular, dark ones
  whose severity varies so that mild cases overlap with dense normal tissue (abnormal).

``train_demo_model(spec, seed=...)`` generates a training and a held-out set, preprocesses every
image through ``portal.ai.preprocess`` (the portal's own inference-time preprocessing, so that the
model sees at run time what it saw in training), trains a small MLP on regional colour means and mean squares with
numpy only (full-batch Adam, weight decay, fixed iterations: deterministic for a seed), exports it
with ``onnx.helper`` (input "image" [N, 3, H, W] float32, dynamic N → regional means of x and x² by
AveragePool → Concat → Flatten → Gemm → Relu → Gemm → Softmax → "probabilities" [N, K]), checks it with ``onnx.checker`` and measures the
held-out metrics by running the exported file in ONNX Runtime.
"""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from portal.ai.preprocess import InputSpec, image_to_tensor

OPSET = 17
IR_VERSION = 8
DEMO_TEXT_JA = "デモ用モデル（合成データ、臨床使用不可）。"
DEMO_TEXT_EN = "Demo model, synthetic data, not for clinical use."


@dataclass(frozen=True)
class DemoSpec:
    kind: str
    slug: str
    name_ja: str
    name_en: str
    summary_ja: str
    summary_en: str
    society_slug: str
    modality: str
    labels: tuple[dict[str, str], ...]
    width: int = 64
    height: int = 64
    channels: int = 3
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.25, 0.25, 0.25)
    # The model's features: the mean and the mean square of each channel over pooled × pooled
    # regions (colour and texture energy per region), fed to a small MLP.
    pooled: int = 2
    hidden: int = 32
    training_set_size: int = 600
    evaluation_set_size: int = 300
    intended_use_ja: str = ""
    intended_use_en: str = ""
    limitations_ja: str = ""
    limitations_en: str = ""
    training_data_ja: str = ""
    training_data_en: str = ""

    @property
    def input_spec(self) -> InputSpec:
        return InputSpec(self.width, self.height, self.channels, self.mean, self.std)

    @property
    def label_codes(self) -> list[str]:
        return [label["code"] for label in self.labels]


@dataclass
class TrainedModel:
    slug: str
    name_ja: str
    name_en: str
    summary_ja: str
    summary_en: str
    society_slug: str
    modality: str
    onnx: bytes
    labels: list[dict[str, str]]
    input_width: int
    input_height: int
    input_channels: int
    input_mean: list[float]
    input_std: list[float]
    input_name: str
    output_name: str
    opset: int
    metrics: dict[str, float]
    evaluation_set_size: int
    training_set_size: int
    intended_use_ja: str
    intended_use_en: str
    limitations_ja: str
    limitations_en: str
    training_data_ja: str
    training_data_en: str
    kind: str = ""
    seed: int = 0
    sha256: str = field(default="")


DEMO_SPECS: dict[str, DemoSpec] = {
    "endoscopy-organ": DemoSpec(
        kind="endoscopy-organ",
        slug="demo-endoscopy-organ",
        name_ja="内視鏡 臓器分類（デモ）",
        name_en="Endoscopy organ classifier (demo)",
        summary_ja="内視鏡画像が食道・胃・十二指腸のどれを写しているかを分類するデモ用モデル。合成画像で学習したもので、臨床使用はできません。",
        summary_en="Demo model that classifies which organ an endoscopy image shows: esophagus, stomach or duodenum. Trained on synthetic images; not for clinical use.",
        society_slug="jges",
        modality="endoscopy",
        labels=(
            {"code": "esophagus", "ja": "食道", "en": "Esophagus"},
            {"code": "stomach", "ja": "胃", "en": "Stomach"},
            {"code": "duodenum", "ja": "十二指腸", "en": "Duodenum"},
        ),
        mean=(0.62, 0.42, 0.36),
        std=(0.22, 0.18, 0.17),
        intended_use_ja=DEMO_TEXT_JA + "ポータルのモデル登録・推論の流れを試すためのもの。上部消化管内視鏡の静止画（RGB）を入力とし、写っている臓器を推定します。",
        intended_use_en=DEMO_TEXT_EN + " For trying out the portal's model registry and inference. Input: an upper GI endoscopy still image (RGB); output: the organ shown.",
        limitations_ja=DEMO_TEXT_JA + "実際の内視鏡画像では評価していません。合成画像の色調と模様だけを学習しています。診断・治療の判断に用いてはなりません。",
        limitations_en=DEMO_TEXT_EN + " Never evaluated on real endoscopy images; it has learnt only the colours and textures of synthetic pictures. Must not be used for diagnosis or treatment decisions.",
        training_data_ja=DEMO_TEXT_JA + "ポータルが生成した合成内視鏡画像（食道・胃・十二指腸を模したもの）。学習用600枚、評価用300枚（学習に用いていない合成画像）。",
        training_data_en=DEMO_TEXT_EN + " Synthetic endoscopy views generated by the portal (imitating esophagus, stomach and duodenum): 600 for training, 300 held out for evaluation.",
    ),
    "pathology-tile": DemoSpec(
        kind="pathology-tile",
        slug="demo-pathology-tile",
        name_ja="病理タイル 正常／異常分類（デモ）",
        name_en="Pathology tile normal/abnormal classifier (demo)",
        summary_ja="HE染色風の病理画像タイルを正常／異常に分類するデモ用モデル。合成画像で学習したもので、臨床使用はできません。",
        summary_en="Demo model that classifies H&E-like pathology tiles as normal or abnormal. Trained on synthetic images; not for clinical use.",
        society_slug="jsp",
        modality="pathology_wsi",
        labels=(
            {"code": "normal", "ja": "正常", "en": "Normal"},
            {"code": "abnormal", "ja": "異常", "en": "Abnormal"},
        ),
        mean=(0.80, 0.56, 0.72),
        std=(0.15, 0.20, 0.14),
        intended_use_ja=DEMO_TEXT_JA + "ポータルのモデル登録・推論の流れを試すためのもの。HE染色の病理画像タイル（RGB）を入力とし、正常／異常を推定します。",
        intended_use_en=DEMO_TEXT_EN + " For trying out the portal's model registry and inference. Input: an H&E-stained pathology tile (RGB); output: normal or abnormal.",
        limitations_ja=DEMO_TEXT_JA + "実際の病理画像では評価していません。合成画像の核の密度・大きさ・色だけを学習しています。診断・治療の判断に用いてはなりません。",
        limitations_en=DEMO_TEXT_EN + " Never evaluated on real pathology images; it has learnt only the density, size and colour of synthetic nuclei. Must not be used for diagnosis or treatment decisions.",
        training_data_ja=DEMO_TEXT_JA + "ポータルが生成した合成病理タイル（正常・異常を模したもの）。学習用600枚、評価用300枚（学習に用いていない合成画像）。",
        training_data_en=DEMO_TEXT_EN + " Synthetic H&E-like tiles generated by the portal (imitating normal and abnormal tissue): 600 for training, 300 held out for evaluation.",
    ),
}


# ---------------------------------------------------------------------------------------------
# Synthetic images


def synthetic_image(kind: str, label: str, rng: np.random.Generator) -> np.ndarray:
    """A synthetic RGB image (uint8, (H, W, 3), 96–128 pixels a side) of ``label`` for ``kind``."""
    spec = DEMO_SPECS[kind]
    if label not in spec.label_codes:
        raise ValueError(f"{kind} has no label {label!r}")
    height, width = (int(v) for v in rng.integers(96, 129, size=2))
    if kind == "endoscopy-organ":
        return _endoscopy(label, rng, width, height)
    return _pathology(label, rng, width, height)


def synthetic_png(kind: str, label: str, seed: int) -> bytes:
    """``synthetic_image`` for ``seed`` as PNG bytes."""
    pixels = synthetic_image(kind, label, np.random.default_rng(seed))
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


_ORGAN_COLOURS = {
    "esophagus": (226.0, 168.0, 160.0),
    "stomach": (200.0, 92.0, 78.0),
    "duodenum": (214.0, 170.0, 118.0),
}


def _endoscopy(label: str, rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    x = (xs - width / 2) / np.float32(min(width, height) / 2)
    y = (ys - height / 2) / np.float32(min(width, height) / 2)
    cx, cy = (np.float32(v) for v in rng.uniform(-0.45, 0.45, size=2))
    dx, dy = x - cx, y - cy
    r = np.sqrt(dx * dx + dy * dy) + 1e-6
    theta = np.arctan2(dy, dx)

    # Mucosa colour: the organ's hue with white balance and lighting that overlap between organs.
    base = (np.array(_ORGAN_COLOURS[label]) + rng.normal(0, 10, size=3)).astype(np.float32)
    base *= rng.uniform(0.78, 1.12)
    warp = 0.6 * np.sin(3 * x + rng.uniform(0, 6.3)) * np.cos(2 * y + rng.uniform(0, 6.3))
    if label == "esophagus":
        folds = rng.integers(6, 11)
        texture = 0.10 * np.cos(folds * theta + rng.uniform(0, 6.3) + 0.5 * warp)
    elif label == "stomach":
        angle = rng.uniform(0, math.pi)
        along = x * math.cos(angle) + y * math.sin(angle)
        across = -x * math.sin(angle) + y * math.cos(angle)
        texture = 0.16 * np.sin(rng.uniform(5, 8) * along + 2.2 * np.sin(rng.uniform(2, 4) * across) + warp)
    else:
        texture = 0.09 * np.cos(rng.uniform(9, 14) * r + warp)  # circular folds (Kerckring)
        villi = rng.normal(0, 1, size=(height // 3 + 1, width // 3 + 1)).astype(np.float32)
        villi = np.kron(villi, np.ones((3, 3), dtype=np.float32))[:height, :width]
        texture = texture + 0.05 * villi
    shade = 1.0 + texture
    lumen = 1.0 - 0.85 * np.exp(-((r / rng.uniform(0.12, 0.3)) ** 2))
    vignette = 1.0 - rng.uniform(0.35, 0.6) * np.clip(x * x + y * y, 0, 2) / 2
    image = base[None, None, :] * (shade * lumen * vignette)[:, :, None]

    # Specular highlights, as an endoscope's light source leaves on wet mucosa.
    for _ in range(int(rng.integers(1, 5))):
        hx, hy = rng.uniform(-0.9, 0.9, size=2)
        size = rng.uniform(0.03, 0.09)
        spot = np.exp(-(((x - hx) ** 2 + (y - hy) ** 2) / (size * size)))
        image += (230.0 * spot)[:, :, None]
    image += 5.0 * rng.standard_normal(size=image.shape, dtype=np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


def _pathology(label: str, rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    stain = rng.uniform(0.85, 1.12, size=3)  # staining and scanner variation
    stroma = np.array([236.0, 172.0, 204.0]) * stain + rng.normal(0, 6, size=3)
    canvas = Image.new("RGB", (width, height), tuple(int(v) for v in np.clip(stroma, 0, 255)))
    draw = ImageDraw.Draw(canvas)
    # Fibres: thin, slightly darker pink strokes.
    fibre = tuple(int(v) for v in np.clip(stroma * 0.86, 0, 255))
    for _ in range(int(rng.integers(10, 20))):
        x0, y0 = rng.uniform(0, width), rng.uniform(0, height)
        angle, length = rng.uniform(0, math.pi), rng.uniform(15, 50)
        draw.line([(x0, y0), (x0 + length * math.cos(angle), y0 + length * math.sin(angle))], fill=fibre, width=1)
    # Glandular lumina: white spaces lined by nuclei in normal tissue.
    glands = []
    for _ in range(int(rng.integers(1, 4))):
        gx, gy, gr = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(7, 14)
        glands.append((gx, gy, gr))
        draw.ellipse([gx - gr, gy - gr, gx + gr, gy + gr], fill=(246, 240, 244))

    area = width * height
    if label == "normal":
        severity = 0.0
        density = rng.uniform(0.0035, 0.0075)
    else:
        severity = float(rng.uniform(0.2, 1.0))
        density = rng.uniform(0.0045, 0.0085) * (1 + 0.9 * severity)
    count = int(area * density)
    darkness = 1.0 - 0.28 * severity * rng.uniform(0.6, 1.2)
    nucleus = np.array([118.0, 70.0, 160.0]) * stain * darkness
    centres = [rng.uniform(0, (width, height), size=(count, 2))]
    if label == "normal":
        for gx, gy, gr in glands:  # nuclei lining the glands, evenly spaced
            angles = np.linspace(0, 2 * math.pi, int(2 * math.pi * gr / 5), endpoint=False)
            centres.append(np.stack([gx + (gr + 2.5) * np.cos(angles), gy + (gr + 2.5) * np.sin(angles)], axis=1))
    xy = np.concatenate(centres)
    n = len(xy)
    radii = np.maximum(1.2, rng.normal(2.0 + 2.0 * severity, 0.25 + 0.8 * severity, size=n))
    colours = np.clip(nucleus + rng.normal(0, 8, size=(n, 3)), 0, 255).astype(int).tolist()
    # Outlines: round for normal nuclei; for abnormal ones a polygon whose radius wobbles with the
    # severity (irregular, pleomorphic nuclei).
    angles = rng.uniform(0, 2 * math.pi, size=(n, 1)) + np.linspace(0, 2 * math.pi, 8, endpoint=False)
    wobble = radii[:, None] * (1 + severity * rng.uniform(-0.35, 0.35, size=(n, 8)))
    points = np.stack([xy[:, :1] + 1.25 * wobble * np.cos(angles), xy[:, 1:] + 0.85 * wobble * np.sin(angles)], axis=2)
    for i in range(n):
        if severity == 0.0:
            (cx, cy), r = xy[i], radii[i]
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=tuple(colours[i]))
        else:
            draw.polygon(points[i].ravel().tolist(), fill=tuple(colours[i]))
    canvas = canvas.filter(ImageFilter.GaussianBlur(0.7))
    image = np.asarray(canvas, dtype=np.float32) + 4.0 * rng.standard_normal(size=(height, width, 3), dtype=np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# Training


def _dataset(spec: DemoSpec, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    labels = spec.label_codes
    targets = np.arange(size) % len(labels)
    rng.shuffle(targets)
    input_spec = spec.input_spec
    tensors = np.empty((size, spec.channels, spec.height, spec.width), dtype=np.float32)
    for i, target in enumerate(targets):
        pixels = synthetic_image(spec.kind, labels[target], rng)
        tensors[i] = image_to_tensor(Image.fromarray(pixels), input_spec)
    return tensors, targets


def _pool(tensors: np.ndarray, pooled: int) -> np.ndarray:
    n, c, h, w = tensors.shape
    kh, kw = h // pooled, w // pooled
    blocks = tensors[:, :, : pooled * kh, : pooled * kw].reshape(n, c, pooled, kh, pooled, kw)
    return blocks.mean(axis=(3, 5)).reshape(n, -1)


def _features(tensors: np.ndarray, pooled: int) -> np.ndarray:
    return np.concatenate([_pool(tensors, pooled), _pool(tensors * tensors, pooled)], axis=1)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def _train_mlp(features: np.ndarray, targets: np.ndarray, classes: int, hidden: int,
               rng: np.random.Generator) -> dict[str, np.ndarray]:
    n, d = features.shape
    params = {
        "w1": (rng.normal(0, 1, size=(d, hidden)) * math.sqrt(2.0 / d)),
        "b1": np.zeros(hidden),
        "w2": (rng.normal(0, 1, size=(hidden, classes)) * math.sqrt(1.0 / hidden)),
        "b2": np.zeros(classes),
    }
    x = features.astype(np.float64)
    onehot = np.eye(classes)[targets]
    moments = {k: (np.zeros_like(v), np.zeros_like(v)) for k, v in params.items()}
    lr, beta1, beta2, decay = 0.01, 0.9, 0.999, 1e-3
    for step in range(1, 401):
        hidden_pre = x @ params["w1"] + params["b1"]
        hidden_act = np.maximum(hidden_pre, 0)
        probs = _softmax(hidden_act @ params["w2"] + params["b2"])
        grad_logits = (probs - onehot) / n
        grads = {
            "w2": hidden_act.T @ grad_logits + decay * params["w2"],
            "b2": grad_logits.sum(axis=0),
        }
        grad_hidden = (grad_logits @ params["w2"].T) * (hidden_pre > 0)
        grads["w1"] = x.T @ grad_hidden + decay * params["w1"]
        grads["b1"] = grad_hidden.sum(axis=0)
        for key, grad in grads.items():
            m, v = moments[key]
            m[:] = beta1 * m + (1 - beta1) * grad
            v[:] = beta2 * v + (1 - beta2) * grad * grad
            m_hat = m / (1 - beta1**step)
            v_hat = v / (1 - beta2**step)
            params[key] = params[key] - lr * m_hat / (np.sqrt(v_hat) + 1e-8)
    return {k: v.astype(np.float32) for k, v in params.items()}


def _export(spec: DemoSpec, params: dict[str, np.ndarray]) -> bytes:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    kh, kw = spec.height // spec.pooled, spec.width // spec.pooled
    nodes = [
        helper.make_node("AveragePool", ["image"], ["mean"], kernel_shape=[kh, kw], strides=[kh, kw]),
        helper.make_node("Mul", ["image", "image"], ["square"]),
        helper.make_node("AveragePool", ["square"], ["mean_square"], kernel_shape=[kh, kw], strides=[kh, kw]),
        helper.make_node("Concat", ["mean", "mean_square"], ["pooled"], axis=1),
        helper.make_node("Flatten", ["pooled"], ["features"], axis=1),
        helper.make_node("Gemm", ["features", "w1", "b1"], ["hidden_pre"]),
        helper.make_node("Relu", ["hidden_pre"], ["hidden"]),
        helper.make_node("Gemm", ["hidden", "w2", "b2"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    initialisers = [numpy_helper.from_array(params[k], name=k) for k in ("w1", "b1", "w2", "b2")]
    graph = helper.make_graph(
        nodes, spec.slug.replace("-", "_"),
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", spec.channels, spec.height, spec.width])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", len(spec.labels)])],
        initialisers,
    )
    model = helper.make_model(
        graph, producer_name="portal.ai.demo_models", producer_version="1",
        opset_imports=[helper.make_opsetid("", OPSET)],
    )
    model.ir_version = IR_VERSION
    model.doc_string = DEMO_TEXT_EN
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def _roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve (Mann–Whitney U, ties counted half)."""
    pos, neg = scores[positive], scores[~positive]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(len(order))
    values = np.concatenate([pos, neg])[order]
    i = 0
    while i < len(values):  # average ranks over ties
        j = i
        while j + 1 < len(values) and values[j + 1] == values[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    u = ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2
    return float(u / (len(pos) * len(neg)))


def classification_metrics(probabilities: np.ndarray, targets: np.ndarray, *, positive: int | None) -> dict[str, float]:
    """Accuracy, AUC, sensitivity and specificity of ``probabilities`` (N, K) against ``targets``.

    Binary (``positive`` = index of the positive class, "abnormal"): AUC of that class, sensitivity
    and specificity with it as positive. Multi-class (``positive`` None): macro averages over the
    classes one-vs-rest of AUC, sensitivity (recall) and specificity.
    """
    predicted = probabilities.argmax(axis=1)
    accuracy = float((predicted == targets).mean())
    classes = [positive] if positive is not None else list(range(probabilities.shape[1]))
    aucs, sensitivities, specificities = [], [], []
    for k in classes:
        is_k = targets == k
        aucs.append(_roc_auc(probabilities[:, k], is_k))
        sensitivities.append(float((predicted[is_k] == k).mean()))
        specificities.append(float((predicted[~is_k] != k).mean()))
    return {
        "auc": round(float(np.mean(aucs)), 4),
        "accuracy": round(accuracy, 4),
        "sensitivity": round(float(np.mean(sensitivities)), 4),
        "specificity": round(float(np.mean(specificities)), 4),
    }


def train_demo_model(spec: DemoSpec, *, seed: int = 0) -> TrainedModel:
    """Generate, train, export and evaluate the demo model ``spec``; deterministic for ``seed``."""
    import onnxruntime

    from portal.ai.inference import classify

    rng = np.random.default_rng([seed, len(spec.kind), sum(spec.kind.encode())])
    train_x, train_y = _dataset(spec, spec.training_set_size, rng)
    test_x, test_y = _dataset(spec, spec.evaluation_set_size, rng)
    params = _train_mlp(_features(train_x, spec.pooled), train_y, len(spec.labels), spec.hidden, rng)
    # Gemm's B is (in, out) as trained: no transpose attribute needed.
    onnx_bytes = _export(spec, params)

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
    probabilities = classify(session, test_x)
    positive = spec.label_codes.index("abnormal") if "abnormal" in spec.label_codes else None
    metrics = classification_metrics(probabilities, test_y, positive=positive)
    return TrainedModel(
        slug=spec.slug, name_ja=spec.name_ja, name_en=spec.name_en, summary_ja=spec.summary_ja,
        summary_en=spec.summary_en, society_slug=spec.society_slug, modality=spec.modality,
        onnx=onnx_bytes, labels=[dict(label) for label in spec.labels], input_width=spec.width,
        input_height=spec.height, input_channels=spec.channels, input_mean=list(spec.mean),
        input_std=list(spec.std), input_name="image", output_name="probabilities", opset=OPSET,
        metrics=metrics, evaluation_set_size=spec.evaluation_set_size,
        training_set_size=spec.training_set_size, intended_use_ja=spec.intended_use_ja,
        intended_use_en=spec.intended_use_en, limitations_ja=spec.limitations_ja,
        limitations_en=spec.limitations_en, training_data_ja=spec.training_data_ja,
        training_data_en=spec.training_data_en, kind=spec.kind, seed=seed,
        sha256=hashlib.sha256(onnx_bytes).hexdigest(),
    )
