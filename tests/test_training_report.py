"""Training evidence without a framework: the report section and decision lines from a small synthetic
training.json (every sentence carries this document's numbers), merge carrying a training.json beside the shards,
bad training files and `train` arguments refused with one line, the shared loop's recording, and a worker that dies
or a framework that is missing listed, not lost."""

from __future__ import annotations

import json
import math
import os
import signal
import threading
import time

import numpy as np
import pytest

from tests.test_records import record
from xentcompat import cli
from xentcompat.report.training import decision_lines, html_section, markdown_section, raised_lines, write_plots
from xentcompat.results.documents import read_results, results_document, write_json_atomic
from xentcompat.results.training import (TrainingError, merge_training, read_training, run_entry,
                                          training_document)
from xentcompat.results.training import EPOCH_METRICS
from xentcompat.training import loop, runner
from xentcompat.training.data import Digits, initial_weights, weights_digest
from xentcompat.training.experiment import REGIMES, Config, config_json
from xentcompat.training.measure import EpochTally, accuracy, saturation
from xentcompat.training.variants import variant_named

EPOCHS = 3
CONFIG = Config(seeds=2, epochs=EPOCHS, regimes=("standard", "high-lr"))
# (target, regime, kind) -> per seed: final accuracy, grad norm per epoch, first non-finite step
PLAN = {
    ("torch", "standard", "fused"): ([0.94, 0.94], 0.08, None),
    ("torch", "standard", "double-softmax"): ([0.28, 0.32], 0.02, None),
    ("torch", "standard", "softmax-then-log"): ([0.94, 0.94], 0.08, None),
    ("torch", "high-lr", "fused"): ([0.90, 0.92], 0.05, None),
    ("torch", "high-lr", "double-softmax"): ([0.80, 0.84], 0.01, None),
    ("torch", "high-lr", "softmax-then-log"): ([0.91, 0.0], 0.05, 50),
    ("keras-jax", "standard", "fused"): ([0.96, 0.94], 0.08, None),
    ("keras-jax", "standard", "double-softmax"): ([0.50, 0.60], 0.024, None),
    ("keras-jax", "standard", "softmax-then-log"): ([0.95, 0.95], 0.08, None),
    ("keras-jax", "standard", "forgotten-flag"): ([0.10, 0.12], 0.0, None),
    ("tensorflow", "standard", "fused"): ([0.97, 0.95], 0.08, None),
    ("tensorflow", "standard", "double-softmax"): ([0.97, 0.95], 0.08, None),
}


def _result(final_accuracy: float, norm: float, first_nonfinite):
    metrics = {name: [0.5] * EPOCHS for name in EPOCH_METRICS}
    metrics["test_accuracy"] = [0.5, 0.7, final_accuracy]
    metrics["grad_norm"] = [norm] * EPOCHS
    metrics["nonfinite_steps"] = [0, 0, 0]
    metrics["below_clip"] = [0.0, 0.0, 0.0]
    metrics["prob_underflow"] = [0.0, 0.0, 0.0]
    metrics["logit_spread"] = [10.0, 20.0, 30.0]
    if first_nonfinite is not None:
        metrics["nonfinite_steps"] = [0, 10, 42]
        metrics["grad_norm"] = [norm, math.nan, math.nan]
        metrics["train_loss"] = [0.5, math.inf, math.nan]
        metrics["prob_underflow"] = [0.0, 0.004, 0.0]
    weights = initial_weights(0, 4, 3)
    return loop.RunResult(metrics, 0.1, first_nonfinite, weights_digest(weights), weights_digest(weights), weights,
                          1.0)


def synthetic_training() -> dict:
    runs = []
    for (target, regime, kind), (accuracies, norm, first) in PLAN.items():
        backend = {"keras-jax": "jax", "tensorflow": "tensorflow"}.get(target)
        frameworks = {"keras": "3.15.1", backend: "1"} if backend else {target: "2.13.0"}
        for seed, final_accuracy in enumerate(accuracies):
            runs.append(run_entry(target, frameworks, backend, variant_named(target, kind), REGIMES[regime], seed,
                                  _result(final_accuracy, norm, first if seed == 1 else None)))
    targets = [{"name": t, "skipped": None, "failed": None, "wall_seconds": 12.5, "train_seconds": 11.0, "runs": 4}
               for t in ("torch", "keras-jax", "tensorflow")]
    targets.append({"name": "jax", "skipped": "jax is not installed (target jax)", "failed": None})
    return training_document(config_json(CONFIG), [{"target": "torch", "python": "3.11.7", "platform": "Linux",
                                                    "frameworks": {"torch": "2.13.0"}}], targets, runs)


