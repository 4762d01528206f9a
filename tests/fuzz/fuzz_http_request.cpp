// Raw bytes on the service's socket, through the same steps the front takes
// before a job is stored: Beast's request parser (headers, then the body
// within the upload limit), the multipart upload, and the `options` JSON
// (depth bound, then the job schema).
#include <cstddef>
#include <cstdint>
#include <string>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "kiln/job/job.h"
#include "kiln/serve/multipart.h"
#include "kiln/util/json.h"

namespace http = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  http::request_parser<http::string_body> parser;
  parser.eager(true);
  parser.header_limit(64 << 10);
  parser.body_limit(1 << 20);
  boost::beast::error_code ec;
  size_t used = 0;
  while (used < size && !ec && !parser.is_done()) {
    size_t n = parser.put(boost::asio::buffer(data + used, size - used), ec);
    if (n == 0) break;
    used += n;
  }
  if (ec || !parser.is_header_done()) return 0;
  const auto& request = parser.get();
  std::string target(request.target());
  (void)target.substr(0, target.find('?'));
  std::string content_type(request[http::field::content_type]);
  if (!parser.is_done()) return 0;
  auto boundary = kiln::serve::boundary_of(content_type);
  if (!boundary) return 0;
  auto parts = kiln::serve::parse_multipart(request.body(), *boundary);
  if (!parts) return 0;
  auto options = parts->find("options");
  if (options == parts->end()) return 0;
  auto document = kiln::util::parse_json(options->second.body, "options");
  if (document) (void)kiln::job::validate_schema(*document);
  return 0;
}
