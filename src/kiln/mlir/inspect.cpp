#include "kiln/mlir/inspect.h"

#include <algorithm>

#include <fmt/format.h>

#include "kiln/mlir/dot_algorithm.h"
#include "kiln/mlir/jax_serialized.h"
#include "kiln/mlir/scanner.h"
#include "kiln/util/file.h"
#include "kiln/util/strings.h"

namespace kiln::mlir {
namespace {

namespace fs = std::filesystem;

// Text that is not UTF-8-ish MLIR: NUL bytes or many control characters in
// the first 4 KiB. Caught here so the error can say "binary data".
bool looks_binary(std::string_view head) {
  head = head.substr(0, 4096);
  size_t control = 0;
  for (unsigned char c : head) {
    if (c == 0) return true;
    if (c < 0x20 && c != '\n' && c != '\r' && c != '\t') ++control;
  }
  return control > head.size() / 100 + 1;
}

}  // namespace

Format detect_format(std::string_view head) {
  return util::starts_with(head, kBytecodeMagic) ? Format::kBytecode : Format::kText;
}

std::string bytecode_producer(std::string_view bytes) {
  // magic, a varint version, then the producer as a NUL-terminated string.
  size_t pos = kBytecodeMagic.size();
  while (pos < bytes.size() && (static_cast<unsigned char>(bytes[pos]) & 1) == 0 && pos < 16) ++pos;
  ++pos;  // the varint's last byte (MLIR uses a prefix varint; versions fit one byte)
  size_t end = bytes.find('\0', pos);
  if (end == std::string_view::npos || end - pos > 256) return {};
  return std::string(bytes.substr(pos, end - pos));
}

Result<ModuleInfo> inspect_text(std::string_view text) {
  auto scanned = KILN_TRY(scan_text(text));
  return std::move(scanned.info);
}

Result<ModuleInfo> inspect_file(const std::filesystem::path& path, const BytecodePrinter& printer) {
  auto in_file = [&](const Error& e) { return tl::unexpected(e.context(path.string())); };
  auto mapped = util::MappedFile::open(path);
  if (!mapped) return tl::unexpected(mapped.error());
  std::string_view bytes = mapped->bytes();
  if (bytes.empty()) {
    return fail(Code::kInvalidArgument, path.string() + ": the file is empty; expected StableHLO as MLIR text or bytecode");
  }

  ModuleInfo info;
  if (detect_format(bytes) == Format::kBytecode) {
    std::string producer = bytecode_producer(bytes);
    auto text = printer(path);
    if (!text) return in_file(text.error().context("cannot read MLIR bytecode (truncated or corrupt?)"));
    auto printed = inspect_text(*text);
    if (!printed) return in_file(printed.error().context("reading the printed bytecode"));
    info = std::move(*printed);
    info.dot_algorithms = has_dot_algorithm(*text);
    info.narrow_dots = has_narrow_dot(*text);
    info.producer = std::move(producer);
    info.format = util::starts_with(info.producer, "StableHLO_v") ? "portable-artifact" : "bytecode";
    return info;
  }

  if (is_jax_exported(bytes)) {
    // jax.export's serialized Exported: the module inside is VHLO bytecode,
    // printed like any other; the signature is the module's.
    auto exported = read_jax_exported(bytes);
    if (!exported) return in_file(exported.error());
    auto tmp = util::TempDir::create(util::temp_root(), "kiln-jaxexp-");
    if (!tmp) return in_file(tmp.error());
    fs::path module = tmp->path() / "module.mlirbc";
    if (auto st = util::write_file_atomic(module, std::string(exported->module)); !st) return in_file(st.error());
    auto text = printer(module);
    if (!text) return in_file(text.error().context("cannot read the module inside the serialized Exported"));
    auto printed = inspect_text(*text);
    if (!printed) return in_file(printed.error().context("reading the printed module"));
    info = std::move(*printed);
    info.dot_algorithms = has_dot_algorithm(*text);
    info.narrow_dots = has_narrow_dot(*text);
    info.format = "jax-exported";
    info.producer = fmt::format("jax.export v{} for {}", exported->serialization_version,
                                util::join(exported->platforms, ", "));
    return info;
  }
  if (looks_binary(bytes)) {
    return fail(Code::kInvalidArgument,
                path.string() + ": binary data that is neither MLIR text nor MLIR bytecode (bytecode starts with 'ML\\xEFR')");
  }
  auto scanned = scan_text(bytes);
  // Scanner errors start with "line:col: ", so "file:line:col: ..." reads as
  // a compiler diagnostic that editors can jump to.
  if (!scanned) return fail(scanned.error().code, path.string() + ":" + scanned.error().message);
  if (scanned->needs_reprint) {
    auto text = printer(path);
    if (!text) return in_file(text.error());
    auto printed = inspect_text(*text);
    if (!printed) return in_file(printed.error());
    info = std::move(*printed);
  } else {
    info = std::move(scanned->info);
  }
  info.format = "text";
  return info;
}

const Function* ModuleInfo::find(const std::string& function_name) const {
  auto it = std::find_if(functions.begin(), functions.end(),
                         [&](const Function& f) { return f.name == function_name; });
  return it == functions.end() ? nullptr : &*it;
}

std::vector<const Function*> ModuleInfo::public_functions() const {
  std::vector<const Function*> out;
  for (const auto& f : functions) {
    if (f.is_public) out.push_back(&f);
  }
  return out;
}

}  // namespace kiln::mlir
