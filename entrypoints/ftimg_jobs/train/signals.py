"""Stop cleanly on SIGTERM/SIGINT: save a checkpoint at the next step boundary, then exit 143/130.

``docker stop`` sends SIGTERM and waits (10 s by default) before SIGKILL; the
checkpoint lets ``--resume_from_checkpoint auto`` continue the run later.
"""

import signal
import sys

import torch
from transformers import TrainerCallback

from ftimg_jobs.launch import SIGNAL_EXIT_CODES


class StopOnSignal(TrainerCallback):
    """Turns a termination signal into 'save a checkpoint and stop training' at the next step end."""

    def __init__(self):
        self.received = None
        self.stopped_early = False
        for signum in SIGNAL_EXIT_CODES:
            signal.signal(signum, self.handle)

    def handle(self, signum, _frame):
        if self.received is not None:
            # A second signal means 'now': give up on the checkpoint.
            sys.exit(SIGNAL_EXIT_CODES[signum])
        self.received = signum
        print(f"ftimg_jobs: received {signal.Signals(signum).name}; saving a checkpoint at the next step",
              file=sys.stderr, flush=True)

    @property
    def exit_code(self):
        return SIGNAL_EXIT_CODES[self.received] if self.received is not None else 0

    def stop_requested_anywhere(self, args) -> bool:
        """All ranks must stop at the same step, or the next collective would hang."""
        requested = self.received is not None
        if torch.distributed.is_available() and torch.distributed.is_initialized() \
                and torch.distributed.get_world_size() > 1:
            flag = torch.tensor([1.0 if requested else 0.0], device=args.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            requested = bool(flag.item())
        return requested

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            print(f"ftimg_jobs: training from step {state.global_step} to {state.max_steps}",
                  file=sys.stderr, flush=True)

    def on_step_end(self, args, state, control, **kwargs):
        if self.stop_requested_anywhere(args):
            control.should_save = True
            control.should_training_stop = True
            self.stopped_early = state.global_step < state.max_steps
            if self.received is None:
                # Another rank's signal came first (a node's signal can arrive later, or not before its
                # task is ended): this rank stops at the same step, and says why.
                print(f"ftimg_jobs: another rank received a stop signal; saving a checkpoint at step "
                      f"{state.global_step}", file=sys.stderr, flush=True)
                self.received = signal.SIGTERM
        return control
