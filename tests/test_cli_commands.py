"""The CLI's reading and cancelling commands against a real server (uvicorn on this test's
database): what a person sees in the terminal and the exit code a script checks."""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.cli import cli
from app.core import crud, db
from app.core.models import Status
from app.core.schemas import parse_spec
from app.services import sweeps
from tests.support.factories import (
    CIFAR10_CLASSES,
    cifar10_report,
    claim,
    end_experiment,
    finished_experiment,
    make_evaluated,
    make_experiment,
    spec_data,
    sweep_data,
)
from tests.support.polling import wait_until
from tests.support.seed_reports import seed_report
from tests.support.servers import serve_app
from tests.support.settings import clear_caches

runner = CliRunner()


def run(*args: str, columns: int = 200) -> tuple[int, str]:
    result = runner.invoke(cli, list(args), env={"COLUMNS": str(columns)})
    return result.exit_code, result.output


@pytest.fixture
def served(data_dir: Path) -> Iterator[str]:
    with serve_app(data_dir) as base_url:
        yield base_url


def test_show_prints_a_runs_hyperparameters_as_a_table_and_an_import_without_them(
    session: Session, served: str
) -> None:
    trained = finished_experiment(session)
    code, output = run("show", str(trained.id), "--api-url", served)
    assert code == 0, output
    assert "hyperparameter" in output and "learning_rate" in output and "0.001" in output
    assert "┃ epoch" in output

    imported = httpx.post(
        f"{served}/api/experiments/import",
        json={"name": "study cnn", "report_text": seed_report("custom-cnn")},
        timeout=10,
    ).json()
    code, output = run("show", str(imported["id"]), "--api-url", served)
    assert code == 0, output  # was KeyError: 'hyperparameters', exit 1
    assert "none (an imported report)" in output and "imported" in output


def test_show_prints_a_dash_for_what_a_run_lacks_and_times_in_seconds(
    session: Session, served: str
) -> None:
    """A run that never started read "device: None"; a time "1.9900706250045914"."""
    queued = make_experiment(session)
    code, output = run("show", str(queued.id), "--api-url", served)
    assert code == 0, output
    for key in ("device", "worker_host", "test_accuracy", "training_seconds", "error"):
        assert f"{key:>18}: -\n" in output, output  # aligned with wall_clock_seconds
    assert "None" not in output
    trained = finished_experiment(session)
    trained.training_seconds = 1.9900706250045914
    session.commit()
    code, output = run("show", str(trained.id), "--api-url", served)
    assert code == 0, output
    assert "training_seconds: 2.0 s\n" in output and "1.99007" not in output
    assert "   test_accuracy: 0.8750\n" in output and "error: -\n" in output


def test_cancel_of_a_finished_run_cancels_nothing_and_exits_non_zero(
    session: Session, served: str
) -> None:
    trained = finished_experiment(session)
    code, output = run("cancel", str(trained.id), "--api-url", served)
    assert code == 2  # as every refusal of the CLI
    assert f"experiment {trained.id} is succeeded: nothing was cancelled" in output
    assert httpx.get(f"{served}/api/experiments/{trained.id}").json()["status"] == "succeeded"


def test_presets_print_their_ids_whole_at_80_columns() -> None:
    code, output = run("presets", columns=80)
    assert code == 0
    for preset in ("study-efficientnetb2-fine-tuned", "quick-transfer-two-phase",
                   "beyond-efficientnetb2-augmented"):  # fmt: skip
        assert f"│ {preset}" in output, output


def test_help_shows_the_environment_variable_each_option_reads() -> None:
    """Rich read ``[env: ...]`` as a markup tag and dropped it: "server to talk to ."."""
    assert "[env: CIFARLAB_API_URL]" in run("show", "--help", columns=120)[1]
    assert "[env: CIFARLAB_DATA_DIR]" in run("up", "--help", columns=120)[1]


@pytest.mark.parametrize("group", [[], ["sweeps"], ["bench"], ["user"], ["token"]])
def test_each_command_in_a_help_list_reads_as_one_line_at_a_wide_terminal(
    group: list[str],
) -> None:
    """Typer's list keeps a summary's line breaks, so a summary wrapped in the source broke
    mid-sentence ("...the web server;" / "restart any of them") however wide the terminal."""
    code, output = run(*group, "--help", columns=250)
    assert code == 0, output
    rows = output.split("Commands")[1].splitlines()[1:-1]  # between the panel's borders
    continued = [row for row in rows if row.startswith("│  ")]  # no command name: a broken line
    assert rows and not continued, output


