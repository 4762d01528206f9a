#include <iostream>

#include <fmt/format.h>

#include "kiln/cli/parse.h"
#include "kiln/target/target.h"
#include "kiln/toolchain/toolchain.h"
#include "kiln/util/strings.h"
#include "kiln/util/subprocess.h"

namespace kiln::cli {

Result<int> run_targets(Context& context) {
  CLI::App app{"List the compile targets of the pinned IREE release.", "targets"};
  bool json = false;
  app.add_flag("--json", json, "print JSON");
  if (KILN_TRY(parse_args(app, context))) return 0;

  // Ask the installed compiler which backends it was built with, so the list
  // says what this installation can do, not only what the release could.
  std::vector<std::string> backends;
  if (auto tools = toolchain::find(context.config); tools && !tools->compile.empty()) {
    auto run = util::run_process({.argv = {tools->compile.string(), "--iree-hal-list-target-backends"},
                                  .timeout = std::chrono::seconds(60)});
    if (run && run->ok()) {
      for (const auto& line : util::split(run->out, '\n')) {
        auto name = util::trim(line);
        if (!name.empty() && name.find(' ') == std::string_view::npos && name.back() != ':') backends.emplace_back(name);
      }
    }
  }
  auto available = [&](const std::string& backend) {
    return backends.empty() || std::find(backends.begin(), backends.end(), backend) != backends.end();
  };

  auto families = target::supported_targets();
  if (json) {
    nlohmann::json out = {{"iree_release", toolchain::pinned_release()}, {"families", nlohmann::json::array()}};
    for (const auto& f : families) {
      out["families"].push_back({{"syntax", f.syntax}, {"backend", f.backend}, {"choices", f.choices},
                                 {"note", f.note}, {"available", available(f.backend)}});
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::cout << "Targets of IREE " << toolchain::pinned_release() << ":\n";
  for (const auto& f : families) {
    std::cout << fmt::format("\n  {}   (backend {}{})\n", f.syntax, f.backend,
                             available(f.backend) ? "" : ", NOT in this installation's compiler");
    std::cout << "    " << util::join(f.choices, ", ") << "\n";
    if (!f.note.empty()) std::cout << "    note: " << f.note << "\n";
  }
  return 0;
}

}  // namespace kiln::cli
