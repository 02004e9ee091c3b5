"""Where pre-trained weights come from: CIFARLAB_WEIGHTS_DIR, the Keras cache, or a download."""

from __future__ import annotations

import logging
from pathlib import Path

import keras

from worker.architectures import APPLICATIONS

logger = logging.getLogger(__name__)


class WeightsNotFoundError(RuntimeError):
    """ImageNet weights are needed and cannot be had; the message says where to put which file."""


def resolve_weights(model: str, image_size: int, weights_dir: Path | None) -> str:
    """A local path to the base's ImageNet weights, fetched once into the Keras cache if needed."""
    application = APPLICATIONS[model]
    file_name = application.weights_file(image_size)
    if weights_dir is not None and (weights_dir / file_name).is_file():
        return str(weights_dir / file_name)
    url = application.weights_url(image_size)
    try:
        # Returns the cached copy without a download when ~/.keras/models already has it.
        return str(keras.utils.get_file(file_name, url, cache_subdir="models"))
    except Exception as exc:
        logger.warning("could not fetch %s: %s", url, exc)
        where = (
            f"CIFARLAB_WEIGHTS_DIR (now {weights_dir})"
            if weights_dir
            else ("a folder and set CIFARLAB_WEIGHTS_DIR to it")
        )
        raise WeightsNotFoundError(
            f"{model} needs its ImageNet weights file {file_name}, which is not in "
            f"CIFARLAB_WEIGHTS_DIR or the Keras cache (~/.keras/models), and downloading it "
            f"failed ({exc}). On a machine with internet download {url} and put it in {where}; "
            "or launch with weights=random to train from a random initialisation."
        ) from exc
