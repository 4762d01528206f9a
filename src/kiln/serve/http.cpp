#include "kiln/serve/http.h"

#include <atomic>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>

#include "kiln/util/file.h"
#include "kiln/util/signals.h"
#include "kiln/util/strings.h"

namespace kiln::serve {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

// Slowest rates a client may send a body or read a response at before its
// deadline passes (on top of the fixed allowance).
constexpr uint64_t kMinBodyBytesPerSecond = 64 << 10;
constexpr uint64_t kMinReadBytesPerSecond = 1 << 20;

class Server;

// One connection, served on its own strand: read a request's headers (the
// connection is idle until they start to arrive), check them, read the
// body, answer, and start over while the client keeps the connection.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Server& server, std::string client)
      : stream_(std::move(socket)), server_(server), client_(std::move(client)) {}
  ~Session();

  void start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read_header(); });
  }
  // From any thread: close the connection (shutdown, or displaced by a new
  // one while idle).
  void close_soon() {
    net::post(stream_.get_executor(), [self = shared_from_this()] { self->close(); });
  }
  bool idle() const { return idle_.load(); }
  Clock::time_point idle_since() const { return Clock::time_point(Clock::duration(idle_since_.load())); }
  const std::string& client() const { return client_; }

 private:
  void read_header();
  void on_header(beast::error_code ec);
  void read_body();
  void on_body(beast::error_code ec);
  void end_upload();
  void respond(const Response& r, bool keep_alive);
  template <typename Message>
  void write(std::shared_ptr<Message> message, uint64_t bytes, bool keep_alive);
  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Request request_;
  bool keep_alive_ = false;
  unsigned version_ = 11;
  bool uploading_ = false;  // holds one of the server's upload slots
  Clock::time_point body_started_;
  std::atomic<bool> idle_{true};
  std::atomic<Clock::rep> idle_since_{Clock::now().time_since_epoch().count()};
  Server& server_;
  std::string client_;
};

class Server {
 public:
  Server(Service& service, const HttpOptions& options)
      : service(service), options(options), ioc_(std::max(1, options.threads)), acceptor_(ioc_), ticker_(ioc_) {}

  Status listen();
  // Serves until SIGINT/SIGTERM, then closes every connection and joins
  // the threads.
  void run();
  void forget(Session* session, const std::string& client);
  // A slot for a request body, or false when the slots (all of them, or
  // this client's) are taken: part of each cap is kept for requests without
  // a body, so probes and status requests are answered while uploads fill
  // the rest.
  bool begin_upload(const std::string& client);
  void end_upload(const std::string& client);

  Service& service;
  const HttpOptions options;

 private:
  void accept_next();
  void on_accept(tcp::socket socket);
  void tick();
  void shut_down();

  net::io_context ioc_;
  tcp::acceptor acceptor_;
  net::steady_timer ticker_;
  std::mutex mu_;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions_;
  std::unordered_map<std::string, int> per_client_;
  int uploads_ = 0;
  std::unordered_map<std::string, int> uploads_per_client_;
  bool stopping_ = false;
};

Session::~Session() {
  end_upload();
  server_.forget(this, client_);
}

void Session::end_upload() {
  if (uploading_) server_.end_upload(client_);
  uploading_ = false;
}

