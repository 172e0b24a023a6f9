"""JobTrainer (train/trainer.py): the FLOPs it logs are transformers' own, with the parameters counted once."""

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")

from ftimg_jobs.train.trainer import JobTrainer  # noqa: E402


def test_flops_match_transformers_and_the_model_is_counted_once(tmp_path):
    config = transformers.LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=2, vocab_size=64)
    model = peft.get_peft_model(transformers.LlamaForCausalLM(config),
                                peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    args = transformers.TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    trainer = JobTrainer(model=model, args=args)
    counts = []
    count_parameters = model.num_parameters

    def counting(*args, **kwargs):
        counts.append(kwargs)
        return count_parameters(*args, **kwargs)

    batches = [{"input_ids": torch.zeros(2, length, dtype=torch.long)} for length in (8, 8, 13)]
    expected = [transformers.Trainer.floating_point_ops(trainer, inputs) for inputs in batches]
    model.num_parameters = counting
    assert [trainer.floating_point_ops(inputs) for inputs in batches] == expected
    assert len(counts) == 1  # JobTrainer counted once; transformers counts at every call
    assert trainer.floating_point_ops({"labels": torch.zeros(2, 8)}) == 0  # no input ids: transformers' answer


# transformers 4.x logs the loss rounded to 4 decimals (the images' default stack); 5.x and JobTrainer do not.
TRANSFORMERS_4_ROUNDING = 5e-5


class StepsAndLogs(transformers.TrainerCallback):
    """When each log was written: the step it names, and how many steps had ended by then."""

    def __init__(self):
        self.ended, self.logs = 0, []

    def on_step_end(self, args, state, control, **kwargs):
        self.ended += 1

    def on_log(self, args, state, control, logs=None, **kwargs):
        if "loss" in logs:
            self.logs.append((state.global_step, self.ended, logs["loss"], logs.get("grad_norm")))


def train_tiny(trainer_class, tmp_path, steps=5, logging_steps=1):
    config = transformers.LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=2, vocab_size=64)
    transformers.set_seed(0)
    model = peft.get_peft_model(transformers.LlamaForCausalLM(config),
                                peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    examples = [{"input_ids": torch.arange(index, index + 12) % 64, "labels": torch.arange(index, index + 12) % 64}
                for index in range(steps * 2)]
    args = transformers.TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True, max_steps=steps,
                                          per_device_train_batch_size=2, logging_steps=logging_steps,
                                          learning_rate=1e-2, save_strategy="no", disable_tqdm=True, seed=0)
    watcher = StepsAndLogs()
    trainer = trainer_class(model=model, args=args, train_dataset=examples, callbacks=[watcher])
    output = trainer.train()
    return trainer, watcher, output


@pytest.mark.parametrize("logging_steps", [1, 2])
def test_logged_losses_and_the_training_loss_are_transformers_own(tmp_path, logging_steps):
    ours, our_watch, our_output = train_tiny(JobTrainer, tmp_path / "ours", logging_steps=logging_steps)
    theirs, their_watch, their_output = train_tiny(transformers.Trainer, tmp_path / "theirs",
                                                   logging_steps=logging_steps)
    step_logs = [{k: v for k, v in entry.items() if k in ("loss", "grad_norm", "learning_rate", "step", "epoch")}
                 for entry in ours.state.log_history if "loss" in entry]
    their_step_logs = [{k: v for k, v in entry.items() if k in ("loss", "grad_norm", "learning_rate", "step", "epoch")}
                       for entry in theirs.state.log_history if "loss" in entry]
    assert [entry["step"] for entry in step_logs] == list(range(logging_steps, 6, logging_steps))
    assert len(step_logs) == len(their_step_logs)
    for mine, reference in zip(step_logs, their_step_logs):
        assert mine.keys() == reference.keys()
        for key in mine:
            assert mine[key] == pytest.approx(reference[key], rel=1e-6, abs=TRANSFORMERS_4_ROUNDING), key
    assert our_output.training_loss == pytest.approx(their_output.training_loss, rel=1e-6)
    assert "train_runtime" in ours.state.log_history[-1]  # the run's summary still comes last


class NotYetCopied:
    """A CUDA event stand-in: the copy has not arrived until someone waits for it."""

    def __init__(self):
        self.waited = False

    def query(self):
        return self.waited

    def synchronize(self):
        self.waited = True


def test_a_step_is_logged_a_step_later_under_its_own_step_and_the_last_before_training_ends(tmp_path, monkeypatch):
    from ftimg_jobs.train import trainer as trainer_module

    copies, start_copy = [], trainer_module.start_copy

    def slow_copy(*args, **kwargs):
        record = start_copy(*args, **kwargs)
        record.arrived = NotYetCopied()
        copies.append(record)
        return record

    monkeypatch.setattr(trainer_module, "start_copy", slow_copy)
    ours, watcher, _ = train_tiny(JobTrainer, tmp_path / "deferred")
    _, reference, _ = train_tiny(transformers.Trainer, tmp_path / "reference")
    assert len(copies) == 5
    # (step named, steps ended when written): each waits for the next step's end; the last is written at once.
    assert [(step, ended) for step, ended, _, _ in watcher.logs] == [(1, 2), (2, 3), (3, 4), (4, 5), (5, 5)]
    assert [loss for _, _, loss, _ in watcher.logs] == pytest.approx([loss for _, _, loss, _ in reference.logs],
                                                                     abs=TRANSFORMERS_4_ROUNDING)
    assert [norm for _, _, _, norm in watcher.logs] == pytest.approx([norm for _, _, _, norm in reference.logs])
    assert ours.state.global_step == 5  # the state is restored after writing an older step's log
