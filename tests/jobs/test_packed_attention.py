"""Per-example attention over a padding-free row equals attending to each example alone."""

import json
import textwrap

import pytest
from job_helpers import explain

pytestmark = pytest.mark.docker

# Runs with the image's torch: q/k/v for one row holding three examples (GQA: 4 query
# heads over 2 key/value heads), position ids restarting at each example.
CHECK = textwrap.dedent('''
    import json
    import torch
    import torch.nn.functional as F
    from ftimg_jobs.model.packed_attention import packed_causal_attention

    torch.manual_seed(0)
    lengths = [5, 9, 3]
    total, heads, kv_heads, dim = sum(lengths), 4, 2, 8
    q = torch.randn(1, heads, total, dim)
    k = torch.randn(1, kv_heads, total, dim)
    v = torch.randn(1, kv_heads, total, dim)
    position_ids = torch.tensor([[p for n in lengths for p in range(n)]])
    packed, _ = packed_causal_attention(None, q, k, v, None, position_ids=position_ids)

    expected, start = [], 0
    for n in lengths:
        kk = k[:, :, start:start + n].repeat_interleave(heads // kv_heads, dim=1)
        vv = v[:, :, start:start + n].repeat_interleave(heads // kv_heads, dim=1)
        expected.append(F.scaled_dot_product_attention(q[:, :, start:start + n], kk, vv, is_causal=True))
        start += n
    expected = torch.cat(expected, dim=2).transpose(1, 2)
    whole_row, _ = packed_causal_attention(None, q, k, v, None, position_ids=None)
    print(json.dumps({"shape": list(packed.shape),
                      "max_diff_vs_separate": (packed - expected).abs().max().item(),
                      "max_diff_whole_row_causal": (whole_row - expected).abs().max().item()}))
''')


def test_packed_row_attends_within_each_example_only(jobs, tmp_path):
    (tmp_path / "check_packed_attention.py").write_text(CHECK)
    result = jobs.run(cwd=tmp_path, module="check_packed_attention")
    assert result.returncode == 0, explain(result)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["shape"] == [1, 17, 4, 8]
    assert report["max_diff_vs_separate"] < 1e-5
    # Without the example boundaries the later examples attend across them: the check can fail.
    assert report["max_diff_whole_row_causal"] > 1e-2