def api(served: str, path: str) -> dict:
    response = httpx.get(f"{served}{path}", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


class QuietFiles(http.server.SimpleHTTPRequestHandler):
    """A plain file server that logs nothing: its request lines would land in the output
    the CLI runner captures."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base's name)
        pass


def test_an_address_that_is_not_cifarlabs_api_is_named_not_dumped_or_a_traceback(
    served: str, tmp_path: Path
) -> None:
    """Another web server (a page for every path, or its HTML 404) or a path under cifarlab's
    (`.../api`): one line naming the URL and what to point at, never the other server's page
    or a JSON decoding traceback."""
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "experiments").write_text("<html>someone else's page</html>")
    handler = functools.partial(QuietFiles, directory=str(tmp_path))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as other:
        threading.Thread(target=other.serve_forever, daemon=True).start()
        elsewhere = f"http://127.0.0.1:{other.server_address[1]}"
        answers = {
            f"{elsewhere}/api/experiments?limit=20": run("list", "--api-url", elsewhere),
            f"{elsewhere}/api/experiments/1": run("show", "1", "--api-url", elsewhere),
            f"{served}/api/api/experiments/1": run("show", "1", "--api-url", f"{served}/api"),
        }
        other.shutdown()
    for url, (code, output) in answers.items():
        assert code == 2, output
        assert (
            output.startswith("error: ")
            and f" from {url}: not an answer of cifarlab's API. Point --api-url" in output
        ), output
        assert "<html" not in output and "Traceback" not in output


def test_unknown_ids_are_refused_clearly_and_exit_non_zero(served: str) -> None:
    for command in (["retry", "999", "--follow"], ["compare", "1", "999"],
                    ["export", "999"], ["show", "999"]):  # fmt: skip
        code, output = run(*command, "--api-url", served)
        assert code == 2, (command, output)
        assert "error:" in output and "404" in output and "999" in output, (command, output)
    # Out of the ids' range: said as such, not as the router's 404 blaming --api-url.
    for command in (["show", "--", "-1"], ["cancel", "0"], ["compare", "1", "99999999999"],
                    ["sweeps", "show", "0"]):  # fmt: skip
        code, output = run(*command, "--api-url", served)
        assert code == 2 and "Invalid value for" in output and "404" not in output, output


def test_list_filters_by_status_model_and_tag_repeated_or_comma_separated(
    session: Session, served: str
) -> None:
    runs = {"run-a": ("custom_cnn", "x", Status.failed),
            "run-b": ("residual_cnn", "y", Status.queued),
            "run-c": ("custom_cnn", "z", Status.cancelled)}  # fmt: skip
    for name, (model, tag, status) in runs.items():
        spec = parse_spec({**spec_data(model), "name": name, "tags": [tag]})
        crud.create_experiment(session=session, spec=spec).status = status
    session.commit()

    def listed(*options: str) -> set[str]:
        code, output = run("list", *options, "--api-url", served)
        assert code == 0, output
        return {name for name in runs if name in output}

    assert listed("--status", "failed,cancelled") == {"run-a", "run-c"}
    assert listed("--status", "failed", "--status", "queued") == {"run-a", "run-b"}
    assert listed("--model", "residual_cnn") == {"run-b"}
    assert listed("--tag", "x", "--tag", "y") == {"run-a", "run-b"}
    assert listed("--tag", "x,z", "--model", "custom_cnn", "--status", "cancelled") == {"run-c"}
    code, output = run("list", "--status", "failed,done", "--api-url", served)
    assert code == 2 and "--status 'done': choose from queued, running" in output
    code, output = run("list", "--model", "resnet", "--api-url", served)  # a typo: named
    assert code == 0 and "no run has model resnet; the zoo's models: custom_cnn" in output
    imported = crud.create_experiment(session=session, spec=parse_spec(
        {**spec_data(), "name": "[/] [bold]vgg[/bold] :thumbs_down:"}))  # fmt: skip
    imported.model = "vgg16"  # an imported report keeps its model's name
    session.commit()
    code, output = run("list", "--model", "vgg16", "--api-url", served)
    assert code == 0 and "vgg16" in output
    assert "[/] [bold]vgg[/bold] :thumbs_down:" in output  # a name is text, not markup
    code, output = run("show", str(imported.id), "--api-url", served)
    assert code == 0 and "[/] [bold]vgg[/bold] :thumbs_down:" in output


def test_on_an_80_column_terminal_only_names_wrap(session: Session, served: str) -> None:
    """Ids, models, statuses, figures and times stay whole; a long name folds. Left to Rich,
    each column shrank alike: "succee…", "efficientne…", "2026-12-02T17:0…"."""
    long_name = "efficientnet b2 at 128 px with a fine-tuning phase, third seed"
    first = finished_experiment(session)
    second = finished_experiment(session)
    second.name, second.model = long_name, "efficientnet_b2"
    session.commit()
    listed = run("list", "--api-url", served, columns=80)
    compared = run("compare", str(first.id), str(second.id), "--api-url", served, columns=80)
    for code, output in (listed, compared):
        assert code == 0, output
        table = [line for line in output.splitlines() if line[:1] in "┏┃┡│└"]
        assert table and max(map(len, table)) <= 80, output
        assert "efficientnet_b2" in output and "succeeded" in output and "…" not in output
    assert re.search(r"│ \d{4}-\d\d-\d\d \d\d:\d\d │", listed[1])


def launched_name(served: str, *args: str) -> str:
    """`cifarlab launch ARGS` against ``served``, and the name the experiment got."""
    code, output = run("launch", *args, "--api-url", served)
    assert code == 0, output
    experiment_id = output.split("launched experiment ")[1].split(":")[0]
    return str(api(served, f"/api/experiments/{experiment_id}")["name"])


@pytest.mark.usefixtures("broker")
def test_a_launch_without_a_name_is_named_by_what_it_changes(served: str) -> None:
    assert launched_name(served, "--set", "epochs=3", "--set", "batch_size=64") == (
        "custom_cnn · epochs=3 batch_size=64"
    )
    assert launched_name(served, "--preset", "quick-custom-cnn", "--set", "epochs=1") == (
        "quick-custom-cnn · epochs=1"
    )


def test_a_setting_or_axis_given_twice_is_refused_and_nothing_is_launched(served: str) -> None:
    """Each kept only its last value: epochs=2 ran, the grid swept one learning rate."""
    code, output = run("launch", "--set", "epochs=1", "--set", "epochs=2", "--api-url", served)
    assert (code, output) == (2, "error: --set epochs: given twice (1 and 2); keep one\n")
    code, output = run("sweep", "--grid", "learning_rate=1e-3", "--grid", "learning_rate=2e-3",
                       "--api-url", served)  # fmt: skip
    assert code == 2 and "--grid learning_rate: given twice (1e-3 and 2e-3); keep one" in output
    ranges = ("learning_rate=uniform:1e-4:1e-3", "learning_rate=uniform:1e-2:1e-1")
    code, output = run("sweep", "--random", ranges[0], "--random", ranges[1], "--trials", "2",
                       "--api-url", served)  # fmt: skip
    assert code == 2 and "--random learning_rate: given twice (uniform:1e-4:1e-3 and " in output
    assert api(served, "/api/experiments")["total"] == 0
    assert api(served, "/api/sweeps")["total"] == 0


def _train_when_queued(experiment_id: int) -> None:
    """A worker's writes for the retried run: claim it once queued, two epochs, evaluate."""
    with db.get_sessionmaker()() as other:

        def queued() -> bool:
            other.expire_all()
            found = crud.get_experiment(session=other, experiment_id=experiment_id)
            return found is not None and found.status == Status.queued

        wait_until(queued, 60, what="the retried run queued")
        lease = claim(other, experiment_id)
        for epoch in (1, 2):
            values = {"accuracy": 0.3 * epoch, "val_accuracy": 0.25 * epoch, "loss": 1.0}
            crud.record_epoch(session=other, lease=lease, epoch=epoch, values=values)
            other.commit()
        crud.save_evaluation(session=other, lease=lease, classes=CIFAR10_CLASSES,
                             confusion_matrix=None, report=cifar10_report())  # fmt: skip
        other.commit()


@pytest.mark.usefixtures("broker")
def test_retry_follow_shows_the_retried_runs_epochs_to_its_test_accuracy(
    session: Session, served: str
) -> None:
    experiment_id = make_experiment(session).id
    lease = claim(session, experiment_id)
    crud.end_attempt(session=session, lease=lease, status=Status.failed, error="out of memory")
    session.commit()
    worker = threading.Thread(target=_train_when_queued, args=(experiment_id,))
    worker.start()
    code, output = run("retry", str(experiment_id), "--follow", "--api-url", served)
    worker.join(timeout=60)
    assert code == 0, output
    assert output.startswith(f"experiment {experiment_id}: ")  # queued, or already further
    assert "epoch 2/2" in output and "val_acc 0.500" in output
    assert "test accuracy: 0.8750" in output
    code, output = run("retry", str(experiment_id), "--follow", "--api-url", served)
    assert code == 2 and "409" in output  # a succeeded run is not retried


def _cancel_when_queued(served: str, experiment_id: int) -> None:
    """What `cifarlab cancel` does from another terminal, once the retried run is queued."""
    path = f"/api/experiments/{experiment_id}"
    wait_until(lambda: api(served, path)["status"] == "queued", 60, what="the run queued")
    httpx.post(f"{served}{path}/cancel", timeout=10).raise_for_status()


@pytest.mark.usefixtures("broker")
def test_follow_of_a_run_cancelled_elsewhere_says_so_without_a_reason_it_lacks(
    session: Session, served: str
) -> None:
    """It ended "error: experiment 88 cancelled: None"."""
    experiment_id = _failed_run(session)
    canceller = threading.Thread(target=_cancel_when_queued, args=(served, experiment_id))
    canceller.start()
    code, output = run("retry", str(experiment_id), "--follow", "--api-url", served)
    canceller.join(timeout=60)
    assert code == 2, output
    assert output.endswith(f"error: experiment {experiment_id} cancelled\n"), output


class Following:
    """`cifarlab retry ID --follow` in its own process, its lines read as it prints them."""

    # SIGINT as a terminal's foreground command has it: pytest-xdist's processes ignore it,
    # and what ignores it at exec passes the ignoring on.
    START = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); " + (
        "from app.cli import main; main()"
    )

    def __init__(self, served: str, experiment_id: int) -> None:
        argv = [sys.executable, "-c", self.START, "retry", str(experiment_id), "--follow",
                "--api-url", served]  # fmt: skip
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
        self.process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        stdout = self.process.stdout
        assert stdout is not None
        self._reader = threading.Thread(target=lambda: self.lines.extend(iter(stdout.readline, "")))
        self._reader.start()

    def printed(self, words: str) -> None:
        wait_until(lambda: any(words in line for line in self.lines), 30, what=words)

    def stop(self) -> None:
        self.process.kill()
        self._reader.join(timeout=10)


