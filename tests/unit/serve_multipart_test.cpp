#include "kiln/serve/multipart.h"

#include <gtest/gtest.h>

namespace kiln::serve {

const std::string kBody =
    "--XyZ\r\n"
    "Content-Disposition: form-data; name=\"model\"; filename=\"../../etc/passwd\"\r\n"
    "Content-Type: application/octet-stream\r\n\r\n"
    "module {}\r\n--XyZ\r\n"
    "Content-Disposition: form-data; name=\"options\"\r\n\r\n"
    "{\"targets\": [\"cpu\"]}\r\n"
    "--XyZ--\r\n";

TEST(Multipart, BoundaryFromContentType) {
  EXPECT_EQ(*boundary_of("multipart/form-data; boundary=XyZ"), "XyZ");
  EXPECT_EQ(*boundary_of("Multipart/Form-Data; boundary=\"a b\""), "a b");
  EXPECT_FALSE(boundary_of("application/json"));
  EXPECT_FALSE(boundary_of("multipart/form-data"));
}

TEST(Multipart, PartsByName) {
  auto parts = parse_multipart(kBody, "XyZ");
  ASSERT_TRUE(parts) << parts.error().message;
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_EQ(parts->at("model").body, "module {}");
  EXPECT_EQ(parts->at("model").filename, "../../etc/passwd") << "kept as sent; the service never uses it";
  EXPECT_EQ(parts->at("options").body, "{\"targets\": [\"cpu\"]}");
}

TEST(Multipart, BinaryBodiesSurvive) {
  std::string bytes("ML\xEFR\0\r\n--not-the-boundary\r\n\xff", 27);
  std::string body = "--b\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n" + bytes + "\r\n--b--\r\n";
  auto parts = parse_multipart(body, "b");
  ASSERT_TRUE(parts);
  EXPECT_EQ(parts->at("model").body, bytes);
}

TEST(Multipart, MalformedBodiesAreErrors) {
  EXPECT_FALSE(parse_multipart("no boundary here", "XyZ"));
  EXPECT_FALSE(parse_multipart(kBody.substr(0, 60), "XyZ")) << "truncated";
  std::string twice = "--b\r\nContent-Disposition: form-data; name=\"m\"\r\n\r\n1\r\n--b\r\n"
                      "Content-Disposition: form-data; name=\"m\"\r\n\r\n2\r\n--b--\r\n";
  auto r = parse_multipart(twice, "b");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("sent twice"), std::string::npos);
  std::string nameless = "--b\r\nContent-Type: text/plain\r\n\r\n1\r\n--b--\r\n";
  EXPECT_FALSE(parse_multipart(nameless, "b"));
}

}  // namespace kiln::serve
