// Object storage: where a fleet keeps what every host must see (uploads,
// artifacts, the shared compile cache). A Bucket holds whole objects under
// keys; a put is atomic from a reader's view (an object is there whole or not
// at all) and records the object's SHA-256, which every get checks.
//
// Two implementations: an S3-compatible store (AWS S3, MinIO, Ceph,
// SeaweedFS; requests signed by libcurl's SigV4) and a local folder (one
// host, or a shared file system).
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "kiln/util/error.h"

namespace kiln::blob {

namespace fs = std::filesystem;

class Bucket {
 public:
  virtual ~Bucket() = default;
  // "s3://bucket/prefix at http://host:port", for messages.
  virtual std::string describe() const = 0;
  // Reachable, and the bucket exists: an error says which and how to fix it.
  virtual Status check() = 0;
  virtual Status put(const std::string& key, const std::string& bytes) = 0;
  // The object's bytes, checked against the checksum recorded at put;
  // nullopt when there is no such object.
  virtual Result<std::optional<std::string>> get(const std::string& key) = 0;
  virtual Status remove(const std::string& key) = 0;

  Status put_file(const std::string& key, const fs::path& file);
  // Writes the object to `dest` atomically (temporary file, then rename);
  // false when there is no such object.
  Result<bool> get_file(const std::string& key, const fs::path& dest);
};

// Where the variables of the standard AWS configuration point.
struct S3Settings {
  std::string endpoint;  // AWS_ENDPOINT_URL; empty: https://s3.REGION.amazonaws.com
  std::string region;    // AWS_REGION (or AWS_DEFAULT_REGION); default us-east-1
  std::string access_key, secret_key, session_token;  // AWS_ACCESS_KEY_ID, ...
  static S3Settings from_environment();
};

// "s3://bucket/prefix" (with `s3`), "file:///path" or a plain absolute
// path (a folder). Keys are [A-Za-z0-9._/-] only.
Result<std::unique_ptr<Bucket>> open(const std::string& url, const S3Settings& s3 = S3Settings::from_environment());

// Whether `key` is a key kiln writes: no "..", no leading '/', safe characters.
bool valid_key(const std::string& key);

}  // namespace kiln::blob
