#include "kiln/compile/compile.h"

#include <gtest/gtest.h>

namespace kiln::compile {

TEST(Compile, DefaultNameStripsStableHloExtensions) {
  EXPECT_EQ(default_name("dir/model.mlir"), "model");
  EXPECT_EQ(default_name("model.vhlo.mlirbc"), "model");
  EXPECT_EQ(default_name("resnet50.stablehlo.bc"), "resnet50");
  EXPECT_EQ(default_name("v1.2.mlir"), "v1.2");
}

TEST(Compile, OptionFlags) {
  Options o;
  o.opt_level = "O3";
  o.data_tiling = false;
  o.extra_flags = {"--iree-opt-const-eval=false"};
  EXPECT_EQ(option_flags(o), (std::vector<std::string>{"--iree-opt-level=O3", "--iree-opt-data-tiling=false",
                                                        "--iree-opt-const-eval=false"}));
  EXPECT_TRUE(option_flags(Options{}).empty());
  Options async;
  async.invocation = "async";
  EXPECT_EQ(option_flags(async), (std::vector<std::string>{"--iree-execution-model=async-external"}));
  Options sync;
  sync.invocation = "sync";
  EXPECT_TRUE(option_flags(sync).empty());
}

TEST(Compile, ValidateRejectsBadOptions) {
  Options level;
  level.opt_level = "O7";
  EXPECT_FALSE(validate(level));
  Options output;
  output.extra_flags = {"-o"};
  EXPECT_FALSE(validate(output));
  Options bare;
  bare.extra_flags = {"iree-opt-level=O2"};
  EXPECT_FALSE(validate(bare));
  Options invocation;
  invocation.invocation = "pipelined";
  auto refused = validate(invocation);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("sync, async"), std::string::npos) << refused.error().message;
  Options good;
  good.opt_level = "O2";
  good.extra_flags = {"--mlir-timing"};
  EXPECT_TRUE(validate(good));
}

TEST(Compile, DiagnosticsKeepErrorsWithPositionsAndDropStackDumps) {
  std::string err =
      "model.mlir:12:5: error: 'stablehlo.add' op requires the same type for all operands\n"
      "    %0 = stablehlo.add %a, %b : tensor<2xf32>\n"
      "    ^\n"
      "model.mlir:3:1: note: called from\n"
      "model.mlir:12:5: note: see current operation: %0 = \"stablehlo.add\"(%a, %b)\n"
      "model.mlir:20:1: warning: unused\n"
      "Stack dump:\n0. Program arguments: iree-compile\n";
  std::string s = summarize_diagnostics(err);
  EXPECT_NE(s.find("model.mlir:12:5: error: 'stablehlo.add'"), std::string::npos);
  EXPECT_NE(s.find("^"), std::string::npos);
  EXPECT_NE(s.find("note: see current operation"), std::string::npos);
  EXPECT_EQ(s.find("note: called from"), std::string::npos) << "a caller's position for every error is noise";
  EXPECT_EQ(s.find("warning"), std::string::npos);
  EXPECT_EQ(s.find("Program arguments"), std::string::npos);
}

TEST(Compile, DiagnosticsWithoutPositionsKeepFirstLines) {
  EXPECT_EQ(summarize_diagnostics("<unknown>:0: something odd\nStack dump:\nx\n"), "<unknown>:0: something odd");
}

TEST(Compile, MegabyteDiagnosticLinesAreCutNotRecursedOn) {
  // The compiler quotes the offending source line: a constant of 200,000
  // values is one line. A backtracking regex over it overflowed the stack.
  std::string quoted = "    %0 = stablehlo.constant dense<[" + std::string(1 << 20, '7') + "]> : tensor<3xf32>";
  std::string err = "/tmp/dir:with:colons/long.mlir:2:10: error: inferred shape is wrong\n" + quoted + "\n";
  std::string s = summarize_diagnostics(err);
  EXPECT_NE(s.find("long.mlir:2:10: error: inferred shape is wrong"), std::string::npos);
  EXPECT_NE(s.find("more characters cut"), std::string::npos);
  EXPECT_LT(s.size(), 2000u);
  // A line that only looks like a diagnostic is not one.
  EXPECT_EQ(summarize_diagnostics("x: error: y\nStack dump:\n"), "x: error: y");
}

TEST(Compile, OptimizationLevelsAreCheckedWithoutPatterns) {
  Options o;
  for (const char* ok : {"O0", "O1", "O2", "O3"}) {
    o.opt_level = ok;
    EXPECT_TRUE(validate(o)) << ok;
  }
  for (const char* bad : {"O4", "o1", "O", "O12", "3"}) {
    o.opt_level = bad;
    EXPECT_FALSE(validate(o)) << bad;
  }
}

