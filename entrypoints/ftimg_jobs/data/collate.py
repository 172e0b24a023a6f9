"""In-memory datasets of token ids and the left-padding collator shared by the training jobs."""

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


class LeftPadCollator:
    """Pad a batch on the left (decoder-only models read the last position) and derive position ids.

    Sequence labels are padded with -100; scalar labels (classification ids or
    regression targets) become a 1-D tensor of ``label_dtype``.
    """

    def __init__(self, pad_token_id: int, label_dtype=torch.long):
        self.pad_token_id = pad_token_id
        self.label_dtype = label_dtype

    def __call__(self, features):
        width = max(len(feature["input_ids"]) for feature in features)
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
