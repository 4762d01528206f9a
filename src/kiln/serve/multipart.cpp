#include "kiln/serve/multipart.h"

#include <fmt/format.h>

#include "kiln/util/strings.h"

namespace kiln::serve {
namespace {

// The value of `key` in a header's parameters: name="model"; filename="m.mlir".
std::string parameter(std::string_view header, std::string_view key) {
  for (const auto& piece : util::split(header, ';')) {
    auto p = util::trim(piece);
    if (!util::starts_with(util::to_lower(p), std::string(key) + "=")) continue;
    std::string_view value = p.substr(key.size() + 1);
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
    return std::string(value);
  }
  return {};
}

}  // namespace

Result<std::string> boundary_of(std::string_view content_type) {
  if (!util::starts_with(util::to_lower(util::trim(content_type)), "multipart/form-data")) {
    return fail(Code::kInvalidArgument,
                "the body must be multipart/form-data with a 'model' file and an 'options' field "
                "(curl -F model=@model.mlir -F 'options={\"targets\":[\"cpu\"]}')");
  }
  std::string b = parameter(content_type, "boundary");
  if (b.empty() || b.size() > 200) return fail(Code::kInvalidArgument, "multipart/form-data without a boundary");
  return b;
}

Result<std::map<std::string, Part>> parse_multipart(std::string_view body, const std::string& boundary) {
  std::string delimiter = "--" + boundary;
  std::map<std::string, Part> parts;
  size_t at = body.find(delimiter);
  if (at == std::string_view::npos) return fail(Code::kInvalidArgument, "multipart body without its boundary");
  while (true) {
    at += delimiter.size();
    if (body.substr(at, 2) == "--") break;  // the closing delimiter
    if (body.substr(at, 2) != "\r\n") return fail(Code::kInvalidArgument, "malformed multipart delimiter line");
    at += 2;
    size_t headers_end = body.find("\r\n\r\n", at);
    if (headers_end == std::string_view::npos) return fail(Code::kInvalidArgument, "multipart part without a blank line after its headers");
    Part part;
    for (const auto& line : util::split(body.substr(at, headers_end - at), '\n')) {
      auto l = util::trim(line);
      size_t colon = l.find(':');
      if (colon == std::string_view::npos) continue;
      std::string name = util::to_lower(util::trim(l.substr(0, colon)));
      auto value = util::trim(l.substr(colon + 1));
      if (name == "content-disposition") {
        part.name = parameter(value, "name");
        part.filename = parameter(value, "filename");
      } else if (name == "content-type") {
        part.content_type = std::string(value);
      }
    }
    size_t data = headers_end + 4;
    size_t next = body.find("\r\n" + delimiter, data);
    if (next == std::string_view::npos) return fail(Code::kInvalidArgument, "multipart body ends inside a part (truncated upload?)");
    part.body = std::string(body.substr(data, next - data));
    if (part.name.empty()) return fail(Code::kInvalidArgument, "a multipart part has no name");
    std::string name = part.name;
    if (!parts.emplace(name, std::move(part)).second) {
      return fail(Code::kInvalidArgument, fmt::format("the form field '{}' is sent twice", name));
    }
    at = next + 2;
  }
  return parts;
}

}  // namespace kiln::serve