TEST(Compile, RemoteClientsPassOnlyFlagsThatNameNoFile) {
  Options o;
  for (const char* ok : {"--iree-opt-const-eval=false", "--iree-llvmcpu-enable-ukernels=all",
                         "--iree-dispatch-creation-enable-aggressive-fusion"}) {
    o.extra_flags = {ok};
    EXPECT_TRUE(validate(o, Origin::kRemoteClient)) << ok;
  }
  for (const char* bad : {"-o=/tmp/x", "--iree-hal-dump-executable-sources-to=/tmp/x", "--mlir-print-ir-after-all",
                          "--iree-codegen-tuning-spec-path=/etc/spec.mlir", "--iree-opt-level=/x",
                          "--iree-hal-substitute-executable-configurations-from=d", "--iree-hal-executable-object-search-path=/",
                          "--iree-hal-preprocess-executables-with=python3 -c print(1)",
                          "--iree-codegen-transform-dialect-library=x.mlir", "--iree-hal-target-device=cuda"}) {
    o.extra_flags = {bad};
    EXPECT_FALSE(validate(o, Origin::kRemoteClient)) << bad;
  }
  // A local user may dump what they like.
  o.extra_flags = {"--iree-hal-dump-executable-sources-to=/tmp/x"};
  EXPECT_TRUE(validate(o, Origin::kLocalUser));
}

}  // namespace kiln::compile

namespace kiln::compile {

TEST(ModuleRecord, ReadsEveryFieldItsReadersUseAndNamesTheDamagedOne) {
  nlohmann::json good = nlohmann::json::parse(R"({
    "format": "kiln-module-metadata", "format_version": 1,
    "iree": {"release": "3.13.0"}, "target": {"spec": "cpu", "runtime_device": "local-task"},
    "input": {}, "output": {"sha256": "ab", "size_bytes": 12},
    "compile": {"wall_seconds": 0.5, "peak_rss_bytes": 1024},
    "invocation": "async",
    "functions": [{"name": "main", "visibility": "public",
                   "arguments": [{"name": "x", "type": "tensor<2x3xf32>"}], "results": [{"type": "tensor<2xbf16>"}]}],
    "deployment": {"runtime_flags": ["--device_allocator=caching"]}})");
  auto r = record_from_json(good, "m.json");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->iree_release, "3.13.0");
  EXPECT_EQ(r->invocation, "async");
  EXPECT_EQ(r->precision, "highest");
  EXPECT_EQ(r->output_size_bytes, 12u);
  ASSERT_EQ(r->functions.size(), 1u);
  EXPECT_EQ(r->functions[0].arguments[0].type.dims, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(r->runtime_flags, (std::vector<std::string>{"--device_allocator=caching"}));

  auto damaged = [&](const char* pointer, nlohmann::json value) {
    nlohmann::json j = good;
    j[nlohmann::json::json_pointer(pointer)] = value;
    auto bad = record_from_json(j, "m.json");
    return bad ? std::string("accepted") : bad.error().message;
  };
  EXPECT_NE(damaged("/iree", nlohmann::json::array()).find("m.json: damaged module metadata: .iree is not an object"),
            std::string::npos);
  EXPECT_NE(damaged("/output/size_bytes", "12").find(".output.size_bytes is not a number"), std::string::npos);
  EXPECT_NE(damaged("/functions/0/arguments/0/type", 3).find(".functions[0].arguments[0].type is not a string"),
            std::string::npos);
  EXPECT_NE(damaged("/functions/0/arguments/0/type", "tensor<2x").find(".functions[0].arguments[0].type"),
            std::string::npos);
  EXPECT_NE(damaged("/deployment/runtime_flags/0", nullptr).find("runtime_flags"), std::string::npos);
  EXPECT_NE(damaged("/format_version", "1").find("format version"), std::string::npos);
  EXPECT_FALSE(record_from_json(nlohmann::json::object(), "m.json"));
  EXPECT_FALSE(record_from_json(nlohmann::json::array(), "m.json"));
}

TEST(Demotions, FollowTheCompilersDefaultsAndTheLastFlag) {
  EXPECT_EQ(demotions({}), (std::map<std::string, std::string>{{"f64", "f32"}}));
  EXPECT_TRUE(demotions({"--iree-input-demote-f64-to-f32=false"}).empty());
  EXPECT_EQ(demotions({"--iree-input-demote-f64-to-f32=false", "--iree-input-demote-i64-to-i32"}),
            (std::map<std::string, std::string>{{"i64", "i32"}}));
  Options keep;
  keep.keep_f64 = true;
  EXPECT_TRUE(demotions(option_flags(keep)).empty());
}

}  // namespace kiln::compile
