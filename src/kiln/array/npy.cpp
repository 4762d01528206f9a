#include "kiln/array/npy.h"

#include <cctype>
#include <optional>

#include <zlib.h>

#include <cstring>

#include <fmt/format.h>

#include "kiln/util/file.h"
#include "kiln/util/strings.h"

namespace kiln::array {
namespace {

constexpr std::string_view kMagic = "\x93NUMPY";

struct Descr {
  const char* numpy;
  const char* element;
};
// NumPy type codes and kiln's element types (little-endian data only).
constexpr Descr kDescrs[] = {
    {"|b1", "i1"},   {"|i1", "i8"},   {"|u1", "ui8"},  {"<i2", "i16"},  {"<u2", "ui16"}, {"<i4", "i32"},
    {"<u4", "ui32"}, {"<i8", "i64"},  {"<u8", "ui64"}, {"<f2", "f16"},  {"<f4", "f32"},  {"<f8", "f64"},
    {"<c8", "complex<f32>"}, {"<c16", "complex<f64>"}, {"<V2", "void2"}, {"|V2", "void2"}, {"<V1", "void1"},
    {"|V1", "void1"}};

std::string descr_for(const std::string& element) {
  if (element == "bf16") return "<V2";
  if (element_size(element) == 1 && is_float(element)) return "|V1";
  for (const auto& d : kDescrs) {
    if (element == d.element) return d.numpy;
  }
  return "";
}

tl::unexpected<Error> bad(const std::string& why) { return fail(Code::kInvalidArgument, why); }

constexpr size_t kMaxHeader = 1 << 20;

// The value of 'key' in the header's dict: between `open` and `close`, or
// (when they are 0) the bare word that follows the colon. A linear scan: the
// header is input, and a backtracking regex over it can exhaust the stack.
std::optional<std::string> header_value(const std::string& header, const std::string& key, char open, char close) {
  size_t at = header.find("'" + key + "'");
  if (at == std::string::npos) return std::nullopt;
  size_t i = at + key.size() + 2;
  auto skip_space = [&] {
    while (i < header.size() && std::isspace(static_cast<unsigned char>(header[i]))) ++i;
  };
  skip_space();
  if (i >= header.size() || header[i] != ':') return std::nullopt;
  ++i;
  skip_space();
  if (open == 0) {
    size_t end = i;
    while (end < header.size() && std::isalpha(static_cast<unsigned char>(header[end]))) ++end;
    return header.substr(i, end - i);
  }
  if (i >= header.size() || header[i] != open) return std::nullopt;
  size_t end = header.find(close, i + 1);
  if (end == std::string::npos) return std::nullopt;
  return header.substr(i + 1, end - i - 1);
}

uint16_t u16(const unsigned char* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }
uint32_t u32(const unsigned char* p) { return u16(p) | static_cast<uint32_t>(u16(p + 2)) << 16; }
uint64_t u64(const unsigned char* p) { return u32(p) | static_cast<uint64_t>(u32(p + 4)) << 32; }

// Reverses the axes' order of a Fortran-order array into C order.
std::vector<uint8_t> fortran_to_c(const std::vector<uint8_t>& data, const std::vector<int64_t>& shape, size_t width) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::vector<uint8_t> out(data.size());
  std::vector<int64_t> idx(shape.size(), 0);
  for (int64_t c = 0; c < n; ++c) {
    // c walks C order; compute the Fortran offset of the same index.
    int64_t f = 0, stride = 1;
    for (size_t d = 0; d < shape.size(); ++d) {
      f += idx[d] * stride;
      stride *= shape[d];
    }
    std::memcpy(out.data() + c * width, data.data() + f * width, width);
    for (size_t d = shape.size(); d-- > 0;) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

}  // namespace

Result<Array> parse_npy(std::string_view bytes) {
  if (bytes.size() < 10 || bytes.substr(0, 6) != kMagic) return bad("not a .npy file (no \\x93NUMPY magic)");
  auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  int major = p[6];
  size_t header_len, header_at;
  if (major == 1) {
    header_len = u16(p + 8);
    header_at = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) return bad("truncated .npy header");
    header_len = u32(p + 8);
    header_at = 12;
  } else {
    return bad(fmt::format(".npy format version {} is not supported (1 to 3 are)", major));
  }
  if (header_at + header_len > bytes.size()) return bad("truncated .npy header");
  // A real header is a short dict; numpy itself writes under 4 KiB.
  if (header_len > kMaxHeader) {
    return bad(fmt::format("the .npy header is {} bytes; kiln reads headers of up to {} bytes", header_len, kMaxHeader));
  }
  std::string header(bytes.substr(header_at, header_len));
  auto descr = header_value(header, "descr", '\'', '\'');
  if (!descr) return bad("the .npy header has no 'descr'");
  auto order = header_value(header, "fortran_order", 0, 0);
  if (!order || (*order != "True" && *order != "False")) return bad("the .npy header has no 'fortran_order'");
  bool fortran = *order == "True";
  auto shape = header_value(header, "shape", '(', ')');
  if (!shape) return bad("the .npy header has no 'shape'");
  Array a;
  // The product of the non-zero dimensions is bounded by the file's size
  // as they are read, so no product of dimensions can overflow later.
  uint64_t count = 1;
  for (const auto& part : util::split(*shape, ',')) {
    auto dim = util::trim(part);
    if (dim.empty()) continue;
    char* end = nullptr;
    std::string text(dim);
    long long v = std::strtoll(text.c_str(), &end, 10);
    if (*end != '\0' || v < 0) return bad("bad dimension '" + text + "' in the .npy shape");
    a.shape.push_back(v);
    if (v > 0 && (count = count * static_cast<uint64_t>(v)) > bytes.size()) {
      return bad(fmt::format("the .npy shape ({}) needs more elements than the file has bytes (truncated or corrupt file)",
                             util::trim(*shape)));
    }
  }
  for (const auto& d : kDescrs) {
    if (*descr == d.numpy) a.element = d.element;
  }
  if (*descr == "|i1" || *descr == "<i1") a.element = "i8";
  if (a.element.empty()) {
    return bad("the .npy data type '" + *descr + "' is not supported (big-endian, strings and objects are not; "
               "use little-endian numbers or booleans)");
  }
  size_t width = a.element == "void2" ? 2 : a.element == "void1" ? 1 : element_size(a.element);
  size_t expected = static_cast<size_t>(a.count()) * width;
  size_t data_at = header_at + header_len;
  if (bytes.size() - data_at != expected) {
    return bad(fmt::format("the .npy data is {} bytes, but shape ({}) of {} needs {} (truncated or corrupt file)",
                           bytes.size() - data_at, a.shape_text(), *descr, expected));
  }
  a.data.assign(bytes.begin() + data_at, bytes.end());
  if (fortran && a.shape.size() > 1) a.data = fortran_to_c(a.data, a.shape, width);
  return a;
}

std::string serialize_npy(const Array& a) {
  std::vector<std::string> dims;
  for (int64_t d : a.shape) dims.push_back(std::to_string(d));
  std::string shape = util::join(dims, ", ") + (a.shape.size() == 1 ? "," : "");
  std::string header = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': ({}), }}", descr_for(a.element), shape);
  // Pad so that magic + version + length + header is a multiple of 64.
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string out(kMagic);
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  out += header;
  out.append(reinterpret_cast<const char*>(a.data.data()), a.data.size());
  return out;
}

Result<Array> read_npy(const std::filesystem::path& path) {
  auto bytes = util::read_file(path);
  if (!bytes) return tl::unexpected(bytes.error());
  auto a = parse_npy(*bytes);
  if (!a) return tl::unexpected(a.error().context(path.string()));
  return a;
}

Status write_npy(const std::filesystem::path& path, const Array& a) {
  return util::write_file_atomic(path, serialize_npy(a));
}

Result<std::vector<std::pair<std::string, Array>>> parse_npz(std::string_view z, const std::string& label) {
  auto where = [&](const std::string& why) { return bad(label + ": " + why); };
  auto* p = reinterpret_cast<const unsigned char*>(z.data());
  // End of central directory: the last "PK\5\6" within the final 64 KiB.
  size_t eocd = std::string::npos;
  for (size_t i = z.size() >= 22 ? z.size() - 22 : 0; i + 22 <= z.size(); --i) {
    if (u32(p + i) == 0x06054b50) {
      eocd = i;
      break;
    }
    if (i == 0 || z.size() - i > 65557) break;
  }
  if (eocd == std::string::npos) return where("not a .npz (zip) archive, or truncated");
  // Every offset and length read from the archive is checked against its
  // size before it is used (fits() cannot overflow).
  auto fits = [&](uint64_t offset, uint64_t length) { return offset <= z.size() && length <= z.size() - offset; };
  uint64_t entries = u16(p + eocd + 10), cd_offset = u32(p + eocd + 16);
  if (eocd >= 20 && u32(p + eocd - 20) == 0x07064b50) {  // zip64 locator
    uint64_t z64 = u64(p + eocd - 12);
    if (!fits(z64, 56) || u32(p + z64) != 0x06064b50) return where("corrupt zip64 directory");
    entries = u64(p + z64 + 32);
    cd_offset = u64(p + z64 + 48);
  }
  std::vector<std::pair<std::string, Array>> out;
  size_t at = cd_offset;
  for (uint64_t e = 0; e < entries; ++e) {
    if (!fits(at, 46) || u32(p + at) != 0x02014b50) return where("corrupt zip central directory");
    uint16_t method = u16(p + at + 10);
    uint64_t comp = u32(p + at + 20), size = u32(p + at + 24);
    uint16_t name_len = u16(p + at + 28), extra_len = u16(p + at + 30), comment_len = u16(p + at + 32);
    uint64_t local = u32(p + at + 42);
    if (!fits(at, 46 + uint64_t{name_len} + extra_len + comment_len)) return where("corrupt zip central directory");
    std::string name(z.substr(at + 46, name_len));
    // zip64 extra field: the 64-bit values of the fields that read 0xFFFFFFFF.
    size_t extra_end = at + 46 + name_len + extra_len;
    for (size_t x = at + 46 + name_len; x + 4 <= extra_end;) {
      uint16_t id = u16(p + x), len = u16(p + x + 2);
      size_t v = x + 4, field_end = std::min<size_t>(v + len, extra_end);
      if (id == 0x0001) {
        if (size == 0xFFFFFFFF && v + 8 <= field_end) { size = u64(p + v); v += 8; }
        if (comp == 0xFFFFFFFF && v + 8 <= field_end) { comp = u64(p + v); v += 8; }
        if (local == 0xFFFFFFFF && v + 8 <= field_end) { local = u64(p + v); }
      }
      x += 4 + len;
    }
    at += 46 + name_len + extra_len + comment_len;
    if (!fits(local, 30) || u32(p + local) != 0x04034b50) return where("corrupt zip entry " + name);
    uint64_t data = local + 30 + u16(p + local + 26) + u16(p + local + 28);
    if (!fits(data, comp)) return where("truncated member " + name);
    // Deflate cannot expand more than about 1032 to 1: a larger stated size
    // is a damaged (or hostile) archive, refused before it is allocated.
    if ((method == 0 && size != comp) || (method == 8 && size > comp * 1032 + 1024)) {
      return where("corrupt zip entry " + name + ": its sizes do not agree");
    }
    std::string member;
    if (method == 0) {
      member = z.substr(data, comp);
    } else if (method == 8) {
      member.resize(size);
      z_stream s = {};
      s.next_in = const_cast<Bytef*>(p + data);
      s.avail_in = static_cast<uInt>(comp);
      s.next_out = reinterpret_cast<Bytef*>(member.data());
      s.avail_out = static_cast<uInt>(size);
      if (inflateInit2(&s, -MAX_WBITS) != Z_OK) return where("zlib cannot start");
      int rc = inflate(&s, Z_FINISH);
      inflateEnd(&s);
      if (rc != Z_STREAM_END) return where("corrupt compressed member " + name);
    } else {
      return where(fmt::format("member {} uses zip method {}; only stored and deflated are supported", name, method));
    }
    auto a = parse_npy(member);
    if (!a) return where(name + ": " + a.error().message);
    if (name.size() > 4 && name.substr(name.size() - 4) == ".npy") name.resize(name.size() - 4);
    out.emplace_back(name, std::move(*a));
  }
  return out;
}

Result<std::vector<std::pair<std::string, Array>>> read_npz(const std::filesystem::path& path) {
  auto file = util::read_file(path);
  if (!file) return tl::unexpected(file.error());
  return parse_npz(*file, path.string());
}

Status write_npz(const std::filesystem::path& path, const std::vector<std::pair<std::string, Array>>& members) {
  std::string zip, directory;
  auto put16 = [](std::string& s, uint16_t v) { s += static_cast<char>(v & 0xff); s += static_cast<char>(v >> 8); };
  auto put32 = [&](std::string& s, uint32_t v) { put16(s, v & 0xffff); put16(s, v >> 16); };
  for (const auto& [name, array] : members) {
    std::string file = name + ".npy";
    std::string data = serialize_npy(array);
    if (data.size() >= 0xFFFFFFFFull || zip.size() >= 0xFFFFFFFFull) {
      return fail(Code::kResourceExhausted, path.string() + ": members over 4 GiB are not supported");
    }
    uint32_t crc = static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())));
    uint32_t offset = static_cast<uint32_t>(zip.size());
    put32(zip, 0x04034b50); put16(zip, 20); put16(zip, 0); put16(zip, 0); put16(zip, 0); put16(zip, 0x21);
    put32(zip, crc); put32(zip, static_cast<uint32_t>(data.size())); put32(zip, static_cast<uint32_t>(data.size()));
    put16(zip, static_cast<uint16_t>(file.size())); put16(zip, 0);
    zip += file;
    zip += data;
    put32(directory, 0x02014b50); put16(directory, 20); put16(directory, 20); put16(directory, 0); put16(directory, 0);
    put16(directory, 0); put16(directory, 0x21); put32(directory, crc);
    put32(directory, static_cast<uint32_t>(data.size())); put32(directory, static_cast<uint32_t>(data.size()));
    put16(directory, static_cast<uint16_t>(file.size())); put16(directory, 0); put16(directory, 0); put16(directory, 0);
    put16(directory, 0); put32(directory, 0); put32(directory, offset);
    directory += file;
  }
  uint32_t cd_offset = static_cast<uint32_t>(zip.size());
  zip += directory;
  put32(zip, 0x06054b50); put16(zip, 0); put16(zip, 0);
  put16(zip, static_cast<uint16_t>(members.size())); put16(zip, static_cast<uint16_t>(members.size()));
  put32(zip, static_cast<uint32_t>(directory.size())); put32(zip, cd_offset); put16(zip, 0);
  return util::write_file_atomic(path, zip);
}

Status reinterpret(Array& a, const std::string& element, const std::string& what) {
  if (a.element == element) return {};
  size_t want = element_size(element);
  bool raw = (a.element == "void2" && want == 2) || (a.element == "void1" && want == 1);
  if (raw) {
    a.element = element;
    return {};
  }
  return fail(Code::kInvalidArgument, fmt::format("{} has element type {}, but the module expects {}", what,
                                                  util::starts_with(a.element, "void") ? "raw " + a.element.substr(4) + "-byte values" : a.element,
                                                  element));
}

}  // namespace kiln::array
