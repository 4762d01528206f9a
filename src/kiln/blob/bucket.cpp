#include "kiln/blob/bucket.h"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include <fmt/format.h>

#include "kiln/util/curl.h"
#include "kiln/util/file.h"
#include "kiln/util/hash.h"
#include "kiln/util/strings.h"

namespace kiln::blob {
namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// The header in which kiln records an object's SHA-256 (user metadata, which
// every S3-compatible store keeps and returns as it was given).
constexpr const char* kChecksumHeader = "x-amz-meta-kiln-sha256";

Status checksum_matches(const std::string& key, const std::string& bytes, const std::string& recorded,
                        const std::string& where) {
  if (recorded.empty()) return fail(Code::kInternal, fmt::format("{}: object {} has no recorded checksum; it was not "
                                                                 "written by kiln", where, key));
  std::string actual = util::sha256_hex(bytes);
  if (actual != recorded) {
    return fail(Code::kInternal, fmt::format("{}: object {} is damaged (SHA-256 {} where {} was written)", where, key,
                                             actual.substr(0, 12), recorded.substr(0, 12)));
  }
  return {};
}

// ---------------------------------------------------------------- S3

struct Reply {
  long status = 0;
  std::string body;
  std::string checksum;  // the value of kChecksumHeader, if any
};

size_t read_header(char* data, size_t size, size_t count, void* sink) {
  std::string_view line(data, size * count);
  std::string lower = util::to_lower(std::string(line.substr(0, std::min<size_t>(line.size(), 64))));
  std::string prefix = std::string(kChecksumHeader) + ":";
  if (util::starts_with(lower, prefix)) {
    static_cast<Reply*>(sink)->checksum = std::string(util::trim(line.substr(prefix.size())));
  }
  return size * count;
}

class S3Bucket final : public Bucket {
 public:
  S3Bucket(std::string bucket, std::string prefix, S3Settings settings)
      : bucket_(std::move(bucket)), prefix_(std::move(prefix)), s_(std::move(settings)) {
    if (s_.region.empty()) s_.region = "us-east-1";
    if (s_.endpoint.empty()) s_.endpoint = "https://s3." + s_.region + ".amazonaws.com";
    while (!s_.endpoint.empty() && s_.endpoint.back() == '/') s_.endpoint.pop_back();
  }

  std::string describe() const override {
    return fmt::format("s3://{}/{} at {}", bucket_, prefix_, s_.endpoint);
  }

  Status check() override {
    if (s_.access_key.empty() || s_.secret_key.empty()) {
      return fail(Code::kFailedPrecondition, fmt::format("the object store {} needs credentials: set AWS_ACCESS_KEY_ID "
                                                         "and AWS_SECRET_ACCESS_KEY", describe()));
    }
    // A listing of at most one key: needs the bucket and read permission,
    // writes nothing. (Query parameters in sorted order: libcurl signs them
    // as written.)
    auto r = KILN_TRY(call("GET", "", "", "?list-type=2&max-keys=1", 1));
    if (r.status == 200) return {};
    return fail(Code::kFailedPrecondition, fmt::format("the object store {} answered {} to a listing: {}{}", describe(),
                                                       r.status, summary(r.body), hint(r.status)));
  }

  Status put(const std::string& key, const std::string& bytes) override {
    auto r = KILN_TRY(call("PUT", key, bytes, ""));
    if (r.status == 200) return {};
    return fail(r.status >= 500 ? Code::kUnavailable : Code::kFailedPrecondition,
                fmt::format("storing {} in {} failed ({}): {}{}", key, describe(), r.status, summary(r.body),
                            hint(r.status)));
  }

  Result<std::optional<std::string>> get(const std::string& key) override {
    auto r = KILN_TRY(call("GET", key, "", ""));
    if (r.status == 404) return std::optional<std::string>();
    if (r.status != 200) {
      return fail(r.status >= 500 ? Code::kUnavailable : Code::kFailedPrecondition,
                  fmt::format("reading {} from {} failed ({}): {}{}", key, describe(), r.status, summary(r.body),
                              hint(r.status)));
    }
    KILN_TRY_STATUS(checksum_matches(key, r.body, r.checksum, describe()));
    return std::optional<std::string>(std::move(r.body));
  }

  Status remove(const std::string& key) override {
    auto r = KILN_TRY(call("DELETE", key, "", ""));
    if (r.status == 204 || r.status == 200 || r.status == 404) return {};
    return fail(Code::kUnavailable, fmt::format("removing {} from {} failed ({}): {}", key, describe(), r.status,
                                                summary(r.body)));
  }