@pytest.fixture
def training_file(tmp_path):
    path = tmp_path / "training.json"
    write_json_atomic(path, synthetic_training())
    return path


def test_markdown_section_states_this_documents_numbers(training_file):
    training = read_training(training_file)
    text = "\n".join(markdown_section(training))
    assert "| torch | double softmax: `torch.nn.CrossEntropyLoss(softmax)` | " \
           "`torch.nn.CrossEntropyLoss()(torch.softmax(z, dim=1), y)` | " \
           "30.0 % ± 2.8 (28.0–32.0) | 82.0 % ± 2.8 (80.0–84.0) | [XC-softmax-twice](#xc-softmax-twice) |" in text
    assert "| torch | 0.0800 | 0.0200 | 0.25× | 0.25× |" in text  # the gradient-norm ratio, double / fused
    assert "| keras[jax] | 0.0800 | 0.0240 | 0.30× | 0.30× |" in text
    assert ("`torch.nn.NLLLoss(log(softmax))` (torch) in 1 of 2 seeds, first at step 50 (median), ending at 45.5 %"
            in text)
    assert "| high-lr (lr 0.3, float32) | torch | `torch.nn.NLLLoss(log(softmax))` | 1 of 2 | 50 | 52 |" in text
    assert ("the share with a class probability that rounds to 0 in float32 (where log(softmax) is -inf and its "
            "gradient 0 / 0) fused loss on logits 0.00 %, double softmax 0.00 %, softmax, then log 0.40 %.") in text
    assert "the largest logit spread (max z − min z of a training row at its step) fused loss on logits 30," in text
    assert "| jax | skipped | — | jax is not installed (target jax) |" in text
    assert "| torch | 12.5 s | 11.0 s | 4 runs |" in text
    assert "![" not in text  # no figures linked without a plots folder
    assert "![test accuracy per epoch, standard](plots/accuracy-standard.svg)" in "\n".join(
        markdown_section(training, plots="plots"))


def test_finding_links_only_where_the_report_has_them(training_file):
    training = read_training(training_file)
    text = "\n".join(markdown_section(training, findings={"XC-keras-double-softmax"}))
    assert "[XC-keras-double-softmax](#xc-keras-double-softmax)" in text and "XC-softmax-twice" not in text


def test_decision_lines_from_the_numbers(training_file):
    lines = decision_lines(read_training(training_file))
    assert lines["torch.nn.CrossEntropyLoss(softmax)"].startswith(
        "trains to 30 % where the fused loss reaches 94 %, with 0.25× the fused loss's gradient at the logits")
    assert lines["torch.nn.CrossEntropyLoss"].startswith("reaches 94 %")
    assert ("trains to 94 % where the fused loss reaches 94 %; under high-lr (lr 0.3, float32) a non-finite loss "
            "or gradient in 1 of 2 seeds") in lines["torch.nn.NLLLoss(log(softmax))"]
    keras = lines["keras.losses.SparseCategoricalCrossentropy(from_logits=True)[after Softmax]"]
    assert keras.startswith("on tensorflow trains to 96 % where the fused loss reaches 96 %, with 1.00× the fused "
                            "loss's gradient at the logits; on jax trains to 55 % where the fused loss reaches 95 %, "
                            "with 0.30× the fused loss's gradient at the logits")
    assert keras.endswith("(digits MLP, 2 seeds × 3 epochs, mean test accuracy)")
    assert lines["keras.losses.SparseCategoricalCrossentropy(from_logits=False)[logits]"].startswith(
        "trains to 11 % where the fused loss reaches 95 %")


def test_html_section_inlines_the_plots_and_writes_them(training_file, tmp_path):
    training = read_training(training_file)
    html = html_section(training, tmp_path / "plots")
    assert html.count('<svg class="training-accuracy"') == 2 and "xmlns" not in html
    assert '<a class="finding-link" href="#xc-softmax-twice">XC-softmax-twice</a>' in html
    assert "<code>torch.nn.NLLLoss(log(softmax))</code>" in html
    files = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert files == ["accuracy-high-lr.svg", "accuracy-standard.svg"]
    assert (tmp_path / "plots" / "accuracy-standard.svg").read_text().startswith(
        '<svg xmlns="http://www.w3.org/2000/svg"')
    assert write_plots(training, tmp_path / "again")[0].read_text() == (
        tmp_path / "plots" / "accuracy-standard.svg").read_text()  # the same document, the same bytes


