// search_server.cpp - accept loop, connection coroutines and the two endpoints.
// Distributed under the Boost Software License, Version 1.0.
#include "search_server.hpp"

#include "catalog/errors.hpp"
#include "catalog/json.hpp"

#include <smartasync/error.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ip/address.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <nlohmann/json.hpp>

#include <array>
#include <charconv>

namespace sqlite_search {

using asio::ip::tcp;
using asio::use_awaitable;
using json = nlohmann::json;

namespace {

constexpr std::string_view json_type = "application/json";

// Invalid UTF-8 from a client (it is echoed back in "query") must not throw while answering.
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string error_body(std::string_view message) { return dump(json{{"error", message}}); }

// Every resource answers GET and HEAD (HEAD: the GET answer's headers, no body).
bool get_or_head(const http::request& request) { return request.method == "GET" || request.method == "HEAD"; }

} // namespace

search_server::search_server(asio::io_context& io, search_backend backend, server_options options)
    : io_(io), backend_(std::move(backend)), options_(std::move(options)), acceptor_(io) {
  const tcp::endpoint endpoint(asio::ip::make_address(options_.address), options_.port);
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  acceptor_.bind(endpoint);
  acceptor_.listen();
  port_ = acceptor_.local_endpoint().port();
}

search_server::~search_server() { *alive_ = false; }

void search_server::start() { asio::co_spawn(io_, accept_loop(), asio::detached); }

void search_server::stop() {
  asio::post(io_, [this, alive = alive_] {
    if (!*alive || stopped_)
      return;
    stopped_ = true;
    asio::error_code ec;
    acceptor_.close(ec);
    // Closing wakes each connection's pending read with an error, ending its coroutine; a
    // connection waiting for a search finishes that answer, then sees stopped_ and closes.
    for (auto* socket : sockets_)
      socket->close(ec);
  });
}

asio::awaitable<void> search_server::accept_loop() {
  while (!stopped_) {
    auto [ec, socket] = co_await acceptor_.async_accept(asio::experimental::as_tuple(use_awaitable));
    if (ec) {
      if (stopped_ || ec == asio::error::operation_aborted)
        break;
      continue; // e.g. EMFILE: keep serving the connections we have
    }
    asio::co_spawn(io_, session(std::move(socket)), asio::detached);
  }
}

asio::awaitable<void> search_server::session(tcp::socket raw_socket) {
  // Shared so the idle timer's handler can tell whether the connection still exists.
  auto socket = std::make_shared<tcp::socket>(std::move(raw_socket));
  sockets_.insert(socket.get());
  struct unregister {
    search_server* server;
    tcp::socket* socket;
    std::shared_ptr<bool> alive;
    ~unregister() {
      if (*alive)
        server->sockets_.erase(socket);
    }
  } registration{this, socket.get(), alive_};

  asio::steady_timer idle(socket->get_executor());
  auto arm_idle_timer = [&] {
    idle.expires_after(options_.idle_timeout);
    idle.async_wait([weak = std::weak_ptr<tcp::socket>(socket)](asio::error_code ec) {
      if (auto s = weak.lock(); s && !ec)
        s->close(ec); // the pending read fails; the coroutine ends
    });
  };

  http::request_parser parser(options_.limits);
  std::array<char, 8192> buffer;
  std::size_t begin = 0;
  std::size_t end = 0;
  bool linger = false;
  try {
    for (;;) {
      if (begin == end) {
        arm_idle_timer();
        end = co_await socket->async_read_some(asio::buffer(buffer), use_awaitable);
        begin = 0;
        idle.cancel();
      }
      begin += parser.feed(std::string_view(buffer.data() + begin, end - begin));

      if (parser.failed()) {
        // The byte stream can no longer be framed: answer, then close this connection.
        requests_.fetch_add(1, std::memory_order_relaxed);
        const auto text = http::make_response(parser.error_status(), json_type,
                                              error_body(parser.error_message()), false);
        co_await asio::async_write(*socket, asio::buffer(text), use_awaitable);
        linger = true;
        break;
      }
      if (!parser.complete())
        continue; // everything buffered was consumed; read more

      const http::request request = parser.take();
      const response r = co_await handle(request);
      requests_.fetch_add(1, std::memory_order_relaxed);
      const bool keep_alive = request.keep_alive && !stopped_;
      const auto text = http::make_response(r.status, json_type, r.body, keep_alive, r.headers,
                                            request.method == "HEAD");
      co_await asio::async_write(*socket, asio::buffer(text), use_awaitable);
      if (!keep_alive) {
        linger = true;
        break;
      }
    }
  } catch (const std::exception&) {
    // The peer went away, the idle timer fired, or stop() closed the socket.
  }
  idle.cancel();

  asio::error_code ec;
  if (linger && socket->is_open()) {
    // Half-close, then drain briefly: closing with unread input would send RST and could
    // destroy our answer before the client has read it.
    socket->shutdown(tcp::socket::shutdown_send, ec);
    idle.expires_after(std::chrono::milliseconds(500));
    idle.async_wait([weak = std::weak_ptr<tcp::socket>(socket)](asio::error_code e) {
      if (auto s = weak.lock(); s && !e)
        s->close(e);
    });
    std::size_t drained = 0;
    while (drained < 1024 * 1024) {
      auto [read_ec, n] =
          co_await socket->async_read_some(asio::buffer(buffer), asio::experimental::as_tuple(use_awaitable));
      if (read_ec)
        break;
      drained += n;
    }
    idle.cancel();
  }
  socket->close(ec);
}

asio::awaitable<search_server::response> search_server::handle(const http::request& request) {
  // 405 must say what is allowed (RFC 9110, 15.5.6).
  const response not_allowed{405, error_body("use GET or HEAD"), {{"Allow", "GET, HEAD"}}};
  if (request.path == "/health") {
    if (!get_or_head(request))
      co_return not_allowed;
    co_return response{200, dump(json{{"status", "ok"}, {"mode", options_.inline_search ? "inline" : "offloaded"}})};
  }
  if (request.path == "/search") {
    if (!get_or_head(request))
      co_return not_allowed;
    co_return co_await handle_search(request);
  }
  co_return response{404, error_body("no such resource; try /search?q=... or /health")};
}

asio::awaitable<search_server::response> search_server::handle_search(const http::request& request) {
  const auto q = request.query.find("q");
  if (q == request.query.end())
    co_return response{400, error_body("missing query parameter 'q'")};
  int limit = options_.default_limit;
  if (const auto l = request.query.find("limit"); l != request.query.end()) {
    const auto& text = l->second;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), limit);
    if (ec != std::errc() || end != text.data() + text.size())
      co_return response{400, error_body("invalid limit: not an integer")};
  }

  int status = 200;
  std::string message;
  const auto start = std::chrono::steady_clock::now();
  try {
    // The one line this example is about. Offloaded, the loop serves other connections while
    // SQLite works; inline, every other connection waits (and smartasync reports it).
    // (An if, not ?: -- GCC 12 miscompiles co_await inside a conditional expression.)
    search_result hits;
    if (options_.inline_search)
      hits = backend_.call(q->second, limit);
    else
      hits = co_await backend_.async_call(q->second, limit);
    const std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - start;
    co_return response{200, dump(json{{"query", q->second},
                                      {"limit", limit},
                                      {"count", hits.size()},
                                      {"elapsed_ms", took.count()},
                                      {"results", hits}})};
  } catch (const catalog::invalid_query& e) {
    status = 400, message = e.what();
  } catch (const catalog::invalid_limit& e) {
    status = 400, message = e.what();
  } catch (const catalog::database_error& e) {
    status = e.busy() ? 503 : 500, message = e.what();
  } catch (const std::system_error& e) {
    // queue_full / pool_stopped: the pool is shedding load or shutting down.
    status = e.code().category() == smartasync::error_category() ? 503 : 500, message = e.what();
  } catch (const std::exception& e) {
    status = 500, message = e.what();
  }
  co_return response{status, error_body(message)};
}

} // namespace sqlite_search
