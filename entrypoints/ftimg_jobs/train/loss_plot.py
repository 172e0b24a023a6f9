"""Draw the loss curve from the Trainer's log history into a PNG (headless matplotlib)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)


def save_loss_curve(log_history, path, title: str) -> None:
    train = [(entry["step"], entry["loss"]) for entry in log_history if "loss" in entry and "step" in entry]
    evaluation = [(entry["step"], entry["eval_loss"]) for entry in log_history if "eval_loss" in entry]
    figure, axes = plt.subplots(figsize=(7, 4), dpi=100)
    if train:
        axes.plot(*zip(*train), label="train loss")
    if evaluation:
        axes.plot(*zip(*evaluation), marker="o", label="eval loss")
    if not train and not evaluation:
        axes.text(0.5, 0.5, "no loss was logged", ha="center", va="center", transform=axes.transAxes)
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.set_title(title)
    if train or evaluation:
        axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
