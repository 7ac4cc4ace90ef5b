"""Noise to a target signal-to-noise ratio: Gaussian or Poisson (shot) noise."""

from __future__ import annotations

import math

import numpy as np

from annoloop.errors import InvalidInput
from annoloop.experiments.modifiers.base import ImageContext, Modifier

KINDS = ("gaussian", "poisson")


class Noise(Modifier):
    """Add noise so that the image's SNR becomes ``snr`` (iquaflow's ``DSModifier_snr``).

    The SNR is signal over noise standard deviation, as :mod:`annoloop.metrics.snr` measures
    it. With ``initial_snr="measure"`` (default) each channel's signal level and present noise
    are measured with the homogeneous-blocks method (bias-corrected), and only the missing
    noise is added: ``sigma_add = sqrt((signal / snr)^2 - noise^2)``; an image already noisier
    than the target is left as it is. A number for ``initial_snr`` is iquaflow's mode: the
    signal is the channel mean and the present noise ``signal / initial_snr``; None takes the
    image as noise-free.

    ``kind="gaussian"`` adds zero-mean Gaussian noise. ``kind="poisson"`` simulates photon
    noise: samples become ``Poisson(value * g) / g`` with the gain ``g`` chosen so that the
    noise at the signal level is the missing amount (brighter pixels get more noise, as on a
    sensor). The noise is seeded by ``seed`` and the file name (``context.rng``).
    """

    name = "noise"
    defaults = {"snr": 20.0, "kind": "gaussian", "initial_snr": "measure"}
    tag_keys = ("snr", "kind")

    def check_params(self) -> None:
        where = f"modifier {self.label}"
        snr = self.params["snr"]
        if isinstance(snr, bool) or not isinstance(snr, (int, float)) or not snr > 0:
            raise InvalidInput(f"snr must be a positive number, got {snr!r}", where)
        if self.params["kind"] not in KINDS:
            raise InvalidInput(
                f"kind must be one of {', '.join(KINDS)}, got {self.params['kind']!r}", where
            )
        initial = self.params["initial_snr"]
        if initial not in (None, "measure") and (
            isinstance(initial, bool) or not isinstance(initial, (int, float)) or not initial > 0
        ):
            raise InvalidInput(
                f"initial_snr must be 'measure', None or a positive number, got {initial!r}", where
            )

    def _levels(self, channel: np.ndarray) -> tuple[float, float]:
        """(signal, present noise sigma) of one channel."""
        initial = self.params["initial_snr"]
        if initial == "measure":
            from annoloop.metrics.snr import snr_homogeneous_blocks

            est = snr_homogeneous_blocks(channel, correct_bias=True)
            noise = est.noise if math.isfinite(est.noise) else 0.0
            return float(est.signal), float(noise)
        signal = float(channel.mean())
        return signal, (signal / float(initial) if initial is not None else 0.0)

    def modify_image(self, image: np.ndarray, context: ImageContext) -> np.ndarray:
        rng = context.rng
        planes = image[:, :, None] if image.ndim == 2 else image
        out = planes.astype(np.float64)
        target = float(self.params["snr"])
        added = []
        for c in range(planes.shape[2]):
            signal, present = self._levels(planes[:, :, c])
            wanted = signal / target
            var_add = wanted * wanted - present * present
            if not (signal > 0 and var_add > 0):
                added.append(0.0)
                continue
            added.append(math.sqrt(var_add))
            if self.params["kind"] == "gaussian":
                out[:, :, c] += rng.normal(0.0, math.sqrt(var_add), planes.shape[:2])
            else:
                gain = signal / var_add  # photons per grey level: variance at signal = var_add
                out[:, :, c] = rng.poisson(np.maximum(out[:, :, c], 0.0) * gain) / gain
        context.extra["noise_sigma"] = float(np.mean(added)) if added else 0.0
        return out[:, :, 0] if image.ndim == 2 else out
