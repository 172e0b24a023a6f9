"""Loss masking, truncation and packing of SFT sequences, with a character-level fake tokenizer."""

from ftimg_jobs.data.formats import SftExample
from char_tokenizer import CharTokenizer, trained_text

from ftimg_jobs.data.tokenization import IGNORE_INDEX, pack_sequences, tokenize_example, tokenize_examples


def test_only_assistant_turns_are_trained():
    example = SftExample(messages=(
        {"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "q2"}, {"role": "assistant", "content": "a2"}))
    input_ids, labels = tokenize_example(example, CharTokenizer(), max_length=1000, train_on_prompt=False)
    assert "".join(map(chr, input_ids)) == "<user>q1|<assistant>a1|<user>q2|<assistant>a2|"
    assert trained_text(input_ids, labels) == "a1|a2|"


def test_train_on_prompt_trains_everything():
    example = SftExample(messages=({"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}))
    input_ids, labels = tokenize_example(example, CharTokenizer(), max_length=1000, train_on_prompt=True)
    assert labels == input_ids


def test_prompt_completion_masks_prompt_and_appends_eos():
    input_ids, labels = tokenize_example(SftExample(prompt="ab", completion="cd"), CharTokenizer(), 1000, False)
    assert input_ids == [1, ord("a"), ord("b"), ord("c"), ord("d"), 2]
    assert labels == [IGNORE_INDEX] * 3 + [ord("c"), ord("d"), 2]


def test_examples_truncated_past_their_answer_are_dropped():
    long_prompt = SftExample(prompt="x" * 50, completion="y")
    short = SftExample(prompt="x", completion="y")
    kept, dropped = tokenize_examples([long_prompt, short], CharTokenizer(), max_length=10, train_on_prompt=False)
    assert dropped == 1 and len(kept) == 1 and len(kept[0][0]) == 4


def test_packing_cuts_fixed_blocks_and_keeps_labels_aligned():
    sequences = [([1, 2, 3], [IGNORE_INDEX, 2, 3]), ([4, 5, 6, 7], [IGNORE_INDEX, IGNORE_INDEX, 6, 7])]
    blocks = pack_sequences(sequences, block_size=3)
    assert blocks == [([1, 2, 3], [IGNORE_INDEX, 2, 3]), ([4, 5, 6], [IGNORE_INDEX, IGNORE_INDEX, 6]), ([7], [7])]


def test_packing_drops_a_tail_without_trained_tokens():
    assert pack_sequences([([1, 2, 3], [1, 2, IGNORE_INDEX])], block_size=2) == [([1, 2], [1, 2])]