def test_merge_carries_training_beside_the_shards(tmp_path, training_file):
    shard = tmp_path / "shard.json"
    write_json_atomic(shard, results_document([record("a")], []))
    assert cli.main(["merge", str(shard), str(training_file), "--out", str(tmp_path / "merged")]) == 0
    merged = read_results(tmp_path / "merged" / "results.json")
    assert len(merged["records"]) == 1
    assert len(merged["training"]["runs"]) == len(read_training(training_file)["runs"])
    assert cli.main(["render", str(tmp_path / "merged" / "results.json"), "--out", str(tmp_path / "again")]) == 0
    again = read_results(tmp_path / "again" / "results.json")
    assert again["training"] == merged["training"]


def test_merging_training_files_of_two_machines(training_file):
    training = read_training(training_file)
    torch_only = {**training, "runs": [r for r in training["runs"] if r["target"] == "torch"]}
    keras_only = {**training, "runs": [r for r in training["runs"] if r["target"] != "torch"]}
    merged = merge_training([keras_only, torch_only, torch_only])
    assert len(merged["runs"]) == len(training["runs"])
    other_machine = {**torch_only, "environments": [{**torch_only["environments"][0], "machine": "m-other"}]}
    both = merge_training([torch_only, other_machine, other_machine])
    assert sorted(str(r["machine"]) for r in both["runs"]) == sorted(
        ["None"] * len(torch_only["runs"]) + ["m-other"] * len(torch_only["runs"]))  # one machine's runs each once
    named = [{**run, "machine": "m-third"} for run in torch_only["runs"]]
    assert len(merge_training([other_machine, {**torch_only, "runs": named}])["runs"]) == 2 * len(named)
    assert "Runs from 2 machines are pooled" in "\n".join(markdown_section(both))
    with pytest.raises(TrainingError, match="config epochs differ"):
        merge_training([training, {**training, "config": {**training["config"], "epochs": 4}}])


GOOD = synthetic_training()
BAD_RUN = GOOD["runs"][0]
BAD_TRAINING = [
    pytest.param({**GOOD, "schema_version": 2}, "training schema version 2", id="schema"),
    pytest.param({**GOOD, "config": []}, "field 'config'", id="config-a-list"),
    pytest.param({**GOOD, "config": {**GOOD["config"], "epochs": 0}}, "field 'config.epochs'", id="epochs-zero"),
    pytest.param({**GOOD, "runs": {}}, "field 'runs'", id="runs-not-a-list"),
    pytest.param({**GOOD, "targets": [3]}, "field 'targets[0]': expected an object", id="target-a-number"),
    pytest.param({**GOOD, "runs": [7]}, "field 'runs[0]': expected an object", id="run-a-number"),
    pytest.param({**GOOD, "runs": [{**BAD_RUN, "regime": "turbo"}]}, "run #0: field 'regime'", id="regime"),
    pytest.param({**GOOD, "runs": [{**BAD_RUN, "variant": "triple-softmax"}]}, "field 'variant'", id="variant"),
    pytest.param({**GOOD, "runs": [{**BAD_RUN, "seed": "0"}]}, "field 'seed'", id="seed-a-string"),
    pytest.param({**GOOD, "runs": [{**BAD_RUN, "metrics": {**BAD_RUN["metrics"], "test_accuracy": [0.5]}}]},
                 "field 'metrics.test_accuracy': expected 3 values (one per epoch), got 1 values", id="short"),
    pytest.param({**GOOD, "runs": [{**BAD_RUN, "metrics": {**BAD_RUN["metrics"], "grad_norm": [1, "NaN", 1]}}]},
                 "field 'runs[0].metrics.grad_norm[1]': expected a number, got 'NaN'",
                 id="not-a-number"),
    pytest.param({**GOOD, "runs": [{**BAD_RUN, "metrics": {**BAD_RUN["metrics"], "nonfinite_steps": [0, 0.5, 0]}}]},
                 "field 'metrics.nonfinite_steps'", id="fractional-steps"),
    pytest.param({**GOOD, "runs": [{k: v for k, v in BAD_RUN.items() if k != "api"}]}, "field 'api'", id="no-api"),
    pytest.param({**GOOD, "runs": [{**BAD_RUN, "error": "boom"}]}, "field 'error'", id="error-a-string"),
]


