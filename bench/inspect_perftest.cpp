// How fast kiln reads StableHLO text: the scanner on a 100 MB module held in
// memory, and the whole inspect path (mmap + scan) on the same bytes in a
// file. Constants dominate real exports, in JAX's two spellings: hex strings
// for large arrays and decimal lists for small ones.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>

#include "kiln/mlir/inspect.h"
#include "kiln/mlir/scanner.h"
#include "kiln/util/file.h"

namespace {

std::string make_module(size_t target_bytes) {
  std::string text = "#loc1 = loc(\"x\")\nmodule @jit_big attributes {mhlo.num_partitions = 1 : i32} {\n"
                     "  func.func public @main(%arg0: tensor<4x1024xf32> loc(\"x\")) -> (tensor<4x1024xf32> "
                     "{jax.result_info = \"result\"}) {\n";
  std::string hex(1 << 20, '0');
  for (size_t i = 0; i < hex.size(); ++i) hex[i] = "0123456789ABCDEF"[(i * 7) & 15];
  std::string decimals;
  while (decimals.size() < (256u << 10)) decimals += "[1.250000e-01, -3.500000e+00, 2.000000e+00, 7.812500e-03], ";
  int n = 0;
  while (text.size() < target_bytes) {
    std::string id = std::to_string(n++);
    text += "    %cst_" + id + " = stablehlo.constant dense<\"0x" + hex + "\"> : tensor<262144xf32> loc(#loc1)\n";
    text += "    %dec_" + id + " = stablehlo.constant dense<[" + decimals + "[0.0, 0.0, 0.0, 0.0]]> : tensor<8192x4xf32>\n";
    text += "    %" + id + " = stablehlo.add %arg0, %arg0 : tensor<4x1024xf32> loc(#loc1)\n";
  }
  text += "    return %arg0 : tensor<4x1024xf32>\n  }\n}\n#loc = loc(unknown)\n";
  return text;
}

const std::string& module_text() {
  static const std::string text = make_module(100u << 20);
  return text;
}

void BM_ScanText100MB(benchmark::State& state) {
  const std::string& text = module_text();
  for (auto _ : state) {
    auto r = kiln::mlir::scan_text(text);
    if (!r || r->info.functions.size() != 1) state.SkipWithError("scan failed");
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}
BENCHMARK(BM_ScanText100MB)->Unit(benchmark::kMillisecond);

void BM_InspectFile100MB(benchmark::State& state) {
  auto dir = kiln::util::TempDir::create(kiln::util::temp_root(), "kiln-bench-");
  auto path = dir->path() / "big.mlir";
  if (!kiln::util::write_file_atomic(path, module_text())) state.SkipWithError("cannot write sample");
  kiln::mlir::BytecodePrinter none = [](const auto&) -> kiln::Result<std::string> {
    return kiln::fail(kiln::Code::kInternal, "text only");
  };
  for (auto _ : state) {
    auto r = kiln::mlir::inspect_file(path, none);
    if (!r) state.SkipWithError(r.error().message.c_str());
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * module_text().size()));
}
BENCHMARK(BM_InspectFile100MB)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
