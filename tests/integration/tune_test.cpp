// `kiln tune` and `kiln profile` end to end on this machine's CPU, with the
// real compiler and runtime: the same three steps a GPU fleet splits across
// hosts.
#include <set>

#include "harness.h"
#include "kiln/tune/kernel.h"

namespace kiln::testing {
namespace {

using nlohmann::json;

class Tune : public KilnTest {
 protected:
  json read_json(const fs::path& rel) { return json::parse(*util::read_file(dir() / rel)); }
  void write_json(const fs::path& rel, const json& j) { write(rel, j.dump(2)); }
  Outcome prepare(const std::string& out, const std::vector<std::string>& more = {}) {
    std::vector<std::string> args = {"tune", "prepare", model("mlp.mlir").string(), "--target", "cpu", "-o", out,
                                     "--per-dispatch", "2"};
    args.insert(args.end(), more.begin(), more.end());
    return kiln(args);
  }
  Outcome measure(const std::string& bundle) {
    return kiln({"tune", "measure", bundle, "--min-time", "0.01", "--repetitions", "1"});
  }
};

TEST_F(Tune, ThreeStepsRecordAWinnerThatCompileUses) {
  // Compiler flags after "--", as with `kiln compile`: every candidate is
  // built with them and the record is theirs.
  const std::string flag = "--iree-opt-const-eval=false";
  Outcome p = prepare("b1", {"--", flag});
  ASSERT_EQ(p.status, 0) << p.err;
  json bundle = read_json("b1/bundle.json");
  EXPECT_EQ(bundle["format"], "kiln-tune-bundle");
  EXPECT_EQ(bundle["candidates"][0]["id"], "reference");
  EXPECT_EQ(bundle["options"], json::array({flag}));
  std::map<std::string, int> levels;
  std::map<std::string, int> per_executable;
  for (const auto& c : bundle["candidates"]) {
    ++levels[c["level"].get<std::string>()];
    if (c["level"] == "dispatch") {
      // Each dispatch candidate is a small module of its own: the
      // executable's benchmark program, not the whole program.
      EXPECT_EQ(c["module"].get<std::string>().rfind("dispatches/", 0), 0u) << c.dump();
      EXPECT_EQ(c["executable"].get<std::string>().size(), 64u);
      ++per_executable[c["executable"].get<std::string>()];
    }
  }
  EXPECT_GE(levels["runtime"], 1);
  EXPECT_GE(levels["program"], 1);
  EXPECT_EQ(per_executable.size(), 2u) << bundle.dump(1);  // both matmuls of the MLP, each with a baseline
  for (const auto& [digest, n] : per_executable) EXPECT_GE(n, 2) << digest;
  for (const auto& c : bundle["candidates"]) EXPECT_TRUE(fs::exists(dir() / "b1" / c["module"].get<std::string>()));
  for (const auto& f : listing(dir())) EXPECT_EQ(f.find(".kiln-staging"), std::string::npos) << f;
  EXPECT_NE(p.err.find("dispatch candidates"), std::string::npos) << p.err;

  Outcome m = measure("b1");
  ASSERT_EQ(m.status, 0) << m.err;
  // The plan is bounded and said before anything runs; stderr is no
  // terminal here, so progress comes as plain lines with an estimate.
  EXPECT_NE(m.err.find("plan: "), std::string::npos) << m.err;
  EXPECT_NE(m.err.find("ETA"), std::string::npos) << m.err;
  EXPECT_EQ(m.err.find('\r'), std::string::npos);
  json results = read_json("b1/results.json");
  ASSERT_EQ(results["measurements"].size(), bundle["candidates"].size());
  for (const auto& r : results["measurements"]) {
    EXPECT_EQ(r["status"], "ok") << r.dump();
    EXPECT_GT(r["latency_ms"].get<double>(), 0);
  }
  // Measuring again resumes: nothing left to do, nothing measured twice.
  Outcome again = measure("b1");
  ASSERT_EQ(again.status, 0) << again.err;
  EXPECT_NE(again.err.find("resuming"), std::string::npos) << again.err;
  EXPECT_EQ(read_json("b1/results.json")["measurements"].size(), bundle["candidates"].size());

  // Round 2 combines round 1's winners; apply records the fastest. It must
  // be prepared with round 1's compiler options.
  Outcome without = prepare("b2", {"--from", "b1/results.json"});
  EXPECT_NE(without.status, 0);
  EXPECT_NE(without.err.find("same options"), std::string::npos) << without.err;
  Outcome p2 = prepare("b2", {"--from", "b1/results.json", "--flag=" + flag});
  ASSERT_EQ(p2.status, 0) << p2.err;
  EXPECT_EQ(read_json("b2/bundle.json")["round"], 2);
  ASSERT_EQ(measure("b2").status, 0);
  Outcome a = kiln({"tune", "apply", "b2/results.json"});
  ASSERT_EQ(a.status, 0) << a.err;
  EXPECT_NE(a.out.find("tuned mlp for cpu"), std::string::npos) << a.out;
  json records = kiln({"tune", "list", "--json"}).json();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0]["program"]["name"], "mlp");
  std::string key = records[0]["key"];

