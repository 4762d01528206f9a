// Errors are values: every fallible function returns Result<T>. The one
// exception boundary is main(), which prints "kiln: error: ..." and maps the
// code to an exit status (see docs/cli.md for the table).
#pragma once

#include <string>
#include <utility>

#include <tl/expected.hpp>

namespace kiln {

enum class Code {
  kInvalidArgument,     // bad input or usage: the user can fix it
  kNotFound,            // a file, function or tool is missing
  kFailedPrecondition,  // the environment is not ready (toolchain, docker)
  kCompileFailed,       // the compiler rejected the program
  kDeadlineExceeded,    // a time limit ran out
  kResourceExhausted,   // memory, disk or a size limit
  kUnavailable,         // a service did not answer
  kCancelled,           // interrupted by a signal
  kInternal,            // a bug in kiln or a crashed tool
};

struct Error {
  Code code;
  std::string message;

  // Prefixes what was being done: "compiling m.mlir for cuda:sm_80: <message>".
  Error context(const std::string& what) const& { return {code, what + ": " + message}; }
  Error context(const std::string& what) && { return {code, what + ": " + std::move(message)}; }
};

template <typename T>
using Result = tl::expected<T, Error>;
using Status = tl::expected<void, Error>;

inline tl::unexpected<Error> fail(Code code, std::string message) {
  return tl::unexpected<Error>(Error{code, std::move(message)});
}

// "invalid_argument", "not_found", ...: stable names used in JSON output.
const char* code_name(Code code);
// Process exit status for a code (0 is success, 1 is reserved for "ran fine,
// but the answer is no", such as a failed validation).
int exit_code(Code code);

// errno as text, prefixed by the libc call that set it: "open: No such file".
std::string errno_text(const char* call, int err);

}  // namespace kiln

// Evaluates a Result-returning expression; on error returns it from the
// enclosing function, otherwise yields the value.
#define KILN_TRY(expr)                                                   \
  ({                                                                     \
    auto&& kiln_try_result_ = (expr);                                    \
    if (!kiln_try_result_) return tl::unexpected(kiln_try_result_.error()); \
    std::move(*kiln_try_result_);                                        \
  })

#define KILN_TRY_STATUS(expr)                                            \
  do {                                                                   \
    auto&& kiln_try_status_ = (expr);                                    \
    if (!kiln_try_status_) return tl::unexpected(kiln_try_status_.error()); \
  } while (0)
