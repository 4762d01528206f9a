#include "kiln/util/json.h"

#include <gtest/gtest.h>

namespace kiln::util {

TEST(UtilJson, DepthIsCountedOutsideStrings) {
  EXPECT_EQ(json_depth("1"), 0);
  EXPECT_EQ(json_depth(R"({"a": [1, {"b": []}]})"), 4);
  EXPECT_EQ(json_depth(R"({"a": "[[[[{{{{ \" [[["})"), 1);
  EXPECT_EQ(json_depth(std::string(1000000, '['), 65), 65);  // stops counting at the limit
}

TEST(UtilJson, DeepDocumentsAreRefusedBeforeParsing) {
  std::string deep = std::string(200000, '[') + std::string(200000, ']');
  auto r = parse_json(deep, "the 'options' field");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Code::kInvalidArgument);
  EXPECT_NE(r.error().message.find("more than 64 levels deep"), std::string::npos) << r.error().message;
  std::string fine = std::string(64, '[') + std::string(64, ']');
  EXPECT_TRUE(parse_json(fine, "x"));
  auto huge = parse_json(R"({"x": 1e400})", "options");  // a number too large to hold: an error, not a throw
  ASSERT_FALSE(huge);
  auto bad = parse_json("{not json", "job.json");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("job.json is not valid JSON"), std::string::npos);
}

}  // namespace kiln::util
