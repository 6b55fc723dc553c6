// dashboard.hpp - the catalogue dashboard: search and a live sync behind one Asio server.
// Distributed under the Boost Software License, Version 1.0.
//
// The routes this adds to sqlite_search's server (which keeps serving /search itself):
//   GET  /, /app.js, /app.css   the page, compiled into the program
//   GET  /sync                  the sync's state, JSON
//   GET  /sync/events           the same state, then every event, as Server-Sent Events;
//                               with ?metrics=1 also a `metrics` event every metrics_interval
//   POST /sync[?source=NAME]    starts a sync of a configured source (202; 409 while one runs)
//   POST /sync/cancel           cancels the sync in progress (202; 409 when none runs)
//   GET  /catalog               {"records": N}
//   GET  /metrics               the pools and the lanes, Prometheus text (for a scraper)
//   GET  /metrics.json          the pools, the lane and the loop's lag, JSON (the live panel's)
#ifndef DASHBOARD_DASHBOARD_HPP
#define DASHBOARD_DASHBOARD_HPP

#include "catalog_fetch.hpp"
#include "search_server.hpp"

#include <smartasync/blocking_pool.hpp>
#include <smartasync/metrics_registry.hpp>

#include <asio/awaitable.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace dashboard {

/// A pool shown in the page's live panel besides the syncers' own (e.g. the search pool).
struct watched_pool {
  std::string name;
  /// Must outlive the controller.
  const smartasync::blocking_pool* pool = nullptr;
};

/// A catalogue the dashboard may sync from. The page names it; it cannot name a URL.
struct source {
  std::string name;
  /// The URL, pagination style, concurrency, retries, ...
  catalog_sync::sync_options options;
};

struct dashboard_options {
  /// At least one; the first is the default of POST /sync.
  std::vector<source> sources;
  /// The catalogue the syncs write (and the searches read).
  std::filesystem::path db;
  /// Values of the Host header accepted besides loopback addresses and "localhost" (any port):
  /// a name this server is really reached by. Anything else is refused (403), which defeats DNS
  /// rebinding: a hostile page whose name resolves to 127.0.0.1 is same-origin with itself.
  std::vector<std::string> allowed_hosts;
  /// Events kept for a client joining late (its `state` event carries them).
  std::size_t log_size = 200;
  /// Events queued for a client that reads too slowly; past it the client is dropped (its
  /// browser reconnects and gets the state).
  std::size_t max_pending = 1024;
  /// An SSE comment this often on an idle stream, so that proxies keep it open.
  std::chrono::milliseconds heartbeat{15000};
  /// Shown in the live panel, before the pool and the database lane of the source being synced.
  std::vector<watched_pool> pools;
  /// How often a client of `/sync/events?metrics=1` gets a `metrics` event.
  std::chrono::milliseconds metrics_interval{500};
  /// How often the loop's heartbeat timer is due, while a metrics client is connected: how late
  /// it runs is the loop's lag, what any handler on the loop (a search's reply) waits.
  std::chrono::milliseconds heartbeat_period{10};
};

/// How many records the catalogue holds, counted off the loop (main wraps the count with
/// smart_async on the search pool).
using record_counter = std::function<asio::awaitable<std::size_t>()>;

/// One connected event-stream client (dashboard.cpp).
struct event_client;

/// The sync controller and the event hub, on one io_context thread.
/**
 * One sync at a time: POST /sync while one runs is answered 409. Every event of a run is
 * broadcast to the connected event-stream clients, each with a queue of its own, so a slow or
 * vanished client neither slows the sync nor the others; a client that connects (or
 * reconnects) first gets a `state` event: the run's progress so far and its last events.
 *
 * @par Thread safety
 * Everything runs on the io_context's one thread; stop() may be called from any thread.
 */
class controller {
public:
  /// @throws std::invalid_argument without sources, with two sources of one name, or with a
  ///         heartbeat_period or metrics_interval that is not positive.
  controller(asio::io_context& io, dashboard_options options, record_counter count_records);
  ~controller();
  controller(const controller&) = delete;
  controller& operator=(const controller&) = delete;