def _failed_run(session: Session) -> int:
    experiment_id = make_experiment(session).id
    lease = claim(session, experiment_id)
    crud.end_attempt(session=session, lease=lease, status=Status.failed, error="out of memory")
    session.commit()
    return experiment_id


QUEUED = "queued (position 1); no worker is online: start one with `cifarlab worker`"


@pytest.mark.usefixtures("broker")
def test_follow_says_where_the_run_waits_and_each_stage_it_moves_on_to(
    session: Session, served: str
) -> None:
    """Between epochs too: the queue (no worker is online in this test), loading data,
    evaluating. Each step below waits for the line of the one before, as a user would."""
    experiment_id = _failed_run(session)
    follow = Following(served, experiment_id)
    try:
        follow.printed(QUEUED)
        lease = claim(session, experiment_id)
        crud.set_run_phase(session=session, lease=lease, phase="loading_data")
        session.commit()
        follow.printed("loading data")
        crud.set_run_phase(session=session, lease=lease, phase="train")
        crud.record_epoch(session=session, lease=lease, epoch=1, values={"accuracy": 0.5})
        session.commit()
        follow.printed("training")
        crud.set_run_phase(session=session, lease=lease, phase="evaluating")
        session.commit()
        follow.printed("evaluating on the test images")
        crud.save_evaluation(session=session, lease=lease, classes=CIFAR10_CLASSES,
                             confusion_matrix=None, report=cifar10_report())  # fmt: skip
        session.commit()
        assert follow.process.wait(timeout=30) == 0
    finally:
        follow.stop()
    stages = [line.split(" ", 1)[1].strip() for line in follow.lines if line[:2].isdigit()]
    stages = [stage for stage in stages if stage != "starting"]  # if a poll came before phase
    assert stages == [QUEUED + " (or `cifarlab up`)", "loading data", "training",
                      "evaluating on the test images"], follow.lines  # fmt: skip
    assert "test accuracy: 0.8750" in "".join(follow.lines)


