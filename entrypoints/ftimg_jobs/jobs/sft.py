"""Supervised fine-tuning (SFT) of a causal LM: qlora-sft, lora-sft, full-sft.

One GPU, or CPU (no arguments: the embedded tiny model and sample data):
    python -m ftimg_jobs lora-sft --model_name_or_path /models/llama --data_path data.jsonl --output_dir out
All GPUs of this machine (re-executes itself under torchrun, one process per GPU):
    python -m ftimg_jobs qlora-sft --model_name_or_path /models/llama --data_path data.jsonl --bf16 True
Explicit torchrun / DeepSpeed / YAML config:
    torchrun --nproc_per_node 8 -m ftimg_jobs full-sft --deepspeed zero3 --data_path data.jsonl
    python -m ftimg_jobs lora-sft my.yaml --lora_r 16
Two nodes: NNODES=2 NODE_RANK=0|1 MASTER_ADDR=10.0.0.1 MASTER_PORT=29500 python -m ftimg_jobs lora-sft ...

Records may be alpaca, sharegpt, OpenAI messages (tools, typed parts, per-turn
weights), prompt/completion or raw text (JSON, JSONL, CSV, Parquet), or any
fields described by --dataset_spec FILE (entrypoints/data/README.md). Only assistant/completion tokens are trained unless --train_on_prompt.
"""


from transformers import AutoModelForCausalLM

from ftimg_jobs.args.data import SftDataArguments
from ftimg_jobs.args.model import LoraArguments, ModelArguments
from ftimg_jobs.args.speed import SpeedArguments
from ftimg_jobs.args.training import TrainingArguments
from ftimg_jobs.data.collate import WIDTH_MULTIPLE, LeftPadCollator, TokenizedDataset
from ftimg_jobs.data.loading import load_sft_data
from ftimg_jobs.data.mixing import split_train_eval
from ftimg_jobs.data.tokenization import pack_sequences, tokenize_examples
from ftimg_jobs.errors import JobError
from ftimg_jobs.model.lora import count_parameters
from ftimg_jobs.model.tokenizer import load_tokenizer
from ftimg_jobs.run_manifest import data_files_info
from ftimg_jobs.train.builder import CAUSAL_LM, build_collator, build_training_model, speed_callbacks
from ftimg_jobs.train.outputs import finish_run
from ftimg_jobs.train.setup import start_training
from ftimg_jobs.train.signals import StopOnSignal
from ftimg_jobs.train.trainer import JobTrainer

ARGUMENT_CLASSES = (ModelArguments, LoraArguments, SftDataArguments, SpeedArguments, TrainingArguments)


def build_dataset(examples, tokenizer, data_args, log, name: str):
    # Packed examples are cut at block boundaries instead of being truncated one by one.
    max_length = None if data_args.packing else data_args.model_max_length
    sequences, dropped = tokenize_examples(examples, tokenizer, max_length, data_args.train_on_prompt)
    if dropped:
        log.warning("%s: dropped %d example(s) whose answer lies beyond --model_max_length %d",
                    name, dropped, data_args.model_max_length)
    if not sequences:
        raise JobError(f"{name}: no example has answer tokens within --model_max_length "
                       f"{data_args.model_max_length}; raise it")
    if data_args.packing:
        sequences = pack_sequences(sequences, data_args.model_max_length)
    return TokenizedDataset({"input_ids": ids, "labels": labels} for ids, labels in sequences)


def main(job: str, argv: list) -> int:
    start = start_training(job, argv, ARGUMENT_CLASSES)
    parsed, log, resumed_from, started = start.parsed, start.log, start.resumed_from, start.started
    model_args, lora_args, data_args, speed_args, training_args = parsed.instances

    tokenizer, tokenizer_notes = load_tokenizer(model_args.model_name_or_path, model_args.trust_remote_code)
    data = load_sft_data(data_args, data_args.data_path, training_args.seed)
    data_format, examples = data.format, data.train[:data_args.max_num_samples or None]
    for note in data.notes:
        log.info(note)
    if "text" in data_format.split("+") and not data_args.packing:
        # Continued pre-training learns every token of long documents: blocks, not truncated examples.
        log.info("data: raw text records, so --packing True (blocks of --model_max_length tokens)")
        data_args.packing = True
    if data.eval is not None:
        eval_examples = data.eval
    else:
        examples, eval_examples = split_train_eval(examples, data_args.val_set_size, training_args.seed)
    train_dataset = build_dataset(examples, tokenizer, data_args, log, data_args.data_path)
    eval_dataset = build_dataset(eval_examples, tokenizer, data_args, log, "eval data") if eval_examples else None
    log.info("data: %s format, %d training sequences%s", data_format, len(train_dataset),
             f", {len(eval_dataset)} eval" if eval_dataset else "")

    model, attention, speed_notes = build_training_model(
        AutoModelForCausalLM, model_args, lora_args, training_args, speed_args, task_type=CAUSAL_LM,
        tokens_per_step=training_args.per_device_train_batch_size * data_args.model_max_length,
        resume_from=resumed_from)
    padding = LeftPadCollator(tokenizer.pad_token_id, width_multiple=WIDTH_MULTIPLE)
    collator, throughput = build_collator(padding, speed_args, attention, training_args, speed_notes)

    stop = StopOnSignal()
    trainer = JobTrainer(model=model, args=training_args, train_dataset=train_dataset, eval_dataset=eval_dataset,
                         data_collator=collator, processing_class=tokenizer,
                         callbacks=[stop, start.fingerprints, *speed_callbacks(speed_args, throughput, speed_notes)])
    if resumed_from:
        log.info("resuming from %s", resumed_from)
    train_output = trainer.train(resume_from_checkpoint=resumed_from)
    eval_metrics = trainer.evaluate() if eval_dataset is not None and not stop.stopped_early else {}

    return finish_run(
        trainer, job=job, parsed=parsed.instances, stop=stop, train_output=train_output, started=started,
        data_files=data_files_info(data.files),
        attention=attention, eval_metrics=eval_metrics, resumed_from=resumed_from,
        extra={"data_format": data_format, "tokenizer_notes": tokenizer_notes,
               "parameters": count_parameters(model), "precision_note": parsed.notes["precision"],
               "speed": {**speed_notes, "flash4_kernel_cache": start.kernel_cache, "throughput": throughput.summary()}})