 private:
  static std::string summary(const std::string& body) {
    // S3 errors are XML: <Code>...</Code><Message>...</Message>.
    auto tag = [&](const std::string& name) {
      size_t a = body.find("<" + name + ">"), b = body.find("</" + name + ">");
      if (a == std::string::npos || b == std::string::npos || b < a) return std::string();
      return body.substr(a + name.size() + 2, b - a - name.size() - 2);
    };
    std::string code = tag("Code"), message = tag("Message");
    if (!code.empty()) return code + (message.empty() ? "" : " (" + message + ")");
    return body.empty() ? "no details" : std::string(util::trim(body.substr(0, 200)));
  }
  static std::string hint(long status) {
    if (status == 403) return "; check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION";
    if (status == 404) return "; does the bucket exist? (create it, or fix the s3:// address)";
    return "";
  }

  // One request, tried up to `tries` times while the store cannot be reached
  // or answers 5xx (with a growing pause between tries).
  Result<Reply> call(const std::string& method, const std::string& key, const std::string& body,
                     const std::string& query, int tries = 3) {
    if (!key.empty() && !valid_key(key)) return fail(Code::kInternal, "not an object key: " + key);
    auto api = KILN_TRY(util::curl("the S3 object store"));
    std::string url = fmt::format("{}/{}/{}{}{}", s_.endpoint, bucket_, key.empty() ? "" : prefix_, key, query);
    std::string sigv4 = "aws:amz:" + s_.region + ":s3";
    std::string user = s_.access_key + ":" + s_.secret_key;
    for (int attempt = 1;; ++attempt) {
      CURL* h = api->easy_init();
      if (!h) return fail(Code::kInternal, "curl_easy_init failed");
      Reply reply;
      curl_slist* headers = nullptr;
      // S3 wants the payload's SHA-256 in a signed header, which libcurl
      // (7.88) does not add by itself.
      std::string body_sha = util::sha256_hex(body);
      std::string checksum_line, token_line, payload_line = "x-amz-content-sha256: " + body_sha;
      headers = api->slist_append(headers, payload_line.c_str());
      if (method == "PUT") {
        checksum_line = fmt::format("{}: {}", kChecksumHeader, body_sha);
        headers = api->slist_append(headers, checksum_line.c_str());
        headers = api->slist_append(headers, "Content-Type: application/octet-stream");
      }
      if (!s_.session_token.empty()) {
        token_line = "x-amz-security-token: " + s_.session_token;
        headers = api->slist_append(headers, token_line.c_str());
      }
      api->easy_setopt(h, CURLOPT_URL, url.c_str());
      api->easy_setopt(h, CURLOPT_CUSTOMREQUEST, method.c_str());
      api->easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4.c_str());
      api->easy_setopt(h, CURLOPT_USERPWD, user.c_str());
      if (headers) api->easy_setopt(h, CURLOPT_HTTPHEADER, headers);
      api->easy_setopt(h, CURLOPT_WRITEFUNCTION, &util::curl_append);
      api->easy_setopt(h, CURLOPT_WRITEDATA, &reply.body);
      api->easy_setopt(h, CURLOPT_HEADERFUNCTION, &read_header);
      api->easy_setopt(h, CURLOPT_HEADERDATA, &reply);
      api->easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
      api->easy_setopt(h, CURLOPT_TIMEOUT_MS, 600000L);
      // A store that stops answering (a partition, a paused process) ends a
      // request after 30 s without a byte, not at the 10-minute limit.
      api->easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
      api->easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 30L);
      api->easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
      if (method == "PUT") {
        api->easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
        api->easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
      }
      if (method == "GET" && !key.empty()) api->easy_setopt(h, CURLOPT_HTTPGET, 1L);
      CURLcode rc = api->easy_perform(h);
      api->easy_getinfo(h, CURLINFO_RESPONSE_CODE, &reply.status);
      api->slist_free_all(headers);
      api->easy_cleanup(h);
      bool retry = rc != CURLE_OK || reply.status >= 500;
      if (!retry || attempt >= tries) {
        if (rc != CURLE_OK) {
          return fail(Code::kUnavailable, fmt::format("the object store {} cannot be reached ({} {}): {}; is it running, "
                                                      "and is AWS_ENDPOINT_URL right?",
                                                      describe(), method, key.empty() ? "/" : key, api->easy_strerror(rc)));
        }
        return reply;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200 * attempt * attempt));
    }
  }

  std::string bucket_, prefix_;
  S3Settings s_;
};

// ---------------------------------------------------------------- folder