def _one_line_exit_2(capsys, argv, message):
    status = cli.main(argv)
    error = capsys.readouterr().err.strip()
    assert status == 2, error
    assert "\n" not in error and "Traceback" not in error, error
    assert message in error, error


@pytest.mark.parametrize("document, message", BAD_TRAINING)
def test_bad_training_file_refused_with_one_line(tmp_path, capsys, document, message):
    path = tmp_path / "training.json"
    write_json_atomic(path, document)
    _one_line_exit_2(capsys, ["merge", str(path), "--out", str(tmp_path / "out")], f"{path}: ")
    _one_line_exit_2(capsys, ["merge", str(path), "--out", str(tmp_path / "out")], message)
    assert not (tmp_path / "out").exists()


def test_bad_training_inside_a_results_file(tmp_path, capsys):
    path = tmp_path / "results.json"
    write_json_atomic(path, {**results_document([], []), "training": {"kind": "training", "schema_version": 9}})
    _one_line_exit_2(capsys, ["render", str(path), "--out", str(tmp_path / "out")],
                     f"{path}: field 'training': training schema version 9")


TRAIN_ARGUMENTS = [
    pytest.param(["--seeds", "0"], "--seeds must be a positive whole number, got '0'", id="no-seeds"),
    pytest.param(["--seeds", "x"], "--seeds must be a positive whole number", id="seeds-word"),
    pytest.param(["--seeds", "2.5"], "--seeds must be a positive whole number", id="seeds-fraction"),
    pytest.param(["--epochs", "-1"], "--epochs must be a positive whole number", id="negative-epochs"),
    pytest.param(["--regimes", "turbo"], "unknown regime 'turbo'", id="regime"),
    pytest.param(["--targets", "mxnet"], "unknown target 'mxnet'", id="target"),
]


@pytest.mark.parametrize("argument, message", TRAIN_ARGUMENTS)
def test_bad_train_argument(tmp_path, capsys, argument, message):
    _one_line_exit_2(capsys, ["train", *argument, "--out", str(tmp_path / "out")], message)
    assert not (tmp_path / "out").exists()


