#include "kiln/compile/fallback.h"

#include <algorithm>
#include <cctype>
#include <cstdint>

#include "kiln/util/file.h"
#include "kiln/util/strings.h"

namespace kiln::compile {

namespace {

bool applies(const std::vector<target::Backend>& backends, target::Backend backend) {
  return std::find(backends.begin(), backends.end(), backend) != backends.end();
}

}  // namespace

const std::vector<Fallback>& fallbacks() {
  // IREE 3.13's vector-distribution pipeline (LLVMGPUVectorDistribute),
  // which it picks for contractions with 16-bit inputs, cannot distribute a
  // matmul whose bias add and bf16/f16 result are fused into it, nor the
  // batch matmuls of attention, for NVIDIA and AMD GPUs alike; the SIMT and
  // matrix-core (TileAndFuse) pipelines chosen without it build them.
  static const std::vector<Fallback> table = {
      {"no-vector-distribution", {target::Backend::kCuda, target::Backend::kRocm}, "op failed to distribute",
       {"--iree-codegen-llvmgpu-use-vector-distribution=false"},
       "the vector-distribution pipeline failed to distribute a dispatch (16-bit matmuls with fused element-wise "
       "ops); it was built as the compiler builds it with --iree-codegen-llvmgpu-use-vector-distribution=false"},
  };
  return table;
}

bool may_fall_back(target::Backend backend) {
  const auto& table = fallbacks();
  return std::any_of(table.begin(), table.end(), [&](const Fallback& f) { return applies(f.backends, backend); });
}

const Fallback* match_fallback(std::string_view err, target::Backend backend, const std::vector<std::string>& tried) {
  for (const auto& f : fallbacks()) {
    if (!applies(f.backends, backend) || err.find(f.symptom) == std::string_view::npos) continue;
    if (std::find(tried.begin(), tried.end(), f.name) != tried.end()) continue;
    return &f;
  }
  return nullptr;
}

std::vector<std::string> failing_executables(std::string_view err) {
  std::vector<std::string> out;
  constexpr std::string_view kSym = "sym_name = \"";
  for (size_t at = err.find(kSym); at != std::string_view::npos; at = err.find(kSym, at + 1)) {
    size_t begin = at + kSym.size();
    size_t end = err.find('"', begin);
    if (end == std::string_view::npos) break;
    std::string_view function = err.substr(begin, end - begin);
    // The executable is the export's name up to its last "_dispatch_N".
    size_t mark = function.rfind("_dispatch_");
    if (mark == std::string_view::npos) continue;
    size_t digits = mark + 10, stop = digits;
    while (stop < function.size() && std::isdigit(static_cast<unsigned char>(function[stop]))) ++stop;
    if (stop == digits) continue;
    std::string name(function.substr(0, stop));
    if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(std::move(name));
  }
  return out;
}

std::string symptom_line(std::string_view err, const Fallback& fallback) {
  size_t at = err.find(fallback.symptom);
  if (at == std::string_view::npos) return {};
  size_t begin = err.rfind('\n', at);
  begin = begin == std::string_view::npos ? 0 : begin + 1;
  size_t end = err.find('\n', at);
  std::string line(util::trim(err.substr(begin, end == std::string_view::npos ? std::string_view::npos : end - begin)));
  return line.size() > 300 ? line.substr(0, 300) + "..." : line;
}

namespace {

// The text from `at` (which starts "#name<") to its matching '>'.
std::string_view angle_span(std::string_view text, size_t at) {
  size_t open = text.find('<', at);
  if (open == std::string_view::npos) return {};
  int depth = 0;
  for (size_t i = open; i < text.size(); ++i) {
    if (text[i] == '<') ++depth;
    if (text[i] == '>' && --depth == 0) return text.substr(at, i + 1 - at);
  }
  return {};
}

// A linalg.generic's header line: "%8 = linalg.generic {indexing_maps = ..., iterator_types = [...]} ins(...) outs(...) [attrs = {...}] {".
struct GenericLine {
  size_t begin = 0, end = 0;  // the line's span in the text, without its newline
  std::string iterators;      // iterator_types = ["parallel", "reduction"]
  std::string config;         // its lowering_config attribute, or ""
  bool other_attrs = false;   // an attribute dictionary without a lowering_config
  int64_t reduced = -1;       // elements each reduction combines (-1: not known)
};

// The product of the reduction loops' sizes, read from the first input's
// type when it has one dimension a loop ("ins(%2 : tensor<4x128x50257xbf16>"),
// else -1.
int64_t reduced_extent(std::string_view line, std::string_view iterators) {
  size_t ins = line.find(" ins(");
  size_t type = ins == std::string_view::npos ? ins : line.find("tensor<", ins);
  if (type == std::string_view::npos) return -1;
  std::vector<int64_t> dims;
  size_t at = type + 7;
  while (at < line.size() && std::isdigit(static_cast<unsigned char>(line[at]))) {
    int64_t d = 0;
    while (at < line.size() && std::isdigit(static_cast<unsigned char>(line[at]))) d = d * 10 + (line[at++] - '0');
    dims.push_back(d);
    if (at >= line.size() || line[at] != 'x') return -1;
    ++at;
  }
  std::vector<bool> reduction;
  for (size_t q = iterators.find('"'); q != std::string_view::npos;) {
    size_t close = iterators.find('"', q + 1);
    if (close == std::string_view::npos) return -1;
    reduction.push_back(iterators.substr(q + 1, close - q - 1) == "reduction");
    q = iterators.find('"', close + 1);
  }
  if (dims.size() != reduction.size()) return -1;
  int64_t n = 1;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (reduction[i]) n *= dims[i];
  }
  return n;
}

std::vector<GenericLine> generic_lines(const std::string& text) {
  std::vector<GenericLine> out;
  for (size_t at = text.find("linalg.generic {"); at != std::string::npos; at = text.find("linalg.generic {", at + 1)) {
    GenericLine g;
    size_t nl = text.rfind('\n', at);
    g.begin = nl == std::string::npos ? 0 : nl + 1;
    g.end = std::min(text.find('\n', at), text.size());
    std::string_view line(text.data() + g.begin, g.end - g.begin);
    size_t it = line.find("iterator_types = [");
    if (it == std::string_view::npos) continue;
    size_t close = line.find(']', it);
    if (close == std::string_view::npos) continue;
    g.iterators = std::string(line.substr(it, close + 1 - it));
    g.reduced = reduced_extent(line, g.iterators);
    if (size_t c = line.find("lowering_config = #iree_gpu.lowering_config<"); c != std::string_view::npos) {
      g.config = std::string(angle_span(line, c + std::string_view("lowering_config = ").size()));
    } else {
      g.other_attrs = line.find(" attrs = ") != std::string_view::npos;
    }
    out.push_back(std::move(g));
  }
  return out;
}

}  // namespace