  EXPECT_EQ(records[0]["options"], json::array({flag}));
  // A compile without the flags is another program as far as tuning goes.
  ASSERT_EQ(kiln({"compile", model("mlp.mlir").string(), "-t", "cpu", "-o", "noflag"}).status, 0);
  EXPECT_FALSE(read_json("noflag/mlp.cpu-host.json").contains("tuning"));
  Outcome c = kiln({"compile", model("mlp.mlir").string(), "-t", "cpu", "-o", "out", "--", flag});
  ASSERT_EQ(c.status, 0) << c.err;
  json meta = read_json("out/mlp.cpu-host.json");
  EXPECT_EQ(meta["tuning"]["record"], key);
  EXPECT_EQ(meta["precision"], "highest");
  EXPECT_EQ(meta["deployment"]["runtime_flags"], records[0]["runtime_flags"]);
  // --no-tuning builds the compiler's own module, under another cache key.
  ASSERT_EQ(kiln({"compile", model("mlp.mlir").string(), "-t", "cpu", "-o", "plain", "--no-tuning", "--", flag}).status, 0);
  json plain = read_json("plain/mlp.cpu-host.json");
  EXPECT_FALSE(plain.contains("tuning"));
  EXPECT_NE(plain["cache"]["key"], meta["cache"]["key"]);
  // The tuned module runs with its recipe and still gives JAX's numbers.
  Outcome v = kiln({"validate", "out/mlp.cpu-host.vmfb", "--inputs", model("mlp.inputs.npz").string(), "--expected",
                    model("mlp.expected.npz").string()});
  EXPECT_EQ(v.status, 0) << v.out << v.err;

  // Round 2 again for queued calls: every candidate is built with the
  // asynchronous convention and timed in fenced batches; its record is
  // another record, used only by compiles that ask for that convention.
  Outcome pa = prepare("b2a", {"--from", "b1/results.json", "--invocation", "async", "--flag=" + flag});
  ASSERT_EQ(pa.status, 0) << pa.err;
  EXPECT_EQ(read_json("b2a/bundle.json")["invocation"], "async");
  ASSERT_EQ(measure("b2a").status, 0);
  json async_results = read_json("b2a/results.json");  // kept: the loop reads into it
  for (const auto& r : async_results["measurements"]) EXPECT_EQ(r["status"], "ok") << r.dump();
  ASSERT_EQ(kiln({"tune", "apply", "b2a/results.json"}).status, 0);
  json both = kiln({"tune", "list", "--json"}).json();
  ASSERT_EQ(both.size(), 2u);
  ASSERT_EQ(kiln({"compile", model("mlp.mlir").string(), "-t", "cpu", "-o", "async", "--invocation", "async", "--", flag}).status, 0);
  json async_meta = read_json("async/mlp.cpu-host.json");
  EXPECT_EQ(async_meta["invocation"], "async");
  EXPECT_NE(async_meta["tuning"]["record"], key);
  EXPECT_EQ(read_json("out/mlp.cpu-host.json")["tuning"]["record"], key) << "the synchronous record is unchanged";

