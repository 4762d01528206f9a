// What a failed compiler run says, turned into an error a user can act on:
// the root-cause lines (the linker's included) before the compiler's own
// diagnostics, quoted IR cut to a few lines, a crash told apart from a
// rejected program, and a "hint:" line for the failures users meet most.
#pragma once

#include <string>
#include <vector>

#include "kiln/target/target.h"
#include "kiln/util/error.h"
#include "kiln/util/subprocess.h"

namespace kiln::compile {

// The compiler's stderr cut for a message.
struct Summary {
  std::string text;          // the kept lines, "\n"-separated
  size_t omitted_lines = 0;  // non-empty lines of stderr that are not in `text`
};

// Root-cause lines first (linker errors with their first references,
// "LLVM ERROR:", failed assertions), then the error diagnostics with
// file:line:column and their notes; warnings and stack dumps are dropped.
// Each diagnostic keeps at most a few quoted lines, each line at most a few
// hundred characters, the whole at most `max_lines` lines.
Summary summarize(const std::string& stderr_text, size_t max_lines = 12);

// summarize(...).text.
std::string summarize_diagnostics(const std::string& stderr_text, size_t max_lines = 12);

// How a failed compiler run ended, read from its status and its stderr.
enum class Failure {
  kRejected,       // the compiler reported errors in the program and exited
  kCrashed,        // killed by a signal (segfault, abort, SIGFPE, ...)
  kInternalError,  // exited, but with the compiler's own internal error (LLVM ERROR, assertion)
};
Failure classify(const util::ProcessResult& result);

// One line "hint: ..." for a failure users hit and can fix, or "".
// `target` words the advice; `flags` are the compiler flags of the run
// (whether f64 was kept, for instance).
std::string hint(const std::string& stderr_text, const target::Target& target, const std::vector<std::string>& flags);

// What describe_failure needs to know about the run.
struct FailureContext {
  std::string what;            // "compiling m.mlir for cpu"
  target::Target target;
  std::vector<std::string> flags;
  std::string input_given;     // the input path as the user gave it ...
  std::string input_compiled;  // ... and as the compiler was given it (rewritten in messages)
  std::string log;             // the saved log as the message names it; "" when none was saved
  std::string output_dir;      // for "the disk holding ... is full"
  double timeout_seconds = 0;
};

// The error for a compiler run that did not succeed: its code (compile
// failed, internal, deadline, resource) and a message with the kept
// diagnostics, "N more lines in LOG", a hint and the log's path.
Error describe_failure(const util::ProcessResult& result, const FailureContext& context);

}  // namespace kiln::compile
