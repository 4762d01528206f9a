// Wall-clock time as kiln writes it in records and logs.
#pragma once

#include <string>

namespace kiln::util {

// The current UTC time in ISO 8601: "2026-11-24T01:20:00Z".
std::string utc_timestamp();

}  // namespace kiln::util