def test_a_missing_framework_is_skipped_and_nothing_to_train_writes_nothing(tmp_path, monkeypatch, capsys,
                                                                              training_file):
    """Every target skipped: exit 2 in one line with the reasons, and an earlier training.json is left as it was
    (it was replaced by a document of 0 runs)."""
    monkeypatch.setattr(runner, "skip_reason", lambda target: f"{target} is not installed (target {target})")
    earlier = training_file.read_bytes()
    assert cli.main(["train", "--targets", "torch", "jax", "--out", str(training_file.parent)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "xentcompat: error: nothing trained (torch: torch is not installed (target torch); jax: jax is not installed "
        "(target jax)); nothing written")
    assert training_file.read_bytes() == earlier and not (training_file.parent / "training.md").exists()


def test_sigterm_stops_training_as_ctrl_c_does_and_says_so(tmp_path, monkeypatch):
    """SIGTERM while the first targets' workers run (two at a time): the running workers are stopped with it, the
    targets not started yet are listed as not run, the document is written, and the exit status is 128 + SIGTERM."""
    started = []

    class Worker:  # a training worker that sends the command SIGTERM, as `kill` or a scheduler would, and waits
        def __init__(self, command, **options):
            self.returncode, self.stopped = None, threading.Event()
            target = command[command.index("--target") + 1]
            started.append(target)
            if target == "torch":
                os.kill(os.getpid(), signal.SIGTERM)

        def wait(self):
            if not self.stopped.wait(30):
                raise AssertionError("SIGTERM did not stop the worker")
            return self.returncode

        def send_signal(self, signum):
            self.returncode = -signum
            self.stopped.set()

    monkeypatch.setattr(runner, "skip_reason", lambda target: None)
    monkeypatch.setattr(runner.subprocess, "Popen", Worker)
    status = cli.main(["train", "--targets", "torch", "jax", "tensorflow", "--seeds", "1", "--out", str(tmp_path)])
    training = read_training(tmp_path / "training.json")
    failed = {t["name"]: t["failed"] or t["skipped"] for t in training["targets"]}
    assert status == 128 + signal.SIGTERM and "torch" in started and "tensorflow" not in started
    assert failed["torch"].startswith("the worker was killed by signal SIGTERM") and \
        failed["tensorflow"] == "stopped by SIGTERM before it ran"
    # jax, in the second lane, had started (and was stopped with torch) unless the signal came first
    assert failed["jax"].startswith("the worker was killed by signal SIGTERM" if "jax" in started else
                                    "stopped by SIGTERM before it ran"), failed["jax"]
    # stopped again, now with that document in --out: it is kept, the stopped run's goes beside it
    earlier = (tmp_path / "training.json").read_bytes()
    assert cli.main(["train", "--targets", "torch", "--seeds", "1", "--out", str(tmp_path)]) == 128 + signal.SIGTERM
    assert (tmp_path / "training.json").read_bytes() == earlier
    assert read_training(tmp_path / "training.partial.json")["targets"][0]["failed"].startswith("the worker was")


def test_a_worker_that_dies_is_listed_as_failed_and_the_others_kept(tmp_path, monkeypatch, training_file):
    """The worker here cannot import its framework: it exits with a traceback; the other target's runs stay."""
    kept = [r for r in read_training(training_file)["runs"] if r["target"] == "keras-jax"]

    def fake_run_target(target, config, parts):
        if target == "keras-jax":
            return ({"name": target, "skipped": None, "failed": None, "wall_seconds": 1.0, "train_seconds": 1.0,
                     "runs": len(kept)}, None, kept)
        return real_run_target(target, config, parts)

    real_run_target = runner.run_target
    monkeypatch.setattr(runner, "skip_reason", lambda target: None)
    monkeypatch.setattr(runner, "run_target", fake_run_target)
    status = cli.main(["train", "--targets", "torch", "keras-jax", "--seeds", "1", "--epochs", str(EPOCHS), "--regimes",
                       "standard", "--out", str(tmp_path / "out")])
    training = read_training(tmp_path / "out" / "training.json")
    failed = {t["name"]: t["failed"] for t in training["targets"]}
    if failed["torch"] is None:
        pytest.skip("torch and scikit-learn are installed here: the worker did not die")
    assert status == 3
    assert "exited with status 1 after 0 of 3 runs" in failed["torch"] and "torch.log" in failed["torch"]
    assert failed["keras-jax"] is None and len(training["runs"]) == len(kept)


def test_the_loop_records_what_the_steps_returned_and_goes_on_after_nan(monkeypatch):
    """A fake framework: the loss becomes NaN at step 5; every later step is counted and training goes on."""
    rng = np.random.default_rng(0)
    data = Digits(rng.random((70, 4), dtype=np.float32), np.arange(70) % 3, rng.random((9, 4), dtype=np.float32),
                  np.arange(9) % 3)
    monkeypatch.setattr(loop, "config_digits", lambda config: data)
    seen = {"steps": 0, "weights": None}

    def make_trainer(variant, regime, weights, config):
        seen["weights"] = weights

        def step(x, y):
            seen["steps"] += 1
            bad = seen["steps"] > 5
            z = np.tile([[0.0, 120.0 if seen["steps"] == 1 else 1.0, 0.0]], (len(y), 1))  # step 1: confident
            return (math.nan if bad else 0.25 * seen["steps"]), np.full((len(y), 3), 2.0 if not bad else np.inf), z

        logits = lambda x: np.tile([[0.0, 1.0, 0.0]], (len(x), 1))  # noqa: E731 - always class 1
        return loop.Trainer(step, logits, lambda: weights)

    config = Config(seeds=1, epochs=2, hidden_units=3)
    result = loop.run_seed(make_trainer, variant_named("torch", "fused"), REGIMES["standard"], 0, config)
    assert seen["steps"] == 6  # 70 rows in batches of 32: 3 steps an epoch
    assert result.metrics["train_loss"][0] == pytest.approx((0.25 + 0.5 + 0.75) / 3)
    assert result.metrics["grad_norm"][0] == pytest.approx(2.0 * (2 * math.sqrt(32 * 3) + math.sqrt(6 * 3)) / 3)
    assert result.metrics["nonfinite_steps"] == [0, 1] and result.first_nonfinite_step == 5
    assert math.isnan(result.metrics["train_loss"][1]) and result.metrics["test_accuracy"] == [3 / 9, 3 / 9]
    # saturation at the step that used each row: at step 1 class 1 holds 120 in all 32 rows
    assert result.metrics["logit_spread"] == [120.0, 1.0]
    assert result.metrics["prob_underflow"][0] == pytest.approx(32 / 70)  # classes 0 and 2 of every row at step 1
    assert result.metrics["below_clip"][1] == 0.0
    assert result.initial_weights_sha256 == weights_digest(seen["weights"]) == weights_digest(
        initial_weights(0, 4, 3))


def test_measures():
    tally, z = EpochTally(), np.zeros((2, 2))
    assert tally.add(1.0, np.ones((2, 2)), z, [0, 1]) and not tally.add(math.nan, np.ones((2, 2)), z, [0, 1])
    assert not tally.add(1.0, np.array([[1.0, math.inf]]), z[:1], [0])
    assert tally.nonfinite_steps == 2 and tally.norms[0] == 2.0 and tally.summary()["logit_spread"] == 0.0
    assert accuracy([[0.0, 1.0], [math.nan, 5.0], [3.0, 0.0]], [1, 1, 1]) == pytest.approx(1 / 3)
    confident = saturation(np.array([[0.0, 120.0], [0.0, 20.0], [1.0, 0.0]]), [0, 0, 0], "float32")
    assert confident == {"logit_spread": 120.0, "below_clip": pytest.approx(2 / 3),
                         "prob_underflow": pytest.approx(1 / 3)}
    assert saturation(np.array([[0.0, 20.0]]), [0], "float16")["prob_underflow"] == 1.0
    # a confident right row: the target is sure, the other class's probability is 0 in float32
    assert saturation(np.array([[120.0, 0.0]]), [0], "float32") == {"logit_spread": 120.0, "below_clip": 0.0,
                                                                   "prob_underflow": 1.0}


def test_training_json_is_strict_json(training_file):
    text = training_file.read_text()
    json.loads(text, parse_constant=lambda name: pytest.fail(f"non-standard constant {name}"))
    assert '"nan"' in text and '"inf"' in text


def test_run_train_carries_this_runs_training_or_none(tmp_path, monkeypatch, capsys):
    """`run --train`: nothing to train is a line, not a failed run; a stopped training's partial document is the
    one merged (not the complete earlier training.json beside it), and an earlier run's partial one never is."""
    from types import SimpleNamespace
    from xentcompat import commands

    args = SimpleNamespace(out=tmp_path)
    (tmp_path / "training").mkdir()
    (tmp_path / "training" / "training.partial.json").write_text("{}")  # an earlier run's

    def nothing(targets, config, out):
        raise commands.NothingWritten("nothing trained (torch: scikit-learn is not installed); nothing written")

    monkeypatch.setattr(commands, "run_training", nothing)
    assert cli._train_beside(["torch"], args) == []
    assert "xentcompat: training: nothing trained (torch" in capsys.readouterr().err
    assert not (tmp_path / "training" / "training.partial.json").exists()

    def stopped(targets, config, out):
        (out / "training.json").write_text("complete, earlier")
        (out / "training.partial.json").write_text("this run's")
        return 130

    monkeypatch.setattr(commands, "run_training", stopped)
    assert cli._train_beside(["torch"], args) == [tmp_path / "training" / "training.partial.json"]


def test_runs_that_raised_the_same_error_share_a_line():
    error = {"type": "RuntimeError", "message": "no float16 matmul kernel"}
    raised = [{"target": "paddle", "regime": "float16", "api": api, "seed": seed, "error": error}
              for api in ("F.cross_entropy", "F.nll_loss") for seed in (0, 1)]
    raised.append({"target": "paddle", "regime": "bfloat16", "api": "F.cross_entropy", "seed": 3,
                   "error": {"type": "RuntimeError", "message": "no bfloat16 matmul kernel"}})
    assert raised_lines(raised) == [
        "paddle float16, 4 runs (`F.cross_entropy`, `F.nll_loss`; seeds 0, 1): RuntimeError: no float16 matmul kernel",
        "paddle bfloat16, 1 run (`F.cross_entropy`; seed 3): RuntimeError: no bfloat16 matmul kernel"]
