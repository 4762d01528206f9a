#include "kiln/toolchain/toolchain.h"

#include <gtest/gtest.h>

namespace kiln::toolchain {
namespace {

const char* kModule =
    "#loc1 = loc(\"x\")\n"
    "module @jit_f attributes {jax.uses_shape_polymorphism = true} {\n"
    "  func.func public @main(%arg0: tensor<?x4xf32> loc(#loc1)) -> tensor<?x4xf32> {\n"
    "    return %arg0 : tensor<?x4xf32> loc(#loc2)\n"
    "  } loc(#loc)\n"
    "} loc(#loc)\n"
    "#loc = loc(unknown)\n"
    "#loc2 = loc(\"f\"(#loc))\n";

TEST(Toolchain, FirstIrDumpIsTheWholeFirstModuleAndNothingAfterIt) {
  std::string header = "// -----// IR Dump Before ChloLegalizeToStablehloPass: chlo-legalize-to-stablehlo ('func.func' "
                       "operation: @main) //----- //\n";
  std::string later = header + "#loc1 = loc(\"other\")\nmodule {\n}\n";
  std::string error = "\n\nloc(\"x\"): error: failed to legalize operation 'stablehlo.dynamic_broadcast_in_dim'\n"
                      "note: see current operation:\n\"func.func\"() ({\n}) : () -> ()\n";
  auto dump = first_ir_dump("warning: something first\n" + header + kModule + "\n" + later + error);
  ASSERT_TRUE(dump) << dump.error().message;
  EXPECT_EQ(*dump, kModule);
  // Errors right after the module are left out too.
  dump = first_ir_dump(header + kModule + error);
  ASSERT_TRUE(dump) << dump.error().message;
  EXPECT_EQ(*dump, kModule);
  // Dialect resources after the module belong to it.
  std::string resources = "\n{-#\n  dialect_resources: {\n    builtin: {\n      w: \"0x04000000\"\n    }\n  }\n#-}\n";
  dump = first_ir_dump(header + kModule + resources + error);
  ASSERT_TRUE(dump) << dump.error().message;
  EXPECT_EQ(*dump, std::string(kModule) + resources);
}

TEST(Toolchain, NoDumpOrNoWholeModuleIsAnError) {
  EXPECT_FALSE(first_ir_dump("error: cannot open file"));
  EXPECT_FALSE(first_ir_dump("// -----// IR Dump Before X //----- //\n"));
  EXPECT_FALSE(first_ir_dump("// -----// IR Dump Before X //----- //\nmodule {\n  func.func @f() {\n"));
}

}  // namespace
}  // namespace kiln::toolchain
