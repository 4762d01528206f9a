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
  // With --reference-f32: the same program's outputs computed in f32, and
  // how much larger than the framework's error the module's may be.
  const std::vector<array::Array>* reference = nullptr;
  double error_factor = 2;
};

nlohmann::json stats_json(const array::ErrorStats& s) {
  return {{"max_abs_error", s.max_abs}, {"rms_error", s.rms}, {"non_finite", s.non_finite}};
}

nlohmann::json reference_json(const array::ReferenceCheck& r) {
  nlohmann::json j = {{"passed", r.passed}, {"factor", r.factor}, {"rounding_floor", r.floor},
                      {"rms_rounding_floor", r.rms_floor},
                      {"module", stats_json(r.module)}, {"framework", stats_json(r.framework)}};
  if (!r.problem.empty()) j["problem"] = r.problem;
  return j;
}

std::string reference_line(const array::ReferenceCheck& r) {
  if (!r.problem.empty()) return fmt::format("        against f32: {}\n", r.problem);
  return fmt::format("        against f32: {} max abs err {:.3g} (framework {:.3g}), rms {:.3g} (framework {:.3g}); "
                     "allowed {}x the framework's (floors {:.3g}, rms {:.3g}){}\n",
                     r.passed ? "within," : "BEYOND,", r.module.max_abs, r.framework.max_abs, r.module.rms,
                     r.framework.rms, r.factor, r.floor, r.rms_floor,
                     r.module.non_finite > 0 ? fmt::format("; {} non-finite", r.module.non_finite) : "");
}

// `passed`: by the tolerance or by the f32 reference.
std::string output_line(const std::string& label, const array::Array& got, const array::Comparison& c, bool passed) {
  if (!c.problem.empty()) return fmt::format("  FAIL  {}: {}\n", label, c.problem);
  return fmt::format("  {}  {}: {} {}; max abs err {:.3g}, max rel err {:.3g}; {} of {} mismatch{}\n",
                     passed ? "ok  " : "FAIL", label, got.element, got.shape_text(), c.max_abs_error,
                     c.max_rel_error, c.mismatches, c.count,
                     c.first_mismatch >= 0 ? fmt::format(" (first at {}: got {:.6g}, expected {:.6g})",
                                                         array::index_text(got.shape, c.first_mismatch),
                                                         c.got_at_first, c.want_at_first)
                                           : "");
}

// Compares each output with its reference; fills the report's outputs and
// the text summary, and says whether all passed.
// An output passes the tolerance check, or, given an f32 reference, the
// check against it; the report says which ("check").
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
    bool ok = c.passed;
    auto j = comparison_json(i, sig.outputs[i], got[i], c);
    std::optional<array::ReferenceCheck> r;
    if (o.reference && array::is_float(got[i].element) && c.problem.empty()) {
      r = array::check_against_reference(got[i], expected[i], (*o.reference)[i], o.error_factor);
      j["f32_reference"] = reference_json(*r);
    }
    j["check"] = c.passed ? "tolerance" : r && r->passed ? "f32-reference" : "none";
    j["passed"] = ok = c.passed || (r && r->passed);
    passed &= ok;
    outputs.push_back(std::move(j));
    std::string label = sig.outputs[i].name.empty() ? fmt::format("output {}", i) : fmt::format("output {} ({})", i, sig.outputs[i].name);
    summary += output_line(label, got[i], c, ok);
    if (r) summary += reference_line(*r);
  }
  return passed;
}

// The f32 outputs of the program, typed by the signature with f32 in place
// of every floating-point type.
Result<std::vector<array::Array>> read_reference(const std::vector<std::string>& files, const runtime::ModuleSignature& sig) {
  std::vector<mlir::Value> values = sig.outputs;
  for (auto& v : values) {
    if (array::is_float(v.type.element)) v.type.element = "f32";
  }
  bool one_npz = files.size() == 1 && fs::path(files[0]).extension() == ".npz";
  auto read = read_values(one_npz ? std::vector<std::string>{} : files, one_npz ? files[0] : "", values, "f32 output");
  if (!read) return tl::unexpected(read.error().context("--reference-f32"));
  return read;
}

void print_verdict(const nlohmann::json& report, const runtime::ModuleSignature& sig, const std::string& summary) {
  bool passed = report["passed"].get<bool>();
  std::cout << fmt::format("{}: @{} on {} against {}{}\n{}{}\n", passed ? "PASS" : "MISMATCH", sig.function,
                           report["device"].get<std::string>(), report["reference"].get<std::string>(),
                           sig.precision == "highest" ? "" : " (module built with precision " + sig.precision + ")",
                           summary, passed ? "all outputs match" : "outputs differ beyond tolerance");
  if (auto line = binding_line(report.value("binding", nlohmann::json())); !line.empty()) std::cout << line << "\n";
}

