#include "kiln/mlir/types.h"

#include <gtest/gtest.h>

namespace kiln::mlir {

TEST(Types, EveryStableHloElementTypeParses) {
  for (const auto& element : known_element_types()) {
    auto t = parse_type("tensor<2x" + element + ">");
    ASSERT_TRUE(t) << element << ": " << t.error().message;
    EXPECT_EQ(t->element, element);
    EXPECT_EQ(t->dims, (std::vector<int64_t>{2}));
    EXPECT_EQ(t->text(), "tensor<2x" + element + ">");
  }
}

TEST(Types, ScalarDynamicAndUnranked) {
  auto scalar = *parse_type("tensor<f32>");
  EXPECT_TRUE(scalar.dims.empty());
  EXPECT_FALSE(scalar.has_dynamic_dims());
  auto dynamic = *parse_type("tensor<?x8x?xbf16>");
  EXPECT_EQ(dynamic.dims, (std::vector<int64_t>{kDynamic, 8, kDynamic}));
  EXPECT_TRUE(dynamic.has_dynamic_dims());
  EXPECT_EQ(dynamic.text(), "tensor<?x8x?xbf16>");
  auto unranked = *parse_type("tensor<*xi32>");
  EXPECT_FALSE(unranked.ranked);
  EXPECT_TRUE(unranked.has_dynamic_dims());
}

TEST(Types, BoundedDynamicDimension) {
  auto t = parse_type("tensor<?x4xf32, #stablehlo.bounds<16, ?>>");
  ASSERT_TRUE(t);
  EXPECT_TRUE(t->bounded);
  EXPECT_EQ(t->element, "f32");
}

TEST(Types, VhloSpellingsNormalise) {
  EXPECT_EQ(parse_type("!vhlo.tensor_v1<3x!vhlo.ui8_v1>")->text(), "tensor<3xui8>");
  EXPECT_EQ(parse_type("!vhlo.tensor_v1<?x2x!vhlo.bool_v1>")->text(), "tensor<?x2xi1>");
  EXPECT_EQ(parse_type("!vhlo.tensor_v1<!vhlo.complex_v1<!vhlo.f32_v1>>")->text(), "tensor<complex<f32>>");
  EXPECT_EQ(parse_type("!vhlo.tensor_v1<2x!vhlo.f8E4M3FN_v1>")->element, "f8E4M3FN");
  EXPECT_EQ(parse_type("!vhlo.token_v1")->text(), "!stablehlo.token");
}

TEST(Types, NonTensorTypesKeepTheirText) {
  auto token = *parse_type("!stablehlo.token");
  EXPECT_FALSE(token.is_tensor);
  EXPECT_EQ(token.text(), "!stablehlo.token");
  EXPECT_EQ(parse_type("tuple<tensor<f32>>")->text(), "tuple<tensor<f32>>");
}

TEST(Types, UnknownElementTypesAreErrors) {
  EXPECT_FALSE(parse_type("tensor<4xf31>"));
  EXPECT_FALSE(parse_type("tensor<4xcomplex<i32>>"));
  EXPECT_FALSE(parse_type("tensor<4xsi1>"));
  auto t = parse_type("tensor<4xfoo>");
  ASSERT_FALSE(t);
  EXPECT_NE(t.error().message.find("unknown element type 'foo'"), std::string::npos);
}

TEST(Types, HugeDimensionIsAnErrorNotOverflow) {
  EXPECT_FALSE(parse_type("tensor<99999999999999999999999x f32>"));
}

}  // namespace kiln::mlir
