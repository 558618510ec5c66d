"""A registry that lies: huge bodies, unasked-for compression, redirect loops, blobs
longer than their descriptor. Real sockets on loopback (ociimage.testing.faults in front
of the real docker-registry); memory is measured in a separate pulling process."""

from __future__ import annotations

import asyncio
import gzip
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from ociimage._retry import RetryPolicy
from ociimage.client import RegistryClient
from ociimage.errors import ImageError, PolicyRejectedError, SizeMismatchError
from ociimage.layout import OCILayoutSink
from ociimage.limits import DEFAULT_LIMITS
from ociimage.policy import Policy
from ociimage.pull import Puller
from ociimage.registries import RegistriesConfig
from ociimage.registries_d import RegistriesD
from ociimage.testing import DOCKER_REGISTRY, LocalRegistry, TestImages, free_port
from ociimage.testing.faults import Fault, FaultyProxy
from ocispec.image import Manifest, MediaType

pytestmark = pytest.mark.binaries(DOCKER_REGISTRY)

FAST = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02)
FLOOD = 256 << 20  # far past every cap: reading it whole would show in the RSS
MIB = 1 << 20


@pytest.fixture
def proxy(registry: LocalRegistry) -> Iterator[FaultyProxy]:
    with FaultyProxy(registry.url) as p:
        yield p


def _conf(*hosts: str) -> RegistriesConfig:
    return RegistriesConfig().with_insecure(hosts)


def _blob_files(root: Path) -> set[str]:
    return {p.name for p in (root / "blobs").rglob("*") if p.is_file()}


# -- memory stays bounded whatever the registry sends -------------------------------------

_PROBE = textwrap.dedent(
    """
    import asyncio, json, sys
    from ociimage._retry import RetryPolicy
    from ociimage.client import RegistryClient
    from ociimage.pull import Puller
    from ociimage.registries import RegistriesConfig

    host = sys.argv[1]
    FAST = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02)

    def status(field):
        for line in open("/proc/self/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise KeyError(field)

    def reset_peak():
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # VmHWM := VmRSS

    async def main():
        conf = RegistriesConfig().with_insecure([host])
        out = {}
        async with Puller(registries=conf, retry=FAST) as puller:
            # warm up: TLS probe, imports, first connection
            try:
                await puller.resolve(f"{host}/hostile/none:latest")
            except Exception:
                pass
            client = puller.client(host, insecure=True)
            cases = {
                "error_body": lambda: puller.resolve(f"{host}/hostile/error:latest"),
                "retried_5xx": lambda: puller.resolve(f"{host}/hostile/busy:latest"),
                "unauthorized_token": lambda: puller.resolve(f"{host}/hostile/auth:latest"),
                "manifest": lambda: puller.resolve(f"{host}/hostile/big:latest"),
                "manifest_announced": lambda: puller.resolve(f"{host}/hostile/told:latest"),
                "gzip_bomb": lambda: puller.resolve(f"{host}/hostile/bomb:latest"),
                "signature_api": lambda: client.signatures_extension(
                    "hostile/sigs", "sha256:" + "0" * 64
                ),
            }
            for name, run in cases.items():
                reset_peak()
                start = status("VmRSS")
                try:
                    await run()
                    error = None
                except Exception as err:
                    error = f"{type(err).__name__}: {err}"
                out[name] = {"grew": status("VmHWM") - start, "error": error}
        print(json.dumps(out))

    asyncio.run(main())
    """
)


