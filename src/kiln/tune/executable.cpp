#include "kiln/tune/executable.h"

#include <cctype>
#include <cstdlib>

#include "kiln/runtime/profile.h"
#include "kiln/util/strings.h"

namespace kiln::tune {
namespace {

// The index just past the '>' that closes the '<' at `open`, or npos.
size_t close_angle(const std::string& text, size_t open) {
  int depth = 0;
  for (size_t i = open; i < text.size(); ++i) {
    char c = text[i];
    if (c == '<' || c == '[' || c == '{' || c == '(') ++depth;
    if (c == '>' || c == ']' || c == '}' || c == ')') {
      // "->" inside an attribute is an arrow, not a bracket.
      if (c == '>' && i > 0 && text[i - 1] == '-') continue;
      if (--depth == 0) return i + 1;
    }
  }
  return std::string::npos;
}

std::string symbol_after(const std::string& text, const std::string& marker) {
  size_t at = text.find(marker);
  if (at == std::string::npos) return "";
  size_t sym = text.find('@', at);
  if (sym == std::string::npos) return "";
  size_t end = sym + 1;
  while (end < text.size() && (util::is_word_char(text[end]) || text[end] == '$' || text[end] == '.')) ++end;
  return text.substr(sym + 1, end - sym - 1);
}

int64_t int_after(const std::string& text, const std::string& marker, int64_t fallback) {
  size_t at = text.find(marker);
  if (at == std::string::npos) return fallback;
  return std::strtoll(text.c_str() + at + marker.size(), nullptr, 10);
}

std::string list_after(const std::string& text, const std::string& marker) {
  size_t at = text.find(marker);
  if (at == std::string::npos) return "";
  size_t open = at + marker.size();
  size_t end = text.find(']', open);
  return end == std::string::npos ? "" : text.substr(open - 1, end - open + 2);
}

Fields parse_fields(const std::string& inner) {
  Fields out;
  int depth = 0;
  size_t start = 0;
  auto add = [&](size_t end) {
    std::string part(util::trim(std::string_view(inner).substr(start, end - start)));
    if (part.empty()) return;
    size_t eq = part.find(" = ");
    if (eq == std::string::npos) {
      out.emplace_back(part, "");
    } else {
      out.emplace_back(std::string(util::trim(part.substr(0, eq))), std::string(util::trim(part.substr(eq + 3))));
    }
  };
  for (size_t i = 0; i < inner.size(); ++i) {
    char c = inner[i];
    if (c == '<' || c == '[' || c == '{' || c == '(') ++depth;
    if ((c == '>' && !(i > 0 && inner[i - 1] == '-')) || c == ']' || c == '}' || c == ')') --depth;
    if (c == ',' && depth == 0) {
      add(i);
      start = i + 1;
    }
  }
  add(inner.size());
  return out;
}

bool has(const Fields& f, const std::string& key) {
  for (const auto& [k, v] : f) {
    if (k == key) return true;
  }
  return false;
}


}  // namespace

const char* family_name(Family family) {
  switch (family) {
    case Family::kGpuSimt: return "gpu-simt";
    case Family::kGpuMma: return "gpu-mma";
    case Family::kCpuTiling: return "cpu-tiling";
    case Family::kNone: break;
  }
  return "none";
}

std::vector<int64_t> parse_ints(const std::string& list) {
  std::vector<int64_t> out;
  std::string inner = list;
  if (!inner.empty() && inner.front() == '[') inner = inner.substr(1);
  if (!inner.empty() && inner.back() == ']') inner.pop_back();
  for (const auto& part : util::split(inner, ',')) {
    auto t = util::trim(part);
    if (!t.empty()) out.push_back(std::strtoll(std::string(t).c_str(), nullptr, 10));
  }
  return out;
}

std::string format_ints(const std::vector<int64_t>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) out += (i ? ", " : "") + std::to_string(values[i]);
  return out + "]";
}

std::string field(const Fields& fields, const std::string& key) {
  for (const auto& [k, v] : fields) {
    if (k == key) return v;
  }
  return "";
}

