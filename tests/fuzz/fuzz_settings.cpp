// The settings file (kiln.conf: `key = value` lines, `#` comments) and values
// as the commands parse them. The configuration starts from the defaults, as
// config::load's does, so that known keys are accepted and later lines read.
#include <cstddef>
#include <cstdint>
#include <string>

#include "kiln/config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const kiln::config::Config defaults = [] {
    kiln::config::Config c;
    for (const auto& k : kiln::config::keys()) c.set(k.name, k.default_value, "default");
    return c;
  }();
  std::string text(reinterpret_cast<const char*>(data), size);
  kiln::config::Config config = defaults;
  (void)kiln::config::apply_file(config, "fuzz.conf", text);
  (void)kiln::config::parse_duration("compile_timeout", text);
  (void)kiln::config::parse_number("jobs", text, 0, 1024);
  return 0;
}
