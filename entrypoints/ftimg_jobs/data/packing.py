"""Padding-free batches: a batch's examples laid end to end in one row (torch-free).

Position ids restart at 0 for every example, which is how the attention kernel
tells the examples apart: flash-attn 2 runs variable-length attention over them,
and transformers' SDPA path (masking_utils, 4.53+) builds a block-causal mask,
so no example attends to another. No pad token is ever computed on.
"""

from ftimg_jobs.data.tokenization import IGNORE_INDEX


def flatten_examples(features) -> dict:
    """``input_ids``, ``position_ids`` and ``labels`` lists for one row holding every example of ``features``.

    The first label of each example is ignored: the token before it belongs to
    the previous example, so predicting it would teach the model across a boundary.
    """
    input_ids, position_ids, labels = [], [], []
    for feature in features:
        ids = list(feature["input_ids"])
        input_ids.extend(ids)
        position_ids.extend(range(len(ids)))
        example_labels = list(feature["labels"])
        labels.extend([IGNORE_INDEX] + example_labels[1:] if example_labels else [])
    return {"input_ids": input_ids, "position_ids": position_ids, "labels": labels}


def real_token_count(features) -> int:
    """Tokens that are not padding in a batch of unpadded features."""
    return sum(len(feature["input_ids"]) for feature in features)


def segment_bounds(position_ids) -> list:
    """``(start, end)`` of each example in a padding-free row, read off where position ids restart at 0."""
    starts = [index for index, position in enumerate(position_ids) if position == 0] or [0]
    if starts[0] != 0:
        starts.insert(0, 0)
    return list(zip(starts, starts[1:] + [len(position_ids)]))
