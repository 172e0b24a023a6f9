"""Sequence classification on a causal decoder: right padding without a mask pools what masked left padding does.

Runs where torch and transformers are installed (the image's stack or a newer one); skipped otherwise.
"""

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from ftimg_jobs.data.collate import LeftPadCollator, RightPadCausalCollator  # noqa: E402
from ftimg_jobs.jobs.cls import padding_collator  # noqa: E402
from ftimg_jobs.model.causal import attends_causally, pools_before_first_pad  # noqa: E402

PAD = 0
FEATURES = [{"input_ids": [5, 6, 7, 8, 9, 10, 11], "labels": 1}, {"input_ids": [12, 13], "labels": 0},
            {"input_ids": [14, 15, 16, 17], "labels": 2}]


def tiny_classifier(config_class, **fields):
    config = config_class(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                          intermediate_size=64, max_position_embeddings=128, num_labels=3, pad_token_id=PAD, **fields)
    torch.manual_seed(0)
    return transformers.AutoModelForSequenceClassification.from_config(config, attn_implementation="sdpa").eval()


def logits(model, batch):
    with torch.no_grad():
        return model(**{key: value for key, value in batch.items() if key != "labels"}).logits


def test_right_padding_without_a_mask_gives_the_masked_left_padded_logits_and_loss():
    model = tiny_classifier(transformers.LlamaConfig)
    right = RightPadCausalCollator(PAD, width_multiple=8)(FEATURES)
    left = LeftPadCollator(PAD)(FEATURES)
    assert right["input_ids"].shape == (3, 8) and "attention_mask" not in right
    assert right["input_ids"][1].tolist() == [12, 13] + [PAD] * 6
    assert torch.allclose(logits(model, right), logits(model, left), atol=1e-5)
    with torch.no_grad():
        assert torch.allclose(model(**right).loss, model(**left).loss, atol=1e-6)


def test_the_same_rows_without_a_mask_on_an_encoder_differ_and_it_is_not_taken_for_causal():
    encoder = tiny_classifier(transformers.BertConfig)
    decoder = tiny_classifier(transformers.LlamaConfig)
    assert attends_causally(decoder) and not attends_causally(encoder)
    right = RightPadCausalCollator(PAD, width_multiple=8)(FEATURES)
    masked = dict(right, attention_mask=(right["input_ids"] != PAD).long())
    # Why the job checks: a bidirectional encoder's tokens attend to unmasked padding.
    assert not torch.allclose(logits(encoder, right), logits(encoder, masked), atol=1e-4)


def last_token_logits(model, ids) -> torch.Tensor:
    """The head applied to a record's own last token, whatever transformers' pooling makes of its pad ids."""
    with torch.no_grad():
        return model.score(model.model(torch.tensor([ids])).last_hidden_state)[0, -1]


# The pad id inside a record: a pad token that is also EOS, in a chat-formatted record. The second row is the
# longest, so the first is padded whichever side the padding goes.
PAD_INSIDE = [{"input_ids": [5, 6, PAD, 7, 8], "labels": 1}, {"input_ids": [9, 10, 11, 12, 13, 14, 15], "labels": 0},
              {"input_ids": [16, PAD, 17], "labels": 2}]


def test_the_job_pools_each_records_last_token_when_a_record_holds_the_pad_id():
    """transformers before 4.49 pools the token before a row's first pad id: right padding alone would pool
    the first row at token 6 and the third at 16; the job's collator pads such batches so that it cannot."""
    model = tiny_classifier(transformers.LlamaConfig)
    expected = torch.stack([last_token_logits(model, feature["input_ids"]) for feature in PAD_INSIDE])
    collator = padding_collator(model, PAD, torch.long)
    assert torch.allclose(logits(model, collator(PAD_INSIDE)), expected, atol=1e-5)
    assert torch.allclose(logits(model, collator(FEATURES)),
                          torch.stack([last_token_logits(model, f["input_ids"]) for f in FEATURES]), atol=1e-5)
    assert "attention_mask" not in collator(FEATURES)  # batches without the pad id inside stay right-padded


def test_that_pooling_is_padded_left_with_a_pad_column_only_where_the_pad_id_is_inside():
    collator = RightPadCausalCollator(PAD, width_multiple=8, pools_before_first_pad=True)
    batch = collator(PAD_INSIDE)
    assert batch["input_ids"].shape == (3, 8) and (batch["input_ids"][:, 0] == PAD).all()
    assert batch["attention_mask"][1].tolist() == [0] + [1] * 7
    assert batch["input_ids"][0].tolist() == [PAD] * 3 + [5, 6, PAD, 7, 8]
    assert batch["position_ids"][0].tolist() == [0, 0, 0, 0, 1, 2, 3, 4]
    assert "attention_mask" not in collator(FEATURES)
    assert pools_before_first_pad() == (tuple(int(p) for p in transformers.__version__.split(".")[:2]) < (4, 49))


def test_rounding_the_width_stops_at_the_longest_row_allowed():
    features = [{"input_ids": list(range(1, 11)), "labels": 0}, {"input_ids": [1, 2], "labels": 1}]
    assert RightPadCausalCollator(PAD, width_multiple=8)(features)["input_ids"].shape == (2, 16)
    assert RightPadCausalCollator(PAD, width_multiple=8, max_width=12)(features)["input_ids"].shape == (2, 12)
    assert RightPadCausalCollator(PAD, width_multiple=8, max_width=10)(features)["input_ids"].shape == (2, 10)


def test_left_padding_rounds_the_width_and_keeps_real_tokens_at_positions_from_zero():
    batch = LeftPadCollator(PAD, width_multiple=8)(FEATURES)
    assert batch["input_ids"].shape == (3, 8)
    assert batch["input_ids"][1].tolist() == [PAD] * 6 + [12, 13]
    assert batch["position_ids"][1].tolist() == [0] * 6 + [0, 1]
    assert batch["attention_mask"][1].tolist() == [0] * 6 + [1, 1]
    assert LeftPadCollator(PAD)(FEATURES)["input_ids"].shape == (3, 7)


def test_run_json_says_how_the_batches_are_padded():
    plain = RightPadCausalCollator(PAD, width_multiple=64).batches_note()
    assert plain["attention_mask"] is False and plain["padding_free"] is False
    assert "multiple of 64" in plain["reason"] and "padded on the left" not in plain["reason"]
    older = RightPadCausalCollator(PAD, width_multiple=64, pools_before_first_pad=True).batches_note()
    assert "padded on the left with a mask" in older["reason"]
