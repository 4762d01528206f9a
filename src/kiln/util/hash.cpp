#include "kiln/util/hash.h"

#include <openssl/evp.h>

#include <memory>

#include "kiln/util/file.h"

namespace kiln::util {
namespace {

using Context = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;

std::string to_hex(const unsigned char* digest, unsigned int length) {
  static const char digits[] = "0123456789abcdef";
  std::string hex(length * 2, '0');
  for (unsigned int i = 0; i < length; ++i) {
    hex[2 * i] = digits[digest[i] >> 4];
    hex[2 * i + 1] = digits[digest[i] & 15];
  }
  return hex;
}

std::string digest_of(std::string_view bytes) {
  Context ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  // Feed large inputs in slices so the mapping is read sequentially.
  constexpr size_t kSlice = 1 << 22;
  for (size_t off = 0; off < bytes.size(); off += kSlice) {
    EVP_DigestUpdate(ctx.get(), bytes.data() + off, std::min(kSlice, bytes.size() - off));
  }
  EVP_DigestFinal_ex(ctx.get(), digest, &length);
  return to_hex(digest, length);
}

}  // namespace

std::string sha256_hex(std::string_view bytes) { return digest_of(bytes); }

Result<std::string> sha256_file(const std::filesystem::path& path) {
  auto mapped = KILN_TRY(MappedFile::open(path));
  return digest_of(mapped.bytes());
}

}  // namespace kiln::util
