"""kiln.Client against a real `kiln serve` on a loopback port."""

import os
import subprocess
import time

import numpy as np
import pytest

import kiln
from kiln import _binary

jax = pytest.importorskip("jax")
jnp = jax.numpy

TOKEN = "python-client-test-token-0123456789"


def double(x):
    return x * 2.0 + 1.0


SPEC = jax.ShapeDtypeStruct((4, 8), jnp.float32)


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    home = tmp_path_factory.mktemp("serve")
    (home / "tokens").write_text(TOKEN + "\n")
    port_file = home / "port"
    proc = subprocess.Popen([str(_binary.binary()), "serve", "--listen", "127.0.0.1:0", "--port-file", str(port_file),
                             "--data-dir", str(home / "data"), "--tokens-file", str(home / "tokens"),
                             "--workers", "1", "--executor", "local"],
                            env=_binary.environment(), stdout=subprocess.DEVNULL, stderr=open(home / "log", "w"))
    deadline = time.monotonic() + 30
    while not (port_file.exists() and port_file.read_text().strip()):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("kiln serve did not start: " + (home / "log").read_text())
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port_file.read_text().strip()}"
    proc.terminate()
    proc.wait(timeout=30)


def test_a_job_through_the_service(service, tmp_path):
    client = kiln.Client(service, TOKEN)
    job = client.submit(double, SPEC, targets=["cpu"], opt_level="O2")
    assert job.id and job.state in ("queued", "running", "succeeded")
    job.wait(timeout=300)
    assert job.state == "succeeded" and job.units[0]["ok"]
    (module,) = job.fetch(tmp_path)
    assert module.path.is_file() and module.target == "cpu"
    x = np.arange(32, dtype=np.float32).reshape(4, 8)
    np.testing.assert_allclose(module.run(x), x * 2 + 1)
    assert client.job(job.id).state == "succeeded"


def test_bind_through_the_service(service, tmp_path):
    client = kiln.Client(service, TOKEN)
    x = jax.ShapeDtypeStruct(jax.export.symbolic_shape("b, 8"), jnp.float32)
    job = client.submit(double, x, targets=["cpu"], bind=[{"b": 2}, {"b": 4}]).wait(timeout=300)
    assert [u["binding"] for u in job.units] == [{"b": 2}, {"b": 4}]
    modules = job.fetch(tmp_path)
    assert [m.metadata.binding for m in modules] == [{"b": 2}, {"b": 4}]
    x4 = np.arange(32, dtype=np.float32).reshape(4, 8)
    np.testing.assert_allclose(modules[1].run(x4), x4 * 2 + 1)
    with pytest.raises(kiln.InvalidArgumentError, match="repeats /options/bind/0"):
        client.submit(double, x, targets=["cpu"], bind=[{"b": 2}, {"b": 2}])


def test_cancel_a_job(service):
    client = kiln.Client(service, TOKEN)
    job = client.submit(double, SPEC, targets=["cpu"], opt_level="O1")
    job.cancel()
    assert job.state in ("cancelled", "succeeded", "running")
    if job.refresh().state == "cancelled":
        with pytest.raises(kiln.CancelledError):
            job.wait(timeout=60)


def test_service_errors_carry_kiln_codes(service):
    with pytest.raises(kiln.UnauthenticatedError) as e:
        kiln.Client(service, "not-the-token-of-this-service").submit(double, SPEC, targets=["cpu"])
    assert e.value.http_status == 401
    client = kiln.Client(service, TOKEN)
    with pytest.raises(kiln.InvalidArgumentError) as e:
        client.submit(double, SPEC, targets=["tpu"])
    assert e.value.http_status == 400 and "tpu" in e.value.message
    with pytest.raises(kiln.NotFoundError):
        client.job("0" * 32)
    with pytest.raises(kiln.InvalidArgumentError, match="not an option of the compile service"):
        client.submit(double, SPEC, targets=["cpu"], jobs=4)


def test_an_unreachable_service_is_unavailable():
    with pytest.raises(kiln.UnavailableError):
        kiln.Client("http://127.0.0.1:9", TOKEN, timeout=5).job("0" * 32)
