"""The baseline side of the training benchmark: what the seeds' scripts do, with plain transformers + PEFT.

SDPA attention, LoRA r=8 / alpha 16 / dropout 0.05 on every linear of the decoder, every layer
checkpointed, every example padded to the maximum length (seed 001's padding="max_length"; for
classification on the left, as seed 002 pads Llama), peft's ``prepare_model_for_kbit_training``
for QLoRA. Full fine-tuning: fp32 weights under bf16 autocast (Trainer's ``bf16=True``), torch's fused
AdamW; LoRA keeps Trainer's default optimizer, as the ftimg side does. The Trainer and its timing callback
are the same on both sides. On a GPU the weights load straight onto it (loading is not timed; this only
saves the benchmark's device time).
"""

import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, Trainer, TrainingArguments

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
LORA_DROPOUT = 0.05  # the seeds' value; the ftimg side keeps its job's own default
IGNORE_INDEX = -100
PAD_ID = 0
LEARNING_RATE = {"lora": 2e-4, "qlora": 2e-4, "full": 2e-5}  # the same as the ftimg jobs' defaults


class PadToMaxLength:
    """Every example padded to ``max_length``: right for causal LM (seed 001), left for classification (seed 002)."""

    def __init__(self, max_length: int, left: bool):
        self.max_length = max_length
        self.left = left

    def pad(self, values: list, filler) -> list:
        padding = [filler] * (self.max_length - len(values))
        return padding + values if self.left else values + padding

    def __call__(self, features):
        ids = [self.pad(list(f["input_ids"]), PAD_ID) for f in features]
        masks = [self.pad([1] * len(f["input_ids"]), 0) for f in features]
        labels = [self.pad(list(f["labels"]), IGNORE_INDEX) if isinstance(f["labels"], list) else f["labels"]
                  for f in features]
        return {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(masks), "labels": torch.tensor(labels)}


def baseline_model(case):
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import BitsAndBytesConfig

    from ftimg_jobs.model.load import dtype_kwargs

    classification = case["task"] == "cls"
    model_class = AutoModelForSequenceClassification if classification else AutoModelForCausalLM
    dtype = torch.float32 if case["method"] == "full" else torch.bfloat16
    kwargs = dict(attn_implementation="sdpa", **dtype_kwargs(dtype))
    if classification:
        kwargs.update(num_labels=2, pad_token_id=PAD_ID)
    if torch.cuda.is_available():
        kwargs["device_map"] = {"": 0}
    if case["method"] == "qlora":
        kwargs.update(quantization_config=BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16))
    model = model_class.from_pretrained(case["model_dir"], **kwargs)
    if case["method"] == "qlora":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=case["gc"])
    elif case["gc"]:
        model.gradient_checkpointing_enable()
        if case["method"] != "full":
            model.enable_input_require_grads()
    model.config.use_cache = not case["gc"]
    if case["method"] == "full":
        return model
    config = LoraConfig(r=8, lora_alpha=16, lora_dropout=LORA_DROPOUT, target_modules=LORA_TARGETS,
                        task_type="SEQ_CLS" if classification else "CAUSAL_LM")
    return get_peft_model(model, config)


def baseline_trainer(case, run_dir, train_dataset) -> tuple:
    """``(trainer, throughput callback, notes)``."""
    from ftimg_jobs.train.batches import CountingCollator
    from ftimg_jobs.train.throughput import ThroughputCallback

    model = baseline_model(case)
    full = case["method"] == "full"
    optimizer = {"optim": "adamw_torch_fused"} if full and torch.cuda.is_available() else {}
    args = TrainingArguments(output_dir=str(run_dir), per_device_train_batch_size=case["batch"],
                             max_steps=case["total_steps"], bf16=torch.cuda.is_available(),
                             learning_rate=LEARNING_RATE[case["method"]], gradient_checkpointing=case["gc"],
                             logging_steps=1, report_to="none", save_strategy="no", seed=42, disable_tqdm=True,
                             **optimizer)
    counting = CountingCollator(PadToMaxLength(case["seq"], left=case["task"] == "cls"))
    throughput = ThroughputCallback(counting, 1)
    trainer = Trainer(model=model, args=args, train_dataset=train_dataset, data_collator=counting,
                      callbacks=[throughput])
    optim = getattr(args.optim, "value", args.optim)
    return trainer, throughput, {"optimizer": optim, "lora_dropout": None if full else LORA_DROPOUT}