  ASSERT_EQ(kiln({"tune", "forget", "mlp"}).status, 0);
  EXPECT_EQ(kiln({"tune", "list", "--json"}).json().size(), 0u);
}

TEST_F(Tune, ADispatchWinnerIsCombinedAndIsTheModuleCompileBuilds) {
  ASSERT_EQ(prepare("b1").status, 0);
  ASSERT_EQ(measure("b1").status, 0);
  // Make one dispatch candidate far faster than its executable's baseline,
  // as a GPU would for a better tile, and every other configuration slower
  // than its baseline, so timing noise on a busy machine picks nothing else.
  json bundle = read_json("b1/bundle.json");
  json results = read_json("b1/results.json");
  std::string chosen, exe;
  for (const auto& c : bundle["candidates"]) {
    if (c["level"] == "dispatch" && !c["configs"].empty()) {
      chosen = c["id"];
      exe = c["dispatches"].begin().key();
      break;
    }
  }
  ASSERT_FALSE(chosen.empty());
  std::set<std::string> configured;
  for (const auto& c : bundle["candidates"]) {
    if (c["level"] == "dispatch" && !c["configs"].empty()) configured.insert(c["id"].get<std::string>());
  }
  for (auto& r : results["measurements"]) {
    if (r["id"] == chosen) {
      r["latency_ms"] = 1e-6;
    } else if (configured.count(r["id"].get<std::string>())) {
      r["latency_ms"] = 1e3;
    }
  }
  write_json("b1/results.json", results);
  Outcome p2 = prepare("b2", {"--from", "b1/results.json"});
  ASSERT_EQ(p2.status, 0) << p2.err;
  json second = read_json("b2/bundle.json");
  ASSERT_EQ(second["executables"].size(), 1u) << second["executables"].dump();
  EXPECT_EQ(second["executables"][0]["candidate"], chosen);
  std::string module;
  for (const auto& c : second["candidates"]) {
    if (c["id"] == "combined@defaults") {
      module = c["module"];
      EXPECT_TRUE(c["configs"].contains(exe)) << c.dump();
    }
  }
  ASSERT_FALSE(module.empty()) << second.dump(1);
  ASSERT_EQ(measure("b2").status, 0);
  // Make the combined program the fastest; apply records it.
  json r2 = read_json("b2/results.json");
  for (auto& r : r2["measurements"]) {
    if (r["id"] == "combined@defaults") {
      EXPECT_EQ(r["status"], "ok") << r.dump() << "; the whole program is checked against the reference";
      r["latency_ms"] = 1e-6;
    }
  }
  write_json("b2/results.json", r2);
  Outcome a = kiln({"tune", "apply", "b2/results.json"});
  ASSERT_EQ(a.status, 0) << a.err;
  EXPECT_NE(a.out.find(exe), std::string::npos) << a.out;

  Outcome c = kiln({"compile", model("mlp.mlir").string(), "-t", "cpu", "-o", "out", "--json"});
  ASSERT_EQ(c.status, 0) << c.err;
  json meta = read_json("out/mlp.cpu-host.json");
  json measured = read_json("b2/" + module.substr(0, module.size() - 5) + ".json");
  // Byte for byte the module that was measured.
  EXPECT_EQ(meta["output"]["sha256"], measured["output"]["sha256"]);
  EXPECT_NE(meta["compiler_command_line"].get<std::string>().find("--iree-hal-substitute-executable-configurations-from="),
            std::string::npos);
  // A second compile is a cache hit that keeps the tuning record.
  Outcome hit = kiln({"compile", model("mlp.mlir").string(), "-t", "cpu", "-o", "out2"});
  ASSERT_EQ(hit.status, 0);
  json again = read_json("out2/mlp.cpu-host.json");
  EXPECT_EQ(again["cache"]["hit"], true);
  EXPECT_EQ(again["tuning"]["record"], meta["tuning"]["record"]);
}

