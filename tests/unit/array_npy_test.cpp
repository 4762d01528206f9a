#include "kiln/array/npy.h"

#include <gtest/gtest.h>

#include "kiln/array/random.h"
#include "kiln/util/file.h"

namespace kiln::array {

const char* kTypes[] = {"i1", "i8", "ui8", "i16", "ui16", "i32", "ui32", "i64", "ui64", "f16", "bf16", "f32",
                        "f64", "f8E4M3FN", "f8E5M2", "complex<f32>", "complex<f64>"};

TEST(Npy, EveryElementTypeRoundTrips) {
  for (const char* element : kTypes) {
    Array a = random_array(element, {2, 3}, 5);
    auto back = parse_npy(serialize_npy(a));
    ASSERT_TRUE(back) << element << ": " << back.error().message;
    // bf16 and f8 come back as raw bytes, typed by the reader's signature.
    ASSERT_TRUE(reinterpret(*back, element, "value"));
    EXPECT_EQ(back->element, element);
    EXPECT_EQ(back->shape, a.shape);
    EXPECT_EQ(back->data, a.data) << element;
  }
}

TEST(Npy, HeaderIsPaddedAndScalarsAndVectorsAreWritten) {
  Array s = random_array("f32", {}, 1);
  std::string bytes = serialize_npy(s);
  EXPECT_EQ((bytes.size() - 4) % 64, 0u);
  EXPECT_NE(bytes.find("'shape': ()"), std::string::npos);
  EXPECT_NE(serialize_npy(random_array("f32", {5}, 1)).find("'shape': (5,)"), std::string::npos);
}

TEST(Npy, FortranOrderIsReadAsCOrder) {
  // 2x3 int32 matrix [[0,1,2],[3,4,5]] stored column-major: 0 3 1 4 2 5.
  std::string header = "{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3), }";
  header.append((64 - (10 + header.size() + 1) % 64) % 64, ' ');
  header += '\n';
  std::string bytes = std::string("\x93NUMPY\x01\x00", 8) + static_cast<char>(header.size()) + '\0' + header;
  for (int32_t v : {0, 3, 1, 4, 2, 5}) bytes.append(reinterpret_cast<const char*>(&v), 4);
  auto a = parse_npy(bytes);
  ASSERT_TRUE(a) << a.error().message;
  for (int i = 0; i < 6; ++i) EXPECT_EQ(element_value(*a, i), i);
}

TEST(Npy, CorruptFilesGiveClearErrors) {
  EXPECT_NE(parse_npy("hello").error().message.find("not a .npy file"), std::string::npos);
  std::string good = serialize_npy(random_array("f32", {4}, 1));
  EXPECT_NE(parse_npy(good.substr(0, good.size() - 3)).error().message.find("truncated or corrupt"), std::string::npos);
  EXPECT_NE(parse_npy(good.substr(0, 20)).error().message.find("truncated"), std::string::npos);
  std::string object = good;
  object.replace(object.find("<f4"), 3, "|O8");
  EXPECT_NE(parse_npy(object).error().message.find("not supported"), std::string::npos);
}

TEST(Npy, ReinterpretRefusesWrongTypes) {
  Array a = random_array("f32", {2}, 1);
  auto st = reinterpret(a, "i32", "input 0 (x)");
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("input 0 (x) has element type f32, but the module expects i32"), std::string::npos);
}

TEST(Npz, WrittenArchivesReadBack) {
  auto dir = util::TempDir::create(util::temp_root(), "kiln-npz-");
  ASSERT_TRUE(dir);
  std::vector<std::pair<std::string, Array>> members = {{"x", random_array("f32", {3, 2}, 1)},
                                                       {"flags", random_array("i1", {7}, 2)}};
  ASSERT_TRUE(write_npz(dir->path() / "a.npz", members));
  auto back = read_npz(dir->path() / "a.npz");
  ASSERT_TRUE(back) << back.error().message;
  ASSERT_EQ(back->size(), 2u);
  EXPECT_EQ((*back)[0].first, "x");
  EXPECT_EQ((*back)[1].second.data, members[1].second.data);
}

TEST(Npz, BytesInMemoryReadAsTheFileDoes) {
  auto dir = util::TempDir::create(util::temp_root(), "kiln-npz-");
  ASSERT_TRUE(dir);
  ASSERT_TRUE(write_npz(dir->path() / "a.npz", {{"x", random_array("f32", {3, 2}, 1)}}));
  auto from_file = read_npz(dir->path() / "a.npz");
  auto from_bytes = parse_npz(*util::read_file(dir->path() / "a.npz"), "a.npz");
  ASSERT_TRUE(from_file && from_bytes);
  ASSERT_EQ(from_bytes->size(), 1u);
  EXPECT_EQ((*from_bytes)[0].first, "x");
  EXPECT_EQ((*from_bytes)[0].second.data, (*from_file)[0].second.data);
  auto bad = parse_npz("not a zip", "upload.npz");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message.rfind("upload.npz: not a .npz", 0), 0u) << bad.error().message;
}

TEST(Npz, NotAZipIsAnError) {
  auto dir = util::TempDir::create(util::temp_root(), "kiln-npz-");
  ASSERT_TRUE(util::write_file_atomic(dir->path() / "bad.npz", "not a zip at all, just text"));
  auto r = read_npz(dir->path() / "bad.npz");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("not a .npz"), std::string::npos);
}

TEST(Npy, HugeOrOddHeadersAreClearErrorsNotCrashes) {
  // A 300 KB 'descr' (a backtracking regex overflowed the stack on it).
  auto npy = [](const std::string& header) {
    std::string out = "\x93NUMPY";
    out += '\x02';
    out += '\x00';
    uint32_t n = static_cast<uint32_t>(header.size());
    out.append(reinterpret_cast<const char*>(&n), 4);
    return out + header;
  };
  auto big = parse_npy(npy("{'descr': '" + std::string(300000, 'f') + "', 'fortran_order': False, 'shape': (1,), }"));
  ASSERT_FALSE(big);
  EXPECT_NE(big.error().message.find("not supported"), std::string::npos) << big.error().message;
  auto huge = parse_npy(npy(std::string(2 << 20, ' ')));
  ASSERT_FALSE(huge);
  EXPECT_NE(huge.error().message.find("kiln reads headers of up to"), std::string::npos) << huge.error().message;
  EXPECT_FALSE(parse_npy(npy("{'descr': '<f4', 'shape': (2,), }")));                     // no fortran_order
  EXPECT_FALSE(parse_npy(npy("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,)}")));
  EXPECT_FALSE(parse_npy(npy("{'descr' '<f4', 'fortran_order': False, 'shape': (2,)}")));  // no colon
  auto ok = parse_npy(npy("{'descr':'<f4','fortran_order':False,'shape':(2,)}") + std::string(8, '\0'));
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->shape, (std::vector<int64_t>{2}));
}

}  // namespace kiln::array
