"""Decoding at the GPU's speed: a static KV cache and a decode step replayed as a CUDA graph.

Eager decoding of a 7B model on these hosts is bound by the CPU launching ~1,000 small
kernels per step, not by the GPU. Here one decode step (the model's forward for one
token per slot, the choice of the next token, and the bookkeeping of positions) is
captured once per shape as a CUDA graph and replayed, so a step costs one launch.
Shapes stay fixed because the KV cache is allocated up front (slot_cache.py); a row's tokens
sit at columns 0..its position, and the step tells attention so from the positions
(decode_attention.py: a boolean mask over the whole cache, or each row's own column count to
FlashAttention-4, which then reads only those columns).

The host loop (`StaticEngine.generate`) follows scheduler.py: segments of prompts
with one cache length each, slots refilled with waiting prompts as rows finish, and a
smaller graph once few rows are left. Prefill (the prompts' own forward pass) runs
eagerly: it is a few large matrix products per call, already GPU-bound. Its prompts are
right-padded and run with no attention mask, so SDPA takes its causal flash kernel
rather than the masked one (`SegmentRun.prefill` says why that is exact). Rows are
checked every BLOCK_STEPS steps, the only host synchronisation while decoding.

The captured step is the model's own eager forward: torch.compile of the step before
capture was measured slower on an H200 with a 7B model at 128 rows (76 s to compile,
then 45-55 ms a step against 16-18 ms for the captured eager step).
"""

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Dict, Hashable, List, Optional, Sequence

import torch

from ftimg_jobs.generate.decode_attention import DecodeAttention, SlotBlocks, choose_decode_attention
from ftimg_jobs.generate.memory import PREFILL_TOKENS, ModelShape, cache_gib, slots_that_fit
from ftimg_jobs.generate.sampling import SamplingSettings, mark_seen, next_tokens
from ftimg_jobs.generate.scheduler import Segment, plan_segments, refill_count, shrink_to
from ftimg_jobs.generate.slot_cache import SlotCache
from ftimg_jobs.generate.stops import Decode, find_ending
from ftimg_jobs.model.flash4_attention import SLOT_LENGTHS

# Steps replayed between looks at the generated tokens: rows that end mid-block waste at
# most this many steps, and each look is one host synchronisation.
BLOCK_STEPS = 16


@dataclass(frozen=True)
class EngineSettings:
    max_new_tokens: int
    sampling: SamplingSettings
    eos_token_ids: frozenset
    pad_token_id: int
    stop_strings: tuple = ()
    decode: Optional[Decode] = None  # token ids -> text; needed for stop strings
    max_slots: Optional[int] = None  # --batch_size: rows decoded together (default: what memory holds)
    # "auto", "mask", "flash4" or "flex": how a decode step's attention reads the cache (decode_attention.py)
    decode_attention: str = "auto"


@dataclass(frozen=True)
class Finished:
    record_id: Hashable
    token_ids: List[int]
    reason: str  # "eos", "stop" or "length"
    text_end: Optional[int]  # for "stop": where the stop string starts in the decoded text


@dataclass
class EngineStats:
    segments: List[dict] = field(default_factory=list)
    capture_seconds: float = 0.0  # each graph's warm-up step and capture
    prefill_seconds: float = 0.0
    prefill_calls: int = 0
    prompt_tokens: int = 0  # real prompt tokens prefilled
    padded_tokens: int = 0  # prompt tokens plus the padding that evened each call's rows
    decode_seconds: float = 0.0
    decode_steps: int = 0
    generated_tokens: int = 0
    graphs: int = 0


