// The HTTP/1.1 front of the service (Boost.Beast, asynchronous): the server
// owns every connection. Each has deadlines for its headers, its body and
// its response; connections are capped per client address and in total,
// and a new connection over a cap displaces the longest-idle keep-alive
// connection (so /healthz is answered however many idle connections are
// held open). The bearer check and the upload limit apply to the headers,
// before a body is read. On SIGINT/SIGTERM it stops accepting, closes every
// connection and joins its threads before returning.
#pragma once

#include <chrono>
#include <string>

#include "kiln/serve/service.h"

namespace kiln::serve {

struct HttpOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                  // 0: any free port
  std::string port_file;            // where to write the port actually bound
  int max_connections = 256;        // open connections in all
  int max_connections_per_client = 64;  // open connections from one address
  int threads = 4;                  // threads serving requests
  // A request's headers must arrive within this time of the connection
  // being opened or kept alive; idle keep-alive connections end then too.
  std::chrono::milliseconds header_timeout{10000};
  // The body must arrive at no less than ~64 KiB/s: the deadline is this
  // plus the bytes received so far at that rate (not the declared length),
  // so a client that trickles is dropped after about this long. Uploads
  // take at most 7/8 of the connection caps; the rest stay for requests
  // without a body (/healthz, /metrics, status).
  std::chrono::milliseconds body_timeout{30000};
  std::chrono::milliseconds write_timeout{60000};
};

// Serves until SIGINT/SIGTERM; returns after every connection is closed
// and every thread of the front has ended.
Status serve_http(Service& service, const HttpOptions& options);

}  // namespace kiln::serve
