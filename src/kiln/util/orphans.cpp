#include "kiln/util/orphans.h"

#include <unistd.h>

#include <fstream>
#include <sstream>

#include "kiln/util/file.h"
#include "kiln/util/strings.h"

namespace kiln::util {
namespace {

// Field 22 of /proc/<pid>/stat: when the process started, in clock ticks
// since boot. The command name (field 2) may hold spaces and parentheses,
// so the fields are counted after its last ')'.
std::string start_time(const std::string& pid) {
  std::ifstream in("/proc/" + pid + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return "";
  std::istringstream fields(stat.substr(close + 1));
  std::string field;
  for (int i = 3; i <= 22 && fields >> field; ++i) {
    if (i == 22) return field;
  }
  return "";
}

}  // namespace

std::string self_owner() {
  std::string pid = std::to_string(::getpid());
  return pid + " " + start_time(pid);
}

bool owner_alive(std::string_view owner) {
  auto parts = split(trim(owner), ' ');
  if (parts.size() != 2 || parts[0].empty() || parts[0].find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  std::string now = start_time(parts[0]);
  return !now.empty() && now == parts[1];
}

Status mark_owner(const fs::path& dir) { return write_file_atomic(dir / kOwnerFile, self_owner() + "\n"); }

std::vector<fs::path> reap_orphans(const fs::path& parent, std::string_view prefix, std::chrono::seconds grace) {
  std::vector<fs::path> removed;
  std::error_code ec;
  fs::directory_iterator it(parent, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    std::error_code type_ec;
    if (!it->is_directory(type_ec) || it->is_symlink(type_ec)) continue;
    auto owner = read_file(it->path() / kOwnerFile);
    bool dead = false;
    if (owner) {
      dead = !owner_alive(*owner);
    } else {
      auto mtime = fs::last_write_time(it->path(), type_ec);
      dead = !type_ec && fs::file_time_type::clock::now() - mtime > grace;
    }
    if (!dead) continue;
    std::error_code rm_ec;
    fs::remove_all(it->path(), rm_ec);
    if (!rm_ec) removed.push_back(it->path());
  }
  return removed;
}

}  // namespace kiln::util
