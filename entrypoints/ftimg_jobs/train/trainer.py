"""The training jobs' Trainer: transformers' own, without host work it repeats every step for an answer that
cannot change."""

from transformers import Trainer


class JobTrainer(Trainer):
    """transformers' Trainer, with the model's parameter count (for the FLOPs it logs) taken once.

    transformers counts a step's FLOPs as 6 × tokens × parameters and counts the parameters again
    every step, a walk over every module: 6.7 ms of host time for a 7B-shaped LoRA Llama (2,665
    modules) on a 2-core CPU. Where the GPU waits on the host (QLoRA with checkpointed layers), the
    step pays it. The parameters do not change while training.
    """

    counted_parameters = None

    def floating_point_ops(self, inputs) -> int:
        main_input = getattr(self.model, "main_input_name", "input_ids")
        if main_input not in inputs or not hasattr(self.model, "num_parameters"):
            return super().floating_point_ops(inputs)
        if self.counted_parameters is None:
            self.counted_parameters = self.model.num_parameters(exclude_embeddings=True)
        return 6 * inputs[main_input].numel() * self.counted_parameters
