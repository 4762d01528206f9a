#include <sys/mount.h>
#include <sys/stat.h>

#include <fstream>

#include "harness.h"
#include "kiln/util/hash.h"
#include "kiln/util/strings.h"

namespace kiln::testing {
namespace {

class Cache : public KilnTest {
 protected:
  nlohmann::json stats() { return kiln({"cache", "stats", "--json"}).json(); }
  Outcome compile(const std::vector<std::string>& extra, const std::vector<std::string>& env = {}) {
    std::vector<std::string> args = {"compile", "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    return kiln(args, env);
  }
  static bool hit(const Outcome& r) { return r.json()["units"][0]["cache_hit"].get<bool>(); }
};

TEST_F(Cache, HitsAndMissesAcrossFlagTargetInputAndToolchainChanges) {
  std::string mlp = model("mlp.mlir").string();
  Outcome first = compile({mlp, "-t", "cpu", "-o", "a"});
  ASSERT_EQ(first.status, 0) << first.err;
  EXPECT_FALSE(hit(first));
  Outcome again = compile({mlp, "-t", "cpu", "-o", "b"});
  EXPECT_TRUE(hit(again));
  EXPECT_EQ(*util::read_file(dir() / "a/mlp.cpu-host.vmfb"), *util::read_file(dir() / "b/mlp.cpu-host.vmfb"));
  EXPECT_FALSE(hit(compile({mlp, "-t", "cpu", "-o", "c", "-O", "O1"}))) << "a flag changed";
  EXPECT_TRUE(hit(compile({mlp, "-t", "cpu", "-o", "c2", "-O", "O1"})));
  EXPECT_TRUE(hit(compile({mlp, "-t", "cpu", "-o", "c3", "-O1"}))) << "-O1 is -O O1";
  EXPECT_FALSE(hit(compile({mlp, "-t", "cpu:x86_64", "-o", "d"}))) << "the target changed";
  std::string text = *util::read_file(model("mlp.mlir"));
  write("mlp.mlir", text + "\n// edited\n");
  EXPECT_FALSE(hit(compile({"mlp.mlir", "-t", "cpu", "-o", "e"}))) << "the input bytes changed";
  auto s = stats();
  EXPECT_EQ(s["hits"], 3);
  EXPECT_EQ(s["misses"], 4);
  EXPECT_EQ(s["entries"], 4);

  // Another build of the compiler (same release, other revision): a fake
  // compiler that writes a module of its own.
  fs::path tools = dir() / "other-iree";
  write("other-iree/iree-compile",
        "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'IREE compiler version 3.13.0rc20261120 @ feedbeef'; exit 0; fi\n"
        "while [ $# -gt 1 ]; do [ \"$1\" = -o ] && printf 'other' > \"$2\"; shift; done\n");
  ::chmod((tools / "iree-compile").c_str(), 0755);
  Outcome other = kiln({"compile", mlp, "-t", "cpu", "-o", "f", "--explain-cache"}, {"KILN_IREE_DIR=" + tools.string()});
  ASSERT_EQ(other.status, 0) << other.err;
  EXPECT_NE(other.err.find("cache miss: the nearest entry differs in iree"), std::string::npos) << other.err;
  EXPECT_EQ(*util::read_file(dir() / "f/mlp.cpu-host.vmfb"), "other");
}

TEST_F(Cache, ExplainSaysWhichFlagsDiffer) {
  std::string conv = model("conv.mlir").string();
  ASSERT_EQ(kiln({"compile", conv, "-t", "cpu", "-o", "a"}).status, 0);
  Outcome r = kiln({"compile", conv, "-t", "cpu", "-o", "b", "--explain-cache", "--", "--iree-opt-const-eval=false"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("differs in flags"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("flags only now: --iree-opt-const-eval=false"), std::string::npos) << r.err;
}

TEST_F(Cache, NoCacheNeitherReadsNorWrites) {
  std::string mlp = model("mlp.mlir").string();
  ASSERT_EQ(compile({mlp, "-t", "cpu", "-o", "a", "--no-cache"}).status, 0);
  EXPECT_EQ(stats()["entries"], 0);
  ASSERT_EQ(compile({mlp, "-t", "cpu", "-o", "b"}).status, 0);
  EXPECT_FALSE(hit(compile({mlp, "-t", "cpu", "-o", "c", "--no-cache"})));
  auto s = stats();
  EXPECT_EQ(s["hits"].get<int>() + s["misses"].get<int>(), 1) << "--no-cache does no lookups";
}

TEST_F(Cache, ConcurrentProcessesShareOneCache) {
  // Four processes compile the same two units into one cache at once.
  std::string script;
  for (int i = 0; i < 4; ++i) {
    std::string n = std::to_string(i);
    script += "(KILN_CACHE_DIR=cache " + std::string(KILN_BINARY) + " compile " + model("conv.mlir").string() +
              " -t cpu -t cuda:a100 -j 2 -o out" + n + " >/dev/null 2>err" + n + "; echo $? > status" + n + ") & ";
  }
  script += "wait; ";
  for (int i = 0; i < 4; ++i) script += "cat status" + std::to_string(i) + "; ";
  Outcome r = run({"/bin/sh", "-c", script});
  EXPECT_EQ(r.out, "0\n0\n0\n0\n") << r.out << r.err;
  auto s = stats();
  EXPECT_EQ(s["hits"].get<int>() + s["misses"].get<int>(), 8);
  EXPECT_EQ(s["entries"], 2) << "one entry per (input, target), however many processes raced";
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(*util::read_file(dir() / ("out" + std::to_string(i)) / "conv.cpu-host.vmfb"),
              *util::read_file(dir() / "out0/conv.cpu-host.vmfb"));
  }
  EXPECT_TRUE(listing(dir() / "cache/v1/tmp").empty()) << "no half-written entries left";
}

TEST_F(Cache, CorruptEntryIsDetectedDroppedAndRebuilt) {
  std::string mlp = model("mlp.mlir").string();
  ASSERT_EQ(compile({mlp, "-t", "cpu", "-o", "a"}).status, 0);
  fs::path shard;
  for (const auto& s : fs::directory_iterator(dir() / "cache/v1/entries")) shard = s.path();
  fs::path entry = fs::directory_iterator(shard)->path();
  {
    std::fstream f(entry / "module.vmfb", std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(100);
    f.put('\x42');
  }
  Outcome r = compile({mlp, "-t", "cpu", "-o", "b"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_FALSE(hit(r)) << "a corrupt entry is never served";
  EXPECT_EQ(*util::read_file(dir() / "a/mlp.cpu-host.vmfb"), *util::read_file(dir() / "b/mlp.cpu-host.vmfb"));
  EXPECT_EQ(stats()["corrupt_dropped"], 1);
  EXPECT_TRUE(hit(compile({mlp, "-t", "cpu", "-o", "c"}))) << "rebuilt and cached again";
}

TEST_F(Cache, DamagedMetadataInAnEntryIsAMissNotACrash) {
  // An entry whose module is intact but whose metadata is not a record
  // (here `{}`) used to end the compile in std::terminate (exit 134).
  std::string mlp = model("mlp.mlir").string();
  ASSERT_EQ(compile({mlp, "-t", "cpu", "-o", "a"}).status, 0);
  fs::path shard;
  for (const auto& s : fs::directory_iterator(dir() / "cache/v1/entries")) shard = s.path();
  fs::path entry = fs::directory_iterator(shard)->path();
  write(entry / "metadata.json", "{}");
  Outcome r = compile({mlp, "-t", "cpu", "-o", "b"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto unit = r.json()["units"][0];
  EXPECT_FALSE(unit["cache_hit"].get<bool>());
  EXPECT_NE(unit.value("warning", "").find("not kiln module metadata"), std::string::npos) << unit.dump();
  EXPECT_EQ(stats()["corrupt_dropped"], 1);
  EXPECT_TRUE(hit(compile({mlp, "-t", "cpu", "-o", "c"}))) << "rebuilt and cached again";
  // The same damage in a module's own metadata file: a clear error, exit 2.
  write(dir() / "c/mlp.cpu-host.json", R"({"format": "kiln-module-metadata", "format_version": 1, "iree": []})");
  Outcome run = kiln({"run", (dir() / "c/mlp.cpu-host.vmfb").string()});
  EXPECT_EQ(run.status, 2) << run.err;
  EXPECT_NE(run.err.find(".iree is not an object"), std::string::npos) << run.err;
}

TEST_F(Cache, FullDisks) {
  fs::create_directories(dir() / "small");
  if (::mount("tmpfs", (dir() / "small").c_str(), "tmpfs", 0, "size=16k") != 0) {
    GTEST_SKIP() << "cannot mount a small tmpfs here (" << std::strerror(errno) << "); needs root";
  }
  struct Unmount {
    fs::path p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{dir() / "small"};
  std::string mlp = model("mlp.mlir").string();
  // A cache on a full disk: the compile succeeds, says the module was not
  // cached, and the cache is left consistent.
  Outcome r = kiln({"compile", mlp, "-t", "cpu", "-o", "out"}, {"KILN_CACHE_DIR=" + (dir() / "small/cache").string()});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("warning"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("not cached"), std::string::npos) << r.err;
  EXPECT_TRUE(listing(dir() / "small/cache/v1/entries").empty());
  EXPECT_TRUE(listing(dir() / "small/cache/v1/tmp").empty());
  Outcome st = kiln({"cache", "stats", "--json"}, {"KILN_CACHE_DIR=" + (dir() / "small/cache").string()});
  EXPECT_EQ(st.status, 0) << st.err;
  // An output folder on a full disk: a clear error, nothing half written.
  Outcome full = kiln({"compile", model("attention.mlir").string(), "-t", "cuda:a100", "-o", "small/out", "--no-cache"});
  EXPECT_EQ(full.status, 7) << full.err;
  EXPECT_NE(full.err.find("No space left on device"), std::string::npos) << full.err;
  EXPECT_TRUE(listing(dir() / "small/out").empty()) << "nothing half written";
}

TEST_F(Cache, MatrixKeepsGoingAndWritesTheManifestLast) {
  write("bad.mlir", "module {\n  func.func @main(%a: tensor<2xf32>) -> tensor<2xi8> {\n    return %a : tensor<2xf32>\n  }\n}\n");
  Outcome r = kiln({"compile", model("mlp.mlir").string(), "bad.mlir", model("conv.mlir").string(), "-t", "cpu", "-t",
                    "cuda:a100", "-o", "out", "-j", "2"});
  EXPECT_EQ(r.status, 5) << r.err;
  auto manifest = nlohmann::json::parse(*util::read_file(dir() / "out/manifest.json"));
  EXPECT_EQ(manifest["format"], "kiln-manifest");
  EXPECT_EQ(manifest["artifacts"].size(), 4u);
  EXPECT_EQ(manifest["failures"].size(), 2u);
  for (const auto& a : manifest["artifacts"]) {
    EXPECT_EQ(a["sha256"], *util::sha256_file(dir() / "out" / a["module"].get<std::string>()));
    EXPECT_TRUE(fs::exists(dir() / "out" / a["metadata"].get<std::string>()));
  }
  // Not on a terminal: timestamped lines; a summary table on stdout.
  EXPECT_NE(r.err.find("Z] start   mlp -> cpu"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Z] failed bad -> cuda:a100"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("FAILED"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("built"), std::string::npos) << r.out;
}

TEST_F(Cache, TerminalShowsALiveDisplay) {
  std::string command = std::string(KILN_BINARY) + " compile " + model("mlp.mlir").string() + " " +
                        model("conv.mlir").string() + " -t cpu -o out";
  Outcome r = run({"/usr/bin/script", "-q", "-e", "-c", command, "/dev/null"});
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("\x1b["), std::string::npos) << "cursor movement expected on a terminal";
  EXPECT_NE(r.out.find("] 2/2 done"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("Z] start"), std::string::npos) << "no log lines on a terminal";
}

TEST_F(Cache, ClearEmptiesTheCache) {
  ASSERT_EQ(compile({model("mlp.mlir").string(), "-t", "cpu", "-o", "a"}).status, 0);
  ASSERT_EQ(kiln({"cache", "clear"}).status, 0);
  EXPECT_EQ(stats()["entries"], 0);
  Outcome human = kiln({"cache", "stats"});
  EXPECT_NE(human.out.find("entries:   0"), std::string::npos) << human.out;
}

TEST_F(Cache, ACacheThatCannotBeReadCostsTheShortcutNotTheResult) {
  ASSERT_EQ(kiln({"compile", model("mlp.mlir").string(), "-t", "cpu", "-o", "first"}).status, 0);
  // The statistics file cannot be replaced (as on a full or broken disk).
  fs::remove(dir() / "cache/v1/stats.json");
  fs::create_directories(dir() / "cache/v1/stats.json");
  Outcome r = kiln({"compile", model("mlp.mlir").string(), "-t", "cpu", "-o", "second"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("warning"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::exists(dir() / "second/mlp.cpu-host.vmfb"));
}

}  // namespace
}  // namespace kiln::testing
