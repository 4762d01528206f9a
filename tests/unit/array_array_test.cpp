#include "kiln/array/array.h"

#include <cmath>
#include <cstring>

#include <gtest/gtest.h>

#include "kiln/array/random.h"

namespace kiln::array {

Array scalar(const std::string& element) { return Array{element, {}, std::vector<uint8_t>(element_size(element))}; }

TEST(Array, ElementSizes) {
  EXPECT_EQ(element_size("i1"), 1u);
  EXPECT_EQ(element_size("bf16"), 2u);
  EXPECT_EQ(element_size("f8E4M3FN"), 1u);
  EXPECT_EQ(element_size("complex<f32>"), 8u);
  EXPECT_EQ(element_size("complex<f64>"), 16u);
  EXPECT_EQ(element_size("i4"), 0u) << "sub-byte types are not held";
}

// Every 16-bit pattern decodes and encodes back to itself (NaNs to a NaN).
void round_trips_all_codes(const std::string& element) {
  Array a = scalar(element);
  for (uint32_t code = 0; code < 65536; ++code) {
    uint16_t bits = static_cast<uint16_t>(code);
    std::memcpy(a.data.data(), &bits, 2);
    double v = element_value(a, 0);
    set_element(a, 0, v);
    uint16_t back;
    std::memcpy(&back, a.data.data(), 2);
    if (std::isnan(v)) {
      EXPECT_TRUE(std::isnan(element_value(a, 0))) << element << " code " << code;
    } else {
      ASSERT_EQ(back, bits) << element << " code " << code << " value " << v;
    }
  }
}

TEST(Array, F16RoundTripsEveryCode) { round_trips_all_codes("f16"); }
TEST(Array, Bf16RoundTripsEveryCode) { round_trips_all_codes("bf16"); }

TEST(Array, F8RoundTripsEveryCode) {
  for (const char* element : {"f8E4M3FN", "f8E5M2", "f8E4M3FNUZ", "f8E5M2FNUZ"}) {
    Array a = scalar(element);
    for (int code = 0; code < 256; ++code) {
      a.data[0] = static_cast<uint8_t>(code);
      double v = element_value(a, 0);
      if (std::isnan(v)) continue;
      set_element(a, 0, v);
      // +0 and -0 compare equal; any code of the same value is fine.
      EXPECT_EQ(element_value(a, 0), v) << element << " code " << code;
    }
  }
}

TEST(Array, KnownValues) {
  Array h = scalar("f16");
  set_element(h, 0, 1.0);
  EXPECT_EQ(h.data[0], 0x00);
  EXPECT_EQ(h.data[1], 0x3c);
  Array b = scalar("bf16");
  set_element(b, 0, -2.0);
  EXPECT_EQ(b.data[1], 0xc0);
  Array e = scalar("f8E4M3FN");
  set_element(e, 0, 448.0);
  EXPECT_EQ(e.data[0], 0x7e) << "448 is f8E4M3FN's largest finite value";
  set_element(e, 0, 1.0);
  EXPECT_EQ(e.data[0], 0x38);
  Array i = scalar("i8");
  set_element(i, 0, -5);
  EXPECT_EQ(element_value(i, 0), -5);
}

TEST(Array, RandomIsSeededAndShaped) {
  auto a = random_array("f32", {3, 4}, 42);
  auto b = random_array("f32", {3, 4}, 42);
  auto c = random_array("f32", {3, 4}, 43);
  EXPECT_EQ(a.data, b.data);
  EXPECT_NE(a.data, c.data);
  EXPECT_EQ(a.count(), 12);
  auto flags = random_array("i1", {64}, 1);
  for (int64_t k = 0; k < 64; ++k) EXPECT_TRUE(flags.data[k] == 0 || flags.data[k] == 1);
  auto u = random_array("ui8", {64}, 1);
  for (int64_t k = 0; k < 64; ++k) EXPECT_LE(element_value(u, k), 20);
}

TEST(Array, IndexText) {
  EXPECT_EQ(index_text({2, 3}, 4), "[1, 1]");
  EXPECT_EQ(index_text({}, 0), "[]");
}

TEST(Convert, NarrowsFloatsAndRefusesIntegersThatDoNotFit) {
  Array d{"f64", {3}, std::vector<uint8_t>(24)};
  for (int i = 0; i < 3; ++i) set_element(d, i, 0.1 * (i + 1));
  ASSERT_TRUE(convert(d, "f32", "input 0"));
  EXPECT_EQ(d.element, "f32");
  EXPECT_EQ(d.data.size(), 12u);
  EXPECT_FLOAT_EQ(static_cast<float>(element_value(d, 2)), 0.3f);
  Array n{"i64", {2}, std::vector<uint8_t>(16)};
  set_element(n, 0, 7);
  set_element(n, 1, 5e9);
  auto too_big = convert(n, "i32", "input 1");
  ASSERT_FALSE(too_big);
  EXPECT_NE(too_big.error().message.find("[1]"), std::string::npos) << too_big.error().message;
  Array b{"i64", {1}, std::vector<uint8_t>(8)};
  EXPECT_FALSE(convert(b, "f32", "input 2")) << "integers are not silently made floats";
}

}  // namespace kiln::array
