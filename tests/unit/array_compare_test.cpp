#include "kiln/array/compare.h"

#include <cmath>
#include <cstring>

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "kiln/array/npy.h"
#include "kiln/array/random.h"

namespace kiln::array {

Array of(const std::string& element, std::vector<double> values) {
  Array a{element, {static_cast<int64_t>(values.size())}, {}};
  a.data.resize(values.size() * element_size(element));
  for (size_t i = 0; i < values.size(); ++i) set_element(a, static_cast<int64_t>(i), values[i]);
  return a;
}

TEST(Compare, FloatsWithinTolerancePass) {
  auto c = compare(of("f32", {1, 2, 3}), of("f32", {1, 2.00001, 3}), {1e-4, 0}, NanPolicy::kEqual);
  EXPECT_TRUE(c.passed);
  EXPECT_NEAR(c.max_abs_error, 1e-5, 1e-6);
}

TEST(Compare, ReportsCountAndFirstMismatch) {
  auto c = compare(of("f32", {1, 5, 3, 9}), of("f32", {1, 2, 3, 4}), {1e-3, 1e-3}, NanPolicy::kEqual);
  EXPECT_FALSE(c.passed);
  EXPECT_EQ(c.mismatches, 2);
  EXPECT_EQ(c.first_mismatch, 1);
  EXPECT_EQ(c.got_at_first, 5);
  EXPECT_EQ(c.want_at_first, 2);
  EXPECT_DOUBLE_EQ(c.max_abs_error, 5);
  EXPECT_DOUBLE_EQ(c.max_rel_error, 1.5);
}

TEST(Compare, IntegersAndBooleansAreExact) {
  EXPECT_FALSE(compare(of("i32", {1, 2}), of("i32", {1, 3}), {10, 10}, NanPolicy::kEqual).passed);
  EXPECT_FALSE(compare(of("i1", {1, 0}), of("i1", {1, 1}), {1, 1}, NanPolicy::kEqual).passed);
  EXPECT_TRUE(compare(of("ui8", {7, 8}), of("ui8", {7, 8}), {}, NanPolicy::kEqual).passed);
}

TEST(Compare, NanRules) {
  auto got = of("f32", {NAN, 1});
  auto want = of("f32", {NAN, 1});
  EXPECT_TRUE(compare(got, want, {}, NanPolicy::kEqual).passed);
  EXPECT_FALSE(compare(got, want, {}, NanPolicy::kFail).passed);
  EXPECT_FALSE(compare(of("f32", {NAN}), of("f32", {1}), {1e9, 1e9}, NanPolicy::kEqual).passed)
      << "NaN where the reference has a number fails whatever the tolerance";
}

TEST(Compare, InfinitiesMustMatchExactly) {
  EXPECT_TRUE(compare(of("f32", {INFINITY}), of("f32", {INFINITY}), {}, NanPolicy::kEqual).passed);
  EXPECT_FALSE(compare(of("f32", {-INFINITY}), of("f32", {INFINITY}), {1e30, 1}, NanPolicy::kEqual).passed);
  EXPECT_FALSE(compare(of("f32", {3e38}), of("f32", {INFINITY}), {1e30, 1}, NanPolicy::kEqual).passed);
}

TEST(Compare, ShapeAndTypeProblemsAreNamed) {
  auto c = compare(of("f32", {1, 2}), of("f32", {1, 2, 3}), {}, NanPolicy::kEqual);
  EXPECT_FALSE(c.passed);
  EXPECT_EQ(c.problem, "shape (2) where (3) was expected");
  EXPECT_EQ(compare(of("f16", {1}), of("f32", {1}), {}, NanPolicy::kEqual).problem,
            "element type f16 where f32 was expected");
}

TEST(Compare, DefaultAtolScalesWithTheOutput) {
  // An error of 1e-4 in an element of 0.08 is rounding noise in an output
  // whose values reach 80, and a real error in one whose values stay below 1.
  auto want = of("f32", {0.08, 80});
  auto got = of("f32", {0.0801, 80});
  EXPECT_TRUE(compare(got, want, default_tolerance("f32"), NanPolicy::kEqual).passed);
  EXPECT_FALSE(compare(of("f32", {0.0801, 0.5}), of("f32", {0.08, 0.5}), default_tolerance("f32"), NanPolicy::kEqual).passed);
  auto c = compare(got, want, {1e-5, 1e-4, false}, NanPolicy::kEqual);
  EXPECT_FALSE(c.passed) << "a given --atol is used as it is";
  EXPECT_DOUBLE_EQ(c.effective_atol, 1e-5);
}

TEST(Compare, DefaultTolerancesLoosenWithPrecision) {
  EXPECT_LT(default_tolerance("f64").rtol, default_tolerance("f32").rtol);
  EXPECT_LT(default_tolerance("f32").rtol, default_tolerance("f16").rtol);
  EXPECT_LT(default_tolerance("f16").rtol, default_tolerance("bf16").rtol);
  EXPECT_EQ(default_tolerance("i32").atol, 0);
}

// ---- properties ----------------------------------------------------------

const std::vector<std::string> kFloatTypes = {"f16", "bf16", "f32", "f64", "f8E4M3FN"};

RC_GTEST_PROP(CompareProperties, AnArrayAlwaysMatchesItself, ()) {
  auto element = *rc::gen::element<std::string>("f16", "bf16", "f32", "f64", "f8E5M2", "i1", "i8", "ui16", "i64",
                                                "complex<f32>");
  auto shape = *rc::gen::container<std::vector<int64_t>>(*rc::gen::inRange(0, 4), rc::gen::inRange<int64_t>(0, 6));
  auto a = random_array(element, shape, *rc::gen::arbitrary<uint32_t>());
  RC_ASSERT(compare(a, a, {0, 0}, NanPolicy::kEqual).passed);
}

RC_GTEST_PROP(CompareProperties, LargerTolerancesNeverTurnAPassIntoAFail, ()) {
  auto element = *rc::gen::elementOf(kFloatTypes);
  int64_t n = *rc::gen::inRange<int64_t>(1, 64);
  auto want = random_array(element, {n}, *rc::gen::arbitrary<uint32_t>());
  auto got = random_array(element, {n}, *rc::gen::arbitrary<uint32_t>());
  // Nudge some elements so that results vary between pass and fail.
  for (int64_t i = 0; i < n; i += 2) set_element(got, i, element_value(want, i));
  double atol = *rc::gen::inRange(0, 1000) / 1000.0, rtol = *rc::gen::inRange(0, 1000) / 1000.0;
  double more_a = atol + *rc::gen::inRange(0, 1000) / 1000.0, more_r = rtol + *rc::gen::inRange(0, 1000) / 1000.0;
  auto tight = compare(got, want, {atol, rtol}, NanPolicy::kEqual);
  auto loose = compare(got, want, {more_a, more_r}, NanPolicy::kEqual);
  RC_ASSERT(loose.mismatches <= tight.mismatches);
  if (tight.passed) RC_ASSERT(loose.passed);
}

// The f32 reference check: the module's error against the f32 result is
// measured against the framework's own 16-bit error.
TEST(ReferenceCheck, PassesWithinTheFactorOfTheFrameworksError) {
  auto reference = of("f32", {1.0, 2.0, -3.0, 4.0});
  auto framework = of("bf16", {1.0, 2.0, -3.0, 4.03125});  // off by 0.03125 in one element
  auto close = of("bf16", {1.0, 2.015625, -3.0, 4.0});     // the same size of error elsewhere
  auto c = check_against_reference(close, framework, reference, 2);
  EXPECT_TRUE(c.passed);
  EXPECT_TRUE(c.problem.empty());
  EXPECT_NEAR(c.framework.max_abs, 0.03125, 1e-9);
  EXPECT_NEAR(c.module.max_abs, 0.015625, 1e-9);
  EXPECT_NEAR(c.framework.rms, 0.03125 / 2, 1e-9);  // sqrt(0.03125^2 / 4)
  EXPECT_NEAR(c.floor, 4.0 / 256, 1e-12);
  EXPECT_NEAR(c.rms_floor, std::sqrt((1.0 + 4 + 9 + 16) / 4) / 256, 1e-12);

  auto far = of("bf16", {1.25, 2.0, -3.0, 4.0});  // 8x the framework's largest error
  auto f = check_against_reference(far, framework, reference, 2);
  EXPECT_FALSE(f.passed);
  EXPECT_TRUE(check_against_reference(far, framework, reference, 8).passed);
}

TEST(ReferenceCheck, AnExactFrameworkAllowsTheTypesOwnRounding) {
  auto reference = of("f32", {1.0, 2.0, 3.0, 4.0});
  auto within_rounding = of("bf16", {1.0, 2.0, 3.0, 4.03125});  // 4/256 * 2 = 0.03125
  EXPECT_TRUE(check_against_reference(within_rounding, reference, reference, 2).passed);
  auto beyond = of("bf16", {1.0, 2.0, 3.0, 4.0625});
  EXPECT_FALSE(check_against_reference(beyond, reference, reference, 2).passed);
}

TEST(ReferenceCheck, NonFiniteOutputsAndMismatchedShapesFail) {
  auto reference = of("f32", {1.0, 2.0});
  auto nan = of("bf16", {1.0, std::nan("")});
  auto c = check_against_reference(nan, of("bf16", {1.0, 2.0}), reference, 2);
  EXPECT_FALSE(c.passed);
  EXPECT_EQ(c.module.non_finite, 1);
  auto shape = check_against_reference(of("bf16", {1.0}), of("bf16", {1.0}), reference, 2);
  EXPECT_FALSE(shape.passed);
  EXPECT_NE(shape.problem.find("f32 reference"), std::string::npos) << shape.problem;
  EXPECT_FALSE(check_against_reference(of("i32", {1, 2}), of("i32", {1, 2}), reference, 2).passed);
}

TEST(ReferenceCheck, UnitRoundoffByType) {
  EXPECT_EQ(unit_roundoff("bf16"), 1.0 / 256);
  EXPECT_EQ(unit_roundoff("f16"), 1.0 / 2048);
  EXPECT_EQ(unit_roundoff("f32"), std::ldexp(1.0, -24));
}

// The same matrix stored column-major (Fortran order) reads back equal.
std::string fortran_npy(const Array& a) {
  std::string bytes = serialize_npy(a);
  size_t at = bytes.find("'fortran_order': False");
  bytes.replace(at, 22, "'fortran_order': True ");
  size_t header_end = bytes.find('\n') + 1;
  size_t width = element_size(a.element);
  int64_t rows = a.shape[0], cols = a.shape[1];
  std::string data(a.data.size(), '\0');
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      std::memcpy(data.data() + (c * rows + r) * width, a.data.data() + (r * cols + c) * width, width);
    }
  }
  return bytes.substr(0, header_end) + data;
}

