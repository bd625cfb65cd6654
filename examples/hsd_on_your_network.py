"""Hybrid Step-wise Distillation on a network of your own, from Python.

A small CNN with QCFS activations is trained as the ANN teacher on N = 10 frames, converted into
a spiking network, fine-tuned at T = 2 steps with step-wise distillation (skd_loss) and evaluated
after T = 1 and 2 steps, on digits-dvs (emulated by hsd from scikit-learn's digits, no download).
"""

import argparse

import torch
from spikingjelly.activation_based import layer
from torch import nn

import hsd


def make_net(*, in_channels, num_classes, input_size, width=1.0, levels=8, init_threshold=2.0):
    """[T, B, P, H, W] -> [T, B, C]: stateless layers frame by frame, QCFS on [T, B, ...]."""
    c = max(4, int(16 * width))
    return nn.Sequential(
        layer.SeqToANNContainer(nn.Conv2d(in_channels, c, 3, padding=1), nn.BatchNorm2d(c)),
        hsd.QCFS(levels, init_threshold),
        layer.SeqToANNContainer(nn.AvgPool2d(2), nn.Conv2d(c, 2 * c, 3, padding=1)),
        hsd.QCFS(levels, init_threshold),
        layer.SeqToANNContainer(nn.AvgPool2d(input_size // 2), nn.Flatten()),
        layer.SeqToANNContainer(nn.Linear(2 * c, num_classes)),
    )


def train(model, loader, epochs, loss_of, lr=3e-3):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        for frames, labels in loader:  # frames: time-first [N, B, P, H, W] event counts
            optimizer.zero_grad()
            loss_of(model.train(), frames, labels).backward()
            optimizer.step()


@torch.no_grad()
def accuracy_per_step(model, loader, steps):
    model.eval()
    logits, labels = [], []
    for frames, y in loader:
        logits.append(hsd.forward_sequence(model, frames[:steps]).transpose(0, 1))  # [B, T, C]
        labels.append(y)
    return hsd.prefix_accuracy(torch.cat(logits), torch.cat(labels))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--limit", type=int, default=0, help="training samples (0 = all)")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    data = hsd.prepare_data(hsd.load_config("demo", ["progress=false", f"data.limit={args.limit}"]))
    p, size, _ = data.input_shape
    train_set = hsd.make_loader(data.arrays, data.train, 32, shuffle=True, time_first=True)
    test_set = hsd.make_loader(data.arrays, data.test, 64, time_first=True)

    teacher = make_net(in_channels=p, num_classes=len(data.classes), input_size=size)
    ce = nn.functional.cross_entropy
    train(teacher, train_set, args.epochs, lambda m, x, y: ce(m(x).mean(0), y))
    print(f"teacher (ANN, N={data.frames}): {accuracy_per_step(teacher, test_set, 10)[-1]:.3f}")

    student = hsd.convert_to_snn(teacher.eval(), input_shape=(p, size, size))  # refuses bad ones

    def skd(model, frames, labels):
        with torch.no_grad():
            target = teacher(frames).mean(0)  # the teacher sees all N frames: [B, C]
        return hsd.skd_loss(hsd.forward_sequence(model, frames[:2]), target, labels)["loss"]

    train(student, train_set, args.epochs, skd, lr=1e-3)
    acc = accuracy_per_step(student, test_set, 2)
    print(f"HSD student (SNN): T=1 {acc[0]:.3f}  T=2 {acc[1]:.3f}")
    return acc


if __name__ == "__main__":
    main()