@pytest.mark.usefixtures("broker")
def test_ctrl_c_stops_the_following_and_says_the_run_goes_on(session: Session, served: str) -> None:
    experiment_id = _failed_run(session)
    follow = Following(served, experiment_id)
    try:
        follow.printed(QUEUED)
        follow.process.send_signal(signal.SIGINT)
        assert follow.process.wait(timeout=30) == 130
    finally:
        follow.stop()
    assert follow.lines[-1] == (
        f"stopped following; experiment {experiment_id} goes on: `cifarlab show "
        f"{experiment_id}` shows it, `cifarlab cancel {experiment_id}` stops it\n"
    )
    assert api(served, f"/api/experiments/{experiment_id}")["status"] == "queued"


def test_compare_prints_the_summary_and_each_run_against_the_baseline(
    session: Session, served: str
) -> None:
    labels = [i % 10 for i in range(100)]
    epochs = [
        {"accuracy": 0.5, "val_accuracy": 0.9, "loss": 1.0, "val_loss": 0.5, "seconds": 10},
        {"accuracy": 0.7, "val_accuracy": 0.8, "loss": 0.8, "val_loss": 0.6, "seconds": 12},
    ]
    base = make_evaluated(session, labels, labels, epochs=epochs)
    worse = make_evaluated(session, [0] * 50 + labels[50:], labels)
    imported = httpx.post(
        f"{served}/api/experiments/import",
        json={"name": "study cnn", "report_text": seed_report("custom-cnn")}, timeout=10,
    ).json()["id"]  # fmt: skip
    ids = [str(base.id), str(worse.id), str(imported)]
    code, output = run("compare", *ids, "--baseline", str(base.id), "--api-url", served)
    assert code == 0, output
    assert "┃ training ┃ best  ┃" in output and "┃ time     ┃ epoch ┃" in output
    assert f"summary (baseline: {base.id})" in output and "study cnn" in output
    assert "100.00%" in output and "82.00%" in output
    assert "│ 22.0 s   │ 1     │" in output  # training time, best epoch
    assert "-45.00%" in output and "McNemar p" in output  # 45 of 100 images only base got
    assert f"no paired test for {imported}: " in output
    code, output = run("compare", *ids, "--baseline", str(base.id), "--json", "--api-url", served)
    assert code == 0
    assert json.loads(output) == api(served, f"/api/compare?ids={','.join(ids)}&baseline={base.id}")
    code, output = run("compare", *ids, "--baseline", "12345", "--api-url", served)
    assert code == 2 and "baseline: 12345 is not compared; give one of the compared ids" in output


