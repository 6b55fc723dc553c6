// search_server.hpp - an Asio C++20 coroutine HTTP/1.1 server in front of a wrapped search.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SQLITE_SEARCH_SEARCH_SERVER_HPP
#define SQLITE_SEARCH_SEARCH_SERVER_HPP

#include "catalog/record.hpp"
#include "http.hpp"

#include <smartasync/metrics_registry.hpp>
#include <smartasync/smart_async.hpp>

#include <asio/awaitable.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

namespace sqlite_search {

using search_result = std::vector<catalog::search_hit>;

/// The two forms of one wrapped search function, type-erased so the server is compiled once.
struct search_backend {
  /// The sync form, `search(q, limit)`: on the loop thread this is the classic mistake.
  std::function<search_result(std::string, int)> call;
  /// The async form, `search.async_call(q, limit)`: the call runs on the blocking pool. A signal on
  /// the slot cancels it: any type removes a queued call, terminal stops a running one.
  std::function<asio::awaitable<search_result>(std::string, int, asio::cancellation_slot)> async_call;
  /// The readiness check behind /ready, in the same two forms; throws when not ready.
  std::function<void()> probe;
  std::function<asio::awaitable<void>()> async_probe;
};

/// The backend of a smart_async_function taking (std::string, int) and returning search_result, with
/// `probe` (a smart_async_function taking nothing) as its readiness check.
template <typename F, typename P>
search_backend make_backend(const smartasync::smart_async_function<F>& search, const smartasync::smart_async_function<P>& probe) {
  return {[search](std::string q, int limit) -> search_result { return search(std::move(q), limit); },
          [search](std::string q, int limit, asio::cancellation_slot slot) -> asio::awaitable<search_result> {
            return search.async_call(std::move(q), limit, asio::bind_cancellation_slot(slot, asio::use_awaitable));
          },
          [probe] { probe(); }, [probe]() -> asio::awaitable<void> { return probe.async_call(); }};
}

namespace detail {
// A coroutine with its operand as a parameter (copied into the frame), not a capturing lambda.
inline asio::awaitable<void> discard_result(asio::awaitable<search_result> search) { (void)co_await std::move(search); }
} // namespace detail

/// As above, the readiness check being a search of its own for a word nobody uses. It goes
/// through a serving connection, whose page cache can hide a file damaged since it was read
/// (the server program passes catalog_probe instead); enough for tests and the benchmark.
template <typename F>
search_backend make_backend(const smartasync::smart_async_function<F>& search) {
  return {[search](std::string q, int limit) -> search_result { return search(std::move(q), limit); },
          [search](std::string q, int limit, asio::cancellation_slot slot) -> asio::awaitable<search_result> {
            return search.async_call(std::move(q), limit, asio::bind_cancellation_slot(slot, asio::use_awaitable));
          },
          [search] { (void)search(std::string("smartasyncreadinessprobe"), 1); },
          [search]() -> asio::awaitable<void> {
            return detail::discard_result(
                search.async_call(std::string("smartasyncreadinessprobe"), 1, asio::use_awaitable));
          }};
}

/// What a route added by the embedding program answers (see server_options::routes).
struct route_response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  http::header_list headers{};
  /// The route wrote its answer to the socket itself (a Server-Sent Events stream, say): the
  /// server sends nothing more and closes the connection.
  bool streamed = false;
};

/// A request handler added in front of the built-in ones: nullopt passes the request on (to
/// /search, /health, /ready, then 404). It runs on the server's loop and may keep the socket
/// for as long as it likes (set route_response::streamed), but then it must end on its own
/// when the program stops: stop() waits for a connection answering a request.
using route_handler =
    std::function<asio::awaitable<std::optional<route_response>>(const http::request&, asio::ip::tcp::socket&)>;

struct server_options {
  std::string address = "127.0.0.1";
  /// 0 picks a free port; port() tells which.
  std::uint16_t port = 0;
  /// Call the search's sync form on the loop (the mistake smartasync detects) instead of
  /// awaiting its async form.
  bool inline_search = false;
  http::limits limits{};
  /// A keep-alive connection idle this long is closed (the timer restarts on every read).
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(30);
  /// A new connection that sends no byte this long is closed: a client that connects and
  /// stays silent holds a place for this long, not for the idle timeout.
  std::chrono::milliseconds first_byte_timeout = std::chrono::seconds(5);
  /// A request (line, headers and its small body) not complete this long after its first byte
  /// gets 408 and its connection is closed, however steadily its bytes trickle in.
  std::chrono::milliseconds request_timeout = std::chrono::seconds(10);
  int default_limit = 10;
  /// At stop(), searches still running get this long to finish; then they are answered 503
  /// too (queued ones are answered 503 at once).
  std::chrono::milliseconds shutdown_grace = std::chrono::seconds(5);
  /// A search not answered this long after it was submitted is cancelled (terminal: a queued
  /// one is removed, a running one gets its stop request) and answered 504. 0: no limit.
  /// Offloaded searches only: an --inline search blocks the loop that would time it out.
  std::chrono::milliseconds search_timeout{0};
  /// Connections served at once. When a new one arrives with every place taken, the
  /// connection waiting longest for a request (silent since it connected, or idle between
  /// keep-alive requests) is closed to make room; only when every place is answering a
  /// request is the new one answered 503 with Retry-After and closed. So silent clients
  /// cannot lock out others (/health included). Keep it under the descriptor limit
  /// (ulimit -n) minus what SQLite and Asio use.
  std::size_t max_connections = 512;
  /// When accept() fails for lack of descriptors or memory, wait this long before the next try.
  std::chrono::milliseconds accept_backoff = std::chrono::milliseconds(100);
  /// The pools and lanes `GET /metrics` exposes, in the Prometheus text format; it must
  /// outlive the server. Null: no /metrics (404).
  const smartasync::metrics_registry* metrics = nullptr;
  /// Routes added in front of the built-in ones (examples/dashboard: its page, /sync and the
  /// event stream). Empty: the built-in ones only.
  route_handler routes{};
  /// Operational messages (accept trouble); one line each, no newline. Empty: silent.
  std::function<void(const std::string&)> log = [](const std::string& line) {
    std::fprintf(stderr, "sqlite_search_server: %s\n", line.c_str());
  };
};