void Session::read_header() {
  parser_.emplace();
  // No limit while the headers are read: an oversized Content-Length is
  // answered with 413 instead of failing the parse.
  parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
  parser_->header_limit(64 << 10);
  idle_since_ = Clock::now().time_since_epoch().count();
  idle_ = true;
  stream_.expires_after(server_.options.header_timeout);
  http::async_read_header(stream_, buffer_, *parser_,
                          [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
}

// The status for a request whose framing is wrong (RFC 9112), or 0 when it
// is fine. Beast's parse errors arrive in `ec`; what it accepts but kiln does
// not (other versions, transfer codings) is checked on the parsed header.
int framing_status(beast::error_code ec, const http::request_parser<http::string_body>& parser) {
  if (ec == http::error::header_limit) return 431;
  if (ec == http::error::bad_version) return 505;
  if (ec) return ec.category() == http::make_error_code(http::error::bad_method).category() &&
                         ec != http::error::end_of_stream && ec != http::error::partial_message
                     ? 400
                     : 0;
  const auto& header = parser.get();
  if (header.version() != 10 && header.version() != 11) return 505;
  auto te = header.find(http::field::transfer_encoding);
  if (te != header.end()) {
    if (header.find(http::field::content_length) != header.end()) return 400;
    if (util::to_lower(util::trim(std::string_view(te->value().data(), te->value().size()))) != "chunked") return 501;
  }
  return 0;
}

void Session::on_header(beast::error_code ec) {
  idle_ = false;
  if (int status = framing_status(ec, *parser_); status) {
    static const std::map<int, std::pair<const char*, const char*>> kWhy = {
        {400, {"bad_request", "the request's framing is malformed"}},
        {431, {"header_too_large", "the request's headers are over 64 KiB"}},
        {501, {"not_implemented", "the only transfer coding taken is chunked"}},
        {505, {"http_version_not_supported", "this service speaks HTTP/1.0 and HTTP/1.1"}}};
    version_ = 11;
    std::string detail = ec ? " (" + ec.message() + ")" : "";
    return respond(error_response(status, kWhy.at(status).first, kWhy.at(status).second + detail), false);
  }
  if (ec) return close();  // the client left or ran past the deadline
  auto& header = parser_->get();
  std::string target(header.target());
  request_ = {};
  request_.method = std::string(header.method_string());
  request_.path = target.substr(0, target.find('?'));
  request_.authorization = std::string(header[http::field::authorization]);
  request_.content_type = std::string(header[http::field::content_type]);
  keep_alive_ = header.keep_alive();
  version_ = header.version();
  Service& service = server_.service;
  if (Service::needs_token(request_.path) && !service.authorized(request_.authorization)) {
    return respond(service.handle(request_), false);  // refused before the body is read
  }
  // The multipart framing around a model is small: a little over the limit.
  uint64_t limit = service.max_upload() + (64 << 10);
  auto length = parser_->content_length();
  if (length && *length > limit) {
    return respond(error_response(413, "resource_exhausted",
                                  fmt::format("the upload is {} bytes; this service takes at most {} bytes", *length,
                                              service.max_upload())),
                   false);
  }
  parser_->body_limit(limit);
  if (parser_->is_done()) return on_body({});  // no body
  if (!server_.begin_upload(client_)) {
    Response busy = error_response(429, "resource_exhausted", "too many uploads in progress; retry later");
    busy.headers.emplace_back("Retry-After", "5");
    return respond(busy, false);
  }
  uploading_ = true;
  body_started_ = Clock::now();
  read_body();
}

// The body is read in pieces; each extends the deadline by what it brought
// at the slowest rate taken, so the rate is measured on bytes received, not
// on the length a client declares.
void Session::read_body() {
  uint64_t received = parser_->get().body().size();
  stream_.expires_at(body_started_ + server_.options.body_timeout +
                     std::chrono::milliseconds(received * 1000 / kMinBodyBytesPerSecond));
  http::async_read_some(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
    if (!ec && !self->parser_->is_done()) return self->read_body();
    self->on_body(ec);
  });
}

void Session::on_body(beast::error_code ec) {
  end_upload();
  if (ec == http::error::body_limit) {
    return respond(error_response(413, "resource_exhausted", "the upload is over this service's limit"), false);
  }
  if (ec) return close();
  request_.body = std::move(parser_->get().body());
  Response response;
  try {
    response = server_.service.handle(request_);
  } catch (const std::exception& e) {
    response = error_response(500, "internal", std::string("internal error: ") + e.what());
  }
  respond(response, keep_alive_);
}

void Session::respond(const Response& r, bool keep_alive) {
  server_.service.count_response(r.file.empty() ? r.status : 200);
  if (!r.file.empty()) {
    auto res = std::make_shared<http::response<http::file_body>>(http::status::ok, version_);
    beast::error_code open_ec;
    res->body().open(r.file.c_str(), beast::file_mode::scan, open_ec);
    if (open_ec) return respond(error_response(500, "internal", "the artifact file is missing"), keep_alive);
    res->set(http::field::content_type, r.content_type);
    for (const auto& [k, v] : r.headers) res->set(k, v);
    uint64_t bytes = res->body().size();
    return write(std::move(res), bytes, keep_alive);
  }
  auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(r.status), version_);
  res->set(http::field::content_type, r.content_type);
  for (const auto& [k, v] : r.headers) res->set(k, v);
  res->body() = r.body;
  write(std::move(res), r.body.size(), keep_alive);
}

