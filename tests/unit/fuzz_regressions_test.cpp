// Every input a fuzz target found a crash with (tests/fuzz/regressions/):
// each must now be a clear error. The fuzz build (ASan + UBSan) replays
// them too, as seeds of its corpus.
#include <gtest/gtest.h>

#include "kiln/array/npy.h"
#include "kiln/job/job.h"
#include "kiln/util/file.h"

namespace kiln {
namespace {

const std::filesystem::path kDir = std::filesystem::path(KILN_SOURCE_DIR) / "tests/fuzz/regressions";

TEST(FuzzRegressions, NpyWhoseShapeOverflowsAnInteger) {
  // shape (4, 9, 0x89..., 779, ...): the element count overflowed int64.
  auto bytes = util::read_file(kDir / "npy-shape-overflow.npy");
  ASSERT_TRUE(bytes);
  auto parsed = array::parse_npy(*bytes);
  ASSERT_FALSE(parsed);
  EXPECT_NE(parsed.error().message.find("more elements than the file has bytes"), std::string::npos)
      << parsed.error().message;
}

TEST(FuzzRegressions, NpzWhoseDirectoryEntryRunsPastTheEnd) {
  // A central-directory entry whose name and extra field end past the
  // archive, with a zip64 size field: read out of bounds before.
  auto parsed = array::read_npz(kDir / "npz-entry-past-end.npz");
  ASSERT_FALSE(parsed);
  EXPECT_NE(parsed.error().message.find("corrupt"), std::string::npos) << parsed.error().message;
}

}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

TEST(FuzzRegressions, JobFileWithANumberTooLargeToHold) {
  // "6e5555u": nlohmann throws out_of_range, not parse_error; it escaped
  // the job loader (kiln check exited 70, "unexpected failure").
  auto loaded = job::load(kDir / "job-number-overflow.json");
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code, Code::kInvalidArgument);
  EXPECT_NE(loaded.error().message.find("not valid JSON: number overflow"), std::string::npos) << loaded.error().message;
}

}  // namespace
}  // namespace kiln