/// `GET /search?q=QUERY&limit=N` (JSON results), `GET /health`, `GET /ready`, `GET /metrics`
/// (Prometheus text, when server_options::metrics is set), on one io_context thread.
/**
 * /health is liveness: the loop answers, nothing else is checked. /ready is readiness: a tiny
 * search through the same path as /search succeeds (503 when the database fails, or while the
 * server shuts down).
 *
 * Each connection is a coroutine: read, parse (http_parser), answer, repeat while keep-alive.
 * Malformed requests get 400, unknown paths 404, other methods 405, requests over the limits
 * 413; a broken request closes its connection, never the server.
 *
 * @par Thread safety
 * Run the io_context on one thread. stop() may be called from any thread.
 */
class search_server {
public:
  /// Binds and listens (throws std::system_error when the address is taken); start() accepts.
  search_server(asio::io_context& io, search_backend backend, server_options options);
  search_server(const search_server&) = delete;
  search_server& operator=(const search_server&) = delete;
  ~search_server();

  std::uint16_t port() const noexcept { return port_; }
  const server_options& options() const noexcept { return options_; }

  /// Starts accepting connections.
  void start();

  /// Shuts down gracefully; io_context::run returns when it is done.
  /**
   * Stops accepting and closes the connections not waiting for a search. Queued searches are
   * cancelled in the pool and answered 503 at once; running ones get options().shutdown_grace
   * to finish (their clients get the real answer), then are cancelled (terminal) and answered
   * 503 once the backend lets go of them: at once if it abandons running calls, when the call
   * returns otherwise (both backends interrupt theirs: sqlite3_interrupt, PQcancel). Every
   * answer then closes its connection.
   */
  void stop();

  /// Requests answered so far (any status).
  std::uint64_t requests() const noexcept { return requests_.load(std::memory_order_relaxed); }

  /// Failed accept() calls so far (each back-off waits options().accept_backoff).
  std::uint64_t accept_failures() const noexcept { return accept_failures_.load(std::memory_order_relaxed); }
  /// Connections answered 503 because options().max_connections were open and answering requests.
  std::uint64_t rejected_connections() const noexcept { return rejected_.load(std::memory_order_relaxed); }
  /// Connections waiting for a request closed to make room for a new one at options().max_connections.
  std::uint64_t shed_connections() const noexcept { return shed_.load(std::memory_order_relaxed); }
  /// Connections closed because they sent nothing within options().first_byte_timeout.
  std::uint64_t silent_connections() const noexcept { return silent_.load(std::memory_order_relaxed); }

  /// Searches answered 504 because options().search_timeout passed.
  std::uint64_t timed_out() const noexcept { return timed_out_.load(std::memory_order_relaxed); }

  /// What stop() did with the searches in flight.
  struct shutdown_counts {
    std::uint64_t finished = 0;          // finished within the grace, answered normally
    std::uint64_t cancelled_queued = 0;  // never started: answered 503 at once
    std::uint64_t cancelled_running = 0; // still running when the grace ended: answered 503
  };
  shutdown_counts shutdown_summary() const noexcept {
    return {finished_in_grace_.load(std::memory_order_relaxed), cancelled_queued_.load(std::memory_order_relaxed),
            cancelled_running_.load(std::memory_order_relaxed)};
  }

private:
  struct response {
    int status;
    std::string body;
    http::header_list headers{};
    std::string_view content_type = "application/json";
    bool streamed = false;
  };

  asio::awaitable<void> accept_loop();
  asio::awaitable<void> session(asio::ip::tcp::socket socket);
  struct connection;
  asio::awaitable<response> handle(const http::request& request, connection& conn);
  asio::awaitable<response> handle_search(const http::request& request, connection& conn);
  void begin_shutdown();
  asio::awaitable<void> reject(asio::ip::tcp::socket socket);
  bool shed_longest_waiting();
  static asio::awaitable<void> linger_close(std::shared_ptr<connection> conn);
  void log(const std::string& line) const;
  void end_grace();
  asio::awaitable<response> handle_ready();

  asio::io_context& io_;
  search_backend backend_;
  server_options options_;
  asio::ip::tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::unordered_set<connection*> connections_;
  bool stopped_ = false;
  bool grace_over_ = false;
  std::size_t searches_in_flight_ = 0;
  asio::steady_timer accept_backoff_;
  asio::steady_timer grace_timer_;
  std::atomic<std::uint64_t> requests_{0};
  std::uint64_t next_request_id_ = 0; // on the loop thread
  std::uint64_t next_wait_number_ = 0; // orders the connections waiting for a request
  std::atomic<std::uint64_t> accept_failures_{0}, rejected_{0}, shed_{0}, silent_{0};
  std::atomic<std::uint64_t> finished_in_grace_{0}, cancelled_queued_{0}, cancelled_running_{0};
  std::atomic<std::uint64_t> timed_out_{0};
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

} // namespace sqlite_search

#endif // SQLITE_SEARCH_SEARCH_SERVER_HPP