std::string executable_name(std::string_view text) {
  for (std::string_view marker : {"hal.executable private @", "hal.executable public @", "hal.executable @"}) {
    size_t at = text.find(marker);
    if (at == std::string_view::npos) continue;
    size_t begin = at + marker.size(), end = begin;
    while (end < text.size() && (util::is_word_char(text[end]) || text[end] == '.' || text[end] == '$')) ++end;
    return std::string(text.substr(begin, end - begin));
  }
  return {};
}

std::optional<std::string> tile_every_reduction(const std::string& text) {
  if (text.find("pipeline = #iree_gpu.pipeline<TileAndFuse>") == std::string::npos) return std::nullopt;
  // Up to this many elements, the compiler's row-long vector builds fine
  // (attention's softmax over 16 to 1024 keys) and is left as it chose.
  constexpr int64_t kLongRow = 1024;
  auto lines = generic_lines(text);
  std::string repaired = text;
  bool changed = false;
  // Back to front, so the spans before an edit stay where they are.
  for (auto g = lines.rbegin(); g != lines.rend(); ++g) {
    if (!g->config.empty() || g->other_attrs || g->iterators.find("\"reduction\"") == std::string::npos) continue;
    if (g->reduced >= 0 && g->reduced <= kLongRow) continue;
    auto tiled = std::find_if(lines.begin(), lines.end(), [&](const GenericLine& other) {
      return other.iterators == g->iterators && other.config.find("reduction = [") != std::string::npos;
    });
    if (tiled == lines.end()) continue;
    std::string_view line(repaired.data() + g->begin, g->end - g->begin);
    if (!line.ends_with(" {")) continue;  // not a header whose region opens on it
    repaired.insert(g->end - 2, " attrs =  {lowering_config = " + tiled->config + "}");
    changed = true;
  }
  if (!changed) return std::nullopt;
  return repaired;
}

const std::vector<ConfigRepair>& config_repairs() {
  static const std::vector<ConfigRepair> table = {
      {"tile-every-reduction", {target::Backend::kCuda, target::Backend::kRocm}, tile_every_reduction,
       "the compiler tiles only the last of a dispatch's reductions over the same loops (a softmax's maximum and "
       "sum) and makes a vector as long as the row of the others, which crashes the GPU back end or takes it many "
       "minutes for long rows (a vocabulary); kiln gave those reductions the same tiles"},
  };
  return table;
}

bool may_repair_configs(target::Backend backend) {
  const auto& table = config_repairs();
  return std::any_of(table.begin(), table.end(), [&](const ConfigRepair& r) { return applies(r.backends, backend); });
}

RepairedConfigs repair_dumped_configs(const std::filesystem::path& dump, const std::filesystem::path& out,
                                      target::Backend backend) {
  RepairedConfigs repaired;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dump, ec)) {
    auto text = util::read_file(entry.path());
    std::string name = text ? executable_name(*text) : "";
    if (name.empty()) continue;
    for (const auto& repair : config_repairs()) {
      if (!applies(repair.backends, backend)) continue;
      auto fixed = repair.repair(*text);
      if (!fixed) continue;
      std::filesystem::create_directories(out, ec);
      if (!util::write_file_atomic(out / (name + ".mlir"), *fixed)) continue;
      repaired[std::string(repair.name)].push_back(name);
      *text = std::move(*fixed);
    }
  }
  for (auto& [repair, names] : repaired) std::sort(names.begin(), names.end());
  return repaired;
}

nlohmann::json fallback_json(const Fallback& fallback, const std::string& line) {
  return {{"name", fallback.name},
          {"table_version", kFallbackTableVersion},
          {"flags", fallback.flags},
          {"symptom", line},
          {"why", fallback.why}};
}

}  // namespace kiln::compile