// The command line of `kiln validate`.
struct ValidateArgs {
  ModuleOptions o;
  std::string against, against_device, nan_rule = "equal", report_file;
  std::vector<std::string> expected_npy, reference_f32;
  std::optional<double> atol, rtol;
  double error_factor = 2;
  bool json = false;
};

void add_validate_options(CLI::App& app, ValidateArgs& a) {
  add_module_options(app, a.o);
  app.add_option("--expected", a.expected_npy, "expected outputs: one .npz, or .npy files in output order");
  app.add_option("--against", a.against, "another module of the same program: compare the two on the same inputs");
  app.add_option("--against-device", a.against_device, "device for --against (default: its target's)");
  app.add_option("--atol", a.atol, "absolute tolerance for floating-point outputs (default: by element type)");
  app.add_option("--rtol", a.rtol, "relative tolerance for floating-point outputs (default: by element type)");
  app.add_option("--reference-f32", a.reference_f32,
                 "the same program's outputs computed in f32 (one .npz, or .npy files): a floating-point output "
                 "that misses the tolerance still passes when its error against these is within --error-factor "
                 "times the error of --expected (the framework's own 16-bit outputs)");
  app.add_option("--error-factor", a.error_factor,
                 "with --reference-f32: how many times the framework's error the module's may be (default 2)");
  app.add_option("--nan", a.nan_rule, "equal: NaN must be where the reference has NaN; fail: any NaN fails")
      ->check(CLI::IsMember({"equal", "fail"}));
  app.add_option("--report", a.report_file, "write the JSON report to this file");
  app.add_flag("--json", a.json, "print the JSON report");
}

Status check_validate_args(const ValidateArgs& a) {
  if (a.expected_npy.empty() == a.against.empty()) {
    return fail(Code::kInvalidArgument, "give either --expected FILE(s) or --against OTHER.vmfb");
  }
  if ((a.atol && *a.atol < 0) || (a.rtol && *a.rtol < 0)) {
    return fail(Code::kInvalidArgument, "tolerances cannot be negative");
  }
  if (!a.reference_f32.empty() && a.expected_npy.empty()) {
    return fail(Code::kInvalidArgument, "--reference-f32 compares the module's error with the framework's: give the "
                                        "framework's own outputs of this program with --expected");
  }
  if (!(a.error_factor >= 1)) return fail(Code::kInvalidArgument, "--error-factor must be 1 or more");
  return {};
}

}  // namespace

Result<int> run_validate(Context& context) {
  CLI::App app{"Check a module's outputs against expected outputs (--expected), or against another build of the\n"
               "same program on the same inputs (--against). Exit 0: all outputs match; 1: a mismatch.",
               "validate"};
  ValidateArgs a;
  add_validate_options(app, a);
  if (KILN_TRY(parse_args(app, context))) return 0;
  KILN_TRY_STATUS(check_validate_args(a));
  const auto& o = a.o;
  const std::string &against = a.against, &against_device = a.against_device, &nan_rule = a.nan_rule;
  const std::string& report_file = a.report_file;
  const std::vector<std::string>&expected_npy = a.expected_npy, &reference_f32 = a.reference_f32;
  const std::optional<double>&atol = a.atol, &rtol = a.rtol;
  const double error_factor = a.error_factor;
  const bool json = a.json;

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
  std::vector<array::Array> f32_outputs;
  if (!reference_f32.empty()) {
    f32_outputs = KILN_TRY(read_reference(reference_f32, sig));
    compare.reference = &f32_outputs;
    compare.error_factor = error_factor;
  }
  nlohmann::json outputs = nlohmann::json::array();
  std::string summary;
  bool passed = compare_outputs(got, expected, sig, compare, outputs, summary);
  nlohmann::json report = {{"format", "kiln-validation-report"}, {"format_version", 1}, {"passed", passed},
                           {"module", module}, {"function", sig.function}, {"device", spec.device},
                           {"reference", reference}, {"nan_rule", nan_rule}, {"precision", sig.precision},
                           {"outputs", outputs}};
  if (!reference_f32.empty()) report["f32_reference"] = {{"files", reference_f32}, {"error_factor", error_factor}};
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
