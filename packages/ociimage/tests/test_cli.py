"""The ociimage CLI: pull/inspect/push against the loopback registry, output modes, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ociimage.cli import app
from ociimage.layout import OCILayout
from ociimage.testing import LocalRegistry, TestImages

runner = CliRunner()


def _common(registry: LocalRegistry, tmp_path: Path) -> list[str]:
    conf = tmp_path / "registries.conf"
    conf.write_text("")
    return [
        "--registries-conf",
        str(conf),
        "--insecure-registry",
        registry.host,
        "--authfile",
        str(tmp_path / "no-auth.json"),
    ]


def _accept(tmp_path: Path) -> list[str]:
    return _policy(tmp_path, [{"type": "insecureAcceptAnything"}], "accept.json")


def _policy(
    tmp_path: Path, requirements: list[dict[str, str]], name: str = "policy.json"
) -> list[str]:
    (tmp_path / name).write_text(json.dumps({"default": requirements}))
    return ["--policy", str(tmp_path / name)]


def test_pull_json_and_plain_lines(
    registry: LocalRegistry, test_images: TestImages, tmp_path: Path
) -> None:
    image = test_images.layered
    out = tmp_path / "oci"
    result = runner.invoke(
        app,
        [
            "pull",
            image.reference,
            str(out),
            "--json",
            *_common(registry, tmp_path),
            *_accept(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["manifest"]["digest"] == image.manifest_digest
    assert doc["names"] == [image.reference]
    assert doc["repo_digest"] == image.digest_reference
    assert OCILayout(out).find(image.reference).digest == image.manifest_digest

    # as a real process: not a terminal, so plain progress lines on stderr
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ociimage.cli",
            "pull",
            test_images.busybox.reference,
            str(tmp_path / "b"),
            *_common(registry, tmp_path),
            *_accept(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == test_images.busybox.digest_reference
    lines = proc.stderr.splitlines()
    assert any(line.startswith("start ") for line in lines)
    assert any(
        line.startswith("done ") and test_images.busybox.layer_digests[0] in line for line in lines
    )

    quiet = runner.invoke(
        app,
        [
            "pull",
            image.reference,
            str(out),
            "--quiet",
            *_common(registry, tmp_path),
            *_accept(tmp_path),
        ],
    )
    assert quiet.exit_code == 0 and quiet.stdout == ""


def test_inspect_without_layers(
    registry: LocalRegistry, test_images: TestImages, tmp_path: Path
) -> None:
    index = test_images.multiplatform
    result = runner.invoke(
        app,
        [
            "inspect",
            index.reference,
            "--platform",
            "linux/arm64",
            "--json",
            *_common(registry, tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["digest"] == index.digest
    assert doc["manifest_digest"] == index.for_platform("arm64").manifest_digest
    assert "linux/arm64/v8" in doc["platforms"]
    assert doc["config"]["architecture"] == "arm64"
    raw = runner.invoke(app, ["inspect", index.reference, "--raw", *_common(registry, tmp_path)])
    assert json.loads(raw.stdout)["mediaType"] == "application/vnd.oci.image.index.v1+json"
    text = runner.invoke(
        app, ["inspect", test_images.user_env.reference, *_common(registry, tmp_path)]
    )
    assert "Entrypoint:    ['/bin/echo', 'entrypoint']" in text.stdout


def test_push_round_trip(registry: LocalRegistry, test_images: TestImages, tmp_path: Path) -> None:
    index = test_images.multiplatform
    out = tmp_path / "oci"
    assert (
        runner.invoke(
            app,
            [
                "pull",
                index.reference,
                str(out),
                "-q",
                *_common(registry, tmp_path),
                *_accept(tmp_path),
            ],
        ).exit_code
        == 0
    )
    # the layout has one platform of the index: it cannot go to a repository lacking the other
    partial = runner.invoke(
        app, ["push", str(out), f"{registry.host}/cli-push/partial:1", *_common(registry, tmp_path)]
    )
    assert partial.exit_code == 1
    assert "lacks manifest" in partial.stderr
    # the same repository has it: the index goes up under a new tag
    target = f"{registry.host}/{index.repository}:copy"
    result = runner.invoke(app, ["push", str(out), target, "--json", *_common(registry, tmp_path)])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["descriptor"]["digest"] == index.digest
    single = runner.invoke(
        app,
        [
            "pull",
            test_images.user_env.reference,
            str(tmp_path / "u"),
            "-q",
            *_common(registry, tmp_path),
        ],
    )
    assert single.exit_code == 0
    moved = f"{registry.host}/cli-push/user-env:v1"
    pushed = runner.invoke(app, ["push", str(tmp_path / "u"), moved, *_common(registry, tmp_path)])
    assert pushed.exit_code == 0, pushed.output
    assert (
        pushed.stdout.strip()
        == f"{registry.host}/cli-push/user-env@{test_images.user_env.manifest_digest}"
    )
    again = runner.invoke(
        app,
        ["inspect", target, "--json", "--platform", "linux/amd64", *_common(registry, tmp_path)],
    )
    assert json.loads(again.stdout)["digest"] == index.digest


def test_exit_codes(registry: LocalRegistry, test_images: TestImages, tmp_path: Path) -> None:
    common = _common(registry, tmp_path)
    missing = runner.invoke(app, ["inspect", f"{registry.host}/crid-test/nope:1", *common])
    assert missing.exit_code == 3
    assert "not found" in missing.stderr
    bad_ref = runner.invoke(app, ["inspect", "UPPER/case", *common])
    assert bad_ref.exit_code == 7
    assert "lowercase" in bad_ref.stderr
    broken = tmp_path / "broken.conf"
    broken.write_text("short-name-mode = 'x'")
    conf_err = runner.invoke(app, ["inspect", "busybox", "--registries-conf", str(broken)])
    assert conf_err.exit_code == 7
    usage = runner.invoke(app, ["pull"])
    assert usage.exit_code == 2


def test_policy_check(registry: LocalRegistry, test_images: TestImages, tmp_path: Path) -> None:
    ref = test_images.busybox.reference
    common = _common(registry, tmp_path)
    ok = runner.invoke(app, ["policy", "check", ref, "--json", *common, *_accept(tmp_path)])
    assert ok.exit_code == 0, ok.output
    doc = json.loads(ok.stdout)
    assert doc["accepted"] and doc["scope"] == "default"
    assert doc["requirements"] == ["insecureAcceptAnything"]
    reject = _policy(tmp_path, [{"type": "reject"}], "reject.json")
    refused = runner.invoke(app, ["policy", "check", ref, *common, *reject])
    assert refused.exit_code == 8
    assert "requirement reject" in refused.stderr
    pulled = runner.invoke(app, ["pull", ref, str(tmp_path / "oci"), *common, *reject])
    assert pulled.exit_code == 8
    assert not (tmp_path / "oci").exists()  # no empty layout left behind


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_failed_pulls_write_nothing_and_keep_an_existing_layout(
    registry: LocalRegistry, test_images: TestImages, tmp_path: Path
) -> None:
    from ociimage.testing.faults import Fault, FaultyProxy

    common = _common(registry, tmp_path)
    reject = _policy(tmp_path, [{"type": "reject"}], "reject.json")
    layout = tmp_path / "existing"
    first = runner.invoke(
        app, ["pull", test_images.busybox.reference, str(layout), *common, *_accept(tmp_path)]
    )
    assert first.exit_code == 0, first.output
    before = _tree(layout)
    refused = runner.invoke(
        app, ["pull", test_images.layered.reference, str(layout), "-q", *common, *reject]
    )
    assert refused.exit_code == 8
    assert _tree(layout) == before

    # a failure after the layout was created: removed when it was not there before
    image = test_images.layered
    with FaultyProxy(registry.url) as proxy:
        proxy.add(Fault(path=image.layer_digests[-1], status=404, times=None))
        ref = f"{proxy.host}/{image.repository}:{image.tag}"
        args = ["--insecure-registry", proxy.host, "-q", *_accept(tmp_path)]
        fresh = runner.invoke(app, ["pull", ref, str(tmp_path / "fresh"), *common, *args])
        assert fresh.exit_code == 3, fresh.output
        assert not (tmp_path / "fresh").exists()
        kept = runner.invoke(app, ["pull", ref, str(layout), *common, *args])
        assert kept.exit_code == 3, kept.output
    names = [i.name for i in OCILayout(layout).images()]
    assert names == [test_images.busybox.reference]
    after = _tree(layout)
    assert after["index.json"] == before["index.json"]
    assert {k: v for k, v in after.items() if k in before} == before


def test_progress_bars_on_a_terminal(
    registry: LocalRegistry, test_images: TestImages, tmp_path: Path
) -> None:
    import pty

    image = test_images.layered
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "ociimage.cli",
                "pull",
                image.reference,
                str(tmp_path / "oci"),
                *_common(registry, tmp_path),
                *_accept(tmp_path),
            ],
            stdout=subprocess.PIPE,
            stderr=terminal,
            timeout=120,
            env={**os.environ, "COLUMNS": "120", "TERM": "xterm"},
        )
        os.close(terminal)
        terminal = -1
        screen = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
    finally:
        if terminal != -1:
            os.close(terminal)
        os.close(controller)
    assert proc.returncode == 0
    text = screen.decode(errors="replace")
    for digest in image.layer_digests:
        assert digest.split(":")[1][:12] in text  # one bar per layer
    assert "start " not in text  # bars, not the plain lines


def test_the_fast_pull_parser_takes_exactly_the_typer_commands_options() -> None:
    from typer.main import get_command

    from ociimage.entry import PULL_FLAGS, PULL_VALUE_OPTIONS

    group = get_command(app)
    command = group.commands["pull"]  # type: ignore[attr-defined]
    typer_options = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
    assert {o for o in typer_options if o.startswith("-")} == {*PULL_FLAGS, *PULL_VALUE_OPTIONS}
    fields = {p.name for p in command.params}
    assert set(PULL_FLAGS.values()) | set(PULL_VALUE_OPTIONS.values()) <= fields
    positional = [p.name for p in command.params if not p.opts[0].startswith("-")]
    assert positional == ["reference", "directory"]


_TAKEN = [
    ["pull", "quay.io/a/b:1", "out"],
    ["pull", "--quiet", "quay.io/a/b:1", "out", "--json", "-q"],
    ["pull", "a/b", "out", "--platform", "linux/arm64/v8", "--policy", "p.json"],
    ["pull", "--platform=linux/amd64", "a/b@sha256:" + "0" * 64, "out", "--registries-d", "d"],
    ["pull", "a", "b", "--insecure-registry", "h:5000", "--insecure-registry=h2", "--json"],
    ["pull", "a", "b", "--max-concurrent", "8", "--progress-timeout", "2.5"],
    ["pull", "a", "b", "--max-concurrent=1", "--progress-timeout=7", "--authfile", "x.json"],
    ["pull", "a", "b", "--registries-conf", "r.conf", "--platform", "x", "--platform", "y"],
]
_LEFT_TO_TYPER = [
    [],
    ["inspect", "a"],
    ["pull"],
    ["pull", "a"],
    ["pull", "a", "b", "c"],
    ["pull", "a", "b", "--help"],
    ["pull", "-h", "a", "b"],
    ["pull", "a", "b", "--"],
    ["pull", "--", "a", "b"],
    ["pull", "a", "b", "--unknown"],
    ["pull", "a", "b", "-qj"],
    ["pull", "a", "b", "--json=yes"],
    ["pull", "a", "b", "--platform"],
    ["pull", "a", "b", "--platform="],
    ["pull", "a", "b", "--platform", "--json"],
    ["pull", "a", "b", "--max-concurrent", "0"],
    ["pull", "a", "b", "--max-concurrent", "two"],
    ["pull", "a", "b", "--progress-timeout", "soon"],
    ["pull", "", "b"],
    ["pull", "a", "b", "--policy", ""],
]


def test_the_fast_pull_parser_reads_what_typer_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    from ociimage import cli
    from ociimage._pull_command import PullOptions
    from ociimage.entry import parse_pull

    seen: list[PullOptions] = []
    monkeypatch.setattr(cli, "run_pull", lambda opts: seen.append(opts) or 0)
    for argv in _TAKEN:
        fields = parse_pull(argv)
        assert fields is not None, argv
        for name in ("directory", "authfile", "registries_conf", "policy", "registries_d"):
            if name in fields:
                fields[name] = Path(fields[name])
        result = runner.invoke(app, argv)
        assert result.exit_code == 0, (argv, result.output)
        assert repr(seen.pop()) == repr(PullOptions(**fields)), argv
    for argv in _LEFT_TO_TYPER:
        assert parse_pull(argv) is None, argv


_FAST = """
import sys
from ociimage.entry import run_fast
code = run_fast(sys.argv[1:])
loaded = [name in sys.modules for name in ("typer", "cryptography", "httpx", "argparse")]
print("exit", code, *loaded)
"""


def test_pull_runs_without_typer_cryptography_or_httpx_and_keeps_the_exit_codes(
    registry: LocalRegistry, test_images: TestImages, tmp_path: Path
) -> None:
    def fast_pull(*args: str) -> tuple[list[str], str]:
        proc = subprocess.run(
            [sys.executable, "-c", _FAST, "pull", *_common(registry, tmp_path), *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        return proc.stdout.split(), proc.stderr

    busybox = test_images.busybox
    out, err = fast_pull(busybox.reference, str(tmp_path / "b"), *_accept(tmp_path))
    # an open registry answers every GET at once: httpx is never needed, nor imported
    assert out == [busybox.digest_reference, "exit", "0", "False", "False", "False", "False"], err
    assert OCILayout(tmp_path / "b").find(busybox.reference).digest == busybox.manifest_digest
    missing = f"{registry.host}/crid-test/nothing:here"
    out, err = fast_pull(missing, str(tmp_path / "n"), *_accept(tmp_path))
    # a 404 is sent again through httpx, which words the error
    assert out == ["exit", "3", "False", "False", "True", "False"], err
    assert "ociimage: error:" in err and not (tmp_path / "n").exists()
    # a usage error goes to typer
    out, err = fast_pull(busybox.reference, str(tmp_path / "c"), "--max-concurrent", "0")
    assert out == ["exit", "None", "False", "False", "False", "False"], err
    broken = tmp_path / "broken.conf"
    broken.write_text("short-name-mode = 'x'")
    out, err = fast_pull(busybox.reference, str(tmp_path / "d"), "--registries-conf", str(broken))
    assert out[:2] == ["exit", "7"] and "ociimage: error:" in err


def test_the_console_script_flushes_its_output_and_exit_code(
    registry: LocalRegistry, test_images: TestImages, tmp_path: Path
) -> None:
    """The script leaves with os._exit after a pull: its output must be out by then."""
    script = str(Path(sys.executable).with_name("ociimage"))
    busybox = test_images.busybox
    common = [*_common(registry, tmp_path), *_accept(tmp_path)]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [script, *args], capture_output=True, text=True, timeout=120, check=False
        )

    done = run("pull", busybox.reference, str(tmp_path / "j"), "--json", *common)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["repo_digest"] == busybox.digest_reference
    done = run("pull", busybox.reference, str(tmp_path / "p"), *common)
    assert (done.returncode, done.stdout) == (0, busybox.digest_reference + "\n"), done.stderr
    missing = run("pull", f"{registry.host}/crid-test/nothing:here", str(tmp_path / "n"), *common)
    assert missing.returncode == 3 and "ociimage: error:" in missing.stderr
    usage = run("pull", busybox.reference, str(tmp_path / "u"), "--max-concurrent", "0")
    assert usage.returncode == 2 and "--max-concurrent" in usage.stderr
    helped = run("pull", "--help")
    assert helped.returncode == 0 and "REFERENCE" in helped.stdout
