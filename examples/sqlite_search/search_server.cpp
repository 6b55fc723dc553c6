// search_server.cpp - accept loop, connection coroutines and the two endpoints.
// Distributed under the Boost Software License, Version 1.0.
#include "search_server.hpp"

#include "catalog/errors.hpp"
#include "catalog/json.hpp"
#include "example/as_tuple.hpp"

#include <smartasync/context_carrier.hpp>
#include <smartasync/error.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/ip/address.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
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

// One connection's state, shared with its timers' handlers so they can tell whether it still exists.
struct search_server::connection {
  explicit connection(tcp::socket s)
      : socket(std::move(s)), idle(socket.get_executor()), request_deadline(socket.get_executor()) {}
  tcp::socket socket;
  asio::steady_timer idle;             // restarts on every read: a quiet keep-alive connection
  asio::steady_timer request_deadline; // from a request's first byte: a trickling client
  std::uint64_t request_number = 0;    // tells a stale deadline handler from the current one
  bool request_open = false;
  bool request_timed_out = false;
  // Reading, with no request begun: the connection may be closed to make room for a new one
  // (nothing is lost: the client has sent nothing it waits an answer for).
  bool awaiting_request = false;
  std::uint64_t awaiting_since = 0; // when it began waiting: a number from next_wait_number_
  std::uint64_t read_number = 0; // tells a stale idle handler (its read completed) from the current one
  bool busy = false;      // answering a request: stop() lets it finish
  bool searching = false; // awaiting a search on the pool: stop() cancels it
  std::string content_type; // of an added route's answer, until it is written
  asio::cancellation_signal search_cancel;
};

search_server::search_server(asio::io_context& io, search_backend backend, server_options options)
    : io_(io), backend_(std::move(backend)), options_(std::move(options)), acceptor_(io), accept_backoff_(io),
      grace_timer_(io) {
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
    if (*alive)
      begin_shutdown();
  });
}

void search_server::begin_shutdown() {
  if (stopped_)
    return;
  stopped_ = true;
  asio::error_code ec;
  acceptor_.close(ec);
  accept_backoff_.cancel();
  for (auto* conn : connections_) {
    if (conn->searching)
      // Partial: the pool unlinks a queued search (it completes with operation_aborted, we
      // answer 503) and leaves a running one alone; the grace timer deals with those.
      conn->search_cancel.emit(asio::cancellation_type::partial);
    else if (!conn->busy)
      conn->socket.close(ec); // waiting for a request: nothing to answer; the read fails
  }
  if (searches_in_flight_ == 0)
    return end_grace();
  grace_timer_.expires_after(options_.shutdown_grace);
  grace_timer_.async_wait([this, alive = alive_](asio::error_code e) {
    if (*alive && !e)
      end_grace();
  });
}

void search_server::end_grace() {
  if (grace_over_)
    return;
  grace_over_ = true;
  grace_timer_.cancel();
  asio::error_code ec;
  for (auto* conn : connections_) {
    if (conn->searching)
      conn->search_cancel.emit(asio::cancellation_type::terminal); // answer 503 now
    else if (!conn->busy)
      conn->socket.close(ec);
  }
}

asio::awaitable<void> search_server::accept_loop() {
  std::uint64_t episode_failures = 0;
  while (!stopped_) {
    auto [ec, socket] = co_await acceptor_.async_accept(example::as_tuple(use_awaitable));
    if (stopped_ || ec == asio::error::operation_aborted)
      break;
    if (ec) {
      accept_failures_.fetch_add(1, std::memory_order_relaxed);
      // Out of descriptors or memory, the pending connection stays queued and the listening
      // socket stays readable: accepting again at once fails again at once, a busy loop
      // (162 000 calls in 5 s). Wait, and retry; connections closing meanwhile free descriptors.
      const bool resources = ec == asio::error::no_descriptors || ec.value() == ENFILE ||
                             ec == asio::error::no_buffer_space || ec == asio::error::no_memory;
      if (!resources)
        continue; // e.g. ECONNABORTED: that one connection is gone; the next may be fine
      const bool descriptors = ec.value() == EMFILE || ec.value() == ENFILE;
      if (episode_failures++ == 0)
        log(fmt::format("accept failed: {} ({}); retrying every {} ms, serving the {} open connections",
                        ec.message(), descriptors ? "out of file descriptors" : "out of memory",
                        options_.accept_backoff.count(), connections_.size()));
      accept_backoff_.expires_after(options_.accept_backoff);
      (void)co_await accept_backoff_.async_wait(example::as_tuple(use_awaitable));
      continue;
    }
    if (episode_failures != 0) {
      log(fmt::format("accepting again after {} failed accept calls", episode_failures));
      episode_failures = 0;
    }
    if (connections_.size() >= options_.max_connections && !shed_longest_waiting()) {
      // Past the cap, with every place answering a request, a client gets a clear answer
      // rather than a silent queue.
      rejected_.fetch_add(1, std::memory_order_relaxed);
      asio::co_spawn(io_, reject(std::move(socket)), asio::detached);
      continue;
    }
    asio::co_spawn(io_, session(std::move(socket)), asio::detached);
  }
}

