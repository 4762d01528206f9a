// A single-pass reader of MLIR text that extracts what kiln needs (module
// name, dialects, function signatures) without building an IR. It skips
// string literals, dense constants and locations with memchr, so its cost
// is linear in the file size and dominated by memory bandwidth.
//
// It is not a validator: it accepts any text whose structure (balanced
// braces, terminated strings, well-formed function headers) it can follow,
// and reports the first structural problem with line and column.
#pragma once

#include <string_view>

#include "kiln/mlir/module_info.h"
#include "kiln/util/error.h"

namespace kiln::mlir {

struct ScanResult {
  ModuleInfo info;
  // The text uses a form the scanner does not read (generic "func.func"
  // ops); printing it through the compiler's tools gives the pretty form.
  bool needs_reprint = false;
};

Result<ScanResult> scan_text(std::string_view text);

}  // namespace kiln::mlir
