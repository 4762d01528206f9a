// Reads a StableHLO file in any of the forms users hand to kiln (MLIR text,
// MLIR bytecode, a JAX portable artifact in VHLO bytecode) and describes it.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "kiln/mlir/module_info.h"
#include "kiln/util/error.h"

namespace kiln::mlir {

enum class Format { kText, kBytecode };

// The first bytes of every MLIR bytecode file.
inline constexpr std::string_view kBytecodeMagic = "ML\xEFR";

// Prints MLIR bytecode as text (the compiler's tools do this); text is
// inspected by kiln itself.
using BytecodePrinter = std::function<Result<std::string>(const std::filesystem::path&)>;

// Looks at the first bytes: MLIR bytecode starts with "ML\xEFR".
Format detect_format(std::string_view head);

// The producer string of a bytecode file ("StableHLO_v1.15.0", "MLIR24.0.0git").
std::string bytecode_producer(std::string_view bytes);

// Inspects MLIR text held in memory.
Result<ModuleInfo> inspect_text(std::string_view text);

// Inspects a file; `printer` is only called for bytecode (and for text that
// uses the generic op form). Errors name the file.
Result<ModuleInfo> inspect_file(const std::filesystem::path& path, const BytecodePrinter& printer);

}  // namespace kiln::mlir