// At the cap, the connection waiting longest for a request gives its place to the new one:
// otherwise clients that connect and say nothing (or idle keep-alive ones) would lock everyone
// out, health probes included, until their deadline. A connection answering a request, or
// reading one, is never chosen.
bool search_server::shed_longest_waiting() {
  connection* oldest = nullptr;
  for (auto* conn : connections_)
    if (conn->awaiting_request && (!oldest || conn->awaiting_since < oldest->awaiting_since))
      oldest = conn;
  if (!oldest)
    return false;
  // Its place is free now: the descriptor closes at once, and its coroutine, woken by the
  // failed read, ends without touching the count again.
  connections_.erase(oldest);
  oldest->awaiting_request = false;
  asio::error_code ec;
  oldest->socket.close(ec);
  shed_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void search_server::log(const std::string& line) const {
  if (options_.log)
    options_.log(line);
}

asio::awaitable<void> search_server::session(tcp::socket raw_socket) {
  auto conn = std::make_shared<connection>(std::move(raw_socket));
  auto& socket = conn->socket;
  connections_.insert(conn.get());
  struct unregister {
    search_server* server;
    connection* conn;
    std::shared_ptr<bool> alive;
    ~unregister() {
      if (*alive)
        server->connections_.erase(conn);
    }
  } registration{this, conn.get(), alive_};

  const std::weak_ptr<connection> weak = conn;
  // Until its first byte a connection has the short first_byte_timeout, not the idle timeout
  // of a keep-alive client between requests: a silent client has not earned 30 s of a place.
  bool first_read = true;
  auto arm_idle_timer = [&] {
    conn->idle.expires_after(first_read ? std::min(options_.first_byte_timeout, options_.idle_timeout)
                                        : options_.idle_timeout);
    conn->idle.async_wait([weak, this, alive = alive_, first = first_read,
                           number = ++conn->read_number](asio::error_code ec) {
      auto c = weak.lock();
      // A timer that expired as its read completed still runs this: the read has moved on.
      if (!c || ec || c->read_number != number)
        return;
      if (first && *alive)
        silent_.fetch_add(1, std::memory_order_relaxed);
      c->socket.close(ec); // the pending read fails; the coroutine ends
    });
  };
  // The idle timer restarts on every byte, so alone it lets a client keep a connection forever
  // by trickling one header byte at a time. A request gets a total deadline too.
  auto open_request = [&] {
    conn->request_open = true;
    conn->request_deadline.expires_after(options_.request_timeout);
    conn->request_deadline.async_wait([weak, number = ++conn->request_number](asio::error_code ec) {
      auto c = weak.lock();
      if (!c || ec || !c->request_open || c->request_number != number)
        return;
      c->request_timed_out = true;
      c->socket.cancel(ec); // the pending read completes with operation_aborted; we answer 408
    });
  };
  auto close_request = [&] {
    conn->request_open = false;
    conn->request_deadline.cancel();
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
        conn->awaiting_request = !conn->request_open;
        conn->awaiting_since = ++next_wait_number_;
        auto [ec, n] =
            co_await socket.async_read_some(asio::buffer(buffer), example::as_tuple(use_awaitable));
        conn->awaiting_request = false;
        first_read = false;
        ++conn->read_number;
        conn->idle.cancel();
        if (ec == asio::error::operation_aborted && conn->request_timed_out) {
          requests_.fetch_add(1, std::memory_order_relaxed);
          const auto text = http::make_response(
              408, json_type,
              error_body(fmt::format("request not complete within {} ms", options_.request_timeout.count())), false);
          co_await asio::async_write(socket, asio::buffer(text), use_awaitable);
          linger = true;
          break;
        }
        if (ec)
          break; // the peer went away, the idle timer fired, or stop() closed the socket
        begin = 0;
        end = n;
      }
      if (!conn->request_open)
        open_request();
      begin += parser.feed(std::string_view(buffer.data() + begin, end - begin));

      if (parser.failed()) {
        // The byte stream can no longer be framed: answer, then close this connection.
        close_request();
        requests_.fetch_add(1, std::memory_order_relaxed);
        const auto text = http::make_response(parser.error_status(), json_type,
                                              error_body(parser.error_message()), false);
        co_await asio::async_write(socket, asio::buffer(text), use_awaitable);
        linger = true;
        break;
      }
      if (!parser.complete())
        continue; // everything buffered was consumed; read more

      close_request();
      const http::request request = parser.take();
      conn->busy = true;
      // Read by the offloaded search on its worker: smartasync carries it there (and back to
      // this coroutine when the search completes), whatever other connections set meanwhile.
      smartasync::request_id::current() = fmt::format("req-{}", ++next_request_id_);
      const response r = co_await handle(request, *conn);
      requests_.fetch_add(1, std::memory_order_relaxed);
      if (r.streamed)
        break; // an added route has answered on the socket itself, and is done with it
      const bool keep_alive = request.keep_alive && !stopped_;
      const auto text = http::make_response(r.status, r.content_type, r.body, keep_alive, r.headers,
                                            request.method == "HEAD");
      co_await asio::async_write(socket, asio::buffer(text), use_awaitable);
      conn->busy = false;
      // stop() may have run during the write, and skipped this connection as busy: close it
      // now rather than wait for another request (the idle timeout, 30 s; the test saw it).
      if (!keep_alive || stopped_) {
        linger = true;
        break;
      }
    }
  } catch (const std::exception&) {
    // A write failed: the peer went away, or stop() closed the socket.
  }
  conn->idle.cancel();
  conn->busy = false;
  close_request();

  if (linger)
    co_await linger_close(conn);
  asio::error_code ec;
  socket.close(ec);
}