def model_shape(model) -> ModelShape:
    config = model.config
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return ModelShape(layers=config.num_hidden_layers, kv_heads=getattr(config, "num_key_value_heads", None) or heads,
                      head_dim=head_dim, hidden=config.hidden_size, intermediate=config.intermediate_size,
                      vocab=config.vocab_size, dtype_bytes=torch.finfo(model.dtype).bits // 8)


def prefill_groups(slots: List[int], record_ids: List[Hashable], prompts: Dict[Hashable, List[int]]):
    """Consecutive (slots, ids) groups of at most PREFILL_TOKENS padded tokens (a long prompt goes alone)."""
    group_slots, group_ids, width = [], [], 0
    for slot, record_id in zip(slots, record_ids):
        length = len(prompts[record_id])
        if group_ids and max(width, length) * (len(group_ids) + 1) > PREFILL_TOKENS:
            yield group_slots, group_ids
            group_slots, group_ids, width = [], [], 0
        group_slots.append(slot)
        group_ids.append(record_id)
        width = max(width, length)
    if group_ids:
        yield group_slots, group_ids


@dataclass
class Row:
    record_id: Hashable
    tokens: List[int]
    checked: int = 0  # tokens already looked at for an ending


class SegmentRun:
    """One segment's cache, per-slot state and captured graphs; `slots` shrinks as rows finish."""

    def __init__(self, engine: "StaticEngine", segment: Segment):
        self.engine = engine
        model, device = engine.model, engine.device
        shape = engine.shape
        self.cache_length = segment.cache_length
        self.full = SlotCache.allocate(shape.layers, segment.slots, shape.kv_heads, segment.cache_length,
                                       shape.head_dim, model.dtype, device)
        self.slots = segment.slots
        slots = segment.slots
        self.tokens = torch.zeros(slots, dtype=torch.long, device=device)
        self.block = torch.zeros(slots, BLOCK_STEPS, dtype=torch.long, device=device)
        self.cursor = torch.zeros(1, dtype=torch.long, device=device)
        self.columns = torch.arange(segment.cache_length, device=device)
        self.seen = (torch.zeros(slots, shape.vocab, dtype=torch.bool, device=device)
                     if engine.settings.sampling.tracks_seen_tokens else None)
        self.pool = torch.cuda.graph_pool_handle() if device.type == "cuda" else None
        self.replays: Dict[int, Callable[[], None]] = {}

    def step_for(self, rows: int) -> Callable[[], None]:
        """The decode step over the first `rows` slots (views of the full buffers)."""
        cache = self.full if rows == self.full.slots else self.full.first_rows(rows)
        tokens, block = self.tokens[:rows], self.block[:rows]
        seen = self.seen[:rows] if self.seen is not None else None
        cursor, columns, last = self.cursor, self.columns, self.cache_length - 1
        model, sampling = self.engine.model, self.engine.settings.sampling

        attention = self.engine.decode_attention
        blocks = SlotBlocks(cache.positions, self.cache_length) if attention == "flex" else None

        def step() -> None:
            positions = cache.positions
            # Row r's tokens are at columns 0..positions[r] (its prompt from column 0, then one a step).
            if blocks is not None:
                mask = blocks.mask()
            else:
                mask = (columns[None, :] <= positions[:, None])[:, None, None]
            lengths = {SLOT_LENGTHS: positions.add(1).to(torch.int32)} if attention == "flash4" else {}
            logits = model(input_ids=tokens[:, None], attention_mask=mask, position_ids=positions[:, None],
                           past_key_values=cache, use_cache=True, **lengths).logits
            chosen = next_tokens(logits[:, -1, :], sampling, seen)
            if seen is not None:
                mark_seen(seen, chosen)
            tokens.copy_(chosen)
            block.scatter_(1, cursor.view(1, 1).expand(rows, 1), chosen[:, None])
            cursor.add_(1)
            # A finished row keeps stepping until the host looks; clamping keeps it inside its own row.
            positions.add_(1).clamp_(max=last)

        return step

    def replay_for(self, rows: int) -> Callable[[], None]:
        if rows not in self.replays:
            started = time.time()
            self.replays[rows] = self.engine.capture(self.step_for(rows), self.pool, self.state_tensors(rows))
            self.engine.stats.capture_seconds += time.time() - started
            self.engine.stats.graphs += 1
        return self.replays[rows]

    def state_tensors(self, rows: int) -> List[torch.Tensor]:
        state = [self.tokens[:rows], self.full.positions[:rows], self.block[:rows], self.cursor]
        return state + ([self.seen[:rows]] if self.seen is not None else [])

    @torch.inference_mode()
    def prefill(self, slots: Sequence[int], prompts: Sequence[List[int]]) -> List[int]:
        """Fill `slots` with `prompts` (right-padded to one width); returns each one's first generated token.

        A row's real tokens sit at columns 0..len-1 and its padding after them, so the model
        runs with no attention mask at all: SDPA's causal kernel (flash attention in bf16/fp16,
        no width x width mask per row) is exact for every real token, since under a causal mask
        a token never sees the padding that comes after it. The pads' keys/values land in the
        row's cache past its end, where decode cannot see them (its mask hides the columns
        beyond a row's position) and overwrites them one step at a time. The first token comes
        from each row's last real position: a hook on the output layer keeps only that one
        hidden state per row, so the vocabulary projection runs once per prompt.
        """
        device, settings, model = self.engine.device, self.engine.settings, self.engine.model
        lengths = [len(ids) for ids in prompts]
        width = max(lengths)
        ids = torch.tensor([list(p) + [settings.pad_token_id] * (width - len(p)) for p in prompts], device=device)
        ends = torch.tensor(lengths, device=device)
        rows = torch.tensor(list(slots), device=device)
        columns = torch.arange(width, device=device)
        picks = torch.arange(len(prompts), device=device)

        def last_real_position(_module, args):
            return (args[0][picks, ends - 1][:, None, :],) + tuple(args[1:])

        hook = model.get_output_embeddings().register_forward_pre_hook(last_real_position)
        self.full.write_rows = rows
        try:
            logits = model(input_ids=ids, position_ids=columns.expand(len(prompts), width),
                           past_key_values=self.full, use_cache=True, logits_to_keep=0).logits
        finally:
            self.full.write_rows = None
            hook.remove()
        seen = None
        if self.seen is not None:
            own = columns[None, :] < ends[:, None]
            real = torch.where(own, ids, ids[:, :1])  # pads count as the row's first token, seen anyway
            seen = torch.zeros(len(prompts), self.seen.shape[1], dtype=torch.bool, device=device)
            mark_seen(seen, real)
        first = next_tokens(logits[:, -1, :], settings.sampling, seen)
        if seen is not None:
            mark_seen(seen, first)
            self.seen[rows] = seen
        self.tokens[rows] = first
        self.full.positions[rows] = ends
        stats = self.engine.stats
        stats.prefill_calls += 1
        stats.prompt_tokens += sum(lengths)
        stats.padded_tokens += width * len(prompts)
        return first.tolist()

    def compact(self, active_slots: List[int], rows: int) -> None:
        """Move the active slots' state to slots 0..len-1, to decode them with the `rows`-slot graph."""
        sources = torch.tensor(active_slots, device=self.engine.device)
        count = len(active_slots)
        self.full.move_rows(sources)
        for tensor in (self.tokens, self.full.positions) + ((self.seen,) if self.seen is not None else ()):
            tensor[:count] = tensor.index_select(0, sources)
        self.slots = rows


class StaticEngine:
    """Generates for many prompts at once; call `generate` with token ids per record id."""

    def __init__(self, model, settings: EngineSettings, device: torch.device):
        self.model, self.settings, self.device = model, settings, device
        self.decode_attention = choose_decode_attention(settings.decode_attention, model, device)
        self.shape = model_shape(model)
        self.stats = EngineStats()

    def capture(self, step: Callable[[], None], pool, state: List[torch.Tensor]) -> Callable[[], None]:
        """A replayable decode step: a CUDA graph of `step` (on a CPU, `step` itself)."""
        if self.device.type != "cuda":
            return step
        saved = [tensor.clone() for tensor in state]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            step()  # warm-up: picks kernels and creates library handles outside the capture
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=pool):
            step()
        for tensor, value in zip(state, saved):  # undo the warm-up's step on the live rows
            tensor.copy_(value)
        return graph.replay

    def free_bytes(self) -> int:
        if self.device.type != "cuda":
            return 1 << 40  # host memory is not budgeted; the CPU path is for tests and small models
        free, _total = torch.cuda.mem_get_info(self.device)
        return free + torch.cuda.memory_reserved(self.device) - torch.cuda.memory_allocated(self.device)

    def plan(self, prompts: Dict[Hashable, List[int]]) -> List[Segment]:
        lengths = {record_id: len(ids) for record_id, ids in prompts.items()}
        longest = max(lengths.values())
        free = self.free_bytes()
        cap = self.settings.max_slots

        def slots_at(cache_length: int) -> int:
            # --batch_size picks the rows, but never more than the free memory holds: a raw CUDA
            # out-of-memory error halfway through would be the worse answer.
            fit = slots_that_fit(free, cache_length, longest, self.shape)
            return min(cap, fit) if cap else fit

        first_length = max(lengths.values()) + self.settings.max_new_tokens
        if slots_at(first_length) < 1:
            from ftimg_jobs.errors import JobError

            raise JobError(
                f"infer: the longest prompt ({longest} tokens) plus --max_new_tokens {self.settings.max_new_tokens} "
                f"needs {cache_gib(1, first_length, self.shape):.1f} GiB of KV cache and "
                f"{free / 2 ** 30:.1f} GiB is free on {self.device}; lower --max_new_tokens, shorten the prompt, "
                "or use a GPU with more memory")
        return plan_segments(list(prompts), lengths, self.settings.max_new_tokens, slots_at)

    @torch.inference_mode()
    def generate(self, prompts: Dict[Hashable, List[int]],
                 on_finished: Callable[[List[Finished]], None]) -> EngineStats:
        """Generate for every prompt; `on_finished` gets the records that ended at each look, as soon as they do."""
        empty = [record_id for record_id, ids in prompts.items() if not ids]
        if empty:
            raise ValueError(f"records {empty[:5]} have no prompt tokens; every prompt needs at least one")
        if self.decode_attention == "flex":
            with DecodeAttention(self.model):
                return self.generate_segments(prompts, on_finished)
        return self.generate_segments(prompts, on_finished)

    def generate_segments(self, prompts: Dict[Hashable, List[int]],
                          on_finished: Callable[[List[Finished]], None]) -> EngineStats:
        stats = self.stats
        for segment in self.plan(prompts):
            stats.segments.append({"cache_length": segment.cache_length, "slots": segment.slots,
                                   "prompts": len(segment.ids)})
            run = SegmentRun(self, segment)
            before = (stats.decode_steps, stats.decode_seconds, stats.prefill_calls, stats.prefill_seconds,
                      stats.prompt_tokens, stats.padded_tokens)
            self.run_segment(run, segment, prompts, on_finished)
            stats.segments[-1].update(
                decode_steps=stats.decode_steps - before[0], decode_seconds=round(stats.decode_seconds - before[1], 3),
                prefill_calls=stats.prefill_calls - before[2],
                prefill_seconds=round(stats.prefill_seconds - before[3], 3),
                prefill_tokens=stats.prompt_tokens - before[4], prefill_padded_tokens=stats.padded_tokens - before[5])
            del run  # frees the cache and the graphs before the next segment allocates its own
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
        return self.stats

    def run_segment(self, run: SegmentRun, segment: Segment, prompts, on_finished) -> None:
        settings = self.settings
        waiting = deque(segment.ids)
        active: Dict[int, Row] = {}
        free_slots = list(range(segment.slots))
        while waiting or active:
            count = refill_count(len(free_slots), len(waiting), run.slots)
            if count:
                started = time.time()
                chosen = sorted(free_slots)[:count]
                free_slots = sorted(set(free_slots) - set(chosen))
                records = [waiting.popleft() for _ in range(count)]
                for slots, ids in prefill_groups(chosen, records, prompts):
                    firsts = run.prefill(slots, [prompts[record_id] for record_id in ids])
                    for slot, record_id, first in zip(slots, ids, firsts):
                        active[slot] = Row(record_id, [first])
                self.stats.prefill_seconds += time.time() - started
                free_slots += self.collect_finished(active, on_finished)
            if not active:
                continue
            steps_left = max(settings.max_new_tokens - len(row.tokens) for row in active.values())
            target = shrink_to(len(active), run.slots, len(waiting), steps_left)
            if target is not None:
                order = sorted(active)
                run.compact(order, target)
                active = {new: active[old] for new, old in enumerate(order)}
                free_slots = list(range(len(order), target))
            replay = run.replay_for(run.slots)
            steps = min(BLOCK_STEPS, steps_left)
            started = time.time()
            for _ in range(steps):
                replay()
            generated = run.block[:run.slots, :steps].tolist()  # the one synchronisation per block
            run.cursor.zero_()
            self.stats.decode_seconds += time.time() - started
            self.stats.decode_steps += steps
            for slot, row in active.items():
                row.tokens.extend(generated[slot])
            free_slots += self.collect_finished(active, on_finished)

    def collect_finished(self, active: Dict[int, Row], on_finished) -> List[int]:
        """Report and remove the rows that have ended; returns their slots."""
        settings, done, finished = self.settings, [], []
        for slot, row in list(active.items()):
            ending = find_ending(row.tokens, row.checked, settings.eos_token_ids, settings.max_new_tokens,
                                 settings.stop_strings, settings.decode)
            row.checked = len(row.tokens)
            if ending is None:
                continue
            kept = row.tokens[:ending.kept_tokens]
            self.stats.generated_tokens += len(kept)
            finished.append(Finished(row.record_id, kept, ending.reason, ending.text_end))
            del active[slot]
            done.append(slot)
        if finished:
            on_finished(finished)
        return done
