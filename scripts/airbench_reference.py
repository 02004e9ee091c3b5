"""The fast family's recipe written a second time, in PyTorch, as a check on the Keras one: if
both score alike from the same images, a shortfall against airbench's published figures
lies in the recipe or the data, not in the Keras rendering (docs/benchmarks.md, "Is the Keras
recipe airbench's?").

Usage, in a virtual environment of its own (PyTorch is not one of cifarlab's dependencies):

    python -m venv /tmp/torch-venv && /tmp/torch-venv/bin/pip install torch==2.13.0 numpy
    /tmp/torch-venv/bin/python scripts/airbench_reference.py DATA_DIR/datasets/cifar10-KEY.npz \
        --epochs 2 --widths 64,128,128

The .npz is a decoded cache a worker writes into its data folder on its first run (any one
of them if there are several: they hold the same arrays). Like the `fast_cnn` defaults it
fits 47,500 training images (a seeded 95%) and prints the test accuracy with the mirrored
second look and with airbench's six views. A benchmark, not a test: on two CPU cores an epoch
of these widths takes about three minutes; where PyTorch sees a GPU it trains there, in
bfloat16 (docs/benchmarks.md, "The fast presets on a GPU").
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

MEAN = torch.tensor((125.307, 122.961, 113.8575)).view(1, 3, 1, 1)
STD = torch.tensor((62.9932, 62.0887, 66.7048)).view(1, 3, 1, 1)
BATCH, MOMENTUM, PEAK_PER_1024, DECAY_PER_1024 = 1024, 0.85, 11.5, 0.0153
"""airbench's optimiser settings for a summed loss; the Keras recipe's are their mean-loss
equivalents (app/core/hyperparameters.py, FastCnnHyperparameters)."""


class ShiftOnlyNorm(nn.BatchNorm2d):
    def __init__(self, channels: int) -> None:
        super().__init__(channels, eps=1e-12, momentum=0.4)
        self.weight.requires_grad = False


class IdentityStartConv(nn.Conv2d):
    def __init__(self, inputs: int, outputs: int) -> None:
        super().__init__(inputs, outputs, 3, padding="same", bias=False)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        torch.nn.init.dirac_(self.weight.data[: self.weight.size(1)])


def block(inputs: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(
        IdentityStartConv(inputs, outputs), nn.MaxPool2d(2), ShiftOnlyNorm(outputs), nn.GELU(),
        IdentityStartConv(outputs, outputs), ShiftOnlyNorm(outputs), nn.GELU(),
    )  # fmt: skip


class Scale(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / 9


def network(widths: list[int], images: torch.Tensor) -> nn.Sequential:
    net = nn.Sequential(
        nn.Conv2d(3, 24, 2, bias=True), nn.GELU(),
        block(24, widths[0]), block(widths[0], widths[1]), block(widths[1], widths[2]),
        nn.MaxPool2d(3), nn.Flatten(), nn.Linear(widths[2], 10, bias=False), Scale(),
    )  # fmt: skip
    patches = images.unfold(2, 2, 1).unfold(3, 2, 1).transpose(1, 3).reshape(-1, 12)
    eigenvalues, eigenvectors = torch.linalg.eigh(patches.T @ patches / len(patches))
    scaled = (eigenvectors.T / torch.sqrt(eigenvalues + 5e-4)[:, None]).reshape(12, 3, 2, 2)
    net[0].weight.data[:] = torch.cat((scaled, -scaled))
    net[0].weight.requires_grad = False
    return net


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("npz")
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument("--widths", default="64,128,128")
    args = parser.parse_args()
    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    data = np.load(args.npz)
    count = len(data["y_train"])
    keep = np.random.default_rng(0).permutation(count)[: count * 19 // 20]

    def normalised(images: np.ndarray) -> torch.Tensor:
        return ((torch.tensor(images).permute(0, 3, 1, 2).float() - MEAN) / STD).to(device)

    x_train = normalised(data["x_train"][keep])
    y_train = torch.tensor(data["y_train"][keep]).to(device)
    x_test, y_test = normalised(data["x_test"]), torch.tensor(data["y_test"]).to(device)
    net = network([int(w) for w in args.widths.split(",")], x_train[:5000]).to(device)
    # bfloat16 on a GPU, as airbench trains in half precision; float32 on a CPU.
    autocast = torch.autocast(device.type, torch.bfloat16, enabled=device.type == "cuda")

    per_step = BATCH * (1 + 1 / (1 - MOMENTUM))
    rate, decay = PEAK_PER_1024 / per_step, DECAY_PER_1024 * BATCH / per_step
    shifts = [p for n, p in net.named_parameters() if p.requires_grad and n.endswith("bias")
              and not n.startswith("0.")]  # fmt: skip
    others = [p for p in net.parameters() if p.requires_grad and all(p is not s for s in shifts)]
    optimizer = torch.optim.SGD(
        [{"params": shifts, "lr": rate * 64, "weight_decay": decay / (rate * 64)},
         {"params": others, "lr": rate, "weight_decay": decay / rate}],
        momentum=MOMENTUM, nesterov=True,
    )  # fmt: skip
    peaks = [group["lr"] for group in optimizer.param_groups]
    total = math.ceil(math.ceil(len(x_train) / BATCH) * args.epochs)
    triangle = np.interp(np.arange(total + 1), [0, int(0.23 * total), total], [0.2, 1, 0.07])
    slow = {k: v.clone() for k, v in net.state_dict().items()}

    def lookahead(keep_share: float) -> None:
        for average, current in zip(slow.values(), net.state_dict().values(), strict=True):
            if current.dtype == torch.float:
                average.lerp_(current, 1 - keep_share)
                current.copy_(average)

    generator = torch.Generator().manual_seed(0)
    first_flips = torch.rand(len(x_train), generator=generator) < 0.5
    loss_of = nn.CrossEntropyLoss(label_smoothing=0.2, reduction="none")
    step, epoch, start = 0, 0, time.time()
    while step < total:
        order = torch.randperm(len(x_train), generator=generator)
        flips = first_flips ^ (epoch % 2 == 1)
        for first in range(0, len(x_train), BATCH):
            if step >= total:
                break
            index = order[first : first + BATCH]
            mirrored = flips[index].view(-1, 1, 1, 1).to(device)
            index = index.to(device)
            x = torch.where(mirrored, x_train[index].flip(3), x_train[index])
            padded = F.pad(x, (2, 2, 2, 2), mode="reflect")
            dy, dx = torch.randint(0, 5, (2, len(x)), generator=generator).tolist()
            x = torch.stack([padded[i, :, dy[i] : dy[i] + 32, dx[i] : dx[i] + 32]
                             for i in range(len(x))])  # fmt: skip
            net.train()
            with autocast:
                loss = loss_of(net(x).float(), y_train[index]).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            for group, peak in zip(optimizer.param_groups, peaks, strict=True):
                group["lr"] = peak * triangle[step]
            optimizer.step()
            step += 1
            if step % 5 == 0:
                lookahead(0.95**5 * (step / total) ** 3)
        epoch += 1
        net[0].bias.requires_grad = epoch < 3  # airbench trains the whitening's bias 3 epochs
        print(f"epoch {epoch}: {step} steps, {time.time() - start:.0f} s", flush=True)
    lookahead(1.0)
    net.eval()

    def with_mirror(images: torch.Tensor) -> torch.Tensor:
        return torch.cat([net(part) + net(part.flip(3)) for part in images.split(1000)])

    with torch.no_grad(), autocast:
        mirrored_logits = with_mirror(x_test)
        padded = F.pad(x_test, (1, 1, 1, 1), mode="reflect")
        shifted = with_mirror(padded[:, :, :-2, :-2]) + with_mirror(padded[:, :, 2:, 2:])
        six_logits = mirrored_logits + 0.5 * shifted
    for views, logits in (("the mirrored second look", mirrored_logits), ("six views", six_logits)):
        accuracy = (logits.argmax(1) == y_test).float().mean().item()
        print(f"test accuracy with {views}: {accuracy:.4f}")
    print(f"{time.time() - start:.1f} s from the first step on {device}")


if __name__ == "__main__":
    main()