// Half-close, then drain briefly: closing with unread input would send RST and could destroy
// our answer before the client has read it.
asio::awaitable<void> search_server::linger_close(std::shared_ptr<connection> conn) {
  asio::error_code ec;
  if (!conn->socket.is_open())
    co_return;
  conn->socket.shutdown(tcp::socket::shutdown_send, ec);
  conn->idle.expires_after(std::chrono::milliseconds(500));
  conn->idle.async_wait([weak = std::weak_ptr<connection>(conn)](asio::error_code e) {
    if (auto c = weak.lock(); c && !e)
      c->socket.close(e);
  });
  std::array<char, 4096> buffer;
  std::size_t drained = 0;
  while (drained < 1024 * 1024) {
    auto [read_ec, n] =
        co_await conn->socket.async_read_some(asio::buffer(buffer), example::as_tuple(use_awaitable));
    if (read_ec)
      break;
    drained += n;
  }
  conn->idle.cancel();
  conn->socket.close(ec);
}

asio::awaitable<void> search_server::reject(tcp::socket socket) {
  auto conn = std::make_shared<connection>(std::move(socket));
  requests_.fetch_add(1, std::memory_order_relaxed);
  const auto text = http::make_response(
      503, json_type, error_body(fmt::format("too many connections (at most {})", options_.max_connections)), false,
      {{"Retry-After", "1"}});
  auto [ec, n] =
      co_await asio::async_write(conn->socket, asio::buffer(text), example::as_tuple(use_awaitable));
  (void)n;
  if (!ec)
    co_await linger_close(conn);
}

asio::awaitable<search_server::response> search_server::handle(const http::request& request, connection& conn) {
  // 405 must say what is allowed (RFC 9110, 15.5.6).
  const response not_allowed{405, error_body("use GET or HEAD"), {{"Allow", "GET, HEAD"}}};
  if (options_.routes) {
    // The route's answer is copied out before `added` goes (its strings back the response).
    std::optional<route_response> added = co_await options_.routes(request, conn.socket);
    if (added) {
      conn.content_type = std::move(added->content_type);
      co_return response{added->status, std::move(added->body), std::move(added->headers), conn.content_type,
                         added->streamed};
    }
  }
  if (request.path == "/health") {
    if (!get_or_head(request))
      co_return not_allowed;
    co_return response{200, dump(json{{"status", "ok"}, {"mode", options_.inline_search ? "inline" : "offloaded"}})};
  }
  if (request.path == "/ready") {
    if (!get_or_head(request))
      co_return not_allowed;
    co_return co_await handle_ready();
  }
  if (request.path == "/search") {
    if (!get_or_head(request))
      co_return not_allowed;
    co_return co_await handle_search(request, conn);
  }
  if (request.path == "/metrics" && options_.metrics) {
    if (!get_or_head(request))
      co_return not_allowed;
    // A few microseconds per pool (bench/metrics_registry.cpp): cheap enough for the loop.
    co_return response{200, options_.metrics->prometheus_text(), {}, smartasync::metrics_registry::content_type};
  }
  co_return response{404, error_body("no such resource; try /search?q=..., /health or /ready")};
}

