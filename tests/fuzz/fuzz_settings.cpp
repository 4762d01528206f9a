// The settings file (kiln.conf: `key = value` lines, `#` comments) and values
// as the commands parse them.
#include <cstddef>
#include <cstdint>
#include <string>

#include "kiln/config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  kiln::config::Config config;
  (void)kiln::config::apply_file(config, "fuzz.conf", text);
  (void)kiln::config::parse_duration("compile_timeout", text);
  (void)kiln::config::parse_number("jobs", text, 0, 1024);
  return 0;
}