// Each object is one file: its SHA-256 in hex, a newline, then its bytes,
// written to a temporary file and renamed into place.
class FolderBucket final : public Bucket {
 public:
  explicit FolderBucket(fs::path root) : root_(std::move(root)) {}

  std::string describe() const override { return "the folder " + root_.string(); }

  Status check() override {
    std::error_code ec;
    fs::create_directories(root_, ec);
    if (ec || ::access(root_.c_str(), W_OK) != 0) {
      return fail(Code::kFailedPrecondition, fmt::format("cannot write to {} (give a folder kiln may write)", describe()));
    }
    return {};
  }

  Status put(const std::string& key, const std::string& bytes) override {
    if (!valid_key(key)) return fail(Code::kInternal, "not an object key: " + key);
    fs::path file = root_ / key;
    std::error_code ec;
    fs::create_directories(file.parent_path(), ec);
    return util::write_file_atomic(file, util::sha256_hex(bytes) + "\n" + bytes);
  }

  Result<std::optional<std::string>> get(const std::string& key) override {
    if (!valid_key(key)) return fail(Code::kInternal, "not an object key: " + key);
    fs::path file = root_ / key;
    std::error_code ec;
    if (!fs::exists(file, ec)) return std::optional<std::string>();
    auto text = KILN_TRY(util::read_file(file));
    size_t nl = text.find('\n');
    std::string recorded = nl == 64 ? text.substr(0, 64) : "";
    std::string bytes = nl == std::string::npos ? "" : text.substr(nl + 1);
    KILN_TRY_STATUS(checksum_matches(key, bytes, recorded, describe()));
    return std::optional<std::string>(std::move(bytes));
  }

  Status remove(const std::string& key) override {
    std::error_code ec;
    if (valid_key(key)) fs::remove(root_ / key, ec);
    return {};
  }

 private:
  fs::path root_;
};

}  // namespace

S3Settings S3Settings::from_environment() {
  S3Settings s;
  s.endpoint = env("AWS_ENDPOINT_URL_S3").empty() ? env("AWS_ENDPOINT_URL") : env("AWS_ENDPOINT_URL_S3");
  s.region = env("AWS_REGION").empty() ? env("AWS_DEFAULT_REGION") : env("AWS_REGION");
  s.access_key = env("AWS_ACCESS_KEY_ID");
  s.secret_key = env("AWS_SECRET_ACCESS_KEY");
  s.session_token = env("AWS_SESSION_TOKEN");
  return s;
}

bool valid_key(const std::string& key) {
  if (key.empty() || key.size() > 900 || key[0] == '/' || key.find("..") != std::string::npos) return false;
  for (char c : key) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-' || c == '/';
    if (!ok) return false;
  }
  return true;
}

Status Bucket::put_file(const std::string& key, const fs::path& file) {
  auto bytes = KILN_TRY(util::read_file(file));
  return put(key, bytes);
}

Result<bool> Bucket::get_file(const std::string& key, const fs::path& dest) {
  auto bytes = KILN_TRY(get(key));
  if (!bytes) return false;
  std::error_code ec;
  fs::create_directories(dest.parent_path(), ec);
  KILN_TRY_STATUS(util::write_file_atomic(dest, *bytes));
  return true;
}

Result<std::unique_ptr<Bucket>> open(const std::string& url, const S3Settings& s3) {
  if (util::starts_with(url, "s3://")) {
    std::string rest = url.substr(5);
    size_t slash = rest.find('/');
    std::string bucket = rest.substr(0, slash);
    std::string prefix = slash == std::string::npos ? "" : rest.substr(slash + 1);
    if (!prefix.empty() && prefix.back() != '/') prefix += '/';
    bool bucket_ok = bucket.size() >= 3 && bucket.size() <= 63 &&
                     bucket.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789.-") == std::string::npos;
    if (!bucket_ok || (!prefix.empty() && !valid_key(prefix))) {
      return fail(Code::kInvalidArgument, fmt::format("{}: expected s3://BUCKET/PREFIX (bucket: 3-63 of a-z 0-9 . -; "
                                                      "prefix: letters, digits, . _ - /)", url));
    }
    return std::unique_ptr<Bucket>(new S3Bucket(bucket, prefix, s3));
  }
  std::string path = util::starts_with(url, "file://") ? url.substr(7) : url;
  if (path.empty() || path[0] != '/') {
    return fail(Code::kInvalidArgument, fmt::format("{}: expected s3://BUCKET/PREFIX or an absolute folder "
                                                    "(file:///path)", url));
  }
  return std::unique_ptr<Bucket>(new FolderBucket(path));
}

}  // namespace kiln::blob
