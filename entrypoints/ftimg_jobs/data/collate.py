"""In-memory datasets of token ids and the padding collators of the training jobs."""

import torch

from ftimg_jobs.data.tokenization import IGNORE_INDEX


class TokenizedDataset(torch.utils.data.Dataset):
    """A list of ``{"input_ids": [...], "labels": [...] or scalar}`` dicts."""

    def __init__(self, items):
        self.items = list(items)

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]


# Padded batches are rounded up to a multiple of this width, so that attention kernels see few distinct
# shapes: cuDNN's SDPA backend (first on Hopper/Blackwell with torch 2.11) builds an execution plan for each
# new one, which made every batch of variable-width rows slow (docs/performance.md, the cls pair).
WIDTH_MULTIPLE = 64


def padded_width(longest: int, multiple: int, max_width: int = 0) -> int:
    """``longest`` rounded up to ``multiple``, but not past ``max_width`` (when given) unless a row is longer."""
    width = -(-longest // multiple) * multiple
    return max(longest, min(width, max_width)) if max_width else width


class LeftPadCollator:
    """Pad a batch on the left (decoder-only models read the last position) and derive position ids.

    Sequence labels are padded with -100; scalar labels (classification ids or
    regression targets) become a 1-D tensor of ``label_dtype``. The width is the longest
    row's, rounded up to ``width_multiple`` (real tokens keep positions 0.., whatever the width).
    """

    def __init__(self, pad_token_id: int, label_dtype=torch.long, width_multiple: int = 1):
        self.pad_token_id = pad_token_id
        self.label_dtype = label_dtype
        self.width_multiple = width_multiple

    def __call__(self, features):
        width = padded_width(max(len(feature["input_ids"]) for feature in features), self.width_multiple)
        input_ids, attention_mask, labels = [], [], []
        for feature in features:
            padding = width - len(feature["input_ids"])
            input_ids.append([self.pad_token_id] * padding + list(feature["input_ids"]))
            attention_mask.append([0] * padding + [1] * len(feature["input_ids"]))
            label = feature["labels"]
            labels.append([IGNORE_INDEX] * padding + list(label) if isinstance(label, (list, tuple)) else label)
        mask = torch.tensor(attention_mask, dtype=torch.long)
        return {
            "input_ids": torch.tensor(input_ids, dtype=torch.long),
            "attention_mask": mask,
            # Real tokens are numbered from 0 whatever the padding, as at inference time.
            "position_ids": (mask.cumsum(-1) - 1).clamp(min=0),
            "labels": torch.tensor(labels, dtype=self.label_dtype if not isinstance(labels[0], list) else torch.long),
        }


class RightPadCausalCollator:
    """Sequence classification on a causal decoder: right padding and no attention mask.

    A causal decoder's token attends only to the tokens before it, so with the padding on
    the right every real token sees only real tokens and the padding needs no mask; the
    classification head reads the last real token of each row (transformers pools the
    rightmost token that is not the pad id). Without a mask, attention runs its causal
    kernel (FlashAttention, or SDPA's flash/cuDNN backend) instead of a masked one. The
    width is rounded up to a multiple of ``width_multiple`` so that the kernels see few
    distinct shapes (cuDNN builds an execution plan for each new one).
    Wrong for a bidirectional encoder, whose tokens would attend to the padding: the job
    checks the model first (model/causal.py).

    ``pools_before_first_pad``: the head pools the token before a row's first pad id instead
    (transformers before 4.49). A batch in which a record holds the pad id itself is then padded
    on the left with a mask and at least one pad column, so that every row's first pad id is at 0,
    which that head reads as "the last token".
    """

    def __init__(self, pad_token_id: int, label_dtype=torch.long, width_multiple: int = WIDTH_MULTIPLE,
                 pools_before_first_pad: bool = False, max_width: int = 0):
        self.pad_token_id = pad_token_id
        self.label_dtype = label_dtype
        self.width_multiple = width_multiple
        # Rows are cut to --model_max_length: rounding never goes past it (a model with learned absolute
        # positions may have no position beyond it).
        self.max_width = max_width
        self.left_padding = LeftPadCollator(pad_token_id, label_dtype) if pools_before_first_pad else None

    def batches_note(self) -> dict:
        """What run.json says about these batches (``speed.batches``)."""
        reason = (f"sequence classification on a causal decoder: rows padded on the right to a multiple of "
                  f"{self.width_multiple}, no attention mask (real tokens never see the padding), the last real "
                  "token pooled")
        if self.left_padding is not None:
            reason += ("; a batch whose records hold the pad id itself is padded on the left with a mask (this "
                       "transformers pools the token before a row's first pad id)")
        return {"padding_free": False, "attention_mask": False, "reason": reason}

    def __call__(self, features):
        if self.left_padding is not None and any(self.pad_token_id in feature["input_ids"] for feature in features):
            return self.left_padded_with_a_pad_column(features)
        longest = max(len(feature["input_ids"]) for feature in features)
        width = padded_width(longest, self.width_multiple, self.max_width)
        input_ids = [list(feature["input_ids"]) + [self.pad_token_id] * (width - len(feature["input_ids"]))
                     for feature in features]
        return {"input_ids": torch.tensor(input_ids, dtype=torch.long),
                "labels": torch.tensor([feature["labels"] for feature in features], dtype=self.label_dtype)}

    def left_padded_with_a_pad_column(self, features):
        batch = self.left_padding(features)

        def prepend(tensor, value):
            return torch.nn.functional.pad(tensor, (1, 0), value=value)

        return dict(batch, input_ids=prepend(batch["input_ids"], self.pad_token_id),
                    attention_mask=prepend(batch["attention_mask"], 0), position_ids=prepend(batch["position_ids"], 0))