def test_huge_bodies_keep_the_pulling_process_small(proxy: FaultyProxy, tmp_path: Path) -> None:
    token_realm = f'Bearer realm="{proxy.url}/token",service="hostile"'
    bomb = gzip.compress(b'{"schemaVersion": 2, "x": "' + b" " * (64 * MIB) + b'"}')
    json_type = {"Content-Type": "application/json"}
    for fault in (
        Fault(path="^/v2/hostile/error/", status=400, flood=FLOOD, times=None),
        Fault(path="^/v2/hostile/busy/", status=503, flood=FLOOD, times=None),
        Fault(
            path="^/v2/hostile/auth/",
            status=401,
            flood=FLOOD,
            headers={"WWW-Authenticate": token_realm},
            times=None,
        ),
        Fault(path="^/token", status=200, flood=FLOOD, headers=json_type, times=None),
        Fault(
            path="^/v2/hostile/big/",
            status=200,
            flood=FLOOD,
            headers={"Content-Type": MediaType.IMAGE_MANIFEST},
            times=None,
        ),
        Fault(path="^/v2/hostile/told/", status=200, flood=FLOOD, announce=True, times=None),
        Fault(
            path="^/v2/hostile/bomb/",
            status=200,
            body=bomb,
            headers={"Content-Encoding": "gzip", "Content-Type": MediaType.IMAGE_MANIFEST},
            times=None,
        ),
        Fault(path="/hostile/sigs/", status=200, flood=FLOOD, headers=json_type, times=None),
    ):
        proxy.add(fault)
    script = tmp_path / "probe.py"
    script.write_text(_PROBE)
    done = subprocess.run(
        [sys.executable, str(script), proxy.host],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    for name, result in results.items():
        assert result["grew"] <= 64 * MIB, (name, result)
        assert result["error"], name
    limits = DEFAULT_LIMITS
    assert "HTTP 400" in results["error_body"]["error"]
    assert "RegistryUnavailableError" in results["retried_5xx"]["error"]
    assert results["unauthorized_token"]["error"].startswith("ResponseTooLargeError")
    assert f"{proxy.url}/token" in results["unauthorized_token"]["error"]
    assert str(limits.max_token_bytes) in results["unauthorized_token"]["error"]
    for name in ("manifest", "manifest_announced", "gzip_bomb"):
        error = results[name]["error"]
        assert error.startswith("ResponseTooLargeError"), error
        assert str(limits.max_manifest_bytes) in error
        assert f"{proxy.host}/v2/hostile/" in error
    assert "decoded from gzip" in results["gzip_bomb"]["error"]
    assert "announced" in results["manifest_announced"]["error"]
    assert str(limits.max_signature_bytes) in results["signature_api"]["error"]


# -- compression nobody asked for ----------------------------------------------------------


async def test_gzip_encoded_manifests_and_config_verify_against_their_json(
    proxy: FaultyProxy, test_images: TestImages, tmp_path: Path
) -> None:
    image = test_images.multiplatform
    member = test_images.user_env
    proxy.add(Fault(path="/manifests/", encode=True, times=None))
    proxy.add(Fault(path=f"/blobs/{member.config_digest}", method="GET", encode=True))
    async with Puller(registries=_conf(proxy.host), retry=FAST) as puller:
        result = await puller.pull(
            f"{proxy.host}/{image.repository}:latest", OCILayoutSink(tmp_path / "a")
        )
        assert result.index is not None and result.index.digest == image.digest
        member = test_images.user_env
        result = await puller.pull(
            f"{proxy.host}/{member.repository}@{member.manifest_digest}",
            OCILayoutSink(tmp_path / "b"),
        )
        assert result.manifest.digest == member.manifest_digest
        assert result.config.config is not None
    assert all(f.hits for f in proxy.faults)
    registry_requests = [r for r in proxy.requests if r.path.startswith("/v2/")]
    assert registry_requests
    assert all(r.headers.get("accept-encoding") == "identity" for r in registry_requests)


async def test_unknown_content_encoding_is_refused_clearly(
    proxy: FaultyProxy, test_images: TestImages
) -> None:
    image = test_images.busybox
    proxy.add(
        Fault(
            path="/manifests/",
            status=200,
            body=b"\x28\xb5\x2f\xfd-not-really-zstd",
            headers={"Content-Encoding": "zstd", "Content-Type": MediaType.IMAGE_MANIFEST},
        )
    )
    async with RegistryClient(proxy.host, insecure=True, retry=FAST) as client:
        with pytest.raises(ImageError, match="unsupported Content-Encoding 'zstd'"):
            await client.get_manifest(image.repository, "latest")


# -- a blob longer than its descriptor -----------------------------------------------------


async def test_blob_longer_than_its_descriptor_is_cut_off(
    proxy: FaultyProxy, test_images: TestImages, tmp_path: Path
) -> None:
    image = test_images.layered
    layer = image.layer_digests[1]
    proxy.add(Fault(path=f"/blobs/{layer}", method="GET", append=b"x" * (8 * MIB), times=None))
    root = tmp_path / "oci"
    async with Puller(registries=_conf(proxy.host), retry=FAST) as puller:
        with pytest.raises(SizeMismatchError, match=f"{layer}.*more than the"):
            await puller.pull(f"{proxy.host}/{image.repository}:latest", OCILayoutSink(root))
    assert layer.split(":")[1] not in _blob_files(root)
    assert image.manifest_digest.split(":")[1] not in _blob_files(root)

    # the config (read into memory) too
    proxy.clear()
    proxy.add(Fault(path=f"/blobs/{image.config_digest}", method="GET", append=b"{}" * 100))
    async with RegistryClient(proxy.host, insecure=True, retry=FAST) as client:
        fetched = await client.get_manifest(image.repository, image.manifest_digest)
        config = Manifest.from_json(fetched.data).config
        with pytest.raises(SizeMismatchError, match="more than the"):
            await client.get_blob(image.repository, config)


async def test_a_mirror_sending_a_bad_blob_hands_the_blob_to_the_next_source(
    registry: LocalRegistry, test_images: TestImages, tmp_path: Path
) -> None:
    image = test_images.layered
    layer = image.layer_digests[2]
    with FaultyProxy(registry.url) as mirror, FaultyProxy(registry.url) as primary:
        mirror.add(Fault(path=f"/blobs/{layer}", method="GET", append=b"x" * MIB, times=None))
        conf = RegistriesConfig.parse(
            f'[[registry]]\nprefix = "primary.invalid"\nlocation = "{primary.host}"\n'
            f'insecure = true\n[[registry.mirror]]\nlocation = "{mirror.host}"\n'
            "insecure = true\n"
        )
        root = tmp_path / "oci"
        async with Puller(registries=conf, retry=FAST) as puller:
            result = await puller.pull(
                f"primary.invalid/{image.repository}:latest", OCILayoutSink(root)
            )
        assert result.image.source.mirror  # found at the mirror ...
        assert result.manifest.digest == image.manifest_digest
        # ... whose bad layer was dropped and fetched from the primary instead
        assert [r.method for r in primary.requests if r.path.endswith(layer)] == ["GET"]
        assert not [r for r in primary.requests if "/manifests/" in r.path]
    assert layer.split(":")[1] in _blob_files(root)


# -- every way a mirror fails leads to the next --------------------------------------------


async def test_each_failing_mirror_falls_through_to_the_next(
    registry: LocalRegistry, test_images: TestImages, tmp_path: Path
) -> None:
    image = test_images.user_env
    with ExitStack() as stack:
        kinds: dict[str, Fault | None] = {
            "redirect loop": Fault(path="/", loop=True, times=None),
            "tls": None,  # plain HTTP where TLS is expected
            "refused": None,
            "timeout": Fault(path="/manifests/", stall_after=10, times=None),
            "5xx": Fault(path="/manifests/", status=503, times=None),
            "bad body": Fault(path="/manifests/", status=200, body=b"not json", times=None),
            "digest mismatch": Fault(path="/manifests/", corrupt=True, times=None),
            "oversized": Fault(path="/manifests/", status=200, flood=FLOOD, times=None),
        }
        mirrors: list[tuple[str, str, bool]] = []
        for kind, fault in kinds.items():
            if kind == "refused":
                mirrors.append((kind, f"127.0.0.1:{free_port()}", True))
                continue
            mirror = stack.enter_context(FaultyProxy(registry.url))
            if fault is not None:
                mirror.add(fault)
            mirrors.append((kind, mirror.host, kind != "tls"))
        primary = stack.enter_context(FaultyProxy(registry.url))
        mirror_conf = "".join(
            f'\n[[registry.mirror]]\nlocation = "{host}"\ninsecure = {str(insecure).lower()}\n'
            for _, host, insecure in mirrors
        )

        def conf(location: str) -> RegistriesConfig:
            return RegistriesConfig.parse(
                f'[[registry]]\nprefix = "primary.invalid"\nlocation = "{location}"\n'
                f"insecure = true\n{mirror_conf}"
            )

        logical = f"primary.invalid/{image.repository}:latest"
        async with Puller(registries=conf(primary.host), retry=FAST, progress_timeout=0.5) as p:
            result = await p.pull(logical, OCILayoutSink(tmp_path / "oci"))
        assert result.manifest.digest == image.manifest_digest
        assert str(result.image.source.reference).startswith(primary.host)

        # none left: one error listing every source's failure, in order
        primary.add(Fault(path="/manifests/", status=503, times=None))
        async with Puller(registries=conf(primary.host), retry=FAST, progress_timeout=0.5) as p:
            with pytest.raises(ImageError) as caught:
                await p.pull(logical, OCILayoutSink(tmp_path / "none"))
        message = str(caught.value)
        assert "every source failed" in message
        positions = [message.index(host) for _, host, _ in mirrors]
        assert positions == sorted(positions)
        assert message.index(primary.host) > positions[-1]
        assert "TooManyRedirects" in message
        assert "larger than the" in message


# -- pulls that share a layer download it once ---------------------------------------------


@pytest.mark.parametrize("same_sink", [True, False])
async def test_concurrent_pulls_sharing_a_layer_fetch_it_once(
    proxy: FaultyProxy, test_images: TestImages, tmp_path: Path, same_sink: bool
) -> None:
    first, second = test_images.layered, test_images.user_env
    shared = first.layer_digests[0]
    assert shared == second.layer_digests[0]
    # hold the shared layer's download open while both pulls reach it
    proxy.add(Fault(path=f"/blobs/{shared}", method="GET", delay=1.0, times=None))
    root = tmp_path / "oci"
    sinks = (OCILayoutSink(root), OCILayoutSink(root))
    async with Puller(registries=_conf(proxy.host), retry=FAST) as puller:
        results = await asyncio.gather(
            puller.pull(f"{proxy.host}/{first.repository}:latest", sinks[0]),
            puller.pull(f"{proxy.host}/{second.repository}:latest", sinks[0 if same_sink else 1]),
        )
    assert [r.manifest.digest for r in results] == [first.manifest_digest, second.manifest_digest]
    gets = [r for r in proxy.requests if r.method == "GET" and r.path.endswith(shared)]
    assert len(gets) == 1
    assert shared.split(":")[1] in _blob_files(root)


async def test_huge_lookaside_signature_is_cut_off(
    proxy: FaultyProxy, test_images: TestImages, tmp_path: Path
) -> None:
    image = test_images.busybox
    (tmp_path / "key.asc").write_bytes(b"not consulted: the signature never arrives whole")
    policy = Policy.parse(
        json.dumps(
            {
                "default": [{"type": "reject"}],
                "transports": {
                    "docker": {
                        proxy.host: [
                            {"type": "signedBy", "keyType": "GPGKeys", "keyPath": "key.asc"}
                        ]
                    }
                },
            }
        ),
        base=tmp_path,
    )
    registries_d = RegistriesD.parse(
        {"default.yaml": f"default-docker:\n  lookaside: {proxy.url}/sigstore\n"}
    )
    proxy.add(Fault(path="^/sigstore/.*/signature-1$", status=200, flood=FLOOD, times=None))
    root = tmp_path / "oci"
    async with Puller(
        registries=_conf(proxy.host), retry=FAST, policy=policy, registries_d=registries_d
    ) as puller:
        with pytest.raises(PolicyRejectedError) as caught:
            await puller.pull(f"{proxy.host}/{image.repository}:latest", OCILayoutSink(root))
    assert f"larger than the {DEFAULT_LIMITS.max_signature_bytes}-byte limit" in str(caught.value)
    assert "signature-1" in str(caught.value)
    assert not root.exists()
