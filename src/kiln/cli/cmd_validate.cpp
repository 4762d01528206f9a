#include <iostream>

#include <fmt/format.h>

#include "kiln/array/compare.h"
#include "kiln/cli/module_binding.h"
#include "kiln/cli/executors.h"
#include "kiln/cli/parse.h"
#include "kiln/cli/run_common.h"
#include "kiln/runtime/runner.h"
#include "kiln/toolchain/toolchain.h"
#include "kiln/util/file.h"

namespace kiln::cli {

namespace fs = std::filesystem;

namespace {

nlohmann::json comparison_json(size_t i, const mlir::Value& v, const array::Array& got, const array::Comparison& c) {
  nlohmann::json j = {{"index", i}, {"name", v.name}, {"element_type", got.element}, {"shape", got.shape},
                      {"passed", c.passed}, {"count", c.count}, {"mismatches", c.mismatches},
                      {"max_abs_error", c.max_abs_error}, {"max_rel_error", c.max_rel_error},
                      {"atol", c.effective_atol}, {"rtol", c.tolerance.rtol},
                      {"atol_scaled_by_output", c.tolerance.atol_scales_with_output}};
  if (!c.problem.empty()) j["problem"] = c.problem;
  if (c.first_mismatch >= 0) {
    j["first_mismatch"] = {{"index", array::index_text(got.shape, c.first_mismatch)}, {"got", c.got_at_first},
                           {"expected", c.want_at_first}};
  }
  return j;
}

// Default tolerances follow the module's precision policy: narrow
// contraction inputs round each product to 11 (f16) or 8 (bf16) bits.
array::Tolerance policy_tolerance(const std::string& element, const std::string& precision) {
  auto tol = array::default_tolerance(element);
  if (!array::is_float(element)) return tol;
  double floor = precision == "f16-inputs" ? 1e-2 : precision == "bf16-inputs" ? 5e-2 : 0;
  tol.atol = std::max(tol.atol, floor);
  tol.rtol = std::max(tol.rtol, floor);
  if (floor > 0) tol.atol_scales_with_output = true;
  return tol;
}

// What the user asked for the comparison.
struct CompareOptions {
  std::optional<double> atol, rtol;
  array::NanPolicy nans = array::NanPolicy::kEqual;
};

std::string output_line(const std::string& label, const array::Array& got, const array::Comparison& c) {
  if (!c.problem.empty()) return fmt::format("  FAIL  {}: {}\n", label, c.problem);
  return fmt::format("  {}  {}: {} {}; max abs err {:.3g}, max rel err {:.3g}; {} of {} mismatch{}\n",
                     c.passed ? "ok  " : "FAIL", label, got.element, got.shape_text(), c.max_abs_error,
                     c.max_rel_error, c.mismatches, c.count,
                     c.first_mismatch >= 0 ? fmt::format(" (first at {}: got {:.6g}, expected {:.6g})",
                                                         array::index_text(got.shape, c.first_mismatch),
                                                         c.got_at_first, c.want_at_first)
                                           : "");
}

// Compares each output with its reference; fills the report's outputs and
// the text summary, and says whether all passed.
bool compare_outputs(const std::vector<array::Array>& got, const std::vector<array::Array>& expected,
                     const runtime::ModuleSignature& sig, const CompareOptions& o, nlohmann::json& outputs,
                     std::string& summary) {
  bool passed = true;
  for (size_t i = 0; i < got.size(); ++i) {
    auto tol = policy_tolerance(got[i].element, sig.precision);
    if (o.atol) {
      tol.atol = *o.atol;
      tol.atol_scales_with_output = false;
    }
    if (o.rtol) tol.rtol = *o.rtol;
    auto c = array::compare(got[i], expected[i], tol, o.nans);
    passed &= c.passed;
    outputs.push_back(comparison_json(i, sig.outputs[i], got[i], c));
    std::string label = sig.outputs[i].name.empty() ? fmt::format("output {}", i) : fmt::format("output {} ({})", i, sig.outputs[i].name);
    summary += output_line(label, got[i], c);
  }
  return passed;
}

void print_verdict(const nlohmann::json& report, const runtime::ModuleSignature& sig, const std::string& summary) {
  bool passed = report["passed"].get<bool>();
  std::cout << fmt::format("{}: @{} on {} against {}{}\n{}{}\n", passed ? "PASS" : "MISMATCH", sig.function,
                           report["device"].get<std::string>(), report["reference"].get<std::string>(),
                           sig.precision == "highest" ? "" : " (module built with precision " + sig.precision + ")",
                           summary, passed ? "all outputs match" : "outputs differ beyond tolerance");
  if (auto line = binding_line(report.value("binding", nlohmann::json())); !line.empty()) std::cout << line << "\n";
}

}  // namespace

Result<int> run_validate(Context& context) {
  CLI::App app{"Check a module's outputs against expected outputs (--expected), or against another build of the\n"
               "same program on the same inputs (--against). Exit 0: all outputs match; 1: a mismatch.",
               "validate"};
  ModuleOptions o;
  std::string against, against_device, nan_rule = "equal", report_file;
  std::vector<std::string> expected_npy;
  std::optional<double> atol, rtol;
  bool json = false;
  add_module_options(app, o);
  app.add_option("--expected", expected_npy, "expected outputs: one .npz, or .npy files in output order");
  app.add_option("--against", against, "another module of the same program: compare the two on the same inputs");
  app.add_option("--against-device", against_device, "device for --against (default: its target's)");
  app.add_option("--atol", atol, "absolute tolerance for floating-point outputs (default: by element type)");
  app.add_option("--rtol", rtol, "relative tolerance for floating-point outputs (default: by element type)");
  app.add_option("--nan", nan_rule, "equal: NaN must be where the reference has NaN; fail: any NaN fails")
      ->check(CLI::IsMember({"equal", "fail"}));
  app.add_option("--report", report_file, "write the JSON report to this file");
  app.add_flag("--json", json, "print the JSON report");
  if (KILN_TRY(parse_args(app, context))) return 0;
  if (expected_npy.empty() == against.empty()) {
    return fail(Code::kInvalidArgument, "give either --expected FILE(s) or --against OTHER.vmfb");
  }
  if ((atol && *atol < 0) || (rtol && *rtol < 0)) return fail(Code::kInvalidArgument, "tolerances cannot be negative");

  auto loaded = KILN_TRY(load_module(context, o));
  // A function without arguments has nothing to give; any other needs the
  // inputs that the expected outputs belong to.
  if (!expected_npy.empty() && o.inputs.input_files.empty() && o.inputs.inputs_archive.empty() &&
      !loaded.signature.inputs.empty()) {
    return fail(Code::kInvalidArgument, "--expected outputs belong to particular inputs: give them with --inputs "
                                        "FILE.npz or --input FILE.npy (kiln run saves the inputs it used)");
  }
  const auto& tools = loaded.selected.tools;
  auto& executor = *loaded.selected.executor;
  const auto& sig = loaded.signature;
  const auto& values = loaded.inputs;
  const std::string& module = o.module;
  std::optional<runtime::ModuleSignature> other;
  std::vector<array::Array> expected;
  if (!against.empty()) {
    other = KILN_TRY(runtime::load(against, sig.function, tools, executor));
  } else {
    bool one_npz = expected_npy.size() == 1 && fs::path(expected_npy[0]).extension() == ".npz";
    expected = KILN_TRY(read_values(one_npz ? std::vector<std::string>{} : expected_npy,
                                    one_npz ? expected_npy[0] : "", sig.outputs, "output", sig.declared_outputs));
  }
  auto scratch = KILN_TRY(util::TempDir::create(util::temp_root(), "kiln-validate-"));
  auto limit = loaded.timeout;
  fs::create_directories(scratch.path() / "a");
  fs::create_directories(scratch.path() / "b");
  runtime::RunSpec spec{sig, choose_device(o.device, sig), values, scratch.path() / "a", limit, runtime_flags_for(o, sig)};
  auto got = KILN_TRY(runtime::run(tools, executor, spec));
  std::string reference = "expected outputs";
  if (other) {
    runtime::RunSpec other_spec{*other, choose_device(against_device, *other), values, scratch.path() / "b", limit};
    expected = KILN_TRY(runtime::run(tools, executor, other_spec));
    reference = fmt::format("{} on {}", against, other_spec.device);
  }
  if (got.size() != expected.size()) {
    return fail(Code::kInvalidArgument, fmt::format("the module returned {} output(s), the reference has {}", got.size(), expected.size()));
  }

  CompareOptions compare{atol, rtol, nan_rule == "fail" ? array::NanPolicy::kFail : array::NanPolicy::kEqual};
  nlohmann::json outputs = nlohmann::json::array();
  std::string summary;
  bool passed = compare_outputs(got, expected, sig, compare, outputs, summary);
  nlohmann::json report = {{"format", "kiln-validation-report"}, {"format_version", 1}, {"passed", passed},
                           {"module", module}, {"function", sig.function}, {"device", spec.device},
                           {"reference", reference}, {"nan_rule", nan_rule}, {"precision", sig.precision},
                           {"outputs", outputs}};
  if (auto binding = module_binding(module); !binding.is_null()) report["binding"] = binding;
  if (!report_file.empty()) KILN_TRY_STATUS(util::write_file_atomic(report_file, report.dump(2) + "\n"));
  if (json) {
    std::cout << report.dump(2) << "\n";
  } else {
    print_verdict(report, sig, summary);
  }
  return passed ? 0 : 1;
}

}  // namespace kiln::cli
