"""The ftimg side of the training benchmark: the jobs' own flag parsing and model/collator setup.

These functions follow jobs/sft.py and jobs/cls.py from the parsed flags to the Trainer,
calling the same builder (train/builder.py); only the data comes from the benchmark.
Every flag is the job's default except the ones the comparison fixes: sequence
length, batch, steps, LoRA rank/alpha (the same as the baseline's), seed, no
checkpoint saving, and the case's own flags (e.g. --gpu_memory_budget_gib 24).
"""

from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

PAD_ID = 0
JOBS = {("causal", "lora"): "lora-sft", ("causal", "qlora"): "qlora-sft", ("causal", "full"): "full-sft",
        ("cls", "lora"): "lora-cls", ("cls", "qlora"): "qlora-cls", ("cls", "full"): "full-cls"}


def job_argv(case, run_dir) -> list:
    return ["--model_name_or_path", case["model_dir"], "--output_dir", str(run_dir),
            "--model_max_length", str(case["seq"]), "--per_device_train_batch_size", str(case["batch"]),
            "--max_steps", str(case["total_steps"]), "--report_to", "none", "--save_strategy", "no",
            "--lora_r", "8", "--lora_alpha", "16", "--seed", "42", "--logging_steps", "1",
            "--disable_tqdm", "True", *case["argv"]]


def ftimg_sft_trainer(case, run_dir, train_dataset) -> tuple:
    """jobs/sft.py from its parsed flags to its Trainer; returns ``(trainer, throughput callback, notes)``."""
    from ftimg_jobs.args.parser import parse_job_args
    from ftimg_jobs.data.collate import WIDTH_MULTIPLE, LeftPadCollator
    from ftimg_jobs.jobs.sft import ARGUMENT_CLASSES
    from ftimg_jobs.train.builder import CAUSAL_LM, build_collator, build_training_model, speed_callbacks
    from ftimg_jobs.train.trainer import JobTrainer

    parsed = parse_job_args(JOBS["causal", case["method"]], job_argv(case, run_dir), ARGUMENT_CLASSES)
    model_args, lora_args, data_args, speed_args, training_args = parsed.instances
    model, attention, notes = build_training_model(
        AutoModelForCausalLM, model_args, lora_args, training_args, speed_args, task_type=CAUSAL_LM,
        tokens_per_step=training_args.per_device_train_batch_size * data_args.model_max_length)
    padding = LeftPadCollator(PAD_ID, width_multiple=WIDTH_MULTIPLE)  # as jobs/sft.py pads
    collator, throughput = build_collator(padding, speed_args, attention, training_args, notes)
    trainer = JobTrainer(model=model, args=training_args, train_dataset=train_dataset, data_collator=collator,
                         callbacks=speed_callbacks(speed_args, throughput, notes))
    return trainer, throughput, {"attention": attention["implementation"],
                                 "lora_dropout": lora_args.lora_dropout if lora_args.use_lora else None, **notes}


def ftimg_cls_trainer(case, run_dir, train_dataset) -> tuple:
    """jobs/cls.py from its parsed flags to its Trainer (two classes, integer labels)."""
    import torch

    from ftimg_jobs.args.parser import parse_job_args
    from ftimg_jobs.jobs.cls import ARGUMENT_CLASSES, SEQ_CLS, padding_collator
    from ftimg_jobs.train.builder import build_collator, build_training_model, speed_callbacks
    from ftimg_jobs.train.trainer import JobTrainer

    parsed = parse_job_args(JOBS["cls", case["method"]], job_argv(case, run_dir), ARGUMENT_CLASSES)
    model_args, lora_args, data_args, speed_args, training_args = parsed.instances
    head_config = {"num_labels": 2, "problem_type": "single_label_classification", "pad_token_id": PAD_ID,
                   "id2label": {0: "0", 1: "1"}, "label2id": {"0": 0, "1": 1}}
    model, attention, notes = build_training_model(
        AutoModelForSequenceClassification, model_args, lora_args, training_args, speed_args, task_type=SEQ_CLS,
        tokens_per_step=training_args.per_device_train_batch_size * data_args.model_max_length, **head_config)
    padding = padding_collator(model, PAD_ID, torch.long, data_args.model_max_length)
    collator, throughput = build_collator(padding, speed_args, attention, training_args, notes, task_type=SEQ_CLS)
    trainer = JobTrainer(model=model, args=training_args, train_dataset=train_dataset, data_collator=collator,
                         callbacks=speed_callbacks(speed_args, throughput, notes))
    return trainer, throughput, {"attention": attention["implementation"],
                                 "lora_dropout": lora_args.lora_dropout if lora_args.use_lora else None, **notes}