// CUDA compiles here (no GPU needed): a bf16 matmul gets kiln's own
// tensor-core kernels as candidates, each compiled into its module by the
// real compiler in place of the compiler's kernel for that dispatch.
TEST_F(Tune, CudaMatmulsGetKilnsKernelsAsCandidates) {
  Outcome p = kiln({"tune", "prepare", model("gemm_bf16.mlir").string(), "--target", "cuda:h100", "-o", "b",
                    "--per-dispatch", "1"});
  ASSERT_EQ(p.status, 0) << p.err;
  json bundle = read_json("b/bundle.json");
  for (const auto& d : bundle["dispatches"]) {
    if (d.contains("kernels") && d["kernels"].is_string() &&
        d["kernels"].get<std::string>().find("built without nvcc") != std::string::npos) {
      GTEST_SKIP() << "this kiln was built without nvcc: " << d["kernels"];
    }
  }
  std::set<std::string> kernels;
  for (const auto& c : bundle["candidates"]) {
    std::string id = c["id"];
    if (id.find("-kernel") == std::string::npos) continue;
    kernels.insert(id);
    EXPECT_EQ(c["level"], "dispatch");
    // The kernel object travels with the bundle, for `kiln tune apply`.
    std::string ptx = c["configs"]["main_dispatch_0.ptx"];
    auto text = util::read_file(dir() / "b" / ptx);
    ASSERT_TRUE(text) << ptx;
    // The dispatch's benchmark module holds the kernel's PTX under the
    // dispatch's export name.
    std::string module = c["module"];
    EXPECT_EQ(module.rfind("dispatches/", 0), 0u) << module;
    auto bytes = util::read_file(dir() / "b" / module);
    ASSERT_TRUE(bytes);
    EXPECT_NE(bytes->find("kiln_args[9] = {512, 512, 512, 0, 0, 1, 0, 2, 0}"), std::string::npos) << id;
    EXPECT_NE(bytes->find(".entry main_dispatch_0_matmul_512x512x512_bf16xbf16xf32("), std::string::npos) << id;
    // cuda:h100 is Hopper: the wgmma kernel's PTX is for sm_90a, the others' for sm_80.
    bool hopper = id.ends_with("-kernel-wgmma");
    EXPECT_EQ(bytes->find(".target sm_90a") != std::string::npos, hopper) << id;
    EXPECT_EQ(bytes->find("wgmma.mma_async") != std::string::npos, hopper) << id;
  }
  std::set<std::string> expected = {"main_dispatch_0-kernel", "main_dispatch_0-kernel-k64", "main_dispatch_0-kernel-wide"};
  if (tune::hopper_kernels_available()) expected.insert("main_dispatch_0-kernel-wgmma");
  EXPECT_EQ(kernels, expected);
  bool listed = false;
  for (const auto& d : bundle["dispatches"]) {
    if (d["executable"] == "main_dispatch_0" && d.contains("kernels")) listed = d["kernels"].size() == expected.size();
  }
  EXPECT_TRUE(listed) << bundle["dispatches"].dump();
}

// CUDA modules compile without a GPU: round 1 for cuda:h100 is whole
// programs for the runtime and program options, and small benchmark modules
// for the dispatches, within the budget given.
TEST_F(Tune, CudaPrepareBuildsDispatchBenchmarksWithinTheBudget) {
  Outcome p = kiln({"tune", "prepare", model("mlp.mlir").string(), "--target", "cuda:h100", "-o", "b",
                    "--per-dispatch", "4", "--max-dispatch-candidates", "5"});
  ASSERT_EQ(p.status, 0) << p.err;
  json bundle = read_json("b/bundle.json");
  EXPECT_EQ(bundle["target"]["gpu"], "h100");
  size_t tuned = 0, baselines = 0, tunable = 0;
  for (const auto& c : bundle["candidates"]) {
    if (c["level"] != "dispatch") continue;
    (c["configs"].empty() ? baselines : tuned)++;
    auto size = fs::file_size(dir() / "b" / c["module"].get<std::string>());
    EXPECT_LT(size, 200u * 1024) << c["module"];
  }
  size_t shared = 0;
  for (const auto& d : bundle["dispatches"]) {
    EXPECT_EQ(d["digest"].get<std::string>().size(), 64u);
    shared += d["candidates"].get<size_t>();
    if (d["candidates"].get<size_t>() > 0) ++tunable;
  }
  EXPECT_GE(tunable, 1u) << bundle["dispatches"].dump(1);
  EXPECT_EQ(baselines, tunable) << "each executable with candidates is also timed untuned";
  EXPECT_LE(shared, 5u) << "the budget bounds the dispatch candidates";
  EXPECT_GE(tuned, 2u);
  EXPECT_LE(tuned, 5u);
  EXPECT_NE(p.out.find("at least"), std::string::npos) << p.out;  // the measure plan
}

