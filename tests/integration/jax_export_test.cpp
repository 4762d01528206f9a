// Shape-polymorphic JAX exports (symbolic dimensions): one dynamic module
// that runs at every size, and static modules specialized by --bind, each
// validated against JAX's own outputs.
#include "harness.h"

namespace kiln::testing {
namespace {

class JaxExport : public KilnTest {
 protected:
  // Compiles a test model for this CPU into modules/ and returns the result.
  Outcome compile(const std::string& name, const std::vector<std::string>& more = {}, const std::string& target = "cpu") {
    std::vector<std::string> args = {"compile", model(name + ".mlir").string(), "-t", target, "-o", "modules"};
    args.insert(args.end(), more.begin(), more.end());
    return kiln(args);
  }
  nlohmann::json metadata(const std::string& module_name) {
    auto text = util::read_file(dir() / "modules" / (module_name + ".json"));
    EXPECT_TRUE(text.has_value()) << module_name;
    return text ? nlohmann::json::parse(*text) : nlohmann::json();
  }
  // `kiln validate` of a module against the fixture's JAX outputs at `sizes` ("b5").
  Outcome validate(const std::string& module_name, const std::string& name, const std::string& sizes) {
    return kiln({"validate", (dir() / "modules" / (module_name + ".vmfb")).string(), "--inputs",
                 model(name + "." + sizes + ".inputs.npz").string(), "--expected",
                 model(name + "." + sizes + ".expected.npz").string()});
  }
};

TEST_F(JaxExport, ASymbolicBatchCompilesToOneModuleThatValidatesAtEverySize) {
  Outcome c = compile("classifier_poly");
  ASSERT_EQ(c.status, 0) << c.err;
  auto meta = metadata("classifier_poly.cpu-host");
  EXPECT_EQ(meta["jax"]["symbolic_dims"], nlohmann::json::array({"b"}));
  EXPECT_GT(meta["jax"]["broadcasts_annotated"].get<int>(), 0);
  EXPECT_TRUE(meta["functions"][0]["arguments"][0]["dynamic"].get<bool>()) << meta["functions"].dump();
  for (const char* sizes : {"b1", "b5", "b64"}) {
    Outcome v = validate("classifier_poly.cpu-host", "classifier_poly", sizes);
    EXPECT_EQ(v.status, 0) << sizes << ":\n" << v.out << v.err;
    EXPECT_NE(v.out.find("PASS"), std::string::npos) << v.out;
    EXPECT_NE(v.out.find("symbolic dimensions: b"), std::string::npos) << v.out;
  }
  Outcome r = kiln({"run", "modules/classifier_poly.cpu-host.vmfb", "--shape", "0=5x64", "-o", "run5"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("output0.npy  f32 [5, 10]"), std::string::npos) << r.out;
}

TEST_F(JaxExport, TwoSymbolicDimensionsRunAtAnySizes) {
  Outcome c = compile("two_dims_poly");
  ASSERT_EQ(c.status, 0) << c.err;
  EXPECT_EQ(metadata("two_dims_poly.cpu-host")["jax"]["symbolic_dims"], nlohmann::json::array({"b", "n"}));
  for (const char* sizes : {"b1_n3", "b5_n7", "b64_n16"}) {
    Outcome v = validate("two_dims_poly.cpu-host", "two_dims_poly", sizes);
    EXPECT_EQ(v.status, 0) << sizes << ":\n" << v.out << v.err;
  }
}

TEST_F(JaxExport, BindGivesOneStaticModulePerBinding) {
  Outcome c = compile("classifier_poly", {"--bind", "b=8", "--bind", "b=32", "--json"});
  ASSERT_EQ(c.status, 0) << c.err;
  for (int b : {8, 32}) {
    std::string stem = "classifier_poly.b" + std::to_string(b) + ".cpu-host";
    auto meta = metadata(stem);
    EXPECT_EQ(meta["binding"], nlohmann::json({{"b", b}}));
    EXPECT_EQ(meta["functions"][0]["arguments"][0]["shape"], nlohmann::json::array({b, 64}));
    Outcome v = validate(stem, "classifier_poly", "b" + std::to_string(b));
    EXPECT_EQ(v.status, 0) << v.out << v.err;
    EXPECT_NE(v.out.find("binding: b=" + std::to_string(b)), std::string::npos) << v.out;
  }
  // No dynamic module unless asked for.
  EXPECT_FALSE(fs::exists(dir() / "modules/classifier_poly.cpu-host.vmfb"));
  // A static module runs without --shape and reports its binding.
  Outcome r = kiln({"run", "modules/classifier_poly.b8.cpu-host.vmfb", "-o", "run8", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.json()["binding"], nlohmann::json({{"b", 8}}));
}

TEST_F(JaxExport, BindingSeveralDimensionsAtOnce) {
  Outcome c = compile("two_dims_poly", {"--bind", "b=4,n=16"});
  ASSERT_EQ(c.status, 0) << c.err;
  auto meta = metadata("two_dims_poly.b4_n16.cpu-host");
  EXPECT_EQ(meta["functions"][0]["arguments"][0]["shape"], nlohmann::json::array({4, 16}));
  // n is also the first dimension of the second argument (a shape assertion says so).
  EXPECT_EQ(meta["functions"][0]["arguments"][1]["shape"], nlohmann::json::array({16, 8}));
  Outcome v = validate("two_dims_poly.b4_n16.cpu-host", "two_dims_poly", "b4_n16");
  EXPECT_EQ(v.status, 0) << v.out << v.err;
}

TEST_F(JaxExport, BindingsThatDoNotFitAreRefusedWithWhatWouldFit) {
  Outcome unknown = compile("classifier_poly", {"--bind", "n=3"});
  EXPECT_NE(unknown.status, 0);
  EXPECT_NE(unknown.err.find("symbolic dimensions are b"), std::string::npos) << unknown.err;
  Outcome bad = compile("classifier_poly", {"--bind", "b=0"});
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.err.find("positive size"), std::string::npos) << bad.err;
  Outcome static_program = compile("mlp", {"--bind", "b=8"});
  EXPECT_NE(static_program.status, 0);
  EXPECT_NE(static_program.err.find("no symbolic dimensions"), std::string::npos) << static_program.err;
}

TEST_F(JaxExport, DynamicAndBoundModulesCompileForH100) {
  Outcome c = compile("classifier_poly", {}, "cuda:h100");
  EXPECT_EQ(c.status, 0) << c.err;
  Outcome b = compile("classifier_poly", {"--bind", "b=8"}, "cuda:h100");
  EXPECT_EQ(b.status, 0) << b.err;
  EXPECT_TRUE(fs::exists(dir() / "modules/classifier_poly.b8.cuda-sm_90.vmfb"));
}

TEST_F(JaxExport, ASerializedExportedIsReadAndCompiledForItsPlatform) {
  Outcome i = kiln({"inspect", model("mlp.jaxexp").string(), "--json"});
  ASSERT_EQ(i.status, 0) << i.err;
  auto info = i.json();
  EXPECT_EQ(info["format"], "jax-exported") << info.dump();
  EXPECT_NE(info["producer"].get<std::string>().find("for cpu"), std::string::npos) << info.dump();
  Outcome c = kiln({"compile", model("mlp.jaxexp").string(), "-t", "cpu", "-o", "modules"});
  ASSERT_EQ(c.status, 0) << c.err;
  auto meta = metadata("mlp.cpu-host");
  EXPECT_EQ(meta["jax"]["platforms"], nlohmann::json::array({"cpu"}));
  EXPECT_EQ(meta["jax"]["function"], "mlp");
  Outcome v = kiln({"validate", "modules/mlp.cpu-host.vmfb", "--inputs", model("mlp.inputs.npz").string(), "--expected",
                    model("mlp.expected.npz").string()});
  EXPECT_EQ(v.status, 0) << v.out << v.err;
  // Exported for cpu only: a cuda target is refused with what it was made for.
  Outcome gpu = kiln({"compile", model("mlp.jaxexp").string(), "-t", "cuda:h100", "-o", "modules"});
  EXPECT_NE(gpu.status, 0);
  EXPECT_NE(gpu.err.find("the export was made for cpu and not for cuda:h100"), std::string::npos) << gpu.err;
}

TEST_F(JaxExport, AMultiPlatformExportGetsThePlatformIndexOfItsTarget) {
  Outcome c = kiln({"compile", model("mlp.cuda_cpu.jaxexp").string(), "-t", "cpu", "-t", "cuda:h100", "-o", "modules",
                    "--name", "mlp2"});
  ASSERT_EQ(c.status, 0) << c.err;
  auto cpu = metadata("mlp2.cpu-host");
  EXPECT_EQ(cpu["jax"]["platform"], "cpu");
  EXPECT_EQ(cpu["jax"]["platforms"], nlohmann::json::array({"cuda", "cpu"}));
  // The index is bound: the module takes the function's own four arguments.
  EXPECT_EQ(cpu["functions"][0]["arguments"].size(), 4u) << cpu["functions"].dump();
  EXPECT_EQ(metadata("mlp2.cuda-sm_90")["jax"]["platform"], "cuda");
  Outcome v = kiln({"validate", "modules/mlp2.cpu-host.vmfb", "--inputs", model("mlp.inputs.npz").string(), "--expected",
                    model("mlp.expected.npz").string()});
  EXPECT_EQ(v.status, 0) << v.out << v.err;
  Outcome vulkan = kiln({"compile", model("mlp.cuda_cpu.jaxexp").string(), "-t", "vulkan:rdna3", "-o", "modules"});
  EXPECT_NE(vulkan.status, 0);
  EXPECT_NE(vulkan.err.find("made for cuda, cpu"), std::string::npos) << vulkan.err;
}

TEST_F(JaxExport, ASerializedExportWithASymbolicBatchCompilesToOneModuleThatValidatesAtEverySize) {
  Outcome c = kiln({"compile", model("classifier_poly.jaxexp").string(), "-t", "cpu", "-o", "modules"});
  ASSERT_EQ(c.status, 0) << c.err;
  auto meta = metadata("classifier_poly.cpu-host");
  EXPECT_EQ(meta["jax"]["serialized"], true);
  EXPECT_EQ(meta["jax"]["symbolic_dims"], nlohmann::json::array({"b"}));
  EXPECT_GT(meta["jax"]["broadcasts_annotated"].get<int>(), 0);
  EXPECT_TRUE(meta["functions"][0]["arguments"][0]["dynamic"].get<bool>()) << meta["functions"].dump();
  for (const char* sizes : {"b1", "b5", "b64"}) {
    Outcome v = validate("classifier_poly.cpu-host", "classifier_poly", sizes);
    EXPECT_EQ(v.status, 0) << sizes << ":\n" << v.out << v.err;
    EXPECT_NE(v.out.find("symbolic dimensions: b"), std::string::npos) << v.out;
  }
  // Two symbolic dimensions, and an export for two platforms (the index bound too).
  Outcome two = kiln({"compile", model("two_dims_poly.jaxexp").string(), "-t", "cpu", "-o", "modules"});
  ASSERT_EQ(two.status, 0) << two.err;
  Outcome v = validate("two_dims_poly.cpu-host", "two_dims_poly", "b5_n7");
  EXPECT_EQ(v.status, 0) << v.out << v.err;
  Outcome both = kiln({"compile", model("classifier_poly.cuda_cpu.jaxexp").string(), "-t", "cpu", "-t", "cuda:h100",
                       "-o", "modules", "--name", "cp2"});
  ASSERT_EQ(both.status, 0) << both.err;
  EXPECT_EQ(metadata("cp2.cpu-host")["functions"][0]["arguments"].size(), 5u);
  v = validate("cp2.cpu-host", "classifier_poly", "b64");
  EXPECT_EQ(v.status, 0) << v.out << v.err;
}

TEST_F(JaxExport, ASerializedExportTakesBind) {
  Outcome c = kiln({"compile", model("classifier_poly.jaxexp").string(), "-t", "cpu", "-o", "modules", "--bind", "b=8",
                    "--bind", "b=32"});
  ASSERT_EQ(c.status, 0) << c.err;
  for (int b : {8, 32}) {
    std::string name = "classifier_poly.b" + std::to_string(b) + ".cpu-host";
    EXPECT_EQ(metadata(name)["binding"], nlohmann::json({{"b", b}}));
    Outcome v = validate(name, "classifier_poly", "b" + std::to_string(b));
    EXPECT_EQ(v.status, 0) << v.out << v.err;
    EXPECT_NE(v.out.find("binding: b=" + std::to_string(b)), std::string::npos) << v.out;
  }
  Outcome unknown = kiln({"compile", model("classifier_poly.jaxexp").string(), "-t", "cpu", "-o", "modules", "--bind",
                          "n=3"});
  EXPECT_NE(unknown.status, 0);
  EXPECT_NE(unknown.err.find("symbolic dimensions are b"), std::string::npos) << unknown.err;
  Outcome static_export = kiln({"compile", model("mlp.jaxexp").string(), "-t", "cpu", "-o", "modules", "--bind", "b=8"});
  EXPECT_NE(static_export.status, 0);
  EXPECT_NE(static_export.err.find("the export has no symbolic dimensions"), std::string::npos) << static_export.err;
}

}  // namespace
}  // namespace kiln::testing
