#include "kiln/cache/key.h"

#include <gtest/gtest.h>

namespace kiln::cache {

KeyParts base() { return {"aa", {"--iree-hal-target-device=local", "--x=1"}, "cpu-host", "3.13.0", "3.13.0rc1", "abc"}; }

TEST(CacheKey, SamePartsSameKey) { EXPECT_EQ(key_of(base()), key_of(base())); }

TEST(CacheKey, EveryPartChangesTheKey) {
  std::string k = key_of(base());
  KeyParts p = base();
  p.input_sha256 = "ab";
  EXPECT_NE(key_of(p), k);
  p = base();
  p.flags.push_back("--iree-opt-level=O3");
  EXPECT_NE(key_of(p), k);
  p = base();
  p.target = "cuda-sm_80";
  EXPECT_NE(key_of(p), k);
  p = base();
  p.iree_revision = "abd";
  EXPECT_NE(key_of(p), k);
  p = base();
  p.iree_build = "3.13.0rc2";
  EXPECT_NE(key_of(p), k);
}

TEST(CacheKey, PartsCannotRunTogether) {
  KeyParts a = base(), b = base();
  a.flags = {"--a", "--b"};
  b.flags = {"--a--b"};
  EXPECT_NE(key_of(a), key_of(b));
  a = base();
  b = base();
  a.flags = {};
  a.target = "x--y";
  b.flags = {"x"};
  b.target = "--y";
  EXPECT_NE(key_of(a), key_of(b));
  a = base();
  b = base();
  a.input_sha256 = "aab";
  a.target = "c";
  b.input_sha256 = "aa";
  b.target = "bc";
  EXPECT_NE(key_of(a), key_of(b));
}

TEST(CacheKey, FlagsAreNormalized) {
  EXPECT_EQ(normalize_flags({" --a=1 ", "--b", "2", "-o", "/tmp/x.vmfb", "--c", "--output=y"}),
            (std::vector<std::string>{"--a=1", "--b=2", "--c"}));
}

TEST(CacheKey, DifferingPartsAreNamed) {
  KeyParts a = base(), b = base();
  b.flags = {};
  b.iree_revision = "zzz";
  EXPECT_EQ(differing_parts(a, b), (std::vector<std::string>{"flags", "iree"}));
  EXPECT_EQ(parts_from_json(to_json(a)).flags, a.flags);
}

}  // namespace kiln::cache