def test_export_then_import_brings_the_result_back_as_an_imported_report(
    session: Session, served: str, tmp_path: Path
) -> None:
    trained = finished_experiment(session, name="exported cnn")
    path = tmp_path / "report.json"
    code, output = run("export", str(trained.id), "-o", str(path), "--api-url", served)
    assert code == 0, output
    code, output = run("export", str(trained.id), "--api-url", served)
    assert json.loads(output) == json.loads(path.read_text())
    code, output = run("import", str(path), "--name", "brought back", "--api-url", served)
    assert code == 0, output
    copy_id = output.split("imported experiment ")[1].split(":")[0]
    copy = api(served, f"/api/experiments/{copy_id}")
    assert copy["name"] == "brought back" and copy["status"] == "imported"
    assert copy["test_accuracy"] == trained.test_accuracy
    # What it trained comes along, so filters and columns find the copy as the original.
    assert copy["model"] == trained.model == "custom_cnn"
    exported = api(served, f"/api/experiments/{trained.id}")["spec"]["hyperparameters"]
    assert copy["spec"]["hyperparameters"] == exported
    original = api(served, f"/api/experiments/{trained.id}/evaluation")
    brought = api(served, f"/api/experiments/{copy_id}/evaluation")
    for key in ("report", "classes", "confusion_matrix"):
        assert brought[key] == original[key]

    text_file = tmp_path / "published.txt"
    text_file.write_text(seed_report("custom-cnn"))
    code, output = run("import", str(text_file), "--api-url", served)
    assert code == 0, output
    text_id = output.split("imported experiment ")[1].split(":")[0]
    assert api(served, f"/api/experiments/{text_id}")["name"] == "published"
    code, output = run("list", "--status", "imported", "--api-url", served)
    line = next(row for row in output.splitlines() if "published" in row)
    assert "0.82 " in line and "0.8200" not in line  # the report's two digits, no more


