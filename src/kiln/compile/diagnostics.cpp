#include "kiln/compile/diagnostics.h"

#include <algorithm>
#include <string_view>

#include <fmt/format.h>

#include "kiln/util/strings.h"

namespace kiln::compile {
namespace {

// Longest line kept: the compiler quotes the source line, which can be a
// megabyte of constants.
constexpr size_t kMaxLine = 400;
// Lines kept after a diagnostic's first line: the source line and its caret,
// or the first lines of the IR a note prints ("see current operation:").
constexpr size_t kMaxQuoted = 3;
// Lines kept after a linker error (">>> referenced by ...").
constexpr size_t kMaxReferences = 2;
// The whole summary, whatever the line count.
constexpr size_t kMaxChars = 4000;

bool has(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

// "file:line:col: error: message" -> "error" (or "" when the line is no
// diagnostic). A linear scan: the text comes from the compiler and quotes
// the user's program, and a backtracking regex can exhaust the stack on it.
std::string severity_of(std::string_view line) {
  for (const char* sev : {"error", "warning", "note", "remark"}) {
    std::string marker = std::string(": ") + sev + ": ";
    size_t at = line.find(marker);
    if (at == std::string_view::npos) continue;
    std::string_view head = line.substr(0, at);
    // A location the compiler could not place.
    if (head == "<unknown>:0" || head == "-:0") return sev;
    // Otherwise PATH:LINE:COL with decimal LINE and COL.
    size_t c2 = head.rfind(':');
    if (c2 == std::string_view::npos || c2 == 0 || c2 + 1 >= head.size()) continue;
    size_t c1 = head.rfind(':', c2 - 1);
    if (c1 == std::string_view::npos || c1 == 0 || c1 + 1 >= c2) continue;
    auto digits = [](std::string_view v) { return !v.empty() && v.find_first_not_of("0123456789") == std::string_view::npos; };
    if (digits(head.substr(c1 + 1, c2 - c1 - 1)) && digits(head.substr(c2 + 1))) return sev;
  }
  return "";
}

// A line that states the cause below the compiler's own diagnostics: the
// linker's errors, LLVM's fatal errors, failed assertions.
bool is_root_cause(std::string_view line) {
  for (std::string_view prefix : {"iree-lld: error:", "ld.lld: error:", "lld: error:", "ld: error:", "LLVM ERROR:",
                                  "error: ", "fatal error: "}) {
    if (util::starts_with(line, prefix)) return true;
  }
  return has(line, "Assertion `") && has(line, "' failed");
}

// Where the compiler's last words end and its stack dump begins.
bool is_stack_dump(std::string_view line) {
  return util::starts_with(line, "Stack dump:") || util::starts_with(line, "Please report issues") ||
         util::starts_with(line, "PLEASE submit a bug report");
}

std::string shortened(std::string_view line) {
  if (line.size() <= kMaxLine) return std::string(line);
  return std::string(line.substr(0, kMaxLine)) + fmt::format(" ... ({} more characters cut)", line.size() - kMaxLine);
}

// A diagnostic's first line and the lines that belong to it.
struct Block {
  bool root = false;
  std::vector<std::string> lines;
};

std::vector<Block> blocks_of(const std::string& text, size_t* total_lines) {
  std::vector<Block> blocks;
  enum { kNone, kKept, kSkipped } state = kNone;
  size_t quoted = 0;
  for (const auto& raw : util::split(text, '\n')) {
    std::string_view line = std::string_view(raw).substr(0, 8192);
    if (util::trim(line).empty()) continue;
    ++*total_lines;
    if (is_stack_dump(line)) {
      state = kSkipped;  // what follows is frames, not diagnostics
      continue;
    }
    std::string sev = severity_of(line);
    if (!sev.empty()) {
      // "note: called from" repeats a caller's position for every error:
      // lines that the message needs for the errors themselves.
      bool caller = sev == "note" && has(line, ": note: called from");
      state = (sev == "error" || sev == "note") && !caller ? kKept : kSkipped;
      if (state == kKept) blocks.push_back({false, {shortened(line)}});
      quoted = 0;
    } else if (is_root_cause(line)) {
      blocks.push_back({true, {shortened(line)}});
      state = kKept;
      quoted = 0;
    } else if (state == kKept) {
      bool reference = util::starts_with(line, ">>> ");
      if (blocks.back().root && !reference) {
        state = kNone;  // the linker's command line and the like
      } else if (++quoted <= (blocks.back().root ? kMaxReferences : kMaxQuoted)) {
        blocks.back().lines.push_back(shortened(line));
      }
    }
  }
  return blocks;
}

// The name after `call_target_name = "` or `stablehlo.custom_call @`.
std::string custom_call_name(const std::string& text) {
  for (std::string_view marker : {std::string_view("call_target_name = \""), std::string_view("stablehlo.custom_call @")}) {
    size_t at = text.find(marker);
    if (at == std::string::npos) continue;
    size_t start = at + marker.size();
    size_t end = text.find_first_of("\"( \n", start);
    if (end == std::string::npos || end == start || end - start > 200) continue;
    return text.substr(start, end - start);
  }
  return "";
}

// The quoted name in "operation 'NAME'".
std::string quoted_after(const std::string& text, std::string_view marker) {
  size_t at = text.find(marker);
  if (at == std::string::npos) return "";
  size_t start = at + marker.size();
  size_t end = text.find('\'', start);
  if (end == std::string::npos || end - start > 200) return "";
  return text.substr(start, end - start);
}

// The first StableHLO operation in the source lines the compiler quoted.
std::string quoted_stablehlo_op(const std::string& text) {
  size_t at = text.find("= stablehlo.");
  if (at == std::string::npos) return "";
  size_t start = at + 2;
  size_t end = text.find_first_of(" (\n", start);
  if (end == std::string::npos || end - start > 100) return "";
  return text.substr(start, end - start);
}

std::vector<std::string> undefined_symbols(const std::string& text) {
  std::vector<std::string> names;
  const std::string_view marker = "undefined symbol: ";
  for (size_t at = text.find(marker); at != std::string::npos; at = text.find(marker, at + 1)) {
    size_t start = at + marker.size();
    size_t end = text.find_first_of(" \n", start);
    std::string name = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!name.empty() && name.size() < 200 && std::find(names.begin(), names.end(), name) == names.end()) {
      names.push_back(name);
    }
    if (names.size() >= 5) break;
  }
  return names;
}

// C math functions in their double spelling.
bool is_double_math(const std::string& name) {
  static const char* const kMath[] = {"atan2", "pow",   "fmod",  "sin",   "cos",   "tan",   "asin",   "acos",
                                      "atan",  "sinh",  "cosh",  "tanh",  "asinh", "acosh", "atanh",  "exp",
                                      "exp2",  "expm1", "log",   "log2",  "log10", "log1p", "erf",    "erfc",
                                      "cbrt",  "hypot", "lgamma", "tgamma", "remainder", "nextafter", "sqrt", "round"};
  return std::any_of(std::begin(kMath), std::end(kMath), [&](const char* m) { return name == m; });
}

// "but got 'f64'" (or a vector or tensor of it) in a type error.
bool type_error_on(const std::string& text, std::string_view element) {
  const std::string_view marker = "but got '";
  for (size_t at = text.find(marker); at != std::string::npos; at = text.find(marker, at + 1)) {
    size_t start = at + marker.size();
    size_t end = text.find('\'', start);
    if (end == std::string::npos) break;
    std::string_view got = std::string_view(text).substr(start, std::min<size_t>(end - start, 200));
    if (got == element || has(got, std::string("x") + std::string(element) + ">")) return true;
  }
  return false;
}

bool keeps_f64(const std::vector<std::string>& flags) {
  return std::find(flags.begin(), flags.end(), "--iree-input-demote-f64-to-f32=false") != flags.end();
}

std::string custom_call_hint(const std::string& name) {
  std::string call = "`stablehlo.custom_call @" + name + "`";
  auto starts = [&](std::string_view p) { return util::starts_with(name, p); };
  if (name == "Sharding" || starts("SPMD")) {
    return "hint: " + call + " is a sharding annotation of a multi-device export, which IREE does not take; "
           "export the function for one device (no shardings in jax.jit)";
  }
  if (name == "shape_assertion") {
    return "hint: " + call + " is JAX's check of a symbolic dimension in a shape-polymorphic export; "
           "compile a static module with --bind NAME=SIZE (docs/jax.md), or export with concrete shapes";
  }
  if (starts("lapack_") || starts("cusolver") || starts("hipsolver") || starts("cu_lu") || starts("cu_cholesky")) {
    return "hint: " + call + " is a LAPACK/cuSOLVER kernel of XLA (jnp.linalg: solve, inv, eigh, svd, qr, cholesky, ...) "
           "that IREE does not have; export without it (write the decomposition with jax.numpy operations)";
  }
  if (has(name, "triton") || has(name, "mosaic") || has(name, "pallas")) {
    return "hint: " + call + " is a Pallas/Triton kernel compiled for XLA, which IREE cannot compile; "
           "export the program without the kernel (its jax.numpy reference instead)";
  }
  return "hint: " + call + " is not supported by IREE: it calls a kernel of the framework that exported the "
         "program; export without it (the same computation in jax.numpy operations, or without the library that adds it)";
}

}  // namespace

Summary summarize(const std::string& stderr_text, size_t max_lines) {
  size_t total = 0;
  std::vector<Block> blocks = blocks_of(stderr_text, &total);
  // Root causes first: the linker prints before the compiler's own
  // "failed to link" error that points back at them.
  std::stable_partition(blocks.begin(), blocks.end(), [](const Block& b) { return b.root; });
  std::vector<std::string> kept;
  size_t chars = 0;
  for (const auto& block : blocks) {
    for (const auto& line : block.lines) {
      if (kept.size() >= max_lines || chars + line.size() > kMaxChars) break;
      kept.push_back(line);
      chars += line.size() + 1;
    }
  }
  if (kept.empty()) {
    // No structured diagnostic: the first non-empty lines before any stack dump.
    for (const auto& line : util::split(stderr_text, '\n')) {
      if (is_stack_dump(line)) break;
      if (util::trim(line).empty()) continue;
      kept.push_back(shortened(std::string_view(line)));
      if (kept.size() >= std::min<size_t>(max_lines, 4)) break;
    }
  }
  return {util::join(kept, "\n"), total > kept.size() ? total - kept.size() : 0};
}

std::string summarize_diagnostics(const std::string& stderr_text, size_t max_lines) {
  return summarize(stderr_text, max_lines).text;
}

Failure classify(const util::ProcessResult& result) {
  if (result.term_signal != 0 || has(result.err, "Stack dump:")) return Failure::kCrashed;
  const std::string& e = result.err;
  if (has(e, "LLVM ERROR:") || has(e, "PLEASE submit a bug report") || has(e, "UNREACHABLE executed") ||
      (has(e, "Assertion `") && has(e, "' failed"))) {
    return Failure::kInternalError;
  }
  return Failure::kRejected;
}

std::string hint(const std::string& text, const target::Target& target, const std::vector<std::string>& flags) {
  bool gpu_without_f64 = target.backend == target::Backend::kVulkan || target.backend == target::Backend::kMetal;
  std::string demote_back = keeps_f64(flags) ? "drop --keep-f64 (or --iree-input-demote-f64-to-f32=false) so that the "
                                               "compiler computes f64 as f32, its default"
                                             : "let the compiler compute f64 as f32";
  std::string illegal = quoted_after(text, "failed to legalize operation '");
  if (illegal == "stablehlo.custom_call" || has(text, "unsupported custom_call") || has(text, "unhandled custom_call")) {
    std::string name = custom_call_name(text);
    if (!name.empty()) return custom_call_hint(name);
  }
  if (auto symbols = undefined_symbols(text); !symbols.empty()) {
    const std::string& name = symbols.front();
    if (is_double_math(name)) {
      return fmt::format("hint: the device library of IREE 3.13 for {} has no f64 `{}`, so the module cannot be linked; "
                         "{}, or compile for cuda or rocm, whose device libraries have f64 math",
                         target.spec, name, demote_back);
    }
    return fmt::format("hint: the compiled code calls `{}`, which the device library of IREE 3.13 for {} does not "
                       "define; compile for another target or without the operation that needs it",
                       util::join(symbols, "`, `"), target.spec);
  }
  std::string op = quoted_stablehlo_op(text);
  std::string op_words = op.empty() ? "" : " for " + op;
  if (type_error_on(text, "f64")) {
    return fmt::format("hint: IREE 3.13 has no f64 code{} for {}; {}{}", op_words, target.spec, demote_back,
                       gpu_without_f64 ? ", or compile for cuda or rocm, which have it" : "");
  }
  if (type_error_on(text, "i64")) {
    return fmt::format("hint: IREE 3.13 has no i64 code{} for {}; compute i64 as i32 with "
                       "--flag=--iree-input-demote-i64-to-i32 (values beyond 32 bits wrap), or compile for cpu, cuda or rocm",
                       op_words, target.spec);
  }
  // IREE 3.13's SPIR-V code generation stores bf16 in 32-bit words and
  // cannot legalize the bitcasts that takes in vectorized dispatches.
  if (target.backend == target::Backend::kVulkan && illegal == "vector.bitcast" && has(text, "bf16>")) {
    return fmt::format("hint: IREE 3.13 cannot compute bf16 for {}; export the program in f16 or f32, or compile for "
                       "cpu, cuda or rocm. --flag=--iree-input-promote-bf16-to-f32 builds it in f32, but the "
                       "module then takes and returns f32 tensors instead of bf16",
                       target.spec);
  }
  if (!illegal.empty()) {
    if (util::starts_with(illegal, "stablehlo.dynamic_") || illegal == "stablehlo.real_dynamic_slice") {
      return fmt::format("hint: '{}' comes from a shape-polymorphic export (a symbolic dimension) that the compiler "
                         "could not make static; compile one static module per size with --bind NAME=SIZE "
                         "(docs/jax.md), or export with concrete shapes", illegal);
    }
    return fmt::format("hint: IREE 3.13 has no lowering of '{}' for {}; compile for another backend (cpu, cuda, rocm, "
                       "vulkan) to see whether one has it, or export the program without that operation",
                       illegal, target.spec);
  }
  return "";
}

Error describe_failure(const util::ProcessResult& result, const FailureContext& c) {
  std::string log_note = c.log.empty() ? "" : "\nfull log: " + c.log;
  if (result.timed_out) {
    return Error{Code::kDeadlineExceeded,
                 fmt::format("{}: iree-compile ran past the time limit of {:.0f} s and was killed; raise it with "
                             "--timeout or the compile_timeout setting{}",
                             c.what, c.timeout_seconds, log_note)};
  }
  if (result.out_of_memory) {
    return Error{Code::kResourceExhausted, fmt::format("{}: iree-compile ran out of memory and was killed ({}); raise "
                                                       "the limit (setting docker_memory) or compile a smaller program{}",
                                                       c.what, result.limit_note, log_note)};
  }
  if (has(result.err, "No space left on device")) {
    return Error{Code::kResourceExhausted,
                 fmt::format("{}: the disk holding {} is full (No space left on device); free space or choose another "
                             "output folder", c.what, c.output_dir)};
  }
  Summary summary = summarize(result.err);
  // The compiler was given an absolute path; the user knows the one they typed.
  if (!c.input_compiled.empty() && c.input_compiled != c.input_given) {
    for (size_t at = 0; (at = summary.text.find(c.input_compiled, at)) != std::string::npos; at += c.input_given.size()) {
      summary.text.replace(at, c.input_compiled.size(), c.input_given);
    }
  }
  std::string body = summary.text;
  if (summary.omitted_lines > 0 && !body.empty()) {
    body += c.log.empty() ? fmt::format("\n... {} more lines not shown", summary.omitted_lines)
                          : fmt::format("\n... {} more lines in {}", summary.omitted_lines, c.log);
    log_note.clear();
  }
  Failure failure = classify(result);
  if (failure != Failure::kRejected) {
    std::string how = failure == Failure::kCrashed ? "crashed (" + util::describe_outcome(result) + ")"
                                                   : "failed with an internal error (" + util::describe_outcome(result) + ")";
    return Error{Code::kInternal,
                 fmt::format("{}: iree-compile {}: a bug in the compiler, not an error in your program{}{}\n"
                             "hint: try another optimization level (-O) or target, and report it to the IREE "
                             "project with the saved log{}",
                             c.what, how, body.empty() ? "" : "; its last words:\n", body, log_note)};
  }
  std::string advice = hint(result.err, c.target, c.flags);
  return Error{Code::kCompileFailed,
               fmt::format("{}: iree-compile rejected the program ({}):\n{}{}{}", c.what, util::describe_outcome(result),
                           body.empty() ? "(no diagnostics printed)" : body, advice.empty() ? "" : "\n" + advice,
                           log_note)};
}

}  // namespace kiln::compile
