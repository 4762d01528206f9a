// What a kiln process that died (SIGKILL, the OOM killer, a CI timeout)
// leaves behind is found and removed by the next one. Each working folder a
// process makes records its owner: the pid and the kernel's start time of
// that pid, so a recycled pid is never mistaken for the owner.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/util/error.h"

namespace kiln::util {

namespace fs = std::filesystem;

// This process as an owner: "<pid> <start time in clock ticks>".
std::string self_owner();

// Whether the owner written by self_owner() (in this or another process on
// this host) is still running.
bool owner_alive(std::string_view owner);

// Writes the owner file into `dir` (the folder's first entry).
Status mark_owner(const fs::path& dir);
// The owner file's name, for code that publishes a marked folder whole.
inline constexpr const char* kOwnerFile = ".kiln-owner";

// Removes the folders "<parent>/<prefix>*" whose owner is dead; a folder
// without an owner file is removed once it is older than `grace` (its owner
// died before it could write one, or an older kiln made it). Never touches
// a live process's folder. Returns the folders removed.
std::vector<fs::path> reap_orphans(const fs::path& parent, std::string_view prefix,
                                   std::chrono::seconds grace = std::chrono::hours(1));

}  // namespace kiln::util