void set_field(Fields& fields, const std::string& key, const std::string& value) {
  for (auto it = fields.begin(); it != fields.end(); ++it) {
    if (it->first != key) continue;
    if (value.empty()) {
      fields.erase(it);
    } else {
      it->second = value;
    }
    return;
  }
  if (!value.empty()) fields.emplace_back(key, value);
}

namespace {

// The device's limits that the target attribute states.
void read_limits(const std::string& text, TargetLimits& limits) {
  limits.max_threads = int_after(text, "max_thread_count_per_workgroup = ", limits.max_threads);
  limits.max_workgroup_memory = int_after(text, "max_workgroup_memory_bytes = ", limits.max_workgroup_memory);
  if (auto sizes = parse_ints(list_after(text, "max_workgroup_sizes = [")); sizes.size() >= 2) {
    limits.max_workgroup_sizes = sizes;
  }
  if (auto choices = parse_ints(list_after(text, "subgroup_size_choices = [")); !choices.empty()) {
    limits.subgroup_size = choices.front();
  }
  if (size_t mma = text.find("mma = ["); mma != std::string::npos) {
    size_t end = text.find(']', mma);
    for (size_t at = text.find('<', mma); at != std::string::npos && at < end; at = text.find('<', at + 1)) {
      size_t close = text.find('>', at);
      limits.mma.push_back(text.substr(at + 1, close - at - 1));
    }
  }
}

// The pipeline and workgroup size of the translation_info attribute.
void read_translation_info(const std::string& text, Executable& exe) {
  size_t ti = text.find("translation_info = #iree_codegen.translation_info<");
  if (ti == std::string::npos) return;
  size_t p = text.find("pipeline = ", ti);
  if (p != std::string::npos) {
    p += 11;
    size_t open = text.find('<', p), stop = text.find_first_of(" ,>", p);
    if (text[p] == '#' && open != std::string::npos) {
      exe.pipeline = text.substr(open + 1, text.find('>', open) - open - 1);
    } else {
      exe.pipeline = text.substr(p, stop - p);
    }
  }
  size_t ti_end = close_angle(text, text.find('<', ti));
  size_t wg = text.find("workgroup_size = [", ti);
  if (wg != std::string::npos && wg < ti_end) {
    exe.wg_begin = wg + 17;
    exe.wg_end = text.find(']', exe.wg_begin) + 1;
    exe.workgroup_size = parse_ints(text.substr(exe.wg_begin, exe.wg_end - exe.wg_begin));
  }
}

Family family_of(const Fields& fields) {
  if (has(fields, "mma_kind") && has(fields, "workgroup") && has(fields, "subgroup")) return Family::kGpuMma;
  if (has(fields, "workgroup") && has(fields, "thread") && has(fields, "reduction") && !has(fields, "lane_basis")) {
    return Family::kGpuSimt;
  }
  if (has(fields, "distribution") && has(fields, "vector_common_parallel")) return Family::kCpuTiling;
  return Family::kNone;
}

// The root op: the configuration that tiles the reduction (GPU) or
// distributes the work (CPU).
void find_root(const std::string& text, Executable& exe) {
  for (const char* marker : {"lowering_config = #iree_gpu.lowering_config<", "lowering_config = #iree_cpu.lowering_config<"}) {
    for (size_t at = text.find(marker); at != std::string::npos; at = text.find(marker, at + 1)) {
      size_t open = at + std::string(marker).size() - 1;
      size_t close = close_angle(text, open);
      if (close == std::string::npos) continue;
      std::string inner = text.substr(open + 1, close - open - 2);
      bool braced = !inner.empty() && inner.front() == '{';
      Fields fields = parse_fields(braced ? inner.substr(1, inner.size() - 2) : inner);
      Family family = family_of(fields);
      if (family == Family::kNone) continue;
      exe.family = family;
      exe.root = std::move(fields);
      exe.root_braced = braced;
      exe.root_begin = open + 1;
      exe.root_end = close - 1;
      return;
    }
  }
}

}  // namespace

