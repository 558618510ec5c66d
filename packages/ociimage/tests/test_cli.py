"""The ociimage CLI: pull/inspect/push against the loopback registry, output modes, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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

    from ociimage.entry import pull_parser

    group = get_command(app)
    command = group.commands["pull"]  # type: ignore[attr-defined]
    typer_options = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
    fast = {o for a in pull_parser()._actions for o in a.option_strings}
    positional = [a.dest for a in pull_parser()._actions if not a.option_strings]
    assert {o for o in typer_options if o.startswith("-")} == fast
    assert positional == [p.name for p in command.params if not p.opts[0].startswith("-")]


_FAST = """
import sys
from ociimage.entry import main
try:
    main()
except SystemExit as done:
    loaded = [name in sys.modules for name in ("typer", "cryptography", "httpx")]
    print("exit", done.code, *loaded)
"""


def test_pull_runs_without_typer_cryptography_or_httpx_and_keeps_the_exit_codes(
    registry: LocalRegistry, test_images: TestImages, tmp_path: Path
) -> None:
    def fast_pull(*args: str) -> tuple[list[str], str]:
        proc = subprocess.run(
            [sys.executable, "-c", _FAST, "pull", *args, *_common(registry, tmp_path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        return proc.stdout.split(), proc.stderr

    busybox = test_images.busybox
    out, err = fast_pull(busybox.reference, str(tmp_path / "b"), *_accept(tmp_path))
    # an open registry answers every GET at once: httpx is never needed, nor imported
    assert out == [busybox.digest_reference, "exit", "0", "False", "False", "False"], err
    assert OCILayout(tmp_path / "b").find(busybox.reference).digest == busybox.manifest_digest
    missing = f"{registry.host}/crid-test/nothing:here"
    out, err = fast_pull(missing, str(tmp_path / "n"), *_accept(tmp_path))
    # a 404 is sent again through httpx, which words the error
    assert out == ["exit", "3", "False", "False", "True"], err
    assert "ociimage: error:" in err and not (tmp_path / "n").exists()
    # a usage error goes to typer, which names the problem (exit code 2)
    out, err = fast_pull(busybox.reference, str(tmp_path / "c"), "--max-concurrent", "0")
    assert out[:2] == ["exit", "2"] and "--max-concurrent" in err
