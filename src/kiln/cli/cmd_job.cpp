#include <iostream>

#include "kiln/cli/output.h"
#include "kiln/cli/parse.h"
#include "kiln/job/job.h"

namespace kiln::cli {

Result<int> run_check(Context& context) {
  CLI::App app{"Validate a job file without compiling.", "check"};
  std::string file;
  bool json = false;
  app.add_option("job", file, "job file (JSON)")->required();
  app.add_flag("--json", json, "print JSON");
  if (KILN_TRY(parse_args(app, context))) return 0;

  auto job = KILN_TRY(job::load(file));
  if (json) {
    nlohmann::json out = {{"ok", true}, {"file", file}, {"units", job.inputs.size() * job.targets.size()},
                          {"output_dir", job.output_dir.string()}};
    std::cout << out.dump(2) << "\n";
  } else {
    std::cout << file << ": OK (" << job.inputs.size() << " input(s) x " << job.targets.size()
              << " target(s), output to " << job.output_dir.string() << ")\n";
  }
  return 0;
}

Result<int> run_schema(Context& context) {
  CLI::App app{"Print the JSON Schema of job files.", "schema"};
  if (KILN_TRY(parse_args(app, context))) return 0;
  std::cout << job::schema_text();
  return 0;
}

}  // namespace kiln::cli
