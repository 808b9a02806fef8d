"""The demo corpus's faces: the expression track of a clip and its renderer."""

from __future__ import annotations

import numpy as np

from .synth_cues import FACE_KEYS, FACE_SIZE, FPS, HEIGHT, Actor, ClipSpec, Plan, frame_width
from .synth_voice import talk_track


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def face_track(spec: ClipSpec, actor: Actor, plan: Plan, face: np.ndarray,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame face parameters (nframes x len(FACE_KEYS)), pose (nframes x 4), blink factor."""
    nf = plan.nframes
    t = (np.arange(nf) + 0.5) / FPS
    # expression: builds up from near-neutral, holds, then fades
    on = max(0.03, plan.lead - rng.uniform(0.1, 0.55))
    rise = rng.uniform(0.35, 0.85)
    off = plan.duration - rng.uniform(0.45, 1.0)
    fade = rng.uniform(0.35, 0.8)
    end_level = rng.uniform(0.15, 0.5)
    level = _smoothstep((t - on) / rise) * (1 - (1 - end_level) * _smoothstep((t - off) / fade))
    params = np.asarray(actor.rest)[None, :] + level[:, None] * face[None, :]
    params = params + np.cumsum(rng.normal(0, 0.004, (nf, len(FACE_KEYS))), axis=0)  # micro-movements

    talk_open, talk_round = talk_track(plan)
    params[:, 0] += actor.talk * talk_open
    params[:, 1] += 0.5 * actor.talk * talk_round * (talk_open > 0.05)

    # blinks: 1 or 2, a few frames each
    blink = np.ones(nf)
    shape = np.array([0.6, 0.15, 0.0, 0.25, 0.7])
    for _ in range(1 + int(rng.random() < 0.5)):
        k = int(rng.integers(0, max(1, nf - len(shape))))
        blink[k:k + len(shape)] = np.minimum(blink[k:k + len(shape)], shape[: nf - k])

    # head pose: smooth sway (dx, dy), roll (degrees), scale
    pose = np.zeros((nf, 4))
    for j, amp in enumerate((actor.sway, 0.6 * actor.sway, actor.roll, 0.012)):
        for _ in range(3):
            f = rng.uniform(0.15, 1.2)
            pose[:, j] += amp / 2 * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    pose[:, :2] += rng.normal(0, 0.4, (nf, 2))  # small per-frame jitter
    pose[:, 3] += 1.0
    return params, pose, blink


class FaceRenderer:
    """Draws the face into a reused square BGR canvas (the frame's height) and pastes it into a
    reused I420 frame.  The face is designed on a 720-px canvas; at another ``height`` every
    coordinate, radius and line width is scaled, so a low-resolution corpus shows the same faces."""

    SHIFT = 4

    def __init__(self, actor: Actor, height: int = HEIGHT):
        import cv2

        self.cv2 = cv2
        self.actor = actor
        width = frame_width(height)
        self.size = height
        self.zoom = height / FACE_SIZE
        self.canvas = np.empty((height, height, 3), np.uint8)
        self.i420 = np.empty((height * 3 // 2, width), np.uint8)
        self.i420[:height] = 235  # white in limited-range BT.601
        self.i420[height:] = 128
        x0 = (width - height) // 2
        self._y = self.i420[:height, x0:x0 + height]
        h4 = height // 4
        self._u = self.i420[height:height + h4].reshape(height // 2, width // 2)[:, x0 // 2:(x0 + height) // 2]
        self._v = self.i420[height + h4:].reshape(height // 2, width // 2)[:, x0 // 2:(x0 + height) // 2]
        ac = actor
        skin = np.array(ac.skin)
        self.skin = tuple(float(c) for c in skin)
        self.skin_dark = tuple(float(c) for c in skin * 0.72)
        self.line = tuple(float(c) for c in skin * 0.3)
        self.hair = tuple(float(c) for c in ac.hair)
        self.brow = tuple(float(c) for c in np.array(ac.hair) * 0.35 + 10)
        self.M = np.eye(2, 3)
        self.s = 1.0
        self.roll = 0.0

    # geometry helpers ----------------------------------------------------------------------
    def _set_pose(self, dx: float, dy: float, roll: float, scale: float) -> None:
        r = np.deg2rad(roll)
        scale = scale * self.zoom
        c, s = np.cos(r) * scale, np.sin(r) * scale
        cx, cy = self.actor.center
        k = self.zoom
        self.M = np.array([[c, -s, (cx + dx) * k], [s, c, (cy + dy) * k]])
        self.s, self.roll = scale, roll

    def _thick(self, thickness: int) -> int:
        """A line width of the 720-px design at this canvas size (filled shapes stay -1)."""
        return thickness if thickness < 0 or self.zoom == 1 else max(1, int(round(thickness * self.zoom)))

    def _p(self, xy) -> np.ndarray:
        xy = np.asarray(xy, float).reshape(-1, 2)
        return np.round((xy @ self.M[:, :2].T + self.M[:, 2]) * (1 << self.SHIFT)).astype(np.int32)

    def _ellipse(self, center, axes, color, thickness=-1, start=0, end=360, angle=0.0) -> None:
        c = self._p(center)[0]
        ax = (max(1, int(round(axes[0] * self.s * (1 << self.SHIFT)))),
              max(1, int(round(axes[1] * self.s * (1 << self.SHIFT)))))
        self.cv2.ellipse(self.canvas, (int(c[0]), int(c[1])), ax, angle + self.roll, start, end, color,
                         self._thick(thickness), self.cv2.LINE_AA, self.SHIFT)

    def _poly(self, pts, color, thickness, closed=False) -> None:
        self.cv2.polylines(self.canvas, [self._p(pts)], closed, color, self._thick(thickness), self.cv2.LINE_AA,
                           self.SHIFT)

    def _fill(self, pts, color) -> None:
        self.cv2.fillPoly(self.canvas, [self._p(pts)], color, self.cv2.LINE_AA, self.SHIFT)

    # drawing -------------------------------------------------------------------------------
    def draw(self, p: np.ndarray, pose: np.ndarray, blink: float) -> np.ndarray:
        ac = self.actor
        A, B = ac.head_a, ac.head_b
        op, width, curve, brow, tilt, eye, nose, lip, teeth = p
        self.canvas[:] = 255
        self._set_pose(*pose)

        # hair behind the head, neck, dark shirt, ears, head
        if not ac.male:
            self._ellipse((0, 0.1 * B), (1.2 * A, 1.08 * B), self.hair)
            self._fill([(-1.2 * A, 0.1 * B), (1.2 * A, 0.1 * B), (1.25 * A, 1.25 * B), (-1.25 * A, 1.25 * B)], self.hair)
        self._fill([(-0.42 * A, 0.6 * B), (0.42 * A, 0.6 * B), (0.45 * A, 1.2 * B), (-0.45 * A, 1.2 * B)], self.skin_dark)
        self._fill([(-0.5 * A, 1.08 * B), (0, 1.22 * B), (0.5 * A, 1.08 * B), (1.45 * A, 1.3 * B),
                    (1.68 * A, 1.6 * B), (1.72 * A, 3 * B), (-1.72 * A, 3 * B), (-1.68 * A, 1.6 * B),
                    (-1.45 * A, 1.3 * B)], (30, 30, 30))
        for sx in (-1, 1):
            self._ellipse((sx * 0.97 * A, -0.02 * B), (0.14 * A, 0.2 * B), self.skin_dark)
        self._ellipse((0, 0), (A, B), self.skin)
        self._ellipse((0, -0.5 * B), (1.03 * A, 0.58 * B), self.hair, -1, 180, 360)

        # eyes
        openness = float(np.clip(1.0 + eye, 0.05, 1.9)) * blink
        eh = ac.eye_h * openness
        for sx in (-1, 1):
            cx, cy = sx * ac.eye_sep, ac.eye_y
            if eh < 2.0:
                self._poly([(cx - ac.eye_w, cy), (cx + ac.eye_w, cy)], self.line, 4)
                continue
            self._ellipse((cx, cy), (ac.eye_w, eh), (248, 248, 248))
            r = 0.42 * ac.eye_w
            self._ellipse((cx, cy), (r, min(r, eh)), ac.iris)
            self._ellipse((cx, cy), (0.45 * r, min(0.45 * r, eh)), (20, 20, 20))
            self._ellipse((cx, cy), (ac.eye_w, eh), (30, 30, 30), 6, 180, 360)
            self._ellipse((cx, cy), (ac.eye_w, eh), self.skin_dark, 2, 0, 180)

        # brows: raised with `brow`, inner ends up (+) or down (-) with `tilt`
        by = ac.eye_y - ac.eye_h - 0.085 * B - 0.1 * B * brow
        for sx in (-1, 1):
            inner = (sx * (ac.eye_sep - 0.85 * ac.eye_w), by - 0.09 * B * tilt)
            mid = (sx * ac.eye_sep, by - 0.025 * B - 0.01 * B * tilt)
            outer = (sx * (ac.eye_sep + 1.1 * ac.eye_w), by + 0.02 * B + 0.02 * B * tilt)
            self._poly([inner, mid, outer], self.brow, ac.brow_th)

        # nose, wrinkles (disgust) and nasolabial folds (smile, disgust)
        ny = ac.nose_y
        self._poly([(0.0, ac.eye_y + 0.06 * B), (0.05 * A, ny - 0.03 * B), (0.0, ny), (-0.09 * A, ny - 0.01 * B)],
                   self.line, 3)
        for sx in (-1, 1):
            self._ellipse((sx * 0.07 * A, ny - 0.005 * B), (0.035 * A, 0.015 * B), self.line)
        wr = float(np.clip(nose, 0, 1.5))
        if wr > 0.05:
            col = self._mix(min(0.8, 0.55 * wr))
            for k in range(2):
                y = ac.eye_y + (0.03 + 0.045 * k) * B
                self._poly([(-0.1 * A, y + 0.01 * B), (0, y), (0.1 * A, y + 0.01 * B)], col, 5)
        fold = float(np.clip(max(0.8 * nose, 0.6 * curve), 0, 1.2))
        my, mw = ac.mouth_y, ac.mouth_w * (1 + width)
        if fold > 0.05:
            col = self._mix(min(0.75, 0.55 * fold))
            for sx in (-1, 1):
                self._poly([(sx * 0.13 * A, ny - 0.02 * B), (sx * (mw + 0.02 * A), 0.5 * (ny + my)),
                            (sx * (mw + 0.06 * A), my + 0.04 * B)], col, 6)

        # mouth
        s = np.linspace(-1.0, 1.0, 15)
        lift = 0.14 * B * curve
        base = my - lift * s * s + 0.35 * lift
        oh = 0.28 * B * max(0.0, op)
        bulge = 1 - s * s
        upper = base - 0.25 * oh * bulge - 0.08 * B * max(lip, 0) * np.clip(0.4 - s, 0, 1) * bulge
        lower = base + 0.75 * oh * bulge ** 0.8
        xs = s * mw
        if oh > 1.5:
            inside = np.concatenate([np.stack([xs, upper], 1), np.stack([xs[::-1], lower[::-1]], 1)])
            self._fill(inside, (25, 15, 35))
            th = float(np.clip(teeth, 0, 1)) * min(0.35 * oh, 0.05 * B)
            if th > 1.0:
                band = np.concatenate([np.stack([xs * 0.8, upper + 1], 1), np.stack([xs[::-1] * 0.8, upper[::-1] + th], 1)])
                self._fill(band, (240, 240, 240))
        self._poly(np.stack([xs, upper], 1), ac.lips, 9)
        self._poly(np.stack([xs, lower], 1), ac.lips, 11)
        return self.canvas

    def _mix(self, k: float) -> tuple:
        return tuple(float(a * (1 - k) + b * k) for a, b in zip(self.skin, self.line))

    def to_i420(self) -> np.ndarray:
        yuv = self.cv2.cvtColor(self.canvas, self.cv2.COLOR_BGR2YUV_I420)
        n, h2 = self.size, self.size // 2
        self._y[:] = yuv[:n]
        self._u[:] = yuv[n:n + n // 4].reshape(h2, h2)
        self._v[:] = yuv[n + n // 4:].reshape(h2, h2)
        return self.i420
