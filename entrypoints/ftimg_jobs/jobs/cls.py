"""Sequence classification / regression with an LLM backbone: qlora-cls, lora-cls, full-cls.

One GPU, or CPU (no arguments: the embedded tiny model and sample sentiment data):
    python -m ftimg_jobs lora-cls --model_name_or_path /models/llama --data_path train.jsonl --output_dir out
All GPUs of this machine (re-executes itself under torchrun, one process per GPU):
    python -m ftimg_jobs qlora-cls --model_name_or_path /models/llama --data_path train.jsonl --bf16 True
Explicit torchrun:
    torchrun --nproc_per_node 4 -m ftimg_jobs full-cls --deepspeed zero2 --data_path train.jsonl

Records are {"text": ..., "label": ...}. String or integer labels → N classes
(sorted; the map is saved as config id2label/label2id and label_map.json);
float labels → regression with one output. Metrics: accuracy + macro-F1, or
MSE + Pearson, on --eval_data_path or a --val_set_size hold-out, whose
predictions are written to predictions.jsonl.
"""

import json
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification

from ftimg_jobs.args.data import ClsDataArguments
from ftimg_jobs.args.model import LoraArguments, ModelArguments
from ftimg_jobs.args.speed import SpeedArguments
from ftimg_jobs.args.training import TrainingArguments
from ftimg_jobs.data.collate import WIDTH_MULTIPLE, LeftPadCollator, RightPadCausalCollator, TokenizedDataset
from ftimg_jobs.data.labels import check_labels_known, infer_label_schema
from ftimg_jobs.data.loading import load_cls_data
from ftimg_jobs.data.mixing import split_train_eval
from ftimg_jobs.model.causal import attends_causally, pools_before_first_pad
from ftimg_jobs.model.lora import count_parameters
from ftimg_jobs.model.tokenizer import load_tokenizer
from ftimg_jobs.run_manifest import data_files_info
from ftimg_jobs.train.builder import build_collator, build_training_model, speed_callbacks
from ftimg_jobs.train.metrics import classification_metrics, regression_metrics
from ftimg_jobs.train.outputs import finish_run
from ftimg_jobs.train.setup import start_training
from ftimg_jobs.train.signals import StopOnSignal
from ftimg_jobs.train.trainer import JobTrainer

ARGUMENT_CLASSES = (ModelArguments, LoraArguments, ClsDataArguments, SpeedArguments, TrainingArguments)
SEQ_CLS = "SEQ_CLS"


def encode(records, schema, tokenizer, max_length: int) -> TokenizedDataset:
    return TokenizedDataset(
        {"input_ids": tokenizer(record.data["text"], truncation=True, max_length=max_length)["input_ids"],
         "labels": schema.encode(record.data["label"])}
        for record in records)


def metrics_function(schema):
    def compute(eval_prediction):
        logits, labels = eval_prediction.predictions, eval_prediction.label_ids
        if schema.problem_type == "regression":
            return regression_metrics(np.reshape(logits, -1).tolist(), np.reshape(labels, -1).tolist())
        return classification_metrics(np.argmax(logits, axis=-1).tolist(), labels.tolist(), schema.num_labels)
    return compute


def padding_collator(model, pad_token_id: int, label_dtype, max_length: int = 0):
    """A causal decoder needs no padding mask with right padding (data/collate.py), an encoder does."""
    if attends_causally(model):
        return RightPadCausalCollator(pad_token_id, label_dtype=label_dtype, max_width=max_length,
                                      pools_before_first_pad=pools_before_first_pad())
    return LeftPadCollator(pad_token_id, label_dtype=label_dtype, width_multiple=WIDTH_MULTIPLE)


def write_predictions(path: Path, records, logits, schema) -> None:
    """One line per evaluation record: text, true label and the predicted label (or score)."""
    with open(path, "w", encoding="utf-8") as handle:
        for record, row in zip(records, logits):
            predicted = float(row.reshape(-1)[0]) if schema.problem_type == "regression" \
                else schema.labels[int(np.argmax(row))]
            handle.write(json.dumps({"text": record.data["text"], "label": record.data["label"],
                                     "prediction": predicted}, ensure_ascii=False) + "\n")