template <typename Message>
void Session::write(std::shared_ptr<Message> message, uint64_t bytes, bool keep_alive) {
  message->set(http::field::server, "kiln");
  message->keep_alive(keep_alive);
  message->prepare_payload();
  stream_.expires_after(server_.options.write_timeout + std::chrono::seconds(bytes / kMinReadBytesPerSecond));
  // The message lives in the handler until the write ends.
  http::async_write(stream_, *message, [self = shared_from_this(), message, keep_alive](beast::error_code ec, size_t) {
    if (ec || !keep_alive) return self->close();
    self->read_header();
  });
}

Status Server::listen() {
  beast::error_code ec;
  auto address = net::ip::make_address(options.host, ec);
  if (ec) return fail(Code::kInvalidArgument, "--listen: '" + options.host + "' is not an IP address");
  tcp::endpoint endpoint(address, static_cast<unsigned short>(options.port));
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return fail(Code::kUnavailable, fmt::format("cannot listen on {}:{}: {}", options.host, options.port, ec.message()));
  int port = acceptor_.local_endpoint().port();
  if (!options.port_file.empty()) KILN_TRY_STATUS(util::write_file_atomic(options.port_file, std::to_string(port) + "\n"));
  std::cerr << fmt::format("kiln serve: listening on http://{}:{}\n", options.host, port) << std::flush;
  return {};
}

void Server::accept_next() {
  acceptor_.async_accept(net::make_strand(ioc_), [this](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted) return;  // the acceptor was closed
    if (!ec) on_accept(std::move(socket));
    accept_next();
  });
}

// Admits a connection within the caps. Over a cap, the longest-idle
// keep-alive connection (of the same client when that client is over its
// own cap) makes room; when none is idle, the new connection is closed.
void Server::on_accept(tcp::socket socket) {
  beast::error_code ec;
  std::string client = socket.remote_endpoint(ec).address().to_string();
  if (ec) return;
  std::shared_ptr<Session> displaced, session;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    bool client_full = per_client_[client] >= options.max_connections_per_client;
    bool all_full = static_cast<int>(sessions_.size()) >= options.max_connections;
    if (client_full || all_full) {
      for (const auto& [raw, weak] : sessions_) {
        auto s = weak.lock();
        if (!s || !s->idle() || (client_full && s->client() != client)) continue;
        if (!displaced || s->idle_since() < displaced->idle_since()) displaced = s;
      }
      if (!displaced) return;  // every connection is busy: the client retries
    }
    session = std::make_shared<Session>(std::move(socket), *this, client);
    sessions_[session.get()] = session;
    ++per_client_[client];
  }
  if (displaced) displaced->close_soon();
  session->start();
}

bool Server::begin_upload(const std::string& client) {
  std::lock_guard<std::mutex> lock(mu_);
  int total = options.max_connections - std::max(1, options.max_connections / 8);
  int per_client = options.max_connections_per_client - std::max(1, options.max_connections_per_client / 8);
  if (uploads_ >= std::max(1, total) || uploads_per_client_[client] >= std::max(1, per_client)) return false;
  ++uploads_;
  ++uploads_per_client_[client];
  return true;
}

void Server::end_upload(const std::string& client) {
  std::lock_guard<std::mutex> lock(mu_);
  --uploads_;
  if (--uploads_per_client_[client] <= 0) uploads_per_client_.erase(client);
}

void Server::forget(Session* session, const std::string& client) {
  std::lock_guard<std::mutex> lock(mu_);
  if (sessions_.erase(session) && --per_client_[client] <= 0) per_client_.erase(client);
}

void Server::tick() {
  if (util::shutdown_requested()) return shut_down();
  ticker_.expires_after(std::chrono::milliseconds(100));
  ticker_.async_wait([this](beast::error_code ec) {
    if (!ec) tick();
  });
}

void Server::shut_down() {
  beast::error_code ec;
  acceptor_.close(ec);
  std::vector<std::shared_ptr<Session>> open;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    for (const auto& [raw, weak] : sessions_) {
      if (auto s = weak.lock()) open.push_back(std::move(s));
    }
  }
  for (auto& s : open) s->close_soon();
}

void Server::run() {
  accept_next();
  tick();
  std::vector<std::thread> threads;
  for (int i = 1; i < std::max(1, options.threads); ++i) threads.emplace_back([this] { ioc_.run(); });
  ioc_.run();  // returns once every connection has ended and nothing is pending
  for (auto& t : threads) t.join();
}

}  // namespace

Status serve_http(Service& service, const HttpOptions& options) {
  Server server(service, options);
  KILN_TRY_STATUS(server.listen());
  server.run();
  return {};
}

}  // namespace kiln::serve