// A program that builds only through a fallback (a bf16 dense layer with its
// bias, "failed to distribute" for CUDA) is tuned from the configuration the
// fallback built, not from the one that failed.
TEST_F(Tune, AProgramThatNeedsAFallbackGetsDispatchCandidates) {
  Outcome p = kiln({"tune", "prepare", model("linear_bias_bf16.mlir").string(), "--target", "cuda:h100", "-o", "b",
                    "--per-dispatch", "4", "--max-dispatch-candidates", "4"});
  ASSERT_EQ(p.status, 0) << p.err;
  json bundle = read_json("b/bundle.json");
  size_t tunable = 0;
  for (const auto& d : bundle["dispatches"]) tunable += d["candidates"].get<size_t>() > 0;
  EXPECT_EQ(tunable, 1u) << bundle["dispatches"].dump(1) << p.err;
}

TEST_F(Tune, BadBundlesAndResultsAreRefusedWithNothingWritten) {
  ASSERT_EQ(prepare("b1").status, 0);
  // Not empty: refused.
  Outcome busy = prepare("b1");
  EXPECT_NE(busy.status, 0);
  EXPECT_NE(busy.err.find("already holds a tuning bundle"), std::string::npos) << busy.err;
  // Another IREE release.
  json bundle = read_json("b1/bundle.json");
  json other = bundle;
  other["iree_release"] = "3.12.0";
  write_json("b1/bundle.json", other);
  Outcome release = measure("b1");
  EXPECT_NE(release.status, 0);
  EXPECT_NE(release.err.find("IREE 3.12.0"), std::string::npos) << release.err;
  EXPECT_FALSE(fs::exists(dir() / "b1/results.json"));
  write_json("b1/bundle.json", bundle);
  // Another kind of device.
  Outcome device = kiln({"tune", "measure", "b1", "--device", "cuda"});
  EXPECT_NE(device.status, 0);
  EXPECT_NE(device.err.find("not device 'cuda'"), std::string::npos) << device.err;
  EXPECT_FALSE(fs::exists(dir() / "b1/results.json"));
  // Results of another bundle.
  ASSERT_EQ(prepare("b2").status, 0);
  ASSERT_EQ(measure("b2").status, 0);
  Outcome mixed = kiln({"tune", "apply", "b2/results.json", "--bundle", "b1"});
  EXPECT_NE(mixed.status, 0);
  EXPECT_NE(mixed.err.find("does not match"), std::string::npos) << mixed.err;
  EXPECT_FALSE(fs::exists(dir() / "tuning"));
  Outcome list = kiln({"tune", "list"});
  EXPECT_NE(list.out.find("no tuning records"), std::string::npos);
  EXPECT_NE(kiln({"tune", "forget", "mlp"}).status, 0);
  // A bundle that is no bundle.
  Outcome none = kiln({"tune", "measure", "nowhere"});
  EXPECT_NE(none.status, 0);
  EXPECT_NE(none.err.find("not a tuning bundle"), std::string::npos) << none.err;
  // Compiler flags are checked as `kiln compile` checks them.
  Outcome level = prepare("b3", {"-O", "O9"});
  EXPECT_NE(level.status, 0);
  EXPECT_FALSE(fs::exists(dir() / "b3"));
  Outcome stray = kiln({"tune", "measure", "b1", "--", "--iree-opt-const-eval=false"});
  EXPECT_NE(stray.status, 0);
  EXPECT_NE(stray.err.find("after '--'"), std::string::npos) << stray.err;
}

