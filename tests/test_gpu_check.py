"""bench/gpu_check.py in its quick CPU mode: every part runs, or says why it is skipped, so the GPU check
cannot rot between the rare runs on a GPU machine."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "bench" / "gpu_check.py"


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> dict:
    """The JSON figures of one ``--quick`` run, in a subprocess with its own user home."""
    tmp = tmp_path_factory.mktemp("gpu-check")
    out = tmp / "figures.json"
    env = {**os.environ, "TL_DESKTOP_HOME": str(tmp / "home"), "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--json", str(out)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    figures = json.loads(out.read_text(encoding="utf-8"))
    figures["_stdout"] = proc.stdout
    return figures


def _module():
    """The script as a module (registered, as its dataclass needs)."""
    if "gpu_check" not in sys.modules:
        spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
        module = importlib.util.module_from_spec(spec)
        sys.modules["gpu_check"] = module
        spec.loader.exec_module(module)
    return sys.modules["gpu_check"]


def test_engine_and_plain_loop_give_speeds_and_a_ratio(quick):
    engine, plain, comparison = quick["engine"], quick["plain"], quick["comparison"]
    assert engine["status"] == "ok" and engine["state"] == "finished" and engine["epochs_run"] == 2
    assert engine["images_per_s"] > 0 and engine["images_per_s"] == engine["epoch_images_per_s"][1]
    assert engine["final_batch_size"] == quick["settings"]["batch"]  # read back from checkpoints/last.json
    assert plain["status"] == "ok" and plain["images_per_s"] > 0 and plain["amp"] == "off (fp32)"
    assert math.isclose(comparison["ratio"], engine["images_per_s"] / plain["images_per_s"])
    loader = quick["loader"]
    assert loader["status"] == "ok" and loader["uint8"] > 0 and loader["normalised"] > 0
    assert math.isclose(comparison["loader_share"], plain["images_per_s"] / loader["normalised"])
    assert "[loader] alone:" in quick["_stdout"]
    assert "[ratio] engine/plain:" in quick["_stdout"]


def test_onnx_parity_on_the_cpu_provider_and_cuda_skipped(quick):
    onnx = quick["onnx"]
    assert onnx["status"] == "ok" and onnx["verified_on"] == ["CPUExecutionProvider"]
    assert onnx["cpu"]["status"] == "ok" and onnx["cpu"]["providers"][0] == "CPUExecutionProvider"
    assert 0 <= onnx["cpu"]["max_abs_dp"] <= 1e-3 and onnx["cpu"]["n_images"] > 0
    assert onnx["cuda"]["status"] == "skipped" and "CUDA" in onnx["cuda"]["reason"]


def test_gpu_only_parts_say_why_they_are_skipped(quick):
    assert quick["environment"]["status"] == "ok" and quick["environment"]["gpu"] is None
    assert "CPUExecutionProvider" in quick["environment"]["ort_providers"]
    oom = quick["oom"]
    assert oom["status"] == "skipped" and oom["reason"] == "needs CUDA"
    assert oom["plan_example"]["batch"] == 256 and oom["tried_example"] == [256, 128, 64]
    assert "[oom] skipped: needs CUDA" in quick["_stdout"]


def test_oom_plan_leaves_too_little_memory_for_the_first_two_batch_sizes():
    gpu_check = _module()
    per_image, free = 30 * 2**20, 139 * 2**30
    plan = gpu_check.oom_plan(per_image, free)
    left = free - plan["ballast_bytes"]
    assert left < plan["batch"] // 2 * per_image  # batch and batch/2 cannot fit
    assert left > plan["batch"] // 4 * per_image + 256 * 2**20  # batch/4 fits with room for weights and cuDNN
    assert plan["images"] * 0.7 > plan["batch"]  # the training split holds a full first batch
    assert gpu_check.oom_plan(per_image, 2**30)["ballast_bytes"] == 0  # a small GPU needs no ballast


def test_deadline_skips_parts_with_a_reason(capsys):
    gpu_check = _module()
    results: dict = {}
    gpu_check.run_part("engine", lambda: {"status": "ok"}, gpu_check.Deadline(0), results)
    gpu_check.run_part("onnx", lambda: {"status": "ok"}, gpu_check.Deadline(100), results, ("engine",))
    gpu_check.run_part("data", lambda: 1 / 0, gpu_check.Deadline(100), results)
    assert results["engine"]["status"] == "skipped" and "deadline" in results["engine"]["reason"]
    assert results["onnx"] == {"status": "skipped", "reason": "needs the engine part, which did not succeed"}
    assert results["data"] == {"status": "failed", "reason": "ZeroDivisionError: division by zero"}
    assert "[data] failed: ZeroDivisionError" in capsys.readouterr().out
