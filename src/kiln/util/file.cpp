#include "kiln/util/file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <vector>

namespace kiln::util {
namespace {

std::string describe(const fs::path& path, const char* call, int err) {
  return path.string() + ": " + errno_text(call, err);
}

Code code_for_errno(int err) {
  switch (err) {
    case ENOENT: case ENOTDIR: return Code::kNotFound;
    case ENOSPC: case EDQUOT: case EFBIG: return Code::kResourceExhausted;
    case EACCES: case EPERM: case EROFS: case EISDIR: return Code::kFailedPrecondition;
    default: return Code::kInternal;
  }
}

tl::unexpected<Error> fail_errno(const fs::path& path, const char* call) {
  int err = errno;
  return fail(code_for_errno(err), describe(path, call, err));
}

Status write_all(int fd, const fs::path& path, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno(path, "write");
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

Status fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return fail_errno(dir, "open");
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return fail(code_for_errno(err), describe(dir, "fsync", err));
  return {};
}

}  // namespace

Result<std::string> read_file(const fs::path& path) {
  auto mapped = KILN_TRY(MappedFile::open(path));
  return std::string(mapped.bytes());
}

namespace {

const char* kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a folder";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "not a regular file";
}

Error not_regular(const fs::path& path, mode_t mode) {
  return Error{Code::kInvalidArgument, path.string() + ": is " + kind_of(mode) + ", not a regular file; give a file"};
}

}  // namespace

Status expect_regular_file(const fs::path& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return fail(Code::kNotFound, path.string() + ": no such file");
    return fail_errno(path, "stat");
  }
  if (!S_ISREG(st.st_mode)) return tl::unexpected(not_regular(path, st.st_mode));
  return {};
}

Result<MappedFile> MappedFile::open(const fs::path& path) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; anything but a
  // regular file is refused right after.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return fail_errno(path, "open");
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    auto error = fail_errno(path, "fstat");
    ::close(fd);
    return error;
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return tl::unexpected(not_regular(path, st.st_mode));
  }
  if (st.st_size == 0) {
    ::close(fd);
    return MappedFile(nullptr, 0);
  }
  void* data = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
  int err = errno;
  ::close(fd);
  if (data == MAP_FAILED) return fail(code_for_errno(err), describe(path, "mmap", err));
  ::madvise(data, static_cast<size_t>(st.st_size), MADV_SEQUENTIAL);
  return MappedFile(data, static_cast<size_t>(st.st_size));
}

MappedFile::MappedFile(MappedFile&& other) noexcept : data_(other.data_), size_(other.size_) {
  other.data_ = nullptr;
  other.size_ = 0;
}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    if (data_) ::munmap(data_, size_);
    data_ = other.data_;
    size_ = other.size_;
    other.data_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(data_, size_);
}

Status write_file_atomic(const fs::path& path, std::string_view contents) {
  fs::path dir = path.parent_path();
  std::string tmpl = (dir / ("." + path.filename().string() + ".tmp.XXXXXX")).string();
  std::vector<char> name(tmpl.begin(), tmpl.end());
  name.push_back('\0');
  int fd = ::mkstemp(name.data());
  if (fd < 0) return fail_errno(dir.empty() ? fs::path(".") : dir, "mkstemp");
  fs::path tmp(name.data());
  auto cleanup = [&] { ::unlink(tmp.c_str()); };
  if (auto st = write_all(fd, tmp, contents); !st) {
    ::close(fd);
    cleanup();
    return st;
  }
  // mkstemp creates 0600; artifacts are ordinary files.
  ::fchmod(fd, 0644);
  if (::fsync(fd) != 0) {
    auto error = fail_errno(tmp, "fsync");
    ::close(fd);
    cleanup();
    return error;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    auto error = fail_errno(path, "rename");
    cleanup();
    return error;
  }
  return fsync_dir(dir);
}

Status publish_file(const fs::path& from, const fs::path& to) {
  int fd = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail_errno(from, "open");
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return fail_errno(from, "fsync");
  if (::rename(from.c_str(), to.c_str()) != 0) return fail_errno(to, "rename");
  return fsync_dir(to.parent_path());
}

Result<TempDir> TempDir::create(const fs::path& parent, std::string_view prefix) {
  std::string tmpl = (parent / (std::string(prefix) + "XXXXXX")).string();
  std::vector<char> name(tmpl.begin(), tmpl.end());
  name.push_back('\0');
  if (::mkdtemp(name.data()) == nullptr) return fail_errno(parent, "mkdtemp");
  return TempDir(fs::path(name.data()));
}

TempDir::TempDir(TempDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }

TempDir& TempDir::operator=(TempDir&& other) noexcept {
  if (this != &other) {
    if (!path_.empty()) {
      std::error_code ec;
      fs::remove_all(path_, ec);
    }
    path_ = std::move(other.path_);
    other.path_.clear();
  }
  return *this;
}

TempDir::~TempDir() {
  if (!path_.empty()) {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
}

fs::path temp_root() {
  const char* dir = std::getenv("TMPDIR");
  return (dir && *dir) ? fs::path(dir) : fs::path("/tmp");
}

}  // namespace kiln::util
