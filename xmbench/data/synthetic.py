"""The built-in tri-modal dataset: small scenes rendered as image, audio and five captions.

A scene is 1-3 objects (shape, colour, size) ordered left to right. The image draws them; the
audio plays one tone burst per object in left-to-right order (colour → pitch, shape → timbre,
size → loudness) over noise; the captions describe them with paraphrased templates.

Two domains make adaptation real work: `source` (clean, plain background, template set A) and
`target` (shape-colour combinations never seen in source, clutter, more noise, template set B
with synonyms). A share of items is derived from the previous item by changing one attribute or
swapping two objects, so every split holds hard negatives.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from xmbench.data.split import RawSplit

SHAPES = ("circle", "square", "triangle", "diamond", "cross")
COLOURS = {
    "red": (214, 39, 40), "green": (44, 160, 44), "blue": (31, 119, 180),
    "yellow": (230, 200, 30), "purple": (148, 103, 189), "orange": (255, 127, 14),
}
SIZES = ("small", "large")
# One shape per colour is reserved for the target domain: adaptation meets unseen combinations.
HELD_OUT = frozenset((SHAPES[(2 * i) % len(SHAPES)], c) for i, c in enumerate(COLOURS))

PITCH_HZ = {"red": 220.0, "green": 277.2, "blue": 329.6, "yellow": 392.0, "purple": 493.9, "orange": 587.3}
# Harmonic amplitudes per shape: the timbre of its tone.
HARMONICS = {
    "circle": (1.0,),
    "square": (1.0, 0.0, 1 / 3, 0.0, 1 / 5, 0.0, 1 / 7),
    "triangle": (1.0, 0.0, -1 / 9, 0.0, 1 / 25),
    "diamond": (1.0, 0.5, 0.33, 0.25),
    "cross": (1.0, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1),
}
LOUDNESS = {"small": 0.25, "large": 0.7}
DOMAIN_CODE = {"source": 1, "target": 2}
SPLIT_CODE = {"train": 1, "val": 2, "test": 3}
CAPTIONS_PER_ITEM = 5


@dataclass(frozen=True)
class SceneObject:
    shape: str
    colour: str
    size: str


@dataclass(frozen=True)
class Scene:
    objects: tuple[SceneObject, ...]  # left to right


def make_split(split: str, n: int, domain: str, seed: int = 0, *, max_objects: int = 3,
               hard_negative_rate: float = 0.35, noise: float = 1.0, clutter: float = 1.0,
               image_size: int = 64, sample_rate: int = 16000, audio_seconds: float = 1.5) -> RawSplit:
    """Generate one split deterministically from (seed, domain, split)."""
    rng = np.random.default_rng([seed, DOMAIN_CODE[domain], SPLIT_CODE[split]])
    scenes: list[Scene] = []
    hard_negative_of = []  # the item each one was derived from by one change (-1: drawn afresh)
    for i in range(n):
        derive = scenes and rng.random() < hard_negative_rate
        scenes.append(perturb(scenes[-1], rng, domain) if derive else random_scene(rng, domain, max_objects))
        hard_negative_of.append(i - 1 if derive else -1)
    images = np.stack([render_image(s, image_size, rng, domain, noise, clutter) for s in scenes])
    audio = np.stack([render_audio(s, sample_rate, audio_seconds, rng, domain, noise, clutter) for s in scenes])
    captions = [write_captions(s, rng, domain) for s in scenes]
    ids = [f"{domain}-{split}-{i:05d}" for i in range(n)]
    return RawSplit(split, ids, captions, images, audio, sample_rate, hard_negative_of)


# --- scenes -------------------------------------------------------------------------------------

def _fits(scene: Scene, domain: str) -> bool:
    held = [(o.shape, o.colour) in HELD_OUT for o in scene.objects]
    return any(held) if domain == "target" else not any(held)


def random_scene(rng: np.random.Generator, domain: str, max_objects: int) -> Scene:
    while True:
        n = int(rng.integers(1, max_objects + 1))
        scene = Scene(tuple(
            SceneObject(str(rng.choice(SHAPES)), str(rng.choice(list(COLOURS))), str(rng.choice(SIZES)))
            for _ in range(n)))
        if _fits(scene, domain):
            return scene


def perturb(scene: Scene, rng: np.random.Generator, domain: str) -> Scene:
    """A hard negative: one attribute of one object changed, or two objects swapped."""
    for _ in range(20):
        objects = list(scene.objects)
        k = int(rng.integers(len(objects)))
        change = rng.choice(["shape", "colour", "size", "order"] if len(objects) > 1 else ["shape", "colour", "size"])
        if change == "order":
            j = (k + 1) % len(objects)
            objects[k], objects[j] = objects[j], objects[k]
        else:
            pool = {"shape": SHAPES, "colour": list(COLOURS), "size": SIZES}[str(change)]
            current = getattr(objects[k], str(change))
            objects[k] = replace(objects[k], **{str(change): str(rng.choice([v for v in pool if v != current]))})
        candidate = Scene(tuple(objects))
        if candidate != scene and _fits(candidate, domain):
            return candidate
    return random_scene(rng, domain, len(scene.objects))


# --- image --------------------------------------------------------------------------------------

def _shape_mask(shape: str, dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    ax, ay = np.abs(dx), np.abs(dy)
    if shape == "circle":
        return dx**2 + dy**2 <= r**2
    if shape == "square":
        return np.maximum(ax, ay) <= 0.8 * r
    if shape == "diamond":
        return ax + ay <= r
    if shape == "triangle":  # apex up, base at 0.8 r
        return (dy >= -r) & (dy <= 0.8 * r) & (ax <= (dy + r) / 1.8)
    if shape == "cross":
        return ((ax <= r / 3) & (ay <= r)) | ((ay <= r / 3) & (ax <= r))
    raise ValueError(f"unknown shape {shape}")


def render_image(scene: Scene, size: int, rng: np.random.Generator, domain: str,
                 noise: float = 1.0, clutter: float = 1.0) -> np.ndarray:
    """Draw the scene left to right on a size × size RGB canvas (uint8)."""
    target = domain == "target"
    background = rng.uniform(170, 250, 3) if target else np.full(3, 235.0)
    img = np.broadcast_to(background, (size, size, 3)).copy()
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    if target:  # distractor strokes the model has to learn to ignore
        for _ in range(int(round(clutter * rng.integers(2, 6)))):
            x0, y0 = rng.integers(0, size, 2)
            w, h = (int(rng.integers(1, size // 4)), 1) if rng.random() < 0.5 else (1, int(rng.integers(1, size // 4)))
            img[y0:y0 + h, x0:x0 + w] = rng.uniform(60, 140)
    n = len(scene.objects)
    for k, obj in enumerate(scene.objects):
        cx = (k + 0.5) / n * size + rng.uniform(-0.04, 0.04) * size
        cy = rng.uniform(0.35, 0.65) * size
        r = (0.09 if obj.size == "small" else 0.16) * size
        colour = np.array(COLOURS[obj.colour], dtype=np.float64)
        if target:
            colour = colour + rng.normal(0, 12, 3)
        img[_shape_mask(obj.shape, xx - cx, yy - cy, r)] = colour
    img += rng.normal(0, (14.0 if target else 4.0) * noise, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


# --- audio --------------------------------------------------------------------------------------

def render_audio(scene: Scene, sample_rate: int, seconds: float, rng: np.random.Generator,
                 domain: str, noise: float = 1.0, clutter: float = 1.0) -> np.ndarray:
    """One tone burst per object in left-to-right order, over noise (float32 in [-1, 1])."""
    target = domain == "target"
    n_samples = int(round(sample_rate * seconds))
    t = np.arange(n_samples) / sample_rate
    wave = np.zeros(n_samples)
    slot = (seconds - 0.1) / len(scene.objects)
    for k, obj in enumerate(scene.objects):
        onset = 0.05 + k * slot + rng.uniform(0, 0.1 * slot)
        length = 0.75 * slot
        start, stop = int(onset * sample_rate), min(int((onset + length) * sample_rate), n_samples)
        local = t[start:stop] - onset  # only the burst's own samples are synthesised
        envelope = np.minimum(local / 0.01, 1.0) * np.exp(-3.0 * local / length)
        pitch = PITCH_HZ[obj.colour] * (1 + rng.uniform(-0.01, 0.01))
        phase = 2 * np.pi * pitch * t[start:stop]
        tone = sum(a * np.sin((h + 1) * phase) for h, a in enumerate(HARMONICS[obj.shape]))
        tone /= np.max(np.abs(tone)) + 1e-9
        wave[start:stop] += LOUDNESS[obj.size] * envelope * tone
    wave += rng.normal(0, (0.05 if target else 0.01) * noise, n_samples)
    if target:  # mains hum and clicks: the audio counterpart of visual clutter
        wave += 0.05 * clutter * np.sin(2 * np.pi * rng.uniform(50, 60) * t + rng.uniform(0, 2 * np.pi))
        for _ in range(int(round(clutter * rng.integers(1, 4)))):
            at = int(rng.integers(0, n_samples - 40))
            wave[at:at + 40] += rng.uniform(-0.4, 0.4)
    return np.clip(wave, -1, 1).astype(np.float32)


# --- captions -----------------------------------------------------------------------------------

SOURCE_WORDS = {"small": ["small"], "large": ["large"]}
TARGET_WORDS = {
    "small": ["tiny", "little", "small"], "large": ["big", "huge", "large"],
    "circle": ["circle", "disc", "round dot"], "square": ["square", "box"], "triangle": ["triangle"],
    "diamond": ["diamond", "rhombus"], "cross": ["cross", "plus sign"],
}


def _phrase(obj: SceneObject, rng: np.random.Generator, words: dict[str, list[str]]) -> str:
    pick = lambda w: str(rng.choice(words.get(w, [w])))  # noqa: E731
    return f"a {pick(obj.size)} {obj.colour} {pick(obj.shape)}"


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


SOURCE_TEMPLATES = [
    lambda p: "from left to right: " + _join(p),
    lambda p: ", then ".join(p),
    lambda p: "there is " + _join(p),
    lambda p: "an image with " + _join(p),
    lambda p: p[0] + "".join(f" to the left of {q}" for q in p[1:]),
]
SOURCE_SINGLE = [lambda p: p[0], lambda p: "a picture of " + p[0], lambda p: "just " + p[0]]
TARGET_TEMPLATES = [
    lambda p: "on the left " + p[0] + ("" if len(p) < 3 else ", in the middle " + p[1]) + ", on the right " + p[-1],
    lambda p: " followed by ".join(p),
    lambda p: p[-1] + "".join(f" to the right of {q}" for q in reversed(p[:-1])),
    lambda p: "we see " + " next to ".join(p),
    lambda p: f"{len(p)} shapes: " + "; ".join(p),
]
TARGET_SINGLE = [lambda p: "only " + p[0], lambda p: "a lone " + p[0][2:], lambda p: p[0] + " by itself"]


def write_captions(scene: Scene, rng: np.random.Generator, domain: str) -> list[str]:
    """Five paraphrases of the scene, from the domain's template set."""
    target = domain == "target"
    single = len(scene.objects) == 1
    templates = (TARGET_SINGLE if single else TARGET_TEMPLATES) if target else (SOURCE_SINGLE if single else SOURCE_TEMPLATES)
    words = TARGET_WORDS if target else SOURCE_WORDS
    order = rng.permutation(CAPTIONS_PER_ITEM) % len(templates)
    return [templates[i]([_phrase(o, rng, words) for o in scene.objects]) for i in order]
