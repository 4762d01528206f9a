#include <sys/stat.h>

#include <chrono>
#include "harness.h"

namespace kiln::testing {
namespace {

const char* kModels[] = {"mlp", "gemm_f32", "gemm_bf16", "layernorm_gelu", "conv", "attention", "mixed_types", "big_constant"};
const char* kForms[] = {".mlir", ".mlirbc", ".vhlo.mlirbc"};

nlohmann::json main_function(const nlohmann::json& inspected) {
  for (const auto& f : inspected["functions"]) {
    if (f["name"] == "main") return f;
  }
  ADD_FAILURE() << "no @main in " << inspected.dump();
  return {};
}

std::vector<std::string> types_of(const nlohmann::json& values) {
  std::vector<std::string> out;
  for (const auto& v : values) out.push_back(v["type"]);
  return out;
}

class Inspect : public KilnTest {};

TEST_F(Inspect, AllThreeFormsOfEveryModelAgree) {
  for (const char* name : kModels) {
    nlohmann::json first;
    for (const char* form : kForms) {
      Outcome r = kiln({"inspect", "--json", model(std::string(name) + form).string()});
      ASSERT_EQ(r.status, 0) << name << form << ": " << r.err;
      auto j = r.json();
      EXPECT_EQ(j["module"], "jit_" + std::string(name));
      auto f = main_function(j);
      EXPECT_EQ(f["visibility"], "public");
      if (first.is_null()) {
        first = f;
        continue;
      }
      EXPECT_EQ(types_of(f["arguments"]), types_of(first["arguments"])) << name << form;
      EXPECT_EQ(types_of(f["results"]), types_of(first["results"])) << name << form;
    }
  }
}

TEST_F(Inspect, ReportsFormatsDialectsNamesAndTypes) {
  auto text = kiln({"inspect", "--json", model("mixed_types.mlir").string()}).json();
  EXPECT_EQ(text["format"], "text");
  EXPECT_EQ(text["dialects"], (nlohmann::json{"builtin", "func", "stablehlo"}));
  auto f = main_function(text);
  ASSERT_EQ(f["arguments"].size(), 3u);
  EXPECT_EQ(f["arguments"][0]["name"], "flags");
  EXPECT_EQ(f["arguments"][0]["type"], "tensor<16xi1>");
  EXPECT_EQ(f["arguments"][1]["element_type"], "ui8");
  EXPECT_EQ(f["arguments"][2]["shape"], (nlohmann::json{4}));
  EXPECT_EQ(f["results"][0]["type"], "tensor<i32>");
  EXPECT_EQ(f["results"][1]["element_type"], "f16");

  auto artifact = kiln({"inspect", "--json", model("mlp.vhlo.mlirbc").string()}).json();
  EXPECT_EQ(artifact["format"], "portable-artifact");
  EXPECT_EQ(artifact["producer"].get<std::string>().rfind("StableHLO_v", 0), 0u);
  EXPECT_EQ(artifact["dialects"], (nlohmann::json{"builtin", "vhlo"}));
  auto bytecode = kiln({"inspect", "--json", model("mlp.mlirbc").string()}).json();
  EXPECT_EQ(bytecode["format"], "bytecode");
  EXPECT_EQ(main_function(bytecode)["arguments"][0]["name"], "x") << "argument names survive bytecode";
}

TEST_F(Inspect, HumanOutputShowsSignature) {
  Outcome r = kiln({"inspect", model("gemm_bf16.mlir").string()});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("module:    @jit_gemm_bf16"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[512, 512] bf16"), std::string::npos) << r.out;
}

TEST_F(Inspect, DynamicDimensionsAreMarked) {
  write("dyn.mlir",
        "module @m {\n  func.func public @main(%arg0: tensor<?x8xf32> loc(\"x\")) -> (tensor<?x8xf32>) {\n"
        "    return %arg0 : tensor<?x8xf32>\n  }\n}\n");
  auto j = kiln({"inspect", "--json", "dyn.mlir"}).json();
  auto arg = main_function(j)["arguments"][0];
  EXPECT_EQ(arg["shape"], (nlohmann::json{nullptr, 8}));
  EXPECT_EQ(arg["dynamic"], true);
}

TEST_F(Inspect, BadInputsGiveClearErrorsNotCrashes) {
  write("empty.mlir", "");
  std::string noise;
  for (int i = 0; i < 4096; ++i) noise += static_cast<char>((i * 7919) % 256);
  write("noise.bin", noise);
  write("readme.mlir", "This is not a program.\nJust words.\n");
  auto text = *util::read_file(model("mlp.mlir"));
  write("truncated.mlir", text.substr(0, text.size() / 2));
  auto bytecode = *util::read_file(model("mlp.mlirbc"));
  write("truncated.mlirbc", bytecode.substr(0, bytecode.size() / 2));
  struct Case {
    const char* file;
    const char* says;
  } cases[] = {{"empty.mlir", "the file is empty"},
               {"noise.bin", "binary data"},
               {"readme.mlir", "no StableHLO module found"},
               {"truncated.mlir", "truncated"},
               {"truncated.mlirbc", "cannot read MLIR bytecode"},
               {"missing.mlir", "No such file"}};
  for (const auto& c : cases) {
    Outcome r = kiln({"inspect", c.file});
    EXPECT_TRUE(r.status == 2 || r.status == 3) << c.file << " exited " << r.status << ": " << r.err;
    EXPECT_NE(r.err.find(c.file), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << c.file << ": " << r.err;
    EXPECT_EQ(r.err.rfind("kiln: error: ", 0), 0u) << r.err;
  }
}

TEST_F(Inspect, SpecialFilesAreRefusedAtOnceByEveryCommand) {
  ASSERT_EQ(::mkfifo((dir() / "pipe.mlir").c_str(), 0600), 0);
  fs::create_directories(dir() / "folder.mlir");
  struct Case {
    std::string path;
    const char* is;
  } cases[] = {{"pipe.mlir", "is a FIFO"}, {"/dev/zero", "is a character device"}, {"folder.mlir", "is a folder"}};
  for (const auto& c : cases) {
    for (std::vector<std::string> args : {std::vector<std::string>{"inspect", c.path},
                                          std::vector<std::string>{"compile", c.path, "-t", "cpu", "-o", "out"},
                                          std::vector<std::string>{"tune", "prepare", c.path, "-t", "cpu", "-o", "b"},
                                          std::vector<std::string>{"run", "out/m.vmfb", "--input", c.path}}) {
      auto started = std::chrono::steady_clock::now();
      Outcome r = kiln(args);
      double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      if (args[0] == "run") {
        // No module there: refused before any input is opened.
        EXPECT_NE(r.status, 0);
        continue;
      }
      EXPECT_EQ(r.status, 2) << args[0] << " " << c.path << ": " << r.err;
      EXPECT_NE(r.err.find(c.is), std::string::npos) << args[0] << ": " << r.err;
      EXPECT_LT(seconds, 5) << args[0] << " " << c.path;
    }
  }
}

}  // namespace
}  // namespace kiln::testing
