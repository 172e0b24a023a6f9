"""Write the run's fingerprint into its output directory and every checkpoint it saves."""

import os

from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from ftimg_jobs.train.fingerprint import write_fingerprint


class FingerprintCheckpoints(TrainerCallback):
    """Carries what run.json records about this run's output: the fingerprint, the lock, the resume plan."""

    def __init__(self, document: dict, record: dict):
        self.document = document
        self.record = record

    def writes_files(self, args, state) -> bool:
        return state.is_world_process_zero or (args.save_on_each_node and state.is_local_process_zero)

    def on_train_begin(self, args, state, control, **kwargs):
        # Written now, not at start-up: every rank has chosen its checkpoint by the time training begins.
        if self.writes_files(args, state):
            write_fingerprint(args.output_dir, self.document)

    def on_save(self, args, state, control, **kwargs):
        if self.writes_files(args, state):
            checkpoint = os.path.join(args.output_dir, f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}")
            if os.path.isdir(checkpoint):
                write_fingerprint(checkpoint, self.document)
