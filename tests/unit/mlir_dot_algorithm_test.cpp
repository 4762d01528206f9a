#include "kiln/mlir/dot_algorithm.h"

#include <gtest/gtest.h>

namespace kiln::mlir {
namespace {

// What jax.export printed (JAX 0.10.2) for
//   jax.lax.dot_general(a, b, (((2,), (1,)), ((0,), (0,))), precision=PRESET)
// with a: (2, 4, 8), b: (2, 8, 3), the line of each preset and storage type.
std::string jax_dot(const std::string& operand_type, const std::string& lhs, const std::string& rhs,
                    const std::string& accumulation, int operations, const std::string& result_type) {
  return "    %2 = stablehlo.dot_general %0, %1, batching_dims = [0] x [0], contracting_dims = [2] x [1], algorithm = "
         "<lhs_precision_type = " + lhs + ", rhs_precision_type = " + rhs + ", accumulation_type = " + accumulation +
         ", lhs_component_count = 1, rhs_component_count = 1, num_primitive_operations = " + std::to_string(operations) +
         ", allow_imprecise_accumulation = false> : (tensor<2x4x8x" + operand_type + ">, tensor<2x8x3x" + operand_type +
         ">) -> tensor<2x4x3x" + result_type + "> loc(#loc9)";
}

std::string lowered(const std::string& text, size_t expected_count = 1) {
  auto out = lower_dot_algorithms(text);
  EXPECT_TRUE(out.has_value()) << (out ? "" : out.error().message);
  if (!out) return {};
  EXPECT_EQ(out->lowered, expected_count);
  return out->text;
}

TEST(DotAlgorithm, ParsesTheSevenFields) {
  auto a = parse_dot_algorithm("lhs_precision_type = tf32, rhs_precision_type = tf32, accumulation_type = f32, "
                               "lhs_component_count = 1, rhs_component_count = 1, num_primitive_operations = 3, "
                               "allow_imprecise_accumulation = true");
  ASSERT_TRUE(a.has_value()) << a.error().message;
  EXPECT_EQ(a->lhs_precision, "tf32");
  EXPECT_EQ(a->accumulation, "f32");
  EXPECT_EQ(a->primitive_operations, 3);
  EXPECT_TRUE(a->imprecise_accumulation);
  EXPECT_TRUE(a->emulated());
  EXPECT_FALSE(parse_dot_algorithm("lhs_precision_type = bf16").has_value());
  EXPECT_FALSE(parse_dot_algorithm("lhs_precision_type = bf16, rhs_precision_type = bf16, accumulation_type = f32, "
                                   "lhs_component_count = 0, rhs_component_count = 1, num_primitive_operations = 1, "
                                   "allow_imprecise_accumulation = false")
                   .has_value());
}

// BF16_BF16_F32 on bf16 operands with a bf16 result (keras-hub's attention):
// the dot sums in f32, then rounds to the declared bf16.
TEST(DotAlgorithm, Bf16InputsWithF32AccumulationSumInF32ThenConvert) {
  std::string out = lowered(jax_dot("bf16", "bf16", "bf16", "f32", 1, "bf16"));
  EXPECT_EQ(out,
            "    %kiln_dot0 = stablehlo.dot_general %0, %1, batching_dims = [0] x [0], contracting_dims = [2] x [1] : "
            "(tensor<2x4x8xbf16>, tensor<2x8x3xbf16>) -> tensor<2x4x3xf32> loc(#loc9)\n"
            "    %2 = stablehlo.convert %kiln_dot0 : (tensor<2x4x3xf32>) -> tensor<2x4x3xbf16> loc(#loc9)");
}

// BF16_BF16_F32 on f32 operands: the operands are rounded to bf16 first.
TEST(DotAlgorithm, F32OperandsAreRoundedToThePrecisionType) {
  std::string out = lowered(jax_dot("f32", "bf16", "bf16", "f32", 1, "f32"));
  EXPECT_NE(out.find("%kiln_dot0_lhs = stablehlo.convert %0 : (tensor<2x4x8xf32>) -> tensor<2x4x8xbf16>"),
            std::string::npos) << out;
  EXPECT_NE(out.find("%kiln_dot0_rhs = stablehlo.convert %1 : (tensor<2x8x3xf32>) -> tensor<2x8x3xbf16>"),
            std::string::npos) << out;
  EXPECT_NE(out.find("%2 = stablehlo.dot_general %kiln_dot0_lhs, %kiln_dot0_rhs, batching_dims = [0] x [0], "
                     "contracting_dims = [2] x [1] : (tensor<2x4x8xbf16>, tensor<2x8x3xbf16>) -> tensor<2x4x3xf32>"),
            std::string::npos) << out;
  EXPECT_EQ(out.find("algorithm"), std::string::npos) << out;
}

TEST(DotAlgorithm, Tf32IsF32RoundedToTenMantissaBits) {
  std::string out = lowered(jax_dot("f32", "tf32", "tf32", "f32", 1, "f32"));
  EXPECT_NE(out.find("%kiln_dot0_lhs = stablehlo.reduce_precision %0, format = e8m10 : tensor<2x4x8xf32>"),
            std::string::npos) << out;
  EXPECT_NE(out.find("%kiln_dot0_rhs = stablehlo.reduce_precision %1, format = e8m10 : tensor<2x8x3xf32>"),
            std::string::npos) << out;
  EXPECT_NE(out.find("%2 = stablehlo.dot_general %kiln_dot0_lhs, %kiln_dot0_rhs"), std::string::npos) << out;
}

// BF16_BF16_F32_X3 emulates an f32 dot with three bf16 products: an f32 dot.
TEST(DotAlgorithm, AnEmulatedAlgorithmIsADotInItsAccumulationType) {
  std::string out = lowered(jax_dot("f32", "bf16", "bf16", "f32", 3, "f32"));
  EXPECT_EQ(out, "    %2 = stablehlo.dot_general %0, %1, batching_dims = [0] x [0], contracting_dims = [2] x [1] : "
                 "(tensor<2x4x8xf32>, tensor<2x8x3xf32>) -> tensor<2x4x3xf32> loc(#loc9)");
}

// F16_F16_F16: accumulation and result agree, nothing to convert.
TEST(DotAlgorithm, SameAccumulationAndResultTypeKeepsTheResultName) {
  std::string out = lowered(jax_dot("f16", "f16", "f16", "f16", 1, "f16"));
  EXPECT_EQ(out.find("convert"), std::string::npos) << out;
  EXPECT_NE(out.find("%2 = stablehlo.dot_general %0, %1,"), std::string::npos) << out;
}

TEST(DotAlgorithm, OtherLinesAndDotsWithoutAlgorithmStayAsTheyAre) {
  std::string text = "module @m {\n  func.func @main() {\n"
                     "    %3 = stablehlo.dot_general %a, %b, contracting_dims = [1] x [0] : (tensor<4x8xf32>, "
                     "tensor<8x3xf32>) -> tensor<4x3xf32> loc(#loc3)\n" +
                     jax_dot("bf16", "bf16", "bf16", "f32", 1, "bf16") + "\n" +
                     jax_dot("f16", "f16", "f16", "f32", 1, "f16") + "\n  }\n}\n#loc9 = loc(\"jit(f)/dot_general\")\n";
  std::string out = lowered(text, 2);
  EXPECT_NE(out.find("%kiln_dot0 ="), std::string::npos);
  EXPECT_NE(out.find("%kiln_dot1 ="), std::string::npos);
  EXPECT_EQ(out.find("algorithm"), std::string::npos);
  EXPECT_EQ(out.substr(0, 40), text.substr(0, 40));
  EXPECT_EQ(out.substr(out.size() - 40), text.substr(text.size() - 40));
  EXPECT_FALSE(has_dot_algorithm(out));
  EXPECT_TRUE(has_dot_algorithm(text));
}

TEST(DotAlgorithm, DynamicShapesKeepTheirDimensions) {
  std::string line = jax_dot("bf16", "bf16", "bf16", "f32", 1, "bf16");
  for (auto [from, to] : {std::pair{"tensor<2x4x8x", "tensor<?x4x8x"}, {"tensor<2x4x3x", "tensor<?x4x3x"}}) {
    for (size_t at = line.find(from); at != std::string::npos; at = line.find(from)) line.replace(at, 13, to);
  }
  std::string out = lowered(line);
  EXPECT_NE(out.find("-> tensor<?x4x3xf32>"), std::string::npos) << out;
  EXPECT_NE(out.find("(tensor<?x4x3xf32>) -> tensor<?x4x3xbf16>"), std::string::npos) << out;
}

TEST(DotAlgorithm, RefusesWhatItCannotExpress) {
  auto integer = lower_dot_algorithms(jax_dot("i8", "i8", "i8", "i32", 1, "i32"));
  ASSERT_FALSE(integer.has_value());
  EXPECT_NE(integer.error().message.find("line 1"), std::string::npos) << integer.error().message;
  EXPECT_NE(integer.error().message.find("i8"), std::string::npos) << integer.error().message;
  auto generic = lower_dot_algorithms(
      "%0 = \"stablehlo.dot_general\"(%a, %b) <{algorithm = #stablehlo.dot_algorithm<lhs_precision_type = bf16>}>");
  ASSERT_FALSE(generic.has_value());
  EXPECT_NE(generic.error().message.find("generic"), std::string::npos) << generic.error().message;
}

// The portable artifact as iree-opt prints it: every dot_general_v2 has an
// accumulation type, none without an algorithm.
TEST(DotAlgorithm, TellsVhloDotsWithAnAlgorithmFromThoseWithout) {
  std::string with = "%0 = \"vhlo.dot_general_v2\"(%arg0, %arg1) <{accumulation_type = #vhlo.type_v1<!vhlo.f32_v1>, "
                     "allow_imprecise_accumulation = #vhlo.bool_v1<false>}>";
  std::string without = "%0 = \"vhlo.dot_general_v2\"(%arg0, %arg1) <{accumulation_type = "
                        "#vhlo.type_v1<!vhlo.none_v1>, allow_imprecise_accumulation = #vhlo.type_v1<!vhlo.none_v1>}>";
  EXPECT_TRUE(has_vhlo_dot_algorithm(with));
  EXPECT_TRUE(has_dot_algorithm(with));
  EXPECT_FALSE(has_vhlo_dot_algorithm(without));
  EXPECT_FALSE(has_dot_algorithm(without));
}

// What jax.export printed for x @ w in bf16 (GPT-2's MLP): no algorithm.
constexpr const char* kBf16Dense =
    "    %94 = stablehlo.dot_general %93, %arg9, contracting_dims = [2] x [0] : (tensor<1x2048x1024xbf16>, "
    "tensor<1024x4096xbf16>) -> tensor<1x2048x4096xbf16> loc(#loc75)";

TEST(DotAlgorithm, SixteenBitDotsSumInF32WhenAsked) {
  EXPECT_TRUE(has_narrow_dot(kBf16Dense));
  EXPECT_FALSE(has_narrow_dot("%0 = stablehlo.dot_general %a, %b, contracting_dims = [1] x [0] : (tensor<4x8xf32>, "
                              "tensor<8x3xf32>) -> tensor<4x3xf32>"));
  auto untouched = lower_dot_algorithms(kBf16Dense);
  ASSERT_TRUE(untouched.has_value());
  EXPECT_EQ(untouched->text, kBf16Dense);
  auto out = lower_dot_algorithms(kBf16Dense, {true});
  ASSERT_TRUE(out.has_value()) << out.error().message;
  EXPECT_EQ(out->widened, 1u);
  EXPECT_EQ(out->lowered, 0u);
  EXPECT_EQ(out->text,
            "    %kiln_dot0 = stablehlo.dot_general %93, %arg9, contracting_dims = [2] x [0] : "
            "(tensor<1x2048x1024xbf16>, tensor<1024x4096xbf16>) -> tensor<1x2048x4096xf32> loc(#loc75)\n"
            "    %94 = stablehlo.convert %kiln_dot0 : (tensor<1x2048x4096xf32>) -> tensor<1x2048x4096xbf16> loc(#loc75)");
  // A dot whose algorithm says to sum in f16 keeps summing in f16.
  auto f16 = lower_dot_algorithms(jax_dot("f16", "f16", "f16", "f16", 1, "f16"), {true});
  ASSERT_TRUE(f16.has_value());
  EXPECT_EQ(f16->lowered, 1u);
  EXPECT_EQ(f16->widened, 0u);
  EXPECT_EQ(f16->text.find("f32"), std::string::npos) << f16->text;
}

}  // namespace
}  // namespace kiln::mlir
