#include "kiln/mlir/jax_export.h"
#include "kiln/mlir/jax_serialized.h"

#include <gtest/gtest.h>

namespace kiln::mlir {
namespace {

// The shape of what jax.export prints for f(x: (b, n), y: (n, 8)), shortened.
constexpr const char* kTwoDims = R"(module @jit_f attributes {jax.uses_shape_polymorphism = true} {
  func.func public @main(%arg0: tensor<?x?xf32> loc(unknown), %arg1: tensor<?x8xf32> loc(unknown)) -> (tensor<?x8xf32> {jax.result_info = "result"}) {
    %0 = stablehlo.get_dimension_size %arg0, dim = 0 : (tensor<?x?xf32>) -> tensor<i32> loc(#loc1)
    %1 = stablehlo.get_dimension_size %arg0, dim = 1 : (tensor<?x?xf32>) -> tensor<i32> loc(#loc1)
    %2 = stablehlo.get_dimension_size %arg1, dim = 0 : (tensor<?x8xf32>) -> tensor<i32> loc(#loc1)
    %5 = stablehlo.compare EQ, %2, %1, SIGNED : (tensor<i32>, tensor<i32>) -> tensor<i1> loc(#loc4)
    %6 = call @_wrapped_jax_export_main(%0, %1, %arg0, %arg1) : (tensor<i32>, tensor<i32>, tensor<?x?xf32>, tensor<?x8xf32>) -> tensor<?x8xf32> loc(#loc)
    return %6 : tensor<?x8xf32> loc(#loc)
  } loc(#loc)
  func.func private @_wrapped_jax_export_main(%arg0: tensor<i32> {jax.global_constant = "b"} loc(unknown), %arg1: tensor<i32> {jax.global_constant = "n"} loc(unknown), %arg2: tensor<?x?xf32> loc("x"), %arg3: tensor<?x8xf32> loc("y")) -> (tensor<?x8xf32> {jax.result_info = "result"}) {
    %3 = stablehlo.dynamic_broadcast_in_dim %1, %2, dims = [0] : (tensor<?xf32>, tensor<2xi32>) -> tensor<?x1xf32> loc(#loc2)
    %4 = stablehlo.dynamic_broadcast_in_dim %3, %5, dims = [0, 1] : (tensor<?x1xf32>, tensor<2xi32>) -> tensor<?x8xf32> loc(#loc3)
    %6 = stablehlo.dynamic_broadcast_in_dim %c, %5, dims = [] : (tensor<f32>, tensor<2xi32>) -> tensor<?x8xf32> loc(#loc3)
    return %4 : tensor<?x8xf32> loc(#loc)
  } loc(#loc)
} loc(#loc)
)";

TEST(JaxExport, FindsTheSymbolicDimensionsWhereMainReadsThem) {
  EXPECT_TRUE(is_shape_polymorphic(kTwoDims));
  EXPECT_FALSE(is_shape_polymorphic("module @m {\n}\n"));
  auto dims = symbolic_dims(kTwoDims);
  ASSERT_TRUE(dims) << dims.error().message;
  ASSERT_EQ(dims->size(), 2u);
  EXPECT_EQ((*dims)[0].name, "b");
  EXPECT_EQ((*dims)[0].argument, 0u);
  EXPECT_EQ((*dims)[0].dim, 0);
  EXPECT_EQ((*dims)[1].name, "n");
  EXPECT_EQ((*dims)[1].dim, 1);
}

TEST(JaxExport, MergesChainedBroadcastsAndMarksDynamicDimensionsNonExpanding) {
  size_t n = 0;
  std::string out = annotate_dynamic_broadcasts(kTwoDims, &n);
  EXPECT_EQ(n, 2u);
  EXPECT_NE(out.find("%3 = stablehlo.dynamic_broadcast_in_dim %1, %2, dims = [0] {known_nonexpanding_dimensions = "
                     "array<i64: 0>} : (tensor<?xf32>, tensor<2xi32>) -> tensor<?x1xf32> loc(#loc2)"),
            std::string::npos)
      << out;
  // %4 broadcasts %3: it now broadcasts %1 directly.
  EXPECT_NE(out.find("%4 = stablehlo.dynamic_broadcast_in_dim %1, %5, dims = [0] {known_nonexpanding_dimensions = "
                     "array<i64: 0>} : (tensor<?xf32>, tensor<2xi32>) -> tensor<?x8xf32> loc(#loc3)"),
            std::string::npos)
      << out;
  // A scalar broadcast needs nothing.
  EXPECT_NE(out.find("%6 = stablehlo.dynamic_broadcast_in_dim %c, %5, dims = [] : (tensor<f32>"), std::string::npos);
}

TEST(JaxExport, BindingMakesMainStaticAndItsDimensionsConstant) {
  auto out = bind_dims(kTwoDims, {{"b", 4}, {"n", 16}});
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_NE(out->find("@main(%kiln_static_arg0: tensor<4x16xf32> loc(unknown), %kiln_static_arg1: tensor<16x8xf32>"),
            std::string::npos)
      << *out;
  EXPECT_NE(out->find("%arg0 = tensor.cast %kiln_static_arg0 : tensor<4x16xf32> to tensor<?x?xf32>"), std::string::npos);
  EXPECT_NE(out->find("%1 = stablehlo.constant dense<16> : tensor<i32>"), std::string::npos);
  EXPECT_NE(out->find("%2 = stablehlo.constant dense<16> : tensor<i32>"), std::string::npos);

  auto partial = bind_dims(kTwoDims, {{"b", 2}});
  ASSERT_TRUE(partial);
  EXPECT_NE(partial->find("%kiln_static_arg0: tensor<2x?xf32>"), std::string::npos) << *partial;
  EXPECT_NE(partial->find("%arg1: tensor<?x8xf32>"), std::string::npos);

  auto unknown = bind_dims(kTwoDims, {{"c", 2}});
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message.find("symbolic dimensions are b, n"), std::string::npos);
}

TEST(JaxExport, ThePlatformIndexBecomesAConstant) {
  std::string text = R"(module @m {
  func.func public @main(%arg0: tensor<i32> {jax.global_constant = "_platform_index"} loc(unknown), %arg1: tensor<4xf32> loc(unknown)) -> (tensor<4xf32>) {
    return %arg1 : tensor<4xf32>
  }
})";
  EXPECT_TRUE(has_platform_index(text));
  auto out = bind_platform_index(text, 1);
  ASSERT_TRUE(out);
  EXPECT_NE(out->find("@main(%arg1: tensor<4xf32> loc(unknown))"), std::string::npos) << *out;
  EXPECT_NE(out->find("%arg0 = stablehlo.constant dense<1> : tensor<i32>"), std::string::npos);
  EXPECT_FALSE(has_platform_index(*out));
}

TEST(JaxExport, BindingsParse) {
  auto b = parse_binding("b=8");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->first, "b");
  EXPECT_EQ(b->second, 8);
  for (const char* bad : {"b", "=8", "b=0", "b=-1", "b=x", "b c=2"}) EXPECT_FALSE(parse_binding(bad)) << bad;
  EXPECT_EQ(binding_slug({{"b", 4}, {"n", 16}}), "b4_n16");
}

TEST(JaxSerialized, OnlyABufferWithAModuleInsideIsAnExported) {
  EXPECT_FALSE(is_jax_exported(""));
  EXPECT_FALSE(is_jax_exported(std::string("ML\xEFR") + std::string(64, '\0')));
  // A root offset past the end, and one whose table has no module field.
  EXPECT_FALSE(is_jax_exported(std::string("\xff\xff\xff\x7f") + std::string(60, '\0')));
  EXPECT_FALSE(is_jax_exported(std::string("\x08\x00\x00\x00") + std::string(60, '\0')));
  EXPECT_FALSE(read_jax_exported("module @m {}"));
  EXPECT_EQ(jax_platform_of("cuda"), "cuda");
  EXPECT_EQ(jax_platform_of("vulkan"), "");
}

}  // namespace
}  // namespace kiln::mlir