asio::awaitable<search_server::response> search_server::handle_ready() {
  if (stopped_)
    co_return response{503, dump(json{{"status", "stopping"}})};
  // The probe takes the same path as a search (the pool, or the loop with --inline), so a pool
  // that sheds load is not ready either.
  try {
    if (options_.inline_search)
      backend_.probe();
    else
      co_await backend_.async_probe();
  } catch (const std::exception& e) {
    co_return response{503, dump(json{{"status", "unavailable"}, {"error", e.what()}})};
  }
  co_return response{200, dump(json{{"status", "ready"}})};
}

asio::awaitable<search_server::response> search_server::handle_search(const http::request& request,
                                                                     connection& conn) {
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

  if (stopped_)
    co_return response{503, error_body("server shutting down"), {{"Retry-After", "1"}}};

  // While the search is in flight, stop() can reach it through conn.search_cancel.
  struct in_flight {
    search_server& server;
    connection& conn;
    in_flight(search_server& s, connection& c) : server(s), conn(c) {
      conn.searching = true;
      ++server.searches_in_flight_;
    }
    ~in_flight() {
      conn.searching = false;
      if (--server.searches_in_flight_ == 0 && server.stopped_)
        server.end_grace(); // nothing left to wait for
    }
    in_flight(const in_flight&) = delete;
    in_flight& operator=(const in_flight&) = delete;
  };

  // The search timeout fires through the same slot as stop(). Its handler may run after this
  // coroutine is gone (a timer that expired just before it was destroyed still calls it with
  // success), so it reaches the connection only through `deadline`, which the coroutine
  // disarms when it leaves.
  struct search_deadline {
    asio::cancellation_signal* signal;
    bool armed = true;
    bool fired = false;
  };
  const auto deadline = std::make_shared<search_deadline>(search_deadline{&conn.search_cancel});
  struct disarm {
    search_deadline& d;
    ~disarm() { d.armed = false; }
  } const disarm_at_exit{*deadline};
  asio::steady_timer timeout(io_);
  if (options_.search_timeout.count() > 0 && !options_.inline_search) {
    timeout.expires_after(options_.search_timeout);
    timeout.async_wait([deadline](asio::error_code ec) {
      if (ec || !deadline->armed)
        return;
      deadline->fired = true;
      deadline->signal->emit(asio::cancellation_type::terminal);
    });
  }

  int status = 200;
  std::string message;
  const auto start = std::chrono::steady_clock::now();
  try {
    const in_flight registration(*this, conn);
    // The one line this example is about. Offloaded, the loop serves other connections while
    // SQLite works; inline, every other connection waits (and smartasync reports it).
    // (An if, not ?: -- GCC 12 miscompiles co_await inside a conditional expression.)
    search_result hits;
    if (options_.inline_search)
      hits = backend_.call(q->second, limit);
    else
      hits = co_await backend_.async_call(q->second, limit, conn.search_cancel.slot());
    if (stopped_)
      finished_in_grace_.fetch_add(1, std::memory_order_relaxed);
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
  } catch (const catalog::unavailable& e) {
    // The database server is down or the connection was lost: worth retrying shortly.
    co_return response{503, error_body(e.what()), {{"Retry-After", "1"}}};
  } catch (const std::system_error& e) {
    if (e.code() == asio::error::operation_aborted && deadline->fired) {
      timed_out_.fetch_add(1, std::memory_order_relaxed);
      co_return response{504, error_body(fmt::format("search timed out after {} ms and was cancelled",
                                                     options_.search_timeout.count()))};
    }
    if (e.code() == asio::error::operation_aborted && stopped_) {
      // Cancelled by stop(): before the grace ended it never started, after it, it overran.
      (grace_over_ ? cancelled_running_ : cancelled_queued_).fetch_add(1, std::memory_order_relaxed);
      co_return response{503, error_body("server shutting down; search cancelled"), {{"Retry-After", "1"}}};
    }
    // queue_full / pool_stopped: the pool is shedding load or shutting down.
    status = e.code().category() == smartasync::error_category() ? 503 : 500, message = e.what();
  } catch (const std::exception& e) {
    status = 500, message = e.what();
  }
  co_return response{status, error_body(message)};
}

} // namespace sqlite_search
