"""kiln.compile, Module.run/validate/bench, inspect and the cache, against the real binary and IREE."""

import subprocess
import sys

import numpy as np
import pytest

import kiln

jax = pytest.importorskip("jax")
jnp = jax.numpy


def mlp(x, w1, w2):
    return jnp.maximum(x @ w1, 0.0) @ w2


SPECS = (jax.ShapeDtypeStruct((8, 16), jnp.float32), jax.ShapeDtypeStruct((16, 32), jnp.float32),
         jax.ShapeDtypeStruct((32, 4), jnp.float32))


def inputs(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s.shape).astype(np.float32) for s in SPECS]


@pytest.fixture(scope="module")
def cpu_module(tmp_path_factory):
    (module,) = kiln.compile(mlp, *SPECS, targets=["cpu"], out_dir=tmp_path_factory.mktemp("first"))
    return module


def test_compile_for_cpu_gives_a_module_with_its_record(cpu_module):
    assert cpu_module.path.is_file() and cpu_module.path.suffix == ".vmfb"
    assert cpu_module.path.name == "mlp.cpu-host.vmfb"
    assert cpu_module.target == "cpu"
    assert not cpu_module.cache_hit
    assert cpu_module.metadata.iree_release == "3.13.0"
    assert cpu_module.metadata.output_sha256 and cpu_module.metadata.size_bytes == cpu_module.path.stat().st_size
    sig = cpu_module.signature
    assert [t.shape for t in sig.inputs] == [(8, 16), (16, 32), (32, 4)]
    assert [t.dtype for t in sig.outputs] == [np.dtype("float32")]


def test_run_matches_jax(cpu_module):
    xs = inputs()
    got = cpu_module.run(*xs)
    assert isinstance(got, np.ndarray) and got.shape == (8, 4) and got.dtype == np.float32
    np.testing.assert_allclose(got, np.asarray(jax.jit(mlp)(*xs)), rtol=1e-4, atol=1e-5)


def test_validate_against_jax(cpu_module):
    xs = inputs(1)
    report = cpu_module.validate(xs, jax.jit(mlp)(*xs))
    assert report.passed and report
    assert report.outputs[0].shape == (8, 4) and report.outputs[0].mismatches == 0
    wrong = cpu_module.validate(xs, np.asarray(jax.jit(mlp)(*xs)) + 1.0)
    assert not wrong.passed and wrong.outputs[0].mismatches > 0


def test_second_compile_is_a_cache_hit(cpu_module, tmp_path):
    before = kiln.cache_stats()
    (again,) = kiln.compile(jax.jit(mlp), *SPECS, targets="cpu", out_dir=tmp_path)
    assert again.cache_hit
    assert again.metadata.output_sha256 == cpu_module.metadata.output_sha256
    assert kiln.cache_stats().hits == before.hits + 1


def test_bf16_values_cross_as_ml_dtypes(tmp_path):
    import ml_dtypes

    def scale(x):
        return x * jnp.bfloat16(2)

    (module,) = kiln.compile(scale, jax.ShapeDtypeStruct((4,), jnp.bfloat16), targets=["cpu"], out_dir=tmp_path)
    x = np.array([1, -2, 0.5, 3], dtype=ml_dtypes.bfloat16)
    got = module.run(x)
    assert got.dtype == np.dtype(ml_dtypes.bfloat16)
    np.testing.assert_array_equal(got.astype(np.float32), [2, -4, 1, 6])


def test_bench_reports_latency(cpu_module):
    stats = cpu_module.bench(*inputs(), repetitions=5, warmup=1)
    assert stats.samples == 5 and 0 < stats.min_ms <= stats.p50_ms <= stats.max_ms


def test_inspect_an_export():
    from jax import export

    info = kiln.inspect(export.export(jax.jit(mlp))(*SPECS))
    assert info.format == "text"
    assert [t.element_type for t in info.functions[0].inputs] == ["f32"] * 3


def test_wrong_dtype_is_a_clear_error(cpu_module):
    xs = inputs()
    xs[0] = xs[0].astype(np.int32)
    with pytest.raises(kiln.InvalidArgumentError) as e:
        cpu_module.run(*xs)
    assert e.value.code == "invalid_argument" and "f32" in e.value.message


def test_wrong_shape_is_a_clear_error(cpu_module):
    xs = inputs()
    xs[1] = xs[1][:8]
    with pytest.raises(ValueError) as e:  # InvalidArgumentError is a ValueError
        cpu_module.run(*xs)
    assert "shape" in str(e.value) and "16x32" in str(e.value).replace(", ", "x")


def test_unknown_target_is_a_clear_error(tmp_path):
    with pytest.raises(kiln.InvalidArgumentError) as e:
        kiln.compile(mlp, *SPECS, targets=["cuda:h1000"], out_dir=tmp_path)
    assert "cuda:h1000" in e.value.message


def test_missing_specs_and_unknown_options_are_clear_errors(tmp_path):
    with pytest.raises(kiln.InvalidArgumentError, match="ShapeDtypeStruct"):
        kiln.compile(mlp, targets=["cpu"], out_dir=tmp_path)
    with pytest.raises(kiln.InvalidArgumentError, match="opt_level"):
        kiln.compile(mlp, *SPECS, targets=["cpu"], out_dir=tmp_path, opt_levl="O2")


def test_version_is_the_binary_version():
    out = subprocess.run([str(kiln.binary()), "version"], capture_output=True, text=True, check=True).stdout
    assert kiln.__version__ and out.split()[1] == kiln.__version__
    forwarded = subprocess.run([sys.executable, "-m", "kiln", "version"], capture_output=True, text=True, check=True)
    assert forwarded.stdout == out


def classifier(x, w, b):
    return jax.nn.log_softmax(x @ w + b)


def test_bind_gives_a_static_module_per_binding(tmp_path):
    x = jax.ShapeDtypeStruct(jax.export.symbolic_shape("b, 16"), jnp.float32)
    w, b = jax.ShapeDtypeStruct((16, 4), jnp.float32), jax.ShapeDtypeStruct((4,), jnp.float32)
    modules = kiln.compile(classifier, x, w, b, targets="cpu", out_dir=tmp_path, bind=[{"b": 3}, {"b": 8}])
    assert [m.path.name for m in modules] == ["classifier.b3.cpu-host.vmfb", "classifier.b8.cpu-host.vmfb"]
    assert [m.metadata.binding for m in modules] == [{"b": 3}, {"b": 8}]
    assert [t.shape for t in modules[1].signature.inputs] == [(8, 16), (16, 4), (4,)]
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal(s).astype(np.float32) for s in [(8, 16), (16, 4), (4,)]]
    report = modules[1].validate(xs, jax.jit(classifier)(*xs))
    assert report.passed
    # One dict is one binding; without bind the module stays dynamic.
    (one,) = kiln.compile(classifier, x, w, b, targets="cpu", out_dir=tmp_path / "one", bind={"b": 5})
    assert one.path.name == "classifier.b5.cpu-host.vmfb" and one.metadata.binding == {"b": 5}
    (dynamic,) = kiln.compile(classifier, x, w, b, targets="cpu", out_dir=tmp_path / "dyn")
    assert dynamic.metadata.binding is None


def test_bad_bindings_are_clear_errors(tmp_path):
    x = jax.ShapeDtypeStruct(jax.export.symbolic_shape("b, 16"), jnp.float32)
    w, b = jax.ShapeDtypeStruct((16, 4), jnp.float32), jax.ShapeDtypeStruct((4,), jnp.float32)
    for bad in ([], [{}], {"b": "8"}, [8]):
        with pytest.raises(kiln.InvalidArgumentError, match="bind"):
            kiln.compile(classifier, x, w, b, targets="cpu", out_dir=tmp_path, bind=bad)
    with pytest.raises(kiln.KilnError, match="symbolic dimensions are b"):
        kiln.compile(classifier, x, w, b, targets="cpu", out_dir=tmp_path, bind={"n": 2})
