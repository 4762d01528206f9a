#include "kiln/compile/diagnostics.h"

#include <gtest/gtest.h>

#include "kiln/util/file.h"

namespace kiln::compile {
namespace {

// Real stderr of iree-compile 3.13.0, saved with the paths of the machine
// that produced it replaced.
std::string captured(const std::string& name) {
  auto text = util::read_file(std::filesystem::path(KILN_SOURCE_DIR) / "tests/unit/data/iree-compile" / name);
  EXPECT_TRUE(text) << name;
  return text ? *text : "";
}

target::Target target_of(const std::string& spec) {
  auto t = target::resolve(spec);
  EXPECT_TRUE(t) << spec;
  return *t;
}

util::ProcessResult exited(int status, std::string err) {
  util::ProcessResult r;
  r.exit_status = status;
  r.err = std::move(err);
  return r;
}

FailureContext context_for(const std::string& spec, std::vector<std::string> flags = {}) {
  FailureContext c;
  c.what = "compiling m.mlir for " + spec;
  c.target = target_of(spec);
  c.flags = std::move(flags);
  c.input_given = "m.mlir";
  c.input_compiled = "/abs/dir/m.mlir";
  c.log = "out/m.x.log";
  c.output_dir = "out";
  return c;
}

const std::vector<std::string> kKeepF64 = {"--iree-input-demote-f64-to-f32=false"};

TEST(CompileDiagnostics, LinkerErrorsSurviveAndComeFirst) {
  // f64 atan2 for cpu: the linker's line is the cause, the compiler's own
  // errors only say "check above".
  std::string err = captured("atan2_f64_cpu.stderr");
  Summary s = summarize(err);
  EXPECT_EQ(s.text.rfind("iree-lld: error: undefined symbol: atan2", 0), 0u) << s.text;
  EXPECT_NE(s.text.find(">>> referenced by"), std::string::npos) << s.text;
  EXPECT_NE(s.text.find("atan2.mlir:3:10: error: failed to link executable"), std::string::npos) << s.text;
  // The linker's command line names the toolchain's files: kept in the log only.
  EXPECT_EQ(s.text.find("LLD_VERSION"), std::string::npos) << s.text;
  EXPECT_EQ(s.text.find("Linking failed"), std::string::npos) << s.text;
  // The IR the notes print (a hundred lines) is cut to a few.
  EXPECT_EQ(s.text.find("llvm.intr.assume"), std::string::npos) << s.text;
  EXPECT_GT(s.omitted_lines, 50u);
  EXPECT_LT(s.text.size(), 3000u);
}

TEST(CompileDiagnostics, LinkerHintNamesTheMathFunctionAndTheWayOut) {
  std::string h = hint(captured("atan2_f64_cpu.stderr"), target_of("cpu"), kKeepF64);
  EXPECT_EQ(h.rfind("hint: ", 0), 0u) << h;
  EXPECT_NE(h.find("no f64 `atan2`"), std::string::npos) << h;
  EXPECT_NE(h.find("--keep-f64"), std::string::npos) << h;
  EXPECT_NE(h.find("cuda or rocm"), std::string::npos) << h;
  EXPECT_EQ(h.find('\n'), std::string::npos) << "one line";
  std::string other = hint("iree-lld: error: undefined symbol: my_helper\n", target_of("cpu"), {});
  EXPECT_NE(other.find("`my_helper`"), std::string::npos) << other;
}

TEST(CompileDiagnostics, F64OnVulkanNamesTheOperation) {
  std::string h = hint(captured("atan2_f64_vulkan.stderr"), target_of("vulkan:ampere"), kKeepF64);
  EXPECT_NE(h.find("no f64 code for stablehlo.atan2 for vulkan:ampere"), std::string::npos) << h;
  EXPECT_NE(h.find("cuda or rocm"), std::string::npos) << h;
  std::string i64 = hint("m.mlir:3:10: error: 'spirv.IMul' op operand #0 must be ..., but got 'i64'\n"
                         "    %0 = stablehlo.multiply %a, %b : tensor<4xi64>\n",
                         target_of("vulkan:ampere"), {});
  EXPECT_NE(i64.find("no i64 code for stablehlo.multiply"), std::string::npos) << i64;
  EXPECT_NE(i64.find("--iree-input-demote-i64-to-i32"), std::string::npos) << i64;
}

// What iree-compile 3.13 printed for a bf16 dense layer built for vulkan:ampere.
TEST(CompileDiagnostics, Bf16OnVulkanSaysWhichTypesBuild) {
  std::string err =
      "<unknown>:0: error: failed to legalize operation 'vector.bitcast': %4155 = \"vector.bitcast\"(%4154) : "
      "(vector<2xf32>) -> vector<4xbf16>\n"
      "models.py:71:11: error: failed to run translation of source executable to target executable for backend "
      "#hal.executable.target<\"vulkan-spirv\", \"vulkan-spirv-fb\">\n";
  std::string h = hint(err, target_of("vulkan:ampere"), {});
  EXPECT_NE(h.find("cannot compute bf16 for vulkan:ampere"), std::string::npos) << h;
  EXPECT_NE(h.find("f16 or f32"), std::string::npos) << h;
  EXPECT_NE(h.find("takes and returns f32"), std::string::npos) << h;
  EXPECT_EQ(hint(err, target_of("cpu"), {}).find("bf16"), std::string::npos) << "other targets get the general hint";
}

TEST(CompileDiagnostics, UnknownCustomCallIsNamed) {
  std::string err = captured("custom_call_cpu.stderr");
  std::string h = hint(err, target_of("cpu"), {});
  EXPECT_NE(h.find("`stablehlo.custom_call @my_fancy_kernel` is not supported by IREE"), std::string::npos) << h;
  EXPECT_NE(h.find("export without it"), std::string::npos) << h;
  std::string lapack = hint(
      "m.mlir:4:5: error: failed to legalize operation 'stablehlo.custom_call' that was explicitly marked illegal: "
      "%0 = \"stablehlo.custom_call\"(%a) <{call_target_name = \"lapack_sgetrf_ffi\"}>\n",
      target_of("cpu"), {});
  EXPECT_NE(lapack.find("@lapack_sgetrf_ffi"), std::string::npos) << lapack;
  EXPECT_NE(lapack.find("jnp.linalg"), std::string::npos) << lapack;
}

TEST(CompileDiagnostics, UnsupportedOperationIsNamed) {
  std::string h = hint("m.mlir:2:8: error: failed to legalize operation 'stablehlo.rng' that was explicitly marked illegal\n",
                       target_of("cuda:h100"), {});
  EXPECT_NE(h.find("no lowering of 'stablehlo.rng' for cuda:h100"), std::string::npos) << h;
  std::string dynamic = hint("m.mlir:2:8: error: failed to legalize operation 'stablehlo.dynamic_broadcast_in_dim' "
                             "that was explicitly marked illegal\n",
                             target_of("cpu"), {});
  EXPECT_NE(dynamic.find("shape-polymorphic"), std::string::npos) << dynamic;
  EXPECT_EQ(hint("m.mlir:3:5: error: 'stablehlo.add' op requires the same type for all operands\n",
                 target_of("cpu"), {}),
            "");
}

TEST(CompileDiagnostics, RejectedProgramMessageHasHintAndLog) {
  Error e = describe_failure(exited(1, captured("custom_call_cpu.stderr")), context_for("cpu"));
  EXPECT_EQ(e.code, Code::kCompileFailed);
  EXPECT_EQ(e.message.rfind("compiling m.mlir for cpu: iree-compile rejected the program (exited with status 1):\n", 0), 0u)
      << e.message;
  EXPECT_NE(e.message.find("\nhint: `stablehlo.custom_call @my_fancy_kernel`"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("\nfull log: out/m.x.log"), std::string::npos) << e.message;
}

TEST(CompileDiagnostics, LongOutputPointsAtTheLog) {
  Error e = describe_failure(exited(1, captured("atan2_f64_cpu.stderr")), context_for("cpu", kKeepF64));
  EXPECT_EQ(e.code, Code::kCompileFailed);
  EXPECT_NE(e.message.find("more lines in out/m.x.log"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("iree-lld: error: undefined symbol: atan2"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("\nhint: "), std::string::npos) << e.message;
}

TEST(CompileDiagnostics, QuotedIrIsCappedWhateverItsSize) {
  // A note that prints a function holding a large constant, line by line.
  std::string err = "/abs/dir/m.mlir:2:3: error: 'func.func' op failed to verify\n"
                    "/abs/dir/m.mlir:2:3: note: see current operation:\n";
  for (int i = 0; i < 2000; ++i) err += "  %" + std::to_string(i) + " = \"stablehlo.constant\"() <{value = dense<" + std::string(300, '7') + ">}>\n";
  Error e = describe_failure(exited(1, err), context_for("cpu"));
  EXPECT_LT(e.message.size(), 5000u) << e.message.substr(0, 6000);
  EXPECT_NE(e.message.find("m.mlir:2:3: error: 'func.func' op failed to verify"), std::string::npos);
  EXPECT_EQ(e.message.find("/abs/dir"), std::string::npos) << "the input as the user named it";
  EXPECT_NE(e.message.find("... 1997 more lines in out/m.x.log"), std::string::npos) << e.message;
}

TEST(CompileDiagnostics, CrashIsNotARejectedProgramAndIsWordedOnce) {
  util::ProcessResult r;
  r.term_signal = 8;
  r.err = "m.mlir:1:1: error: something\nPLEASE submit a bug report to https://example.invalid\nStack dump:\n"
          "0.\tProgram arguments: iree-compile m.mlir\n #0 0x00007f in foo\n";
  Error e = describe_failure(r, context_for("cpu"));
  EXPECT_EQ(e.code, Code::kInternal);
  EXPECT_NE(e.message.find("iree-compile crashed (killed by signal 8, "), std::string::npos) << e.message;
  EXPECT_EQ(e.message.find("crashed (crashed"), std::string::npos) << e.message;
  EXPECT_EQ(e.message.find("rejected"), std::string::npos) << e.message;
  EXPECT_EQ(e.message.find("Program arguments"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("not an error in your program"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("\nhint: "), std::string::npos) << e.message;
}

TEST(CompileDiagnostics, InternalErrorsWithoutASignalAreTheCompilers) {
  EXPECT_EQ(classify(exited(1, "LLVM ERROR: Cannot select: 0x5555 f64 = fatan2\n")), Failure::kInternalError);
  EXPECT_EQ(classify(exited(134, "iree-compile: Value.cpp:12: void f(): Assertion `x && \"y\"' failed.\n")),
            Failure::kInternalError);
  EXPECT_EQ(classify(exited(1, captured("custom_call_cpu.stderr"))), Failure::kRejected);
  EXPECT_EQ(classify(exited(1, captured("atan2_f64_cpu.stderr"))), Failure::kRejected);
  Error e = describe_failure(exited(1, "LLVM ERROR: Cannot select: 0x5555 f64 = fatan2\n"), context_for("cpu"));
  EXPECT_EQ(e.code, Code::kInternal);
  EXPECT_NE(e.message.find("failed with an internal error (exited with status 1)"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("LLVM ERROR: Cannot select"), std::string::npos) << e.message;
}

TEST(CompileDiagnostics, TimeLimitAndMemoryNameTheLog) {
  util::ProcessResult r;
  r.timed_out = true;
  FailureContext c = context_for("cpu");
  c.timeout_seconds = 30;
  Error e = describe_failure(r, c);
  EXPECT_EQ(e.code, Code::kDeadlineExceeded);
  EXPECT_NE(e.message.find("time limit of 30 s"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("full log: out/m.x.log"), std::string::npos) << e.message;
}

}  // namespace
}  // namespace kiln::compile
