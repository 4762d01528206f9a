// A service upload: the Content-Type header (first line) and the body.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "kiln/serve/multipart.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view all(reinterpret_cast<const char*>(data), size);
  size_t nl = all.find('\n');
  std::string_view header = all.substr(0, nl);
  std::string_view body = nl == std::string_view::npos ? std::string_view() : all.substr(nl + 1);
  auto boundary = kiln::serve::boundary_of(header);
  if (boundary) (void)kiln::serve::parse_multipart(body, *boundary);
  return 0;
}
