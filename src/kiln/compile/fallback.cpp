#include "kiln/compile/fallback.h"

#include <algorithm>

#include "kiln/util/strings.h"

namespace kiln::compile {

const std::vector<Fallback>& fallbacks() {
  // IREE 3.13's vector-distribution pipeline (LLVMGPUVectorDistribute),
  // which it picks for contractions with 16-bit inputs, cannot distribute a
  // matmul whose bias add and bf16/f16 result are fused into it, nor the
  // batch matmuls of attention; the SIMT and tensor-core (TileAndFuse)
  // pipelines chosen without it build them.
  static const std::vector<Fallback> table = {
      {"no-vector-distribution", target::Backend::kCuda, "op failed to distribute",
       {"--iree-codegen-llvmgpu-use-vector-distribution=false"},
       "the vector-distribution pipeline failed to distribute a dispatch (16-bit matmuls with fused element-wise "
       "ops); built with --iree-codegen-llvmgpu-use-vector-distribution=false"},
  };
  return table;
}

bool may_fall_back(target::Backend backend) {
  const auto& table = fallbacks();
  return std::any_of(table.begin(), table.end(), [&](const Fallback& f) { return f.backend == backend; });
}

const Fallback* match_fallback(std::string_view err, target::Backend backend, const std::vector<std::string>& tried) {
  for (const auto& f : fallbacks()) {
    if (f.backend != backend || err.find(f.symptom) == std::string_view::npos) continue;
    if (std::find(tried.begin(), tried.end(), f.name) != tried.end()) continue;
    return &f;
  }
  return nullptr;
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

nlohmann::json fallback_json(const Fallback& fallback, const std::string& line) {
  return {{"name", fallback.name},
          {"table_version", kFallbackTableVersion},
          {"flags", fallback.flags},
          {"symptom", line},
          {"why", fallback.why}};
}

}  // namespace kiln::compile
