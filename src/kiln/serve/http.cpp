#include "kiln/serve/http.h"

#include <poll.h>

#include <atomic>
#include <limits>
#include <iostream>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>

#include "kiln/util/file.h"
#include "kiln/util/signals.h"

namespace kiln::serve {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

template <typename Body>
void send(tcp::socket& socket, http::response<Body>& res, beast::error_code& ec) {
  res.set(http::field::server, "kiln");
  res.prepare_payload();
  http::write(socket, res, ec);
}

void send_simple(tcp::socket& socket, unsigned version, bool keep_alive, const Response& r, beast::error_code& ec) {
  if (!r.file.empty()) {
    http::response<http::file_body> res{http::status::ok, version};
    beast::error_code open_ec;
    res.body().open(r.file.c_str(), beast::file_mode::scan, open_ec);
    if (!open_ec) {
      res.set(http::field::content_type, r.content_type);
      for (const auto& [k, v] : r.headers) res.set(k, v);
      res.keep_alive(keep_alive);
      send(socket, res, ec);
      return;
    }
    Response missing{500, "application/json", R"({"error": {"code": "internal", "message": "the artifact file is missing"}})", {}, {}};
    send_simple(socket, version, keep_alive, missing, ec);
    return;
  }
  http::response<http::string_body> res{static_cast<http::status>(r.status), version};
  res.set(http::field::content_type, r.content_type);
  for (const auto& [k, v] : r.headers) res.set(k, v);
  res.body() = r.body;
  res.keep_alive(keep_alive);
  send(socket, res, ec);
}

void session(tcp::socket socket, Service& service, std::atomic<int>& active) {
  beast::flat_buffer buffer;
  beast::error_code ec;
  while (!util::interrupted()) {
    http::request_parser<http::string_body> parser;
    // No limit while the headers are read: an oversized Content-Length is
    // answered with 413 below instead of failing the parse.
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    http::read_header(socket, buffer, parser, ec);
    if (ec) break;
    auto& header = parser.get();
    std::string target(header.target());
    Request request;
    request.method = std::string(header.method_string());
    request.path = target.substr(0, target.find('?'));
    request.authorization = std::string(header[http::field::authorization]);
    request.content_type = std::string(header[http::field::content_type]);
    bool keep_alive = header.keep_alive();
    unsigned version = header.version();
    bool needs_auth = request.path != "/healthz" && request.path != "/readyz";
    if (needs_auth && !service.authorized(request.authorization)) {
      // Refused before the body is read; the connection closes.
      send_simple(socket, version, false, service.handle(request), ec);
      break;
    }
    if (auto length = parser.content_length(); length && *length > service.max_upload() + (64 << 10)) {
      Response too_big{413, "application/json",
                       fmt::format(R"({{"error": {{"code": "resource_exhausted", "message": "the upload is {} bytes; this service takes at most {} bytes"}}}})",
                                   *length, service.max_upload()),
                       {}, {}};
      send_simple(socket, version, false, too_big, ec);
      break;
    }
    // The limit applies to the whole body; the multipart framing around a
    // model is small, so allow a little over the upload limit.
    parser.body_limit(service.max_upload() + (64 << 10));
    http::read(socket, buffer, parser, ec);
    if (ec == http::error::body_limit) {
      Response too_big{413, "application/json", R"({"error": {"code": "resource_exhausted", "message": "the upload is over this service's limit"}})", {}, {}};
      send_simple(socket, version, false, too_big, ec);
      break;
    }
    if (ec) break;
    request.body = std::move(parser.get().body());
    send_simple(socket, version, keep_alive, service.handle(request), ec);
    if (ec || !keep_alive) break;
  }
  socket.shutdown(tcp::socket::shutdown_send, ec);
  --active;
}

}  // namespace

Status serve_http(Service& service, const HttpOptions& options) {
  net::io_context ioc;
  beast::error_code ec;
  auto address = net::ip::make_address(options.host, ec);
  if (ec) return fail(Code::kInvalidArgument, "--listen: '" + options.host + "' is not an IP address");
  tcp::acceptor acceptor(ioc);
  tcp::endpoint endpoint(address, static_cast<unsigned short>(options.port));
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return fail(Code::kUnavailable, fmt::format("cannot listen on {}:{}: {}", options.host, options.port, ec.message()));
  }
  int port = acceptor.local_endpoint().port();
  if (!options.port_file.empty()) KILN_TRY_STATUS(util::write_file_atomic(options.port_file, std::to_string(port) + "\n"));
  std::cerr << fmt::format("kiln serve: listening on http://{}:{}\n", options.host, port) << std::flush;

  std::atomic<int> active{0};
  while (!util::interrupted()) {
    pollfd pfd{acceptor.native_handle(), POLLIN, 0};
    if (::poll(&pfd, 1, 200) <= 0) continue;
    tcp::socket socket(ioc);
    acceptor.accept(socket, ec);
    if (ec) continue;
    if (active >= options.max_connections) {
      socket.close(ec);  // over the limit: the client retries
      continue;
    }
    ++active;
    std::thread(session, std::move(socket), std::ref(service), std::ref(active)).detach();
  }
  acceptor.close(ec);
  for (int i = 0; i < 100 && active > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  return {};
}

}  // namespace kiln::serve