Result<Executable> parse_executable(const std::string& text) {
  Executable exe;
  exe.text = text;
  exe.name = symbol_after(text, "hal.executable ");
  exe.function = symbol_after(text, "hal.executable.export ");
  if (exe.name.empty() || exe.function.empty()) {
    return fail(Code::kInvalidArgument, "not a configured executable: no hal.executable with an export");
  }
  auto parsed = runtime::parse_dispatch_name(exe.function);
  exe.op_kind = parsed.op;
  exe.bounds = parsed.bounds;
  exe.element = parsed.element;
  read_limits(text, exe.limits);
  read_translation_info(text, exe);
  find_root(text, exe);
  if (exe.family == Family::kGpuSimt || exe.family == Family::kGpuMma) {
    if (exe.pipeline != "TileAndFuse" || exe.workgroup_size.size() != 3) exe.family = Family::kNone;
  }
  // Candidates need every loop's bound: the export's name must give as many
  // bounds as the configuration has loops.
  if (exe.family != Family::kNone) {
    std::string tiles = field(exe.root, exe.family == Family::kCpuTiling ? "distribution" : "workgroup");
    if (parse_ints(tiles).size() != exe.bounds.size()) exe.family = Family::kNone;
  }
  return exe;
}

std::string render(const Executable& exe, const Fields& root, const std::vector<int64_t>& workgroup_size,
                   const Fields& pipeline_options, const std::string& pipeline) {
  std::vector<std::string> parts;
  for (const auto& [k, v] : root) parts.push_back(v.empty() ? k : k + " = " + v);
  std::string inner = util::join(parts, ", ");
  if (exe.root_braced) inner = "{" + inner + "}";
  std::string out = exe.text;
  out.replace(exe.root_begin, exe.root_end - exe.root_begin, inner);
  // The workgroup size comes before the root op in the file, so its span
  // is still valid after the root's replacement.
  if (exe.wg_end > exe.wg_begin && !workgroup_size.empty()) {
    out.replace(exe.wg_begin, exe.wg_end - exe.wg_begin, format_ints(workgroup_size));
  }
  // Pipeline options follow the workgroup size inside translation_info.
  size_t ti = out.find("translation_info = #iree_codegen.translation_info<");
  if (ti == std::string::npos) return out;
  size_t ti_end = close_angle(out, out.find('<', ti));
  if (!pipeline.empty()) {
    static const std::string kPipeline = "#iree_gpu.pipeline<";
    size_t at = out.find(kPipeline, ti);
    if (at != std::string::npos && at < ti_end) {
      size_t begin = at + kPipeline.size();
      out.replace(begin, out.find('>', begin) - begin, pipeline);
      ti_end = close_angle(out, out.find('<', ti));
    }
  }
  for (const auto& [key, value] : pipeline_options) {
    size_t at = out.find(key + " = ", ti);
    if (at != std::string::npos && at < ti_end) {
      size_t begin = at + key.size() + 3;
      size_t end = out.find_first_of(",>", begin);
      out.replace(begin, end - begin, value);
    } else if (size_t po = out.find("pipeline_options<", ti); po != std::string::npos && po < ti_end) {
      bool empty = out[po + 17] == '>';
      out.insert(po + 17, key + " = " + value + (empty ? "" : ", "));
    } else {
      continue;
    }
    ti_end = close_angle(out, out.find('<', ti));
  }
  return out;
}

std::string describe(const Fields& root) {
  std::vector<std::string> parts;
  for (const auto& [k, v] : root) {
    if (k == "mma_kind") {
      size_t open = v.find('<');
      parts.push_back(open == std::string::npos ? v : v.substr(open + 1, v.size() - open - 2));
    } else if (k == "promote_operands") {
      parts.push_back("promote" + (v == "[0, 1]" ? std::string() : "=" + v));
    } else if (v.empty()) {
      parts.push_back(k);
    } else {
      std::string compact;
      for (char c : v) if (c != ' ') compact += c;
      parts.push_back(k + "=" + compact);
    }
  }
  return util::join(parts, " ");
}

}  // namespace kiln::tune
