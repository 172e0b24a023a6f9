"""Mix several datasets by ratio and hold out an evaluation split, with seeded shuffles (torch-free)."""

import random

from ftimg_jobs.errors import JobError


def mix_by_ratio(parts: list, ratios: list, seed: int) -> tuple:
    """Take from each part its share of the largest mix that repeats no example; return ``(mix, counts)``.

    With sizes n_i and ratios r_i the mix has N = min(n_i / r_i) examples, k_i = round(N * r_i)
    of them from part i (a seeded sample), shuffled together. Nothing is oversampled, so the
    smallest part relative to its share decides the size.
    """
    total = min(len(part) / ratio for part, ratio in zip(parts, ratios))
    rng = random.Random(seed)
    mix, counts = [], []
    for part, ratio in zip(parts, ratios):
        count = max(1, min(len(part), round(total * ratio)))
        mix.extend(rng.sample(list(part), count))
        counts.append(count)
    rng.shuffle(mix)
    return mix, counts


def split_train_eval(items: list, fraction: float, seed: int) -> tuple:
    """Hold out ``fraction`` of the items (at least one when fraction > 0) with a seeded shuffle."""
    if fraction <= 0:
        return list(items), []
    if fraction >= 1:
        raise JobError(f"--val_set_size {fraction} must be below 1 (it is the fraction held out for evaluation)")
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    held_out = max(1, round(len(items) * fraction))
    if held_out >= len(items):
        raise JobError(f"--val_set_size {fraction} leaves no training records out of {len(items)}")
    eval_ids = set(order[:held_out])
    return ([item for i, item in enumerate(items) if i not in eval_ids],
            [item for i, item in enumerate(items) if i in eval_ids])
