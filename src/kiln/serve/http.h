// The HTTP/1.1 front of the service (Boost.Beast, synchronous): one thread
// per connection up to a limit, keep-alive, the bearer check and the upload
// limit applied on the headers, before a body is read.
#pragma once

#include <string>

#include "kiln/serve/service.h"

namespace kiln::serve {

struct HttpOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                  // 0: any free port
  std::string port_file;            // where to write the port actually bound
  int max_connections = 256;
};

// Serves until SIGINT/SIGTERM; returns after connections are closed.
Status serve_http(Service& service, const HttpOptions& options);

}  // namespace kiln::serve
