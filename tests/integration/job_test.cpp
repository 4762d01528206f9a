#include "harness.h"

namespace kiln::testing {
namespace {

class Job : public KilnTest {};

TEST_F(Job, CheckThenCompileAJobFile) {
  fs::create_directories(dir() / "models");
  fs::copy_file(model("mlp.mlir"), dir() / "models/mlp.mlir");
  fs::copy_file(model("conv.vhlo.mlirbc"), dir() / "models/conv.vhlo.mlirbc");
  write("jobs/job.json", R"({"version": 1,
    "inputs": ["../models/mlp.mlir", {"path": "../models/conv.vhlo.mlirbc", "name": "convnet"}],
    "targets": ["cpu", "cuda:a100"], "options": {"opt_level": "O2"}, "output_dir": "../artifacts"})");
  Outcome check = kiln({"check", "jobs/job.json"});
  ASSERT_EQ(check.status, 0) << check.err;
  EXPECT_NE(check.out.find("OK (2 input(s) x 2 target(s)"), std::string::npos) << check.out;

  Outcome r = kiln({"compile", "--job", "jobs/job.json", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.json()["units"].size(), 4u);
  EXPECT_EQ(listing(dir() / "artifacts"),
            (std::vector<std::string>{"convnet.cpu-host.json", "convnet.cpu-host.vmfb", "convnet.cuda-sm_80.json",
                                      "convnet.cuda-sm_80.vmfb",
                                      "manifest.json", "mlp.cpu-host.json", "mlp.cpu-host.vmfb", "mlp.cuda-sm_80.json",
                                      "mlp.cuda-sm_80.vmfb"}));
}

TEST_F(Job, InvalidJobsAreRefusedWithThePath) {
  write("job.json", R"({"version": 1, "inputs": ["x.mlir"], "targets": [42]})");
  Outcome r = kiln({"check", "job.json"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("at /targets/0"), std::string::npos) << r.err;
  Outcome json = kiln({"check", "job.json", "--json"});
  EXPECT_EQ(json.json()["error"]["code"], "invalid_argument");
  Outcome c = kiln({"compile", "--job", "job.json"});
  EXPECT_EQ(c.status, 2);
}

TEST_F(Job, DeeplyNestedJobsAreRefusedNotACrash) {
  write("job.json", R"({"version": 1, "inputs": ["x.mlir"], "targets": ["cpu"], "options": {"x": )" +
                        std::string(200000, '[') + std::string(200000, ']') + "}}");
  for (const char* command : {"check", "compile"}) {
    Outcome r = command == std::string("check") ? kiln({"check", "job.json"}) : kiln({"compile", "--job", "job.json"});
    EXPECT_EQ(r.status, 2) << command << ": " << r.err;
    EXPECT_NE(r.err.find("more than 64 levels deep"), std::string::npos) << r.err;
  }
}

TEST_F(Job, OneFailingUnitDoesNotStopTheOthers) {
  write("bad.mlir", "module {\n  func.func @main(%a: tensor<2xf32>) -> tensor<2xi8> {\n    return %a : tensor<2xf32>\n  }\n}\n");
  write("job.json", R"({"version": 1, "inputs": ["bad.mlir", ")" + model("mlp.mlir").string() + R"("], "targets": ["cpu"]})");
  Outcome r = kiln({"compile", "--job", "job.json"});
  EXPECT_EQ(r.status, 5) << r.err;
  // The failed unit leaves its compile log, nothing else.
  EXPECT_EQ(listing(dir() / "out"),
            (std::vector<std::string>{"bad.cpu-host.log", "manifest.json", "mlp.cpu-host.json", "mlp.cpu-host.vmfb"}));
}

TEST_F(Job, BindGivesOneStaticModulePerBindingLikeTheCommandLine) {
  write("job.json", R"({"version": 1, "inputs": [")" + model("classifier_poly.mlir").string() +
                        R"("], "targets": ["cpu"], "options": {"bind": [{"b": 5}, {"b": 64}]}})");
  Outcome r = kiln({"compile", "--job", "job.json"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(listing(dir() / "out"),
            (std::vector<std::string>{"classifier_poly.b5.cpu-host.json", "classifier_poly.b5.cpu-host.vmfb",
                                      "classifier_poly.b64.cpu-host.json", "classifier_poly.b64.cpu-host.vmfb",
                                      "manifest.json"}));
  Outcome v = kiln({"validate", "out/classifier_poly.b5.cpu-host.vmfb", "--inputs",
                    model("classifier_poly.b5.inputs.npz").string(), "--expected",
                    model("classifier_poly.b5.expected.npz").string()});
  EXPECT_EQ(v.status, 0) << v.out << v.err;
  EXPECT_NE(v.out.find("binding: b=5"), std::string::npos) << v.out;
  // --bind on the command line replaces the job's.
  Outcome over = kiln({"compile", "--job", "job.json", "--bind", "b=8"});
  ASSERT_EQ(over.status, 0) << over.err;
  EXPECT_TRUE(fs::exists(dir() / "out/classifier_poly.b8.cpu-host.vmfb"));
  // The same binding twice, and a size below 1, are refused before anything runs.
  write("twice.json", R"({"version": 1, "inputs": [")" + model("classifier_poly.mlir").string() +
                          R"("], "targets": ["cpu"], "options": {"bind": [{"b": 5}, {"b": 5}]}})");
  Outcome twice = kiln({"check", "twice.json"});
  EXPECT_EQ(twice.status, 2);
  EXPECT_NE(twice.err.find("bind lists {\"b\":5} twice"), std::string::npos) << twice.err;
  write("zero.json", R"({"version": 1, "inputs": [")" + model("classifier_poly.mlir").string() +
                         R"("], "targets": ["cpu"], "options": {"bind": [{"b": 0}]}})");
  Outcome zero = kiln({"check", "zero.json"});
  EXPECT_EQ(zero.status, 2);
  EXPECT_NE(zero.err.find("at /options/bind/0/b"), std::string::npos) << zero.err;
}

}  // namespace
}  // namespace kiln::testing