RC_GTEST_PROP(CompareProperties, ResultsDoNotDependOnArrayLayout, ()) {
  auto element = *rc::gen::elementOf(kFloatTypes);
  int64_t rows = *rc::gen::inRange<int64_t>(1, 7), cols = *rc::gen::inRange<int64_t>(1, 7);
  auto want = random_array(element, {rows, cols}, *rc::gen::arbitrary<uint32_t>());
  auto got = random_array(element, {rows, cols}, *rc::gen::arbitrary<uint32_t>());
  auto got_f = parse_npy(fortran_npy(got));
  auto want_f = parse_npy(fortran_npy(want));
  RC_ASSERT(got_f.has_value() && want_f.has_value());
  RC_ASSERT(reinterpret(*got_f, element, "got").has_value() && reinterpret(*want_f, element, "want").has_value());
  Tolerance t{0.1, 0.1};
  auto c_order = compare(got, want, t, NanPolicy::kEqual);
  auto f_order = compare(*got_f, *want_f, t, NanPolicy::kEqual);
  RC_ASSERT(c_order.passed == f_order.passed);
  RC_ASSERT(c_order.mismatches == f_order.mismatches);
  RC_ASSERT(c_order.first_mismatch == f_order.first_mismatch);
  RC_ASSERT(c_order.max_abs_error == f_order.max_abs_error);
}

}  // namespace kiln::array
