#include "kiln/util/error.h"

#include <cstring>

namespace kiln {

const char* code_name(Code code) {
  switch (code) {
    case Code::kInvalidArgument: return "invalid_argument";
    case Code::kNotFound: return "not_found";
    case Code::kFailedPrecondition: return "failed_precondition";
    case Code::kCompileFailed: return "compile_failed";
    case Code::kDeadlineExceeded: return "deadline_exceeded";
    case Code::kResourceExhausted: return "resource_exhausted";
    case Code::kUnavailable: return "unavailable";
    case Code::kCancelled: return "cancelled";
    case Code::kInternal: return "internal";
  }
  return "internal";
}

int exit_code(Code code) {
  switch (code) {
    case Code::kInvalidArgument: return 2;
    case Code::kNotFound: return 3;
    case Code::kFailedPrecondition: return 4;
    case Code::kCompileFailed: return 5;
    case Code::kDeadlineExceeded: return 6;
    case Code::kResourceExhausted: return 7;
    case Code::kUnavailable: return 8;
    case Code::kCancelled: return 130;
    case Code::kInternal: return 70;
  }
  return 70;
}

std::string errno_text(const char* call, int err) {
  return std::string(call) + ": " + std::strerror(err);
}

}  // namespace kiln