def main(job: str, argv: list) -> int:
    start = start_training(job, argv, ARGUMENT_CLASSES)
    parsed, log, resumed_from, started = start.parsed, start.log, start.resumed_from, start.started
    model_args, lora_args, data_args, speed_args, training_args = parsed.instances

    data = load_cls_data(data_args, data_args.data_path, training_args.seed)
    for note in data.notes:
        log.info(note)
    records = data.train[:data_args.max_num_samples or None]
    if data.eval is not None:
        eval_records = data.eval
    else:
        records, eval_records = split_train_eval(records, data_args.val_set_size, training_args.seed)
    schema = infer_label_schema(records, data_args.task_type, source=data_args.data_path)
    check_labels_known(eval_records, schema)
    log.info("data: %s, %d training / %d eval records, labels %s", schema.problem_type, len(records),
             len(eval_records), list(schema.labels) or "(regression)")

    tokenizer, tokenizer_notes = load_tokenizer(model_args.model_name_or_path, model_args.trust_remote_code)
    train_dataset = encode(records, schema, tokenizer, data_args.model_max_length)
    eval_dataset = encode(eval_records, schema, tokenizer, data_args.model_max_length) if eval_records else None

    head_config = {"num_labels": schema.num_labels, "problem_type": schema.problem_type,
                   "pad_token_id": tokenizer.pad_token_id}
    if schema.labels:
        head_config.update(id2label=schema.id2label(), label2id=schema.label2id())
    model, attention, speed_notes = build_training_model(
        AutoModelForSequenceClassification, model_args, lora_args, training_args, speed_args, task_type=SEQ_CLS,
        tokens_per_step=training_args.per_device_train_batch_size * data_args.model_max_length,
        resume_from=resumed_from, **head_config)
    label_dtype = torch.float32 if schema.problem_type == "regression" else torch.long
    padding = padding_collator(model, tokenizer.pad_token_id, label_dtype, data_args.model_max_length)
    collator, throughput = build_collator(padding, speed_args, attention, training_args, speed_notes,
                                          task_type=SEQ_CLS)

    stop = StopOnSignal()
    trainer = JobTrainer(model=model, args=training_args, train_dataset=train_dataset, eval_dataset=eval_dataset,
                         data_collator=collator, processing_class=tokenizer, compute_metrics=metrics_function(schema),
                         callbacks=[stop, start.fingerprints, *speed_callbacks(speed_args, throughput, speed_notes)])
    train_output = trainer.train(resume_from_checkpoint=resumed_from)

    eval_metrics = {}
    output_dir = Path(training_args.output_dir)
    if trainer.is_world_process_zero():
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "label_map.json").write_text(
            json.dumps(schema.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if eval_dataset is not None and not stop.stopped_early:
        prediction = trainer.predict(eval_dataset, metric_key_prefix="eval")
        eval_metrics = prediction.metrics
        if trainer.is_world_process_zero():
            write_predictions(output_dir / "predictions.jsonl", eval_records, prediction.predictions, schema)
    if lora_args.use_lora and trainer.is_world_process_zero() and not stop.stopped_early:
        # An adapter directory has no config.json of its own; saving the base config with the
        # head's id2label/label2id keeps the label map with the model (full FT saves it anyway).
        model.get_base_model().config.save_pretrained(output_dir)

    return finish_run(
        trainer, job=job, parsed=parsed.instances, stop=stop, train_output=train_output, started=started,
        data_files=data_files_info(data.files),
        attention=attention, eval_metrics=eval_metrics, resumed_from=resumed_from,
        extra={"problem_type": schema.problem_type, "label_map": schema.to_json(),
               "tokenizer_notes": tokenizer_notes, "parameters": count_parameters(model),
               "precision_note": parsed.notes["precision"],
               "speed": {**speed_notes, "flash4_kernel_cache": start.kernel_cache, "throughput": throughput.summary()}})
