#include "kiln/docker/engine.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>

#include <fmt/format.h>

#include "kiln/util/curl.h"
#include "kiln/util/strings.h"

namespace kiln::docker {

Result<Engine> Engine::connect() {
  std::string socket = "/var/run/docker.sock";
  if (const char* host = std::getenv("DOCKER_HOST"); host && *host) {
    if (!util::starts_with(host, "unix://")) {
      return fail(Code::kFailedPrecondition, fmt::format("DOCKER_HOST={} is not a unix socket; kiln talks to local "
                                                         "engines only (unix:///var/run/docker.sock)", host));
    }
    socket = host + 7;
  }
  // A plain connect() first: it tells "no engine" apart from HTTP problems.
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket.c_str());
  bool ok = fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  int err = errno;
  if (fd >= 0) ::close(fd);
  if (!ok) {
    return fail(Code::kUnavailable,
                fmt::format("no Docker engine answers on {} ({}); start dockerd (scripts/docker-env.sh does), or "
                            "compile with --executor local",
                            socket, std::strerror(err)));
  }
  return Engine(socket);
}

Result<Response> Engine::request(const std::string& method, const std::string& path, const std::string& body,
                                 long timeout_ms) const {
  auto api = KILN_TRY(util::curl("the Docker executor"));
  CURL* h = api->easy_init();
  if (!h) return fail(Code::kInternal, "curl_easy_init failed");
  Response response;
  curl_slist* headers = api->slist_append(nullptr, "Content-Type: application/json");
  // API 1.41 is Docker 20.10's; newer engines accept it too.
  std::string url = "http://localhost/v1.41" + path;
  api->easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, socket_.c_str());
  api->easy_setopt(h, CURLOPT_URL, url.c_str());
  api->easy_setopt(h, CURLOPT_CUSTOMREQUEST, method.c_str());
  api->easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  api->easy_setopt(h, CURLOPT_WRITEFUNCTION, &util::curl_append);
  api->easy_setopt(h, CURLOPT_WRITEDATA, &response.body);
  api->easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
  api->easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  if (method == "POST" || method == "PUT") {
    api->easy_setopt(h, CURLOPT_POSTFIELDS, body.c_str());
    api->easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  CURLcode rc = api->easy_perform(h);
  api->easy_getinfo(h, CURLINFO_RESPONSE_CODE, &response.status);
  api->slist_free_all(headers);
  api->easy_cleanup(h);
  if (rc != CURLE_OK) {
    return fail(rc == CURLE_OPERATION_TIMEDOUT ? Code::kDeadlineExceeded : Code::kUnavailable,
                fmt::format("Docker engine at {}: {} {}: {}", socket_, method, path, api->easy_strerror(rc)));
  }
  return response;
}

Result<nlohmann::json> Engine::call(const std::string& method, const std::string& path, const nlohmann::json& body,
                                    long timeout_ms) const {
  auto r = KILN_TRY(request(method, path, body.is_null() ? "" : body.dump(), timeout_ms));
  nlohmann::json parsed = nlohmann::json::parse(r.body, nullptr, false);
  if (r.status < 200 || r.status >= 300) {
    std::string message = !parsed.is_discarded() && parsed.contains("message") ? parsed["message"].get<std::string>()
                                                                               : std::string(util::trim(r.body));
    Code code = r.status == 404 ? Code::kNotFound
                : r.status == 409 ? Code::kFailedPrecondition
                : r.status >= 500 ? Code::kUnavailable
                                  : Code::kInvalidArgument;
    return fail(code, fmt::format("the Docker engine refused {} {} ({}): {}", method, path, r.status, message));
  }
  return parsed.is_discarded() ? nlohmann::json(nullptr) : parsed;
}

void demultiplex(const std::string& raw, std::string& out, std::string& err) {
  size_t at = 0;
  while (at + 8 <= raw.size()) {
    auto* h = reinterpret_cast<const unsigned char*>(raw.data() + at);
    size_t size = (size_t{h[4]} << 24) | (size_t{h[5]} << 16) | (size_t{h[6]} << 8) | h[7];
    std::string& sink = h[0] == 2 ? err : out;
    sink.append(raw, at + 8, std::min(size, raw.size() - at - 8));
    at += 8 + size;
  }
}

}  // namespace kiln::docker
