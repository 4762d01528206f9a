#include "kiln/mlir/scanner.h"

#include <algorithm>

#include <gtest/gtest.h>

#include "kiln/mlir/inspect.h"

namespace kiln::mlir {
namespace {

// The shape of what jax.export(...).mlir_module() prints: location aliases
// before and after the module, inline locations on arguments, result
// attributes, constants, a private function and a region.
constexpr const char* kJaxExport = R"mlir(#loc1 = loc("x")
#loc2 = loc("w")
module @jit_f attributes {jax.uses_shape_polymorphism = false, mhlo.num_partitions = 1 : i32} {
  func.func public @main(%arg0: tensor<4x16xf32> loc("x"), %arg1: tensor<16x?xbf16> {mhlo.layout_mode = "default"} loc(#loc2)) -> (tensor<4x?xf32> {jax.result_info = "result[0]"}, tensor<i1> {jax.result_info = "result[1]"}) {
    %cst = stablehlo.constant dense<"0x0000803F00000040"> : tensor<2xf32> loc(#loc5)
    %0 = stablehlo.dot_general %arg0, %arg1, contracting_dims = [1] x [0] : (tensor<4x16xf32>, tensor<16x?xbf16>) -> tensor<4x?xf32> loc(#loc6)
    %1:2 = "stablehlo.while"(%0, %cst) ({
    ^bb0(%a: tensor<4x?xf32>, %b: tensor<2xf32>):
      %c = chlo.erf %a : tensor<4x?xf32> -> tensor<4x?xf32>
      stablehlo.return %c, %b : tensor<4x?xf32>, tensor<2xf32>
    }) : (tensor<4x?xf32>, tensor<2xf32>) -> (tensor<4x?xf32>, tensor<2xf32>)
    %2 = call @helper(%cst) : (tensor<2xf32>) -> tensor<i1> loc(#loc7)
    return %1#0, %2 : tensor<4x?xf32>, tensor<i1> loc(#loc)
  } loc(#loc)
  func.func private @helper(%arg0: tensor<2xf32> loc("{weird} \"name\"")) -> tensor<i1> {
    %0 = stablehlo.constant dense<true> : tensor<i1>
    return %0 : tensor<i1>
  }
} loc(#loc)
#loc = loc(unknown)
#loc5 = loc("/tmp/model.py":5:21 to :40)
#loc6 = loc("jit(f)/dot_general"(#loc5))
#loc7 = loc(callsite(#loc6 at #loc5))
)mlir";

ModuleInfo scan_ok(std::string_view text) {
  auto r = scan_text(text);
  EXPECT_TRUE(r) << (r ? "" : r.error().message);
  return r ? r->info : ModuleInfo{};
}

std::string scan_error(std::string_view text) {
  auto r = scan_text(text);
  EXPECT_FALSE(r) << "expected an error";
  return r ? "" : r.error().message;
}

}  // namespace

TEST(Scanner, ReadsJaxExport) {
  ModuleInfo m = scan_ok(kJaxExport);
  EXPECT_EQ(m.name, "jit_f");
  EXPECT_EQ(m.dialects, (std::vector<std::string>{"builtin", "chlo", "func", "stablehlo"}));
  ASSERT_EQ(m.functions.size(), 2u);
  const Function& main = m.functions[0];
  EXPECT_EQ(main.name, "main");
  EXPECT_TRUE(main.is_public);
  EXPECT_EQ(main.line, 4u);
  ASSERT_EQ(main.arguments.size(), 2u);
  EXPECT_EQ(main.arguments[0].name, "x");
  EXPECT_EQ(main.arguments[0].type.text(), "tensor<4x16xf32>");
  EXPECT_EQ(main.arguments[1].name, "w") << "named through the #loc2 alias defined before the module";
  EXPECT_TRUE(main.arguments[1].type.has_dynamic_dims());
  ASSERT_EQ(main.results.size(), 2u);
  EXPECT_EQ(main.results[0].name, "result[0]");
  EXPECT_EQ(main.results[1].type.element, "i1");
  const Function& helper = m.functions[1];
  EXPECT_FALSE(helper.is_public);
  EXPECT_EQ(helper.arguments[0].name, "{weird} \\\"name\\\"");
  ASSERT_EQ(helper.results.size(), 1u);
  EXPECT_EQ(helper.results[0].type.text(), "tensor<i1>");
}

TEST(Scanner, BareFunctionWithoutModuleAndDefaultVisibility) {
  ModuleInfo m = scan_ok("func.func @f(%a: tensor<f64>) {\n  return\n}\n");
  EXPECT_EQ(m.name, "");
  ASSERT_EQ(m.functions.size(), 1u);
  EXPECT_TRUE(m.functions[0].is_public);
  EXPECT_TRUE(m.functions[0].results.empty());
}

TEST(Scanner, DeclarationsWithTypesOnlyAndManyFunctions) {
  std::string text = "module {\n";
  for (int i = 0; i < 50; ++i) {
    text += "  func.func private @decl" + std::to_string(i) + "(tensor<2xi8>, tensor<ui16>) -> tensor<2xcomplex<f64>>\n";
  }
  text += "}\n";
  ModuleInfo m = scan_ok(text);
  ASSERT_EQ(m.functions.size(), 50u);
  EXPECT_EQ(m.functions[49].name, "decl49");
  EXPECT_EQ(m.functions[49].arguments[1].type.element, "ui16");
  EXPECT_EQ(m.functions[49].results[0].type.element, "complex<f64>");
  EXPECT_TRUE(m.public_functions().empty());
}

TEST(Scanner, VhloFunctionsTakeVisibilityAndResultNamesFromTrailingAttributes) {
  constexpr const char* kVhlo = R"mlir(module @jit_g {
  vhlo.func_v1 @main(%arg0: !vhlo.tensor_v1<?x2x!vhlo.bool_v1>) -> (!vhlo.tensor_v1<?x2x!vhlo.bool_v1>) {
    "vhlo.return_v1"(%arg0) : (!vhlo.tensor_v1<?x2x!vhlo.bool_v1>) -> ()
  } {arg_attrs = #vhlo.array_v1<[]>, res_attrs = #vhlo.array_v1<[#vhlo.dict_v1<{#vhlo.string_v1<"jax.result_info"> = #vhlo.string_v1<"out">}>]>, sym_visibility = #vhlo.string_v1<"public">}
  vhlo.func_v1 @inner(%arg0: !vhlo.tensor_v1<!vhlo.i64_v1>) -> (!vhlo.tensor_v1<!vhlo.i64_v1>) {
    "vhlo.return_v1"(%arg0) : (!vhlo.tensor_v1<!vhlo.i64_v1>) -> ()
  } {sym_visibility = #vhlo.string_v1<"private">}
}
)mlir";
  ModuleInfo m = scan_ok(kVhlo);
  ASSERT_EQ(m.functions.size(), 2u);
  EXPECT_TRUE(m.functions[0].is_public);
  EXPECT_EQ(m.functions[0].results[0].name, "out");
  EXPECT_EQ(m.functions[0].arguments[0].type.text(), "tensor<?x2xi1>");
  EXPECT_FALSE(m.functions[1].is_public);
  EXPECT_EQ(m.dialects, (std::vector<std::string>{"builtin", "vhlo"}));
}

TEST(Scanner, HugeConstantsAreSkippedWhole) {
  // 8 MB of hex and 2 MB of decimal literals, with braces and quotes that
  // must not confuse the scanner because they sit inside the constants.
  std::string hex(8 << 20, 'A');
  std::string decimal;
  while (decimal.size() < (2u << 20)) decimal += "1.500000e+00, -2.0, ";
  std::string text = "module @big {\n  func.func @main() -> tensor<4xf32> {\n"
                     "    %0 = stablehlo.constant dense<\"0x" + hex + "\"> : tensor<4xf32>\n"
                     "    %1 = stablehlo.constant dense<[" + decimal + "1.0]> : tensor<4xf32>\n"
                     "    %2 = stablehlo.custom_call @f() {backend_config = \"}{\\\"\"} : () -> tensor<4xf32>\n"
                     "    return %0 : tensor<4xf32>\n  }\n}\n";
  ModuleInfo m = scan_ok(text);
  EXPECT_EQ(m.name, "big");
  ASSERT_EQ(m.functions.size(), 1u);
  EXPECT_EQ(m.functions[0].results[0].type.text(), "tensor<4xf32>");
}

TEST(Scanner, DenseResourcesAndResourceSectionsAreSkipped) {
  std::string text = "module {\n  func.func @main() -> tensor<2xf32> {\n"
                     "    %0 = stablehlo.constant dense_resource<blob> : tensor<2xf32>\n    return %0 : tensor<2xf32>\n"
                     "  }\n}\n{-#\n  dialect_resources: {\n    builtin: {\n      blob: \"0x0400000000000000\"\n    }\n  }\n#-}\n";
  ModuleInfo m = scan_ok(text);
  EXPECT_EQ(m.functions.size(), 1u);
}

TEST(Scanner, GenericFuncFormAsksForReprint) {
  auto r = scan_text("\"builtin.module\"() ({\n  \"func.func\"() <{function_type = () -> (), sym_name = \"f\"}> ({\n  }) : () -> ()\n}) : () -> ()\n");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->needs_reprint);
}

TEST(Scanner, MalformedInputGivesPositionedErrors) {
  EXPECT_NE(scan_error("module {\n  func.func @f() {\n").find("2:18: '{' is never closed"), std::string::npos);
  EXPECT_NE(scan_error("}\n").find("1:1: '}' does not match"), std::string::npos);
  EXPECT_NE(scan_error("module {\n  %0 = \"abc\n").find("string literal is never closed"), std::string::npos);
  EXPECT_NE(scan_error("func.func @f(%a: tensor<2xf32>, %b tensor<f32>) {}").find("expected ':'"), std::string::npos);
  EXPECT_NE(scan_error("func.func @f(%a: tensor<2xf33>) {}").find("unknown element type 'f33'"), std::string::npos);
  EXPECT_NE(scan_error("func.func f() {}").find("expected '@name'"), std::string::npos);
  EXPECT_NE(scan_error("func.func @f(%a: tensor<2xf32>").find("ends inside"), std::string::npos);
  EXPECT_NE(scan_error("func.func @f(%a: tensor<2xf32").find("never closed"), std::string::npos);
}

TEST(Scanner, ABareResultTypeIsFollowedByTheBodyNotAttributes) {
  // "-> tensor<4xf32> {": the body was taken for the result's attribute
  // dictionary and skipped, so its dialects went unseen.
  auto r = scan_text("func.func @main(%a: tensor<4xf32>) -> tensor<4xf32> {\n"
                     "  %0 = stablehlo.add %a, %a : tensor<4xf32>\n"
                     "  return %0 : tensor<4xf32>\n}\n");
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->info.functions.size(), 1u);
  EXPECT_EQ(r->info.functions[0].results[0].type.text(), "tensor<4xf32>");
  const auto& d = r->info.dialects;
  EXPECT_NE(std::find(d.begin(), d.end(), "stablehlo"), d.end());
}

TEST(Scanner, TextThatIsNotMlirIsRejected) {
  EXPECT_NE(scan_error("hello, world\nthis is a README\n").find("no StableHLO module found"), std::string::npos);
  EXPECT_NE(scan_error("").find("no StableHLO module found"), std::string::npos);
  EXPECT_NE(scan_error(std::string("module {\x01\x02}")).find("control character"), std::string::npos);
}

TEST(Scanner, RandomBytesNeverCrash) {
  // Deterministic noise, including braces, quotes and keywords.
  const char alphabet[] = "{}()<>\"\\%@:=,.-x?0123456789 \nmodule func.func tensor dense loc #!";
  uint32_t state = 12345;
  for (int round = 0; round < 2000; ++round) {
    std::string text;
    size_t length = (state % 300) + 1;
    for (size_t i = 0; i < length; ++i) {
      state = state * 1664525u + 1013904223u;
      text += alphabet[(state >> 16) % (sizeof alphabet - 1)];
    }
    auto r = scan_text(text);  // an answer either way; never a crash or a hang
    if (!r) {
      EXPECT_FALSE(r.error().message.empty());
    }
  }
}

TEST(Inspect, DetectsFormatsAndProducer) {
  EXPECT_EQ(detect_format("ML\xEFR\x06StableHLO_v1.15.0"), Format::kBytecode);
  EXPECT_EQ(detect_format("module {}"), Format::kText);
  std::string bytecode("ML\xEFR\x0dStableHLO_v1.15.0\0rest", 28);
  EXPECT_EQ(bytecode_producer(bytecode), "StableHLO_v1.15.0");
}

}  // namespace kiln::mlir
