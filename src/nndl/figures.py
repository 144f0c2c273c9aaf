"""The lab's figures, drawn off-screen: the digit classifiers' test figures, and ``agg_figure``, the blank figure
every figure of the lab starts from (these, the curve fit's, a sweep's ``curves.png``).

``agg_figure`` is a matplotlib ``Figure`` on its own Agg canvas (what ``SummaryWriter.add_figure`` and
``Figure.savefig`` render with): no display is needed and pyplot's process-wide backend is left alone — nothing in
the lab calls ``matplotlib.use``. Drawing is most of what the test figures cost, so their layouts are fixed rather
than computed, and the grid of digits is one image with the labels written between them, not 25 Axes (timings:
docs/tensorboard.md).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import PowerNorm
from matplotlib.figure import Figure

if TYPE_CHECKING:  # the sweep summary draws with agg_figure without loading torch
    from torch import Tensor

COLUMNS = 5  # digits per row of the mistakes grid
PAD, LABEL_SPACE = 4, 12  # pixels between the digits, and above each for its label


def confusion_matrix(counts: Tensor) -> Figure:
    """Rows the true digit, columns the predicted one; each cell the number of test images, coloured by the
    fraction of its row (its true digit), on a power scale so that the few mistakes still show."""
    counts = counts.long()
    total, right = int(counts.sum()), int(counts.trace())
    rates = (counts / counts.sum(dim=1, keepdim=True).clamp(min=1)).numpy()
    fig = agg_figure(5.4, 4.6)
    ax = fig.add_axes((0.1, 0.1, 0.7, 0.82))
    image = ax.imshow(rates, cmap="Blues", norm=PowerNorm(gamma=0.3, vmin=0.0, vmax=1.0))
    for (true, predicted), n in np.ndenumerate(counts.numpy()):
        if n:
            color = "white" if rates[true, predicted] > 0.5 else "black"
            ax.text(predicted, true, str(n), ha="center", va="center", fontsize=7, color=color)
    digits = range(len(counts))
    ax.set(xticks=digits, yticks=digits, xlabel="predicted digit", ylabel="true digit")
    ax.set_title(f"{right:,} of {total:,} test digits right ({right / max(total, 1):.2%})", fontsize=10)
    fig.colorbar(image, cax=fig.add_axes((0.84, 0.1, 0.03, 0.82)), label="fraction of the true digit's images")
    return fig


def mistakes(images: Tensor, labels: Tensor, predictions: Tensor, outputs: Tensor, probabilities: bool) -> Figure:
    """A grid of misclassified digits, each labelled "true → predicted" and the output a^L of the prediction.

    ``probabilities``: whether a^L is a softmax probability (else a sigmoid output, not normalised over digits).
    """
    # torchmetrics hands a one-element result back as a scalar: one mistake comes as 0-d labels and outputs
    labels, predictions, outputs = (t.reshape(-1) for t in (labels, predictions, outputs))
    n = len(labels)
    rows = max(1, math.ceil(n / COLUMNS))
    height, width = images.shape[-2:] if n else (28, 28)
    cell_h, cell_w = height + LABEL_SPACE + PAD, width + PAD
    mosaic = np.zeros((rows * cell_h, COLUMNS * cell_w), dtype=np.float32)
    width_in = COLUMNS * 1.15
    image_in = width_in * mosaic.shape[0] / mosaic.shape[1]  # the mosaic's height at the figure's width
    fig = agg_figure(width_in, image_in + 0.35)
    ax = fig.add_axes((0.0, 0.0, 1.0, image_in / (image_in + 0.35)))
    for i, (image, label, prediction, output) in enumerate(
        zip(images, labels.tolist(), predictions.tolist(), outputs.tolist(), strict=True)
    ):
        top, left = (i // COLUMNS) * cell_h + LABEL_SPACE, (i % COLUMNS) * cell_w
        mosaic[top : top + height, left : left + width] = image.reshape(height, width).float().numpy()
        ax.text(
            left + width / 2, top - 2, f"{label} → {prediction}  {output:.2f}", ha="center", va="bottom", fontsize=8
        )
    ax.imshow(mosaic, cmap="gray_r", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_axis_off()
    value = "softmax probability" if probabilities else "sigmoid output a^L"
    title = f"The {n} most confident mistakes: true → predicted digit, {value}"
    if not n:
        title = "No test digit was misclassified"
    ax.set_title(title, fontsize=9)
    return fig


def agg_figure(width: float, height: float) -> Figure:
    """A blank ``width`` × ``height`` inch figure at 100 dpi on the Agg canvas: drawn off-screen, without pyplot."""
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig
