#include <cmath>

#include "harness.h"
#include "kiln/array/npy.h"
#include "kiln/array/random.h"

namespace kiln::testing {
namespace {

class RunValidateBench : public KilnTest {
 protected:
  // Compiles a test model (or a file in the test folder) for this CPU into modules/.
  fs::path compile_cpu(const fs::path& input, const std::string& name, const std::string& target = "cpu") {
    Outcome r = kiln({"compile", input.string(), "-t", target, "-o", "modules", "--name", name});
    EXPECT_EQ(r.status, 0) << r.err;
    for (const auto& f : listing(dir() / "modules")) {
      if (f.rfind(name + ".", 0) == 0 && f.size() > 5 && f.substr(f.size() - 5) == ".vmfb") {
        if (target == "cpu" ? f.find("cpu-host") != std::string::npos : f.find("cpu-host") == std::string::npos) {
          return dir() / "modules" / f;
        }
      }
    }
    ADD_FAILURE() << "no module for " << name;
    return {};
  }
  // The JAX reference the export fixture wrote: inputs and outputs as .npz.
  static fs::path inputs_of(const std::string& model_name) { return model(model_name + ".inputs.npz"); }
  static fs::path expected_of(const std::string& model_name) { return model(model_name + ".expected.npz"); }
};

TEST_F(RunValidateBench, RunSavesInputsAndOutputsThatReproduce) {
  fs::path m = compile_cpu(model("mlp.mlir"), "mlp");
  Outcome r = kiln({"run", m.string(), "-o", "run1", "--seed", "7"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("output0.npy  f32 [8, 16]"), std::string::npos) << r.out;
  for (const char* f : {"input0.npy", "input3.npy", "output0.npy", "inputs.npz", "outputs.npz", "run.json"}) {
    EXPECT_TRUE(fs::exists(dir() / "run1" / f)) << f;
  }
  // The saved inputs give the same outputs again.
  Outcome again = kiln({"run", m.string(), "-o", "run2", "--inputs", "run1/inputs.npz"});
  ASSERT_EQ(again.status, 0) << again.err;
  EXPECT_EQ(*util::read_file(dir() / "run1/output0.npy"), *util::read_file(dir() / "run2/output0.npy"));
  // A different seed gives different inputs.
  ASSERT_EQ(kiln({"run", m.string(), "-o", "run3", "--seed", "8"}).status, 0);
  EXPECT_NE(*util::read_file(dir() / "run1/input0.npy"), *util::read_file(dir() / "run3/input0.npy"));
}

TEST_F(RunValidateBench, ValidatePassesOnJaxReferencesAndFailsOnPerturbedOnes) {
  for (const char* name : {"mlp", "gemm_bf16", "layernorm_gelu", "mixed_types", "attention"}) {
    fs::path m = compile_cpu(model(std::string(name) + ".mlir"), name);
    Outcome ok = kiln({"validate", m.string(), "--inputs", inputs_of(name).string(), "--expected",
                       expected_of(name).string(), "--report", std::string(name) + ".report.json"});
    EXPECT_EQ(ok.status, 0) << name << ":\n" << ok.out << ok.err;
    EXPECT_NE(ok.out.find("PASS"), std::string::npos);
    auto report = nlohmann::json::parse(*util::read_file(dir() / (std::string(name) + ".report.json")));
    EXPECT_EQ(report["passed"], true);
  }
  // Perturb one element of the reference.
  auto expected = *array::read_npz(expected_of("mlp"));
  array::Array& out = expected[0].second;
  array::set_element(out, 5, array::element_value(out, 5) + 0.5);
  ASSERT_TRUE(array::write_npz(dir() / "perturbed.npz", expected));
  fs::path m = dir() / "modules/mlp.cpu-host.vmfb";
  Outcome bad = kiln({"validate", m.string(), "--inputs", inputs_of("mlp").string(), "--expected", "perturbed.npz", "--json"});
  EXPECT_EQ(bad.status, 1) << bad.err;
  auto j = bad.json();
  EXPECT_EQ(j["passed"], false);
  EXPECT_EQ(j["outputs"][0]["mismatches"], 1);
  EXPECT_EQ(j["outputs"][0]["first_mismatch"]["index"], "[0, 5]");
  EXPECT_NEAR(j["outputs"][0]["max_abs_error"].get<double>(), 0.5, 1e-3);
  // A loose enough tolerance accepts it.
  Outcome loose = kiln({"validate", m.string(), "--inputs", inputs_of("mlp").string(), "--expected", "perturbed.npz", "--atol", "1"});
  EXPECT_EQ(loose.status, 0) << loose.out;
}

TEST_F(RunValidateBench, AFunctionWithoutArgumentsValidatesWithoutInputs) {
  // Its expected outputs belong to no inputs: validate used to demand --inputs.
  write("constant.mlir",
        "func.func @main() -> tensor<2xf32> {\n"
        "  %0 = stablehlo.constant dense<[1.5, -2.0]> : tensor<2xf32>\n"
        "  return %0 : tensor<2xf32>\n}\n");
  fs::path module = compile_cpu(dir() / "constant.mlir", "constant");
  ASSERT_EQ(kiln({"run", module.string(), "-o", "ran"}).status, 0);
  Outcome v = kiln({"validate", module.string(), "--expected", (dir() / "ran/outputs.npz").string(), "--json"});
  EXPECT_EQ(v.status, 0) << v.out << v.err;
  EXPECT_EQ(v.json()["passed"], true) << v.out;
}

TEST_F(RunValidateBench, SixtyFourBitProgramsRunAndValidateAsTheModuleComputesThem) {
  // A JAX export in 64-bit mode: f64 is computed as f32 unless --keep-f64,
  // i64 stays i64. Inputs and JAX's references are given in f64/i64.
  fs::path narrowed = compile_cpu(model("x64.mlir"), "x64");
  Outcome run = kiln({"run", narrowed.string(), "--inputs", inputs_of("x64").string(), "-o", "ran"});
  ASSERT_EQ(run.status, 0) << run.err;
  EXPECT_NE(run.err.find("f64 is computed as f32"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("--keep-f64"), std::string::npos) << run.err;
  auto outputs = *array::read_npz(dir() / "ran/outputs.npz");
  EXPECT_EQ(outputs[0].second.element, "f32");
  EXPECT_EQ(outputs[1].second.element, "i64");
  Outcome v = kiln({"validate", narrowed.string(), "--inputs", inputs_of("x64").string(), "--expected",
                    expected_of("x64").string()});
  EXPECT_EQ(v.status, 0) << v.out << v.err;
  EXPECT_EQ(kiln({"bench", narrowed.string(), "--inputs", inputs_of("x64").string(), "--repetitions", "2"}).status, 0);

  Outcome kept = kiln({"compile", model("x64.mlir").string(), "-t", "cpu", "-o", "kept", "--keep-f64"});
  ASSERT_EQ(kept.status, 0) << kept.err;
  fs::path wide = dir() / "kept/x64.cpu-host.vmfb";
  Outcome exact = kiln({"validate", wide.string(), "--inputs", inputs_of("x64").string(), "--expected",
                        expected_of("x64").string(), "--atol", "1e-12", "--rtol", "1e-12", "--json"});
  EXPECT_EQ(exact.status, 0) << exact.out << exact.err;
  EXPECT_EQ(exact.json()["passed"], true) << exact.out;

  Outcome refused = kiln({"compile", model("x64.mlir").string(), "-t", "vulkan:ampere", "-o", "v", "--keep-f64"});
  EXPECT_NE(refused.status, 0);
  EXPECT_NE((refused.out + refused.err).find("no 64-bit float arithmetic"), std::string::npos) << refused.out << refused.err;
}

TEST_F(RunValidateBench, IntegerOutputsMustMatchExactly) {
  fs::path m = compile_cpu(model("mixed_types.mlir"), "mixed_types");
  auto expected = *array::read_npz(expected_of("mixed_types"));
  array::set_element(expected[0].second, 0, array::element_value(expected[0].second, 0) + 1);
  ASSERT_TRUE(array::write_npz(dir() / "off_by_one.npz", expected));
  Outcome r = kiln({"validate", m.string(), "--inputs", inputs_of("mixed_types").string(), "--expected",
                    "off_by_one.npz", "--atol", "5"});
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("FAIL  output 0"), std::string::npos) << r.out;
}

TEST_F(RunValidateBench, NanRules) {
  write("log.mlir",
        "module @log {\n  func.func public @main(%x: tensor<3xf32>) -> tensor<3xf32> {\n"
        "    %0 = stablehlo.log %x : tensor<3xf32>\n    return %0 : tensor<3xf32>\n  }\n}\n");
  fs::path m = compile_cpu(dir() / "log.mlir", "log");
  array::Array x{"f32", {3}, std::vector<uint8_t>(12)};
  array::set_element(x, 0, -1);
  array::set_element(x, 1, 1);
  array::set_element(x, 2, 4);
  array::Array want = x;
  array::set_element(want, 0, NAN);
  array::set_element(want, 1, 0);
  array::set_element(want, 2, std::log(4.0));
  ASSERT_TRUE(array::write_npy(dir() / "x.npy", x));
  ASSERT_TRUE(array::write_npy(dir() / "want.npy", want));
  Outcome equal = kiln({"validate", m.string(), "--input", "x.npy", "--expected", "want.npy"});
  EXPECT_EQ(equal.status, 0) << equal.out << equal.err;
  Outcome strict = kiln({"validate", m.string(), "--input", "x.npy", "--expected", "want.npy", "--nan", "fail"});
  EXPECT_EQ(strict.status, 1) << strict.out;
  array::set_element(want, 0, 0);  // a number where the module gives NaN
  ASSERT_TRUE(array::write_npy(dir() / "want2.npy", want));
  EXPECT_EQ(kiln({"validate", m.string(), "--input", "x.npy", "--expected", "want2.npy", "--atol", "100"}).status, 1);
}

TEST_F(RunValidateBench, CrossTargetBuildsAgree) {
  fs::path host = compile_cpu(model("conv.mlir"), "conv");
  fs::path generic = compile_cpu(model("conv.mlir"), "conv", "cpu:x86_64");
  Outcome r = kiln({"validate", host.string(), "--against", generic.string(), "--seed", "3"});
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("against"), std::string::npos);
}

TEST_F(RunValidateBench, BadInputsGiveClearErrors) {
  fs::path m = compile_cpu(model("mlp.mlir"), "mlp");
  auto wrong_shape = array::random_array("f32", {3, 3}, 1);
  auto wrong_type = array::random_array("i32", {8, 64}, 1);
  ASSERT_TRUE(array::write_npy(dir() / "shape.npy", wrong_shape));
  ASSERT_TRUE(array::write_npy(dir() / "type.npy", wrong_type));
  write("corrupt.npy", "\x93NUMPY garbage");
  auto good = array::random_array("f32", {64, 128}, 1);
  ASSERT_TRUE(array::write_npy(dir() / "w1.npy", good));
  ASSERT_TRUE(array::write_npy(dir() / "b1.npy", array::random_array("f32", {128}, 1)));
  ASSERT_TRUE(array::write_npy(dir() / "w2.npy", array::random_array("f32", {128, 16}, 1)));
  struct Case {
    std::string first;
    int status;
    const char* says;
  } cases[] = {{"shape.npy", 2, "input 0 (x) must have shape tensor<8x64xf32>"},
               {"type.npy", 2, "input 0 (x) has element type i32, but the module expects f32"},
               {"corrupt.npy", 2, "corrupt.npy"},
               {"missing.npy", 3, "missing.npy"}};
  for (const auto& c : cases) {
    Outcome r = kiln({"run", m.string(), "--input", c.first, "--input", "w1.npy", "--input", "b1.npy", "--input", "w2.npy"});
    EXPECT_EQ(r.status, c.status) << c.first << ": " << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << c.first << ": " << r.err;
  }
  Outcome count = kiln({"run", m.string(), "--input", "w1.npy"});
  EXPECT_EQ(count.status, 2);
  EXPECT_NE(count.err.find("1 .npy file(s) given, but the function has 4 input(s)"), std::string::npos) << count.err;
  write("not-a-module.vmfb", "hello");
  Outcome junk = kiln({"run", "not-a-module.vmfb"});
  EXPECT_EQ(junk.status, 2);
  EXPECT_NE(junk.err.find("not an IREE module"), std::string::npos) << junk.err;
}

TEST_F(RunValidateBench, DynamicInputsNeedASize) {
  write("dyn.mlir",
        "module @dyn {\n  func.func public @main(%x: tensor<?x8xf32> loc(\"x\")) -> tensor<?x8xf32> {\n"
        "    %0 = stablehlo.tanh %x : tensor<?x8xf32>\n    return %0 : tensor<?x8xf32>\n  }\n}\n");
  fs::path m = compile_cpu(dir() / "dyn.mlir", "dyn");
  Outcome missing = kiln({"run", m.string()});
  EXPECT_EQ(missing.status, 2);
  EXPECT_NE(missing.err.find("--shape x="), std::string::npos) << missing.err;
  Outcome given = kiln({"run", m.string(), "--shape", "x=5x8", "-o", "dynrun"});
  ASSERT_EQ(given.status, 0) << given.err;
  auto out = array::read_npy(dir() / "dynrun/output0.npy");
  ASSERT_TRUE(out);
  EXPECT_EQ(out->shape, (std::vector<int64_t>{5, 8}));
  Outcome misfit = kiln({"run", m.string(), "--shape", "x=5x9"});
  EXPECT_EQ(misfit.status, 2);
}

TEST_F(RunValidateBench, ModulesOfAnotherReleaseAreRefusedWithBothVersions) {
  fs::path m = compile_cpu(model("mlp.mlir"), "mlp");
  fs::path meta = m;
  meta.replace_extension(".json");
  auto j = nlohmann::json::parse(*util::read_file(meta));
  j["iree"]["release"] = "3.9.0";
  ASSERT_TRUE(util::write_file_atomic(meta, j.dump()));
  Outcome r = kiln({"run", m.string()});
  EXPECT_EQ(r.status, 4) << r.err;
  EXPECT_NE(r.err.find("built by IREE 3.9.0"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("this runtime is IREE 3.13.0"), std::string::npos) << r.err;
}

TEST_F(RunValidateBench, SignatureFromReflectionWithoutMetadata) {
  fs::path m = compile_cpu(model("mixed_types.mlir"), "mixed_types");
  fs::path meta = m;
  meta.replace_extension(".json");
  fs::remove(meta);
  Outcome r = kiln({"run", m.string(), "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto j = r.json();
  EXPECT_EQ(j["signature_from"], "module reflection");
  EXPECT_NE(j["inputs"][1]["summary"].get<std::string>().find("ui8"), std::string::npos) << j.dump();
}

TEST_F(RunValidateBench, EveryElementTypeRoundTripsThroughNumpy) {
  // kiln writes .npy, NumPy (with ml_dtypes for bf16/f8) reads and saves it
  // again, kiln reads it back: the bytes survive.
  std::vector<std::string> types = {"i1", "i8", "ui8", "i16", "ui16", "i32", "ui32", "i64", "ui64", "f16",
                                    "bf16", "f32", "f64", "f8E4M3FN", "f8E5M2", "complex<f32>", "complex<f64>"};
  for (size_t i = 0; i < types.size(); ++i) {
    ASSERT_TRUE(array::write_npy(dir() / ("t" + std::to_string(i) + ".npy"), array::random_array(types[i], {3, 2}, i)));
  }
  Outcome py = run({(venv() / "bin/python").string(), "-c",
                    "import numpy as np, glob\n"
                    "for f in glob.glob('t*.npy'):\n"
                    "    a = np.load(f)\n"
                    "    np.save(f.replace('t', 'r', 1), a)\n"});
  ASSERT_EQ(py.status, 0) << py.err;
  for (size_t i = 0; i < types.size(); ++i) {
    auto a = array::read_npy(dir() / ("t" + std::to_string(i) + ".npy"));
    auto b = array::read_npy(dir() / ("r" + std::to_string(i) + ".npy"));
    ASSERT_TRUE(a && b) << types[i];
    ASSERT_TRUE(array::reinterpret(*b, types[i], types[i]));
    ASSERT_TRUE(array::reinterpret(*a, types[i], types[i]));
    EXPECT_EQ(a->data, b->data) << types[i];
    EXPECT_EQ(a->shape, b->shape) << types[i];
  }
}

TEST_F(RunValidateBench, BenchWritesReportsAndCompareGates) {
  fs::path m = compile_cpu(model("gemm_f32.mlir"), "gemm_f32");
  Outcome r = kiln({"bench", m.string(), "--warmup", "2", "--repetitions", "20", "-o", "b1", "--batch", "4"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("| samples | min | p50 | p90 | p99 | max | mean | std dev | runs/s | items/s |"), std::string::npos) << r.out;
  auto report = nlohmann::json::parse(*util::read_file(dir() / "b1/gemm_f32.cpu-host.bench.json"));
  EXPECT_EQ(report["stats"]["samples"], 20);
  EXPECT_EQ(report["samples_ms"].size(), 20u);
  double p50 = report["stats"]["p50_ms"];
  EXPECT_GT(p50, 0.01) << "a 512x512x512 f32 matmul takes more than 10 us on this CPU";
  EXPECT_LE(report["stats"]["min_ms"].get<double>(), p50);
  EXPECT_LE(p50, report["stats"]["p99_ms"].get<double>());
  EXPECT_NEAR(report["stats"]["items_per_second"].get<double>(), 4 * report["stats"]["runs_per_second"].get<double>(), 1e-6);
  EXPECT_TRUE(fs::exists(dir() / "b1/gemm_f32.cpu-host.bench.svg"));
  EXPECT_TRUE(fs::exists(dir() / "b1/gemm_f32.cpu-host.bench.md"));

  auto slower = report;
  slower["stats"]["p50_ms"] = p50 * 1.5;
  ASSERT_TRUE(util::write_file_atomic(dir() / "slower.json", slower.dump()));
  Outcome gate = kiln({"bench", "--compare", "b1/gemm_f32.cpu-host.bench.json", "slower.json", "--threshold", "10"});
  EXPECT_EQ(gate.status, 1) << gate.out;
  EXPECT_NE(gate.out.find("REGRESSION"), std::string::npos);
  Outcome same = kiln({"bench", "--compare", "b1/gemm_f32.cpu-host.bench.json", "b1/gemm_f32.cpu-host.bench.json"});
  EXPECT_EQ(same.status, 0) << same.out;
}

TEST_F(RunValidateBench, BenchAmortizedTimesBackToBackCalls) {
  fs::path m = compile_cpu(model("gemm_f32.mlir"), "gemm_f32");
  Outcome r = kiln({"bench", m.string(), "--amortized", "--min-time", "0.02", "--repetitions", "2", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto report = r.json();
  ASSERT_EQ(report["means_ms"].size(), 2u) << r.out;
  double median = report["amortized_ms"];
  EXPECT_GT(median, 0.01) << "a 512x512x512 f32 matmul takes more than 10 us on this CPU";
  EXPECT_DOUBLE_EQ(median, (report["means_ms"][0].get<double>() + report["means_ms"][1].get<double>()) / 2);
  EXPECT_EQ(report["invocation"], "sync");
  EXPECT_EQ(report["device"], "local-task");

  Outcome text = kiln({"bench", m.string(), "--amortized", "--min-time", "0.02"});
  ASSERT_EQ(text.status, 0) << text.err;
  EXPECT_NE(text.out.find("ms per call, amortized (median of 3 repetitions"), std::string::npos) << text.out;
  Outcome bad = kiln({"bench", m.string(), "--amortized", "--min-time", "0"});
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.err.find("--min-time"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace kiln::testing
