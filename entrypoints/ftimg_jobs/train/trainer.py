"""The training jobs' Trainer: transformers' own, without host work it repeats every step for an answer that
cannot change, and without waiting for the GPU to log a step."""

from contextlib import contextmanager

from transformers import Trainer

from ftimg_jobs.train.deferred_logs import start_copy

# Steps a log may trail its step by before the host waits for it: the copy of step N's loss is done once
# the GPU works on step N + 1, so waiting then costs nothing.
MOST_PENDING_LOGS = 1


class JobTrainer(Trainer):
    """transformers' Trainer, with two kinds of host work taken out of every step.

    - The model's parameter count (for the FLOPs it logs) is taken once. transformers counts a step's
      FLOPs as 6 × tokens × parameters and counts the parameters again every step, a walk over every
      module: 6.7 ms of host time for a 7B-shaped LoRA Llama (2,665 modules) on a 2-core CPU.
    - A logged step's loss and gradient norm reach the host without a synchronisation (deferred_logs.py):
      the log is written once they have arrived, under the step it belongs to, and before any other log,
      checkpoint or evaluation. Data-parallel runs log as transformers does (the loss is gathered first).
    """

    counted_parameters = None

    def __init__(self, *args, **kwargs):
        self.pending_logs = []  # deferred_logs.PendingLog, oldest first
        self.log_start_time = None  # transformers 5 passes the training's start to the log, for tokens per second
        super().__init__(*args, **kwargs)

    def floating_point_ops(self, inputs) -> int:
        main_input = getattr(self.model, "main_input_name", "input_ids")
        if main_input not in inputs or not hasattr(self.model, "num_parameters"):
            return super().floating_point_ops(inputs)
        if self.counted_parameters is None:
            self.counted_parameters = self.model.num_parameters(exclude_embeddings=True)
        return 6 * inputs[main_input].numel() * self.counted_parameters

    def _maybe_log_save_evaluate(self, tr_loss, grad_norm, *args, **kwargs):
        """transformers' step end (log, evaluate, save). ``args``: model, trial, epoch, ignore_keys_for_eval, and
        from transformers 5 start_time; ``learning_rate`` is passed by transformers 5 only."""
        if len(args) > 4 or "start_time" in kwargs:
            self.log_start_time = args[4] if len(args) > 4 else kwargs["start_time"]
        if (self.control.should_log and self.state.global_step > self._globalstep_last_logged
                and self.args.world_size == 1):
            learning_rate = kwargs.get("learning_rate")
            self.pending_logs.append(start_copy(
                tr_loss, grad_norm, step=self.state.global_step, epoch=self.state.epoch,
                tokens_seen=getattr(self.state, "num_input_tokens_seen", None),
                steps_covered=self.state.global_step - self._globalstep_last_logged,
                learning_rate=self._get_learning_rate() if learning_rate is None else learning_rate))
            tr_loss -= tr_loss  # queued after the copy: the sum restarts for the next interval
            self._globalstep_last_logged = self.state.global_step
            self.control.should_log = False
        last = self.control.should_training_stop or self.state.global_step >= self.state.max_steps
        self.write_pending_logs(wait_for_all=last or self.control.should_save or self.control.should_evaluate)
        super()._maybe_log_save_evaluate(tr_loss, grad_norm, *args, **kwargs)

    def write_pending_logs(self, wait_for_all: bool = True) -> None:
        """Log the pending steps whose values have arrived, oldest first; wait for the rest where
        ``wait_for_all`` (or where more than MOST_PENDING_LOGS would stay)."""
        while self.pending_logs:
            record = self.pending_logs[0]
            if not record.ready():
                if not wait_for_all and len(self.pending_logs) <= MOST_PENDING_LOGS:
                    return
                record.wait()
            self.pending_logs.pop(0)
            self._total_loss_scalar += record.loss_sum
            self.store_flos()
            with self.state_at(record):
                Trainer.log(self, record.logs(), *([] if self.log_start_time is None else [self.log_start_time]))

    @contextmanager
    def state_at(self, record):
        """The trainer state as it was at ``record``'s step, for the log entry and the callbacks that read it."""
        now = {"global_step": record.step, "epoch": record.epoch}
        if record.tokens_seen is not None:
            now["num_input_tokens_seen"] = record.tokens_seen
        saved = {name: getattr(self.state, name) for name in now}
        for name, value in now.items():
            setattr(self.state, name, value)
        try:
            yield
        finally:
            for name, value in saved.items():
                setattr(self.state, name, value)

    def log(self, logs, *args, **kwargs) -> None:
        """Any other log (evaluation, the run's summary) comes after the steps' own."""
        self.write_pending_logs()
        super().log(logs, *args, **kwargs)