def test_export_to_a_dash_prints_the_json_alone_and_writes_no_file(
    session: Session, served: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`-o -` wrote a file named "-" and said "written to -"."""
    trained = finished_experiment(session)
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    code, output = run("export", str(trained.id), "-o", "-", "--api-url", served)
    assert code == 0, output
    assert output == run("export", str(trained.id), "--api-url", served)[1]
    assert json.loads(output)["name"] == "finished cnn"
    assert list((tmp_path / "here").iterdir()) == []


def test_export_and_import_refuse_what_they_cannot_carry(
    session: Session, served: str, tmp_path: Path
) -> None:
    queued = make_experiment(session)
    code, output = run("export", str(queued.id), "--api-url", served)
    assert code == 2 and "no evaluation yet (status: queued)" in output
    bad = tmp_path / "bad.txt"
    bad.write_text("precision recall\nnot a report")
    code, output = run("import", str(bad), "--api-url", served)
    assert code == 2 and "report_text" in output
    code, output = run("import", str(tmp_path / "missing.json"), "--api-url", served)
    assert code == 2 and "missing.json" in output
    (tmp_path / "empty.txt").write_text("\n")
    code, output = run("import", str(tmp_path / "empty.txt"), "--api-url", served)
    assert code == 2 and "empty.txt: empty; give a classification report" in output
    before = api(served, "/api/experiments")["total"]
    assert before == 1  # nothing was imported


def test_what_json_cannot_carry_and_a_bad_address_or_token_end_with_a_message(
    served: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each ended in a traceback (exit 1), or as "cannot reach" with the token printed."""
    code, output = run("sweep", "--model", "custom_cnn", "--set", "epochs=1",
                       "--grid", "learning_rate=NaN,0.001", "--api-url", served)  # fmt: skip
    assert code == 2, output
    assert "grid.learning_rate[0]: NaN and Infinity are not numbers JSON carries" in output
    dated = tmp_path / "sweep.yaml"
    dated.write_text("name: 2024-05-01\nmodel: custom_cnn\n")
    code, output = run("sweep", str(dated), "--api-url", served)
    assert code == 2 and "cannot send this as JSON: Object of type date" in output
    assert httpx.get(f"{served}/api/sweeps").json()["total"] == 0
    code, output = run("list", "--api-url", "http://127.0.0.1:abc")
    assert code == 2 and "'http://127.0.0.1:abc' is not a URL: Invalid port" in output
    monkeypatch.setenv("CIFARLAB_API_TOKEN", "cl_t\u00f6ken")
    clear_caches()
    code, output = run("list", "--api-url", served)
    assert code == 2 and "CIFARLAB_API_TOKEN holds characters a token never has" in output
    monkeypatch.setenv("CIFARLAB_API_TOKEN", "cl_copied_with_its_line_end\r\n")
    clear_caches()
    code, output = run("list", "--api-url", served)  # trimmed, sent, refused by the server
    assert code == 2 and output.startswith("error: 401: ") and "copied" not in output, output


def test_cancelling_a_sweep_whose_trials_all_ended_cancels_nothing_and_exits_non_zero(
    session: Session, served: str, broker: object
) -> None:
    """It printed "cancelled 0 trials" and exited 0, where `cancel` of an ended run exits 2."""
    launched = sweeps.launch_sweep(session, sweep_data(seeds=[0]))
    for trial in launched.experiment_ids:
        end_experiment(session, trial, Status.succeeded)
    session.commit()
    code, output = run("sweeps", "cancel", str(launched.sweep.id), "--api-url", served)
    assert code == 2
    assert f"sweep {launched.sweep.id}: every trial had ended; nothing was cancelled" in output


def test_an_empty_model_is_refused_not_read_as_the_default(served: str) -> None:
    """`--model ""` launched custom_cnn; the API refuses it."""
    for command in (["launch"], ["sweep", "--grid", "learning_rate=0.1,0.2"]):
        code, output = run(*command, "--model", "", "--api-url", served)
        assert code == 2 and "unknown model ''" in output, output
    assert httpx.get(f"{served}/api/experiments").json()["total"] == 0


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["bench", "train", "--epochs", "1"], "greater than or equal to 2"),  # 0 divided by 0
        (["bench", "memory", "--model", "nosuch"], "choose a transfer model: efficientnet_b0"),
        (["bench", "memory", "--steps", "0"], "greater than or equal to 1"),
    ],
)
def test_bench_options_are_checked_before_any_data_loads(args: list[str], words: str) -> None:
    """Each failed as a traceback (ZeroDivisionError, KeyError) after loading the data."""
    code, output = run(*args)
    assert code == 2 and words in " ".join(output.replace("│", " ").split()), output
