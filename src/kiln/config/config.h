// kiln's settings. One table maps each key to its default, environment
// variable and documentation; values are applied in this order, later wins:
//   built-in default < config file < environment < command line.
// The file is `$KILN_CONFIG`, else `$XDG_CONFIG_HOME/kiln/kiln.conf`
// (`~/.config/kiln/kiln.conf`), with `key = value` lines and `#` comments.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "kiln/util/error.h"

namespace kiln::config {

struct Key {
  const char* name;
  const char* env;
  const char* default_value;
  const char* doc;
};

// The table: every setting kiln reads.
const std::vector<Key>& keys();

struct Config {
  std::map<std::string, std::string> values;   // every key has a value
  std::map<std::string, std::string> origins;  // "default", "file <path>:<line>", "env KILN_X", "command line"

  const std::string& get(const std::string& key) const;
  // Sets a value from the command line (later layers win).
  void set(const std::string& key, const std::string& value, const std::string& origin);
};

// Builds the configuration from defaults, the file and the environment.
// Unknown keys and malformed lines in the file are errors naming the file
// and line, with a suggestion.
Result<Config> load();

// Reads one config file into `config` (used by load() and by tests).
Status apply_file(Config& config, const std::string& path, const std::string& text);

// A number in [min, max] from a setting or flag; the error names `key`.
Result<double> parse_number(const std::string& key, const std::string& text, double min, double max);

// A positive number of seconds from a setting such as "600" or "10m".
Result<double> parse_duration(const std::string& key, const std::string& text);

}  // namespace kiln::config
