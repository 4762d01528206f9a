#include "kiln/cli/run_common.h"

#include <iostream>

#include <cmath>

#include <fmt/format.h>

#include "kiln/array/npy.h"
#include "kiln/array/random.h"
#include "kiln/util/strings.h"

namespace kiln::cli {

void add_input_options(CLI::App& app, InputOptions& o) {
  app.add_option("--input", o.input_files, "an input as .npy; repeat in argument order");
  app.add_option("--inputs", o.inputs_archive, "all inputs as one .npz (archive order, or by argument name)");
  app.add_option("--shape", o.shapes, "shape of a dynamic input: INDEX=DIMS or NAME=DIMS, e.g. 0=4x128");
  app.add_option("--seed", o.seed, "seed for generated inputs (default 0)");
}

void add_module_options(CLI::App& app, ModuleOptions& o, bool module_required) {
  auto* module = app.add_option("module", o.module, "compiled module (.vmfb)");
  if (module_required) module->required();
  app.add_option("--function", o.function, "function (default: the module's one public function)");
  app.add_option("--device", o.device, "cpu, cuda, vulkan, hip, or an IREE device URI (default: the module's target's)");
  app.add_option("--executor", o.executor, "where the runtime tools run: local, or docker (kiln's image)")
      ->check(CLI::IsMember({"local", "docker"}));
  app.add_option("--timeout", o.timeout, "time limit per run in seconds (default 600)");
  app.add_option("--runtime-flag", o.runtime_flags,
                 "a runtime option such as --runtime-flag=--device_allocator=caching (replaces the module's "
                 "deployment recipe; repeat for several)");
  app.add_flag("--default-runtime", o.default_runtime, "run with the runtime's default options, not the module's recipe");
  add_input_options(app, o.inputs);
}

std::vector<std::string> runtime_flags_for(const ModuleOptions& o, const runtime::ModuleSignature& sig) {
  if (!o.runtime_flags.empty()) return o.runtime_flags;
  return o.default_runtime ? std::vector<std::string>{} : sig.runtime_flags;
}

Result<LoadedModule> load_module(const Context& context, const ModuleOptions& o) {
  auto selected = KILN_TRY(select_executor(context, o.executor, Need::kRuntime));
  auto sig = KILN_TRY(runtime::load(o.module, o.function, selected.tools, *selected.executor));
  if (auto note = runtime::narrowing_note(sig); !note.empty()) std::cerr << "kiln: note: " << note << "\n";
  auto values = KILN_TRY(gather_inputs(sig, o.inputs));
  return LoadedModule{std::move(selected), std::move(sig), std::move(values),
                      std::chrono::milliseconds(static_cast<int64_t>(o.timeout * 1000))};
}

Result<std::filesystem::path> output_folder(const std::string& module, const std::string& flag, const char* suffix) {
  std::filesystem::path dir = flag.empty() ? std::filesystem::path(module).replace_extension(suffix) : std::filesystem::path(flag);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return fail(Code::kFailedPrecondition, "cannot create " + dir.string() + ": " + ec.message());
  return dir;
}

namespace {

using runtime::value_label;

Result<std::vector<int64_t>> parse_dims(const std::string& text, const std::string& flag) {
  std::vector<int64_t> dims;
  if (text.empty() || text == "scalar") return dims;
  for (const auto& part : util::split(text, 'x')) {
    char* end = nullptr;
    long long v = std::strtoll(part.c_str(), &end, 10);
    if (part.empty() || *end != '\0' || v < 0) {
      return fail(Code::kInvalidArgument, "--shape " + flag + ": '" + text + "' is not a shape such as 4x128");
    }
    dims.push_back(v);
  }
  return dims;
}

}  // namespace

Result<std::vector<array::Array>> read_values(const std::vector<std::string>& npy_files, const std::string& npz,
                                              const std::vector<mlir::Value>& values, const char* what,
                                              const std::vector<std::string>& declared) {
  std::vector<array::Array> out;
  if (!npz.empty()) {
    auto members = KILN_TRY(array::read_npz(npz));
    bool by_name = !members.empty();
    for (const auto& v : values) {
      by_name = by_name && !v.name.empty() &&
                std::any_of(members.begin(), members.end(), [&](const auto& m) { return m.first == v.name; });
    }
    for (size_t i = 0; i < values.size() && by_name; ++i) {
      for (auto& m : members) {
        if (m.first == values[i].name) out.push_back(m.second);
      }
    }
    if (!by_name) {
      for (auto& m : members) out.push_back(std::move(m.second));
    }
    if (out.size() != values.size()) {
      return fail(Code::kInvalidArgument, fmt::format("{} holds {} array(s), but the function has {} {}(s)", npz,
                                                      out.size(), values.size(), what));
    }
  } else {
    for (const auto& f : npy_files) out.push_back(KILN_TRY(array::read_npy(f)));
    if (out.size() != values.size()) {
      return fail(Code::kInvalidArgument, fmt::format("{} .npy file(s) given, but the function has {} {}(s)",
                                                      out.size(), values.size(), what));
    }
  }
  for (size_t i = 0; i < out.size(); ++i) {
    if (i < declared.size() && !declared[i].empty() && out[i].element == declared[i]) {
      KILN_TRY_STATUS(array::convert(out[i], values[i].type.element, value_label(values[i], i, what)));
    }
    KILN_TRY_STATUS(array::reinterpret(out[i], values[i].type.element, value_label(values[i], i, what)));
  }
  return out;
}

Result<std::vector<array::Array>> gather_inputs(const runtime::ModuleSignature& sig, const InputOptions& o) {
  if (!o.input_files.empty() || !o.inputs_archive.empty()) {
    if (!o.input_files.empty() && !o.inputs_archive.empty()) {
      return fail(Code::kInvalidArgument, "give --input files or one --inputs archive, not both");
    }
    return read_values(o.input_files, o.inputs_archive, sig.inputs, "input", sig.declared_inputs);
  }
  std::vector<std::vector<int64_t>> shapes;
  for (const auto& v : sig.inputs) shapes.push_back(v.type.dims);
  for (const auto& spec : o.shapes) {
    size_t eq = spec.find('=');
    if (eq == std::string::npos) return fail(Code::kInvalidArgument, "--shape " + spec + ": expected INDEX=DIMS or NAME=DIMS");
    std::string key = spec.substr(0, eq);
    size_t index = sig.inputs.size();
    for (size_t i = 0; i < sig.inputs.size(); ++i) {
      if (sig.inputs[i].name == key || std::to_string(i) == key) index = i;
    }
    if (index == sig.inputs.size()) {
      return fail(Code::kInvalidArgument, fmt::format("--shape {}: @{} has no input '{}'", spec, sig.function, key));
    }
    auto dims = KILN_TRY(parse_dims(spec.substr(eq + 1), spec));
    const auto& declared = sig.inputs[index].type.dims;
    bool fits = dims.size() == declared.size();
    for (size_t d = 0; fits && d < dims.size(); ++d) fits = declared[d] == mlir::kDynamic || declared[d] == dims[d];
    if (!fits) {
      return fail(Code::kInvalidArgument, fmt::format("--shape {} does not fit {} of type {}", spec,
                                                      value_label(sig.inputs[index], index, "input"),
                                                      sig.inputs[index].type.text()));
    }
    shapes[index] = dims;
  }
  std::vector<array::Array> out;
  for (size_t i = 0; i < sig.inputs.size(); ++i) {
    const auto& type = sig.inputs[i].type;
    if (!type.is_tensor || array::element_size(type.element) == 0) {
      return fail(Code::kInvalidArgument, fmt::format("{} has type {}, for which kiln cannot generate values",
                                                      value_label(sig.inputs[i], i, "input"), type.text()));
    }
    if (std::find(shapes[i].begin(), shapes[i].end(), mlir::kDynamic) != shapes[i].end() || !type.ranked) {
      return fail(Code::kInvalidArgument,
                  fmt::format("{} has the dynamic type {}: give its size, e.g. --shape {}={}", value_label(sig.inputs[i], i, "input"),
                              type.text(), sig.inputs[i].name.empty() ? std::to_string(i) : sig.inputs[i].name,
                              "4x8"));
    }
    out.push_back(array::random_array(type.element, shapes[i], array::input_seed(o.seed, i)));
  }
  return out;
}

std::string choose_device(const std::string& flag, const runtime::ModuleSignature& sig) {
  if (!flag.empty()) return runtime::device_uri(flag);
  if (!sig.default_device.empty()) return sig.default_device;
  return "local-task";
}

Status save_arrays(const std::filesystem::path& dir, const std::string& prefix, const std::vector<array::Array>& arrays) {
  for (size_t i = 0; i < arrays.size(); ++i) {
    KILN_TRY_STATUS(array::write_npy(dir / fmt::format("{}{}.npy", prefix, i), arrays[i]));
  }
  return {};
}

std::string summarize(const array::Array& a) {
  double lo = INFINITY, hi = -INFINITY, sum = 0;
  int64_t n = a.count(), finite = 0;
  for (int64_t i = 0; i < n; ++i) {
    double v = array::element_value(a, i);
    if (!std::isfinite(v)) continue;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    sum += v;
    ++finite;
  }
  std::vector<std::string> dims;
  for (int64_t d : a.shape) dims.push_back(std::to_string(d));
  std::string head = fmt::format("{} [{}]", a.element, util::join(dims, ", "));
  if (finite == 0) return head + (n ? "  (no finite values)" : "  (empty)");
  return fmt::format("{}  min {:.6g}  max {:.6g}  mean {:.6g}{}", head, lo, hi, sum / finite,
                     finite < n ? fmt::format("  ({} non-finite)", n - finite) : "");
}

}  // namespace kiln::cli
