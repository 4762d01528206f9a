#include <iostream>

#include <fmt/format.h>

#include "kiln/cache/store.h"
#include "kiln/cli/cache_setting.h"
#include "kiln/cli/parse.h"
#include "kiln/util/strings.h"

namespace kiln::cli {

Result<int> run_cache(Context& context) {
  CLI::App app{"Inspect or empty the artifact cache.\n  kiln cache stats [--json]\n  kiln cache clear", "cache"};
  std::string action;
  bool json = false;
  app.add_option("action", action, "stats or clear")->required()->check(CLI::IsMember({"stats", "clear"}));
  app.add_flag("--json", json, "print JSON");
  if (KILN_TRY(parse_args(app, context))) return 0;

  auto store = KILN_TRY(open_cache_store(context.settings));
  if (action == "clear") {
    KILN_TRY_STATUS(store.clear());
    std::cout << "cleared " << store.root().string() << "\n";
    return 0;
  }
  auto st = KILN_TRY(store.stats());
  if (json) {
    std::cout << nlohmann::json{{"path", store.root().string()}, {"hits", st.hits}, {"misses", st.misses},
                                {"evictions", st.evictions}, {"corrupt_dropped", st.corrupt}, {"entries", st.entries},
                                {"bytes", st.bytes}, {"max_bytes", st.max_bytes}}
                     .dump(2)
              << "\n";
  } else {
    uint64_t lookups = st.hits + st.misses;
    std::cout << fmt::format("cache:     {}\nentries:   {}\nsize:      {} of {}\nhits:      {}{}\nmisses:    {}\n"
                             "evictions: {}\ncorrupt entries dropped: {}\n",
                             store.root().string(), st.entries, util::human_bytes(static_cast<double>(st.bytes)),
                             st.max_bytes ? util::human_bytes(static_cast<double>(st.max_bytes)) : "no limit", st.hits,
                             lookups ? fmt::format(" ({:.0f}% of lookups)", 100.0 * st.hits / lookups) : "", st.misses,
                             st.evictions, st.corrupt);
  }
  return 0;
}

}  // namespace kiln::cli
