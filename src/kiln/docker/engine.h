// A client for the Docker Engine API over its unix socket. HTTP goes through
// libcurl, loaded when the first request is made (dlopen "libcurl.so.4"), so
// kiln itself runs on hosts without libcurl and without Docker; only the
// container executor needs them.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "kiln/util/error.h"

namespace kiln::docker {

struct Response {
  long status = 0;
  std::string body;
};

class Engine {
 public:
  // The socket is $DOCKER_HOST (unix:// only) or /var/run/docker.sock.
  static Result<Engine> connect();

  const std::string& socket() const { return socket_; }

  // One request to the API (path without the version prefix, which is added).
  Result<Response> request(const std::string& method, const std::string& path, const std::string& body = "",
                           long timeout_ms = 60000) const;
  // request() that expects JSON and a 2xx status; anything else becomes an
  // error carrying the engine's own message.
  Result<nlohmann::json> call(const std::string& method, const std::string& path,
                              const nlohmann::json& body = nullptr, long timeout_ms = 60000) const;

 private:
  explicit Engine(std::string socket) : socket_(std::move(socket)) {}
  std::string socket_;
};

// Docker's container log stream multiplexes stdout and stderr in frames of
// [stream, 0, 0, 0, size (big-endian u32)] + payload.
void demultiplex(const std::string& raw, std::string& out, std::string& err);

}  // namespace kiln::docker
