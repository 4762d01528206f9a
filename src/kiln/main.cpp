// kiln: compile StableHLO into IREE modules. main() looks up the subcommand
// and is the one place where errors become messages and exit codes.
#include <iostream>

#include "kiln/cli/commands.h"
#include "kiln/cli/output.h"
#include "kiln/util/signals.h"
#include "kiln/util/strings.h"
#include "kiln/version.h"

namespace {

void usage(std::ostream& out) {
  out << "kiln " << KILN_VERSION << ": compile StableHLO into IREE modules (IREE " << KILN_IREE_RELEASE << ")\n\n"
      << "usage: kiln <command> [options]   (kiln <command> --help for its options)\n\ncommands:\n";
  for (const auto& c : kiln::cli::commands()) {
    if (c.summary) out << "  " << c.name << std::string(11 - std::strlen(c.name), ' ') << c.summary << "\n";
  }
}

bool wants_json(const std::vector<std::string>& args) {
  for (const auto& a : args) {
    if (a == "--json") return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  kiln::util::fill_narrow_cache();
  kiln::util::install_interrupt_handlers();
  if (argc < 2) {
    usage(std::cerr);
    return 2;
  }
  std::string name = argv[1];
  if (name == "-h" || name == "--help" || name == "help") {
    usage(std::cout);
    return 0;
  }
  if (name == "--version") name = "version";
  const auto& table = kiln::cli::commands();
  auto it = std::find_if(table.begin(), table.end(), [&](const auto& c) { return name == c.name; });
  if (it == table.end()) {
    std::vector<std::string> names;
    for (const auto& c : table) {
      if (c.summary) names.push_back(c.name);
    }
    std::string near = kiln::util::nearest(name, names);
    std::cerr << "kiln: error: unknown command '" << name << "'"
              << (near.empty() ? "" : "; did you mean '" + near + "'?") << " (kiln --help lists the commands)\n";
    return 2;
  }

  kiln::cli::Context context;
  context.args.assign(argv + 2, argv + argc);
  bool json = wants_json(context.args);
  try {
    auto config = kiln::config::load();
    if (!config) {
      kiln::cli::print_error(config.error(), json);
      return kiln::exit_code(config.error().code);
    }
    auto settings = kiln::config::settings_from(*config);
    if (!settings) {
      kiln::cli::print_error(settings.error(), json);
      return kiln::exit_code(settings.error().code);
    }
    context.config = std::move(*config);
    context.settings = std::move(*settings);
    auto status = it->handler(context);
    if (!status) {
      kiln::cli::print_error(status.error(), json);
      return kiln::exit_code(status.error().code);
    }
    return *status;
  } catch (const std::exception& e) {
    kiln::cli::print_error({kiln::Code::kInternal, std::string("unexpected failure: ") + e.what()}, json);
    return kiln::exit_code(kiln::Code::kInternal);
  }
}