TEST_F(Tune, ProfileShowsWhereTheTimeGoes) {
  ASSERT_EQ(kiln({"compile", model("mlp.mlir").string(), "-t", "cpu", "-o", "out"}).status, 0);
  Outcome p = kiln({"profile", "out/mlp.cpu-host.vmfb", "--calls", "5", "--json"});
  ASSERT_EQ(p.status, 0) << p.err;
  json j = p.json();
  EXPECT_EQ(j["source"], "host execution events");
  ASSERT_EQ(j["dispatches"].size(), 2u) << j.dump(1);
  double shares = 0;
  for (const auto& d : j["dispatches"]) {
    shares += d["share"].get<double>();
    EXPECT_EQ(d["op"], "matmul");
    EXPECT_DOUBLE_EQ(d["launches_per_call"].get<double>(), 1.0);
    EXPECT_GT(d["tflops"].get<double>(), 0);
  }
  EXPECT_NEAR(shares, 1.0, 1e-6);
  Outcome text = kiln({"profile", "out/mlp.cpu-host.vmfb", "--calls", "3"});
  ASSERT_EQ(text.status, 0);
  EXPECT_NE(text.out.find("main_dispatch_0_matmul_8x128x64_f32"), std::string::npos) << text.out;

  // The compiler's dispatch benchmarks: prepared with the compiler, timed
  // with the runtime alone.
  Outcome prep = kiln({"profile", "prepare", model("mlp.mlir").string(), "-t", "cpu", "-o", "dispatches"});
  ASSERT_EQ(prep.status, 0) << prep.err;
  EXPECT_EQ(read_json("dispatches/profile.json")["modules"].size(), 2u);
  Outcome bench = kiln({"profile", "dispatches", "--json"});
  ASSERT_EQ(bench.status, 0) << bench.err;
  json d = bench.json();
  ASSERT_EQ(d["dispatches"].size(), 2u) << d.dump(1);
  std::set<std::string> names;
  for (const auto& row : d["dispatches"]) {
    names.insert(row["name"].get<std::string>());
    EXPECT_GT(row["avg_us"].get<double>(), 0);
  }
  EXPECT_EQ(names, (std::set<std::string>{"main_dispatch_0_matmul_8x128x64_f32", "main_dispatch_1_matmul_8x16x128_f32"}));
  Outcome again = kiln({"profile", "prepare", model("mlp.mlir").string(), "-t", "cpu", "-o", "dispatches"});
  EXPECT_NE(again.status, 0);
  EXPECT_NE(again.err.find("not empty"), std::string::npos) << again.err;
}

TEST_F(Tune, PrecisionPolicyIsRecordedAndValidatedWithItsTolerance) {
  ASSERT_EQ(kiln({"compile", model("gemm_f32.mlir").string(), "-t", "cpu", "--precision", "f16-inputs", "-o", "f16"}).status, 0);
  json meta = read_json("f16/gemm_f32.cpu-host.json");
  EXPECT_EQ(meta["precision"], "f16-inputs");
  EXPECT_NE(meta["compiler_command_line"].get<std::string>().find("--iree-global-opt-demote-contraction-inputs-operations=all"),
            std::string::npos);
  std::vector<std::string> against = {"--inputs", model("gemm_f32.inputs.npz").string(), "--expected",
                                      model("gemm_f32.expected.npz").string()};
  auto validate = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"validate", "f16/gemm_f32.cpu-host.vmfb"};
    args.insert(args.end(), against.begin(), against.end());
    args.insert(args.end(), extra.begin(), extra.end());
    return kiln(args);
  };
  // f16 inputs really change the numbers: full-precision tolerances reject them...
  Outcome strict = validate({"--atol", "1e-5", "--rtol", "1e-5"});
  EXPECT_EQ(strict.status, 1) << strict.out;
  // ...and the policy's defaults accept them, and the report says which policy.
  Outcome ok = validate({"--report", "r.json"});
  EXPECT_EQ(ok.status, 0) << ok.out << ok.err;
  EXPECT_NE(ok.out.find("precision f16-inputs"), std::string::npos) << ok.out;
  EXPECT_EQ(read_json("r.json")["precision"], "f16-inputs");
  EXPECT_NE(kiln({"compile", model("gemm_f32.mlir").string(), "-t", "cpu", "--precision", "tf32"}).status, 0);
}

}  // namespace
}  // namespace kiln::testing