  /// The routes to put in sqlite_search::server_options::routes.
  sqlite_search::route_handler routes();

  /// Cancels the sync in progress (nothing is committed), then ends every event stream, then
  /// calls `then` on the loop (e.g. the server's stop()).
  void stop(std::function<void()> then);

  /// The current state, as GET /sync and the `state` event carry it.
  nlohmann::json state() const;

  /// The pools, the lane and the loop's heartbeat lag since the previous call, as
  /// GET /metrics.json and the `metrics` event carry them.
  nlohmann::json metrics();

  /// The watched pools, and each source's pool and database lane, as GET /metrics exposes
  /// them (Prometheus text).
  const smartasync::metrics_registry& metrics_registry() const noexcept { return registry_; }

private:
  struct run_state {
    std::uint64_t run = 0; // 0: none yet
    std::string source;
    std::string url;
    bool running = false;
    bool cancelling = false;
    std::chrono::steady_clock::time_point began{};
    std::size_t pages_done = 0, items_done = 0, retries = 0;
    std::optional<std::size_t> total_pages, total_items;
    nlohmann::json outcome; // the `completed` or `failed` event, null while running
  };

  asio::awaitable<std::optional<sqlite_search::route_response>> route(const sqlite_search::http::request& request,
                                                                      asio::ip::tcp::socket& socket);
  sqlite_search::route_response start_sync(const sqlite_search::http::request& request);
  sqlite_search::route_response cancel_sync();
  asio::awaitable<void> stream_events(asio::ip::tcp::socket& socket, bool with_metrics);
  static asio::awaitable<void> run_sync(catalog_sync::catalog_syncer& syncer, std::filesystem::path db,
                                        catalog_sync::event_sink sink);
  void on_sync_event(std::uint64_t run, const catalog_sync::sync_event& event);
  void on_run_finished(std::uint64_t run);
  void broadcast(nlohmann::json event);
  void finish_stop();
  void start_heartbeat();
  void arm_heartbeat(std::chrono::steady_clock::time_point now);
  void on_heartbeat();
  friend struct sync_finished;

  asio::io_context& io_;
  dashboard_options options_;
  record_counter count_records_;
  std::vector<std::unique_ptr<catalog_sync::catalog_syncer>> syncers_; // one per source
  smartasync::metrics_registry registry_; // what GET /metrics exposes
  std::unique_ptr<asio::cancellation_signal> cancel_; // a fresh one per run
  run_state state_;
  std::deque<nlohmann::json> log_;
  std::set<std::shared_ptr<event_client>> clients_;
  std::size_t metrics_clients_ = 0;
  std::size_t syncer_shown_ = 0; // the source of the current (or last) run
  // The heartbeat: due every heartbeat_period while metrics clients are connected; the lag of
  // each tick since the last metrics() is kept.
  asio::steady_timer heartbeat_timer_;
  bool heartbeat_running_ = false;
  std::chrono::steady_clock::time_point heartbeat_due_{}, metrics_sent_{};
  std::vector<std::chrono::steady_clock::duration> lags_;
  asio::steady_timer stop_timer_;
  bool stopping_ = false;
  std::function<void()> after_stop_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

/// The embedded page: index.html, app.js, app.css from web/, compiled in (assets.cpp.in).
struct asset {
  std::string_view path;
  std::string_view content_type;
  std::string_view body;
};
/// The asset served at `path`, or nullptr.
const asset* find_asset(std::string_view path);

/// Whether a state-changing request comes from this server's own page (or from no browser at
/// all, e.g. curl): its Host is allowed and it carries neither an Origin other than its own
/// nor a Sec-Fetch-Site other than same-origin. Empty when allowed, else the reason.
std::string refuse_reason(const sqlite_search::http::request& request, const std::vector<std::string>& allowed_hosts,
                          bool state_changing);

} // namespace dashboard

#endif // DASHBOARD_DASHBOARD_HPP
