// Text from outside (users, compilers) as well-formed UTF-8, for JSON and
// databases that refuse anything else.
#pragma once

#include <string>
#include <string_view>

namespace kiln::util {

// `text` with every byte that is not part of well-formed UTF-8 replaced by
// U+FFFD.
std::string to_valid_utf8(std::string_view text);

}  // namespace kiln::util
