// compile::run's cache paths with a fake executor that "compiles" by writing
// a module file: the local cache, the shared (fleet) cache over a folder
// bucket, and one compile of a key at a time. The real compiler runs these
// paths in tests/integration and tests/fleet.
#include "kiln/compile/compile.h"

#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "kiln/blob/bucket.h"
#include "kiln/cache/shared.h"
#include "kiln/mlir/scanner.h"
#include "kiln/target/target.h"
#include "kiln/util/file.h"

namespace kiln::compile {
namespace {

// Writes "module <n>" to the path after -o, counting the compiles.
class FakeCompiler final : public Executor {
 public:
  std::string name() const override { return "fake"; }
  Result<util::ProcessResult> run(const ExecRequest& request) override {
    int n = ++compiles;
    if (delay.count()) std::this_thread::sleep_for(delay);
    for (size_t i = 0; i + 1 < request.argv.size(); ++i) {
      if (request.argv[i] == "-o") KILN_TRY_STATUS(util::write_file_atomic(request.argv[i + 1], "module " + std::to_string(n)));
    }
    util::ProcessResult r;
    r.exit_status = 0;
    return r;
  }
  std::atomic<int> compiles{0};
  std::chrono::milliseconds delay{0};
};

// A key lock held in this process (what PostgreSQL's advisory locks do for a fleet).
class OneAtATime final : public cache::KeyLocks {
 public:
  Result<std::unique_ptr<Held>> hold(const std::string& key, const std::atomic<bool>* cancel) override {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !held_; });
    held_ = true;
    ++holds;
    struct Release : Held {
      explicit Release(OneAtATime* o) : o(o) {}
      ~Release() override {
        std::lock_guard<std::mutex> lock(o->mu_);
        o->held_ = false;
        o->cv_.notify_all();
      }
      OneAtATime* o;
    };
    return std::unique_ptr<Held>(new Release(this));
  }
  std::atomic<int> holds{0};

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool held_ = false;
};

class CompileRun : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<util::TempDir>(*util::TempDir::create(util::temp_root(), "kiln-run-test-"));
    input_ = dir_->path() / "m.mlir";
    ASSERT_TRUE(util::write_file_atomic(input_, "func.func @main(%a: tensor<4xf32>) -> tensor<4xf32> {\n"
                                                "  return %a : tensor<4xf32>\n}\n"));
    module_ = mlir::scan_text(*util::read_file(input_))->info;
    tools_.compile = "/fake/iree-compile";
    tools_.release = "3.13.0";
    auto bucket = blob::open((dir_->path() / "bucket").string());
    ASSERT_TRUE(bucket);
    bucket_ = std::move(*bucket);
  }
  Result<Outcome> compile(const std::string& out, CacheUse cache) {
    std::filesystem::create_directories(dir_->path() / out);
    return run({input_, "m", *target::resolve("cpu"), dir_->path() / out}, Options{}, module_, tools_, compiler_, cache);
  }
  Result<cache::Store> local(const std::string& name) { return cache::Store::open(dir_->path() / name, 0); }

  std::unique_ptr<util::TempDir> dir_;
  std::filesystem::path input_;
  mlir::ModuleInfo module_;
  toolchain::Toolchain tools_;
  FakeCompiler compiler_;
  std::unique_ptr<blob::Bucket> bucket_;
};

TEST_F(CompileRun, ASecondHostFindsTheModuleInTheSharedCache) {
  cache::Shared shared(*bucket_);
  auto host_a = local("cache-a");
  auto host_b = local("cache-b");
  ASSERT_TRUE(host_a && host_b);
  auto first = compile("a", {&*host_a, false, &shared, nullptr});
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_FALSE(first->cache_hit);
  auto second = compile("b", {&*host_b, false, &shared, nullptr});
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_TRUE(second->cache_hit);
  EXPECT_EQ(second->cache_source, "shared");
  EXPECT_EQ(compiler_.compiles.load(), 1);
  EXPECT_EQ(*util::read_file(second->module_path), "module 1");
  // Now in host B's own cache too.
  auto third = compile("c", {&*host_b, false, &shared, nullptr});
  ASSERT_TRUE(third);
  EXPECT_EQ(third->cache_source, "local");
}

TEST_F(CompileRun, AnUnreadableSharedCacheCostsTheShortcutNotTheResult) {
  auto broken = blob::open("s3://kiln-test/x", blob::S3Settings{"http://127.0.0.1:9", "us-east-1", "k", "s", ""});
  ASSERT_TRUE(broken);
  cache::Shared shared(**broken);
  auto r = compile("a", {nullptr, false, &shared, nullptr});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(r->cache_hit);
  EXPECT_NE(r->warning.find("shared cache"), std::string::npos) << r->warning;
}

TEST_F(CompileRun, TwoCompilesOfOneKeyAtOnceCompileOnce) {
  cache::Shared shared(*bucket_);
  OneAtATime locks;
  compiler_.delay = std::chrono::milliseconds(300);
  Result<Outcome> a = fail(Code::kInternal, "not run"), b = fail(Code::kInternal, "not run");
  std::thread ta([&] { a = compile("a", {nullptr, false, &shared, &locks}); });
  std::thread tb([&] { b = compile("b", {nullptr, false, &shared, &locks}); });
  ta.join();
  tb.join();
  ASSERT_TRUE(a && b);
  EXPECT_EQ(compiler_.compiles.load(), 1) << "the second waited for the first and took its module";
  EXPECT_NE(a->cache_hit, b->cache_hit);
  EXPECT_EQ(locks.holds.load(), 2);
}

}  // namespace
}  // namespace kiln::compile
