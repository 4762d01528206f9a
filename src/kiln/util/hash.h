// SHA-256 of bytes and files, as lowercase hex.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "kiln/util/error.h"

namespace kiln::util {

std::string sha256_hex(std::string_view bytes);
// Streams the file; never holds it whole in memory.
Result<std::string> sha256_file(const std::filesystem::path& path);

}  // namespace kiln::util
