// File-system helpers: whole-file reads, atomic writes, temporary folders.
// Nothing here knows about kiln's formats.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "kiln/util/error.h"

namespace kiln::util {

namespace fs = std::filesystem;

// A regular file (not a folder, FIFO, socket or device), checked without
// opening it: kNotFound when missing, kInvalidArgument naming what it is.
Status expect_regular_file(const fs::path& path);

// Reads a whole file. Errors name the path and the failing call; anything
// but a regular file is refused without blocking.
Result<std::string> read_file(const fs::path& path);

// A read-only view of a file's bytes through mmap; empty files give an empty
// view. Movable, not copyable.
class MappedFile {
 public:
  static Result<MappedFile> open(const fs::path& path);
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  std::string_view bytes() const { return {static_cast<const char*>(data_), size_}; }

 private:
  MappedFile(void* data, size_t size) : data_(data), size_(size) {}
  void* data_ = nullptr;
  size_t size_ = 0;
};

// Writes `contents` to `path` so that readers see either the old file or the
// whole new one: a temporary file in the same folder, fsync, rename.
Status write_file_atomic(const fs::path& path, std::string_view contents);

// Moves a finished file into place (rename within one file system) and
// fsyncs the folder so the rename survives a crash.
Status publish_file(const fs::path& from, const fs::path& to);

// A uniquely named folder removed with everything in it when the object dies,
// unless keep() was called.
class TempDir {
 public:
  // Creates "<parent>/<prefix>XXXXXX".
  static Result<TempDir> create(const fs::path& parent, std::string_view prefix);
  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&& other) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();

  const fs::path& path() const { return path_; }
  void keep() { path_.clear(); }

 private:
  explicit TempDir(fs::path path) : path_(std::move(path)) {}
  fs::path path_;
};

// The folder for temporary files: $TMPDIR or /tmp.
fs::path temp_root();

}  // namespace kiln::util
