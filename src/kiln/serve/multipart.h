// multipart/form-data (RFC 7578), the body of a job submission: one part per
// form field, each with a name and, for files, a filename that kiln ignores.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "kiln/util/error.h"

namespace kiln::serve {

struct Part {
  std::string name;
  std::string filename;  // as sent; never used as a path
  std::string content_type;
  std::string body;
};

// The boundary parameter of a Content-Type header, or an error.
Result<std::string> boundary_of(std::string_view content_type);

// Parts by field name; a field sent twice is an error.
Result<std::map<std::string, Part>> parse_multipart(std::string_view body, const std::string& boundary);

}  // namespace kiln::serve
