// dashboard.cpp - the sync controller, the event hub and the routes of the catalogue dashboard.
// Distributed under the Boost Software License, Version 1.0.
#include "dashboard.hpp"
#include "sse.hpp"

#include "example/as_tuple.hpp"

#include <asio/bind_cancellation_slot.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>

namespace dashboard {

using json = nlohmann::json;
using sqlite_search::route_response;
namespace http = sqlite_search::http;
using asio::use_awaitable;
using example::as_tuple;

namespace {

route_response json_response(int status, const json& body, http::header_list headers = {}) {
  headers.emplace_back("Cache-Control", "no-store");
  headers.emplace_back("X-Content-Type-Options", "nosniff");
  return route_response{status, "application/json", json_text(body), std::move(headers)};
}

route_response error_response(int status, std::string_view message, http::header_list headers = {}) {
  return json_response(status, json{{"error", message}}, std::move(headers));
}

bool iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
  });
}

const std::string* find_header(const http::request& request, std::string_view name) {
  for (const auto& [n, v] : request.headers)
    if (iequals(n, name))
      return &v;
  return nullptr;
}

// "host:port", "[v6]:port" or "host" -> "host" (brackets kept: "[::1]").
std::string_view host_name(std::string_view host) {
  if (!host.empty() && host.front() == '[')
    return host.substr(0, host.find(']') == std::string_view::npos ? host.size() : host.find(']') + 1);
  return host.substr(0, host.find(':'));
}

bool is_loopback_name(std::string_view name) {
  if (iequals(name, "localhost") || name == "[::1]")
    return true;
  // 127.0.0.0/8, written as a dotted quad.
  if (name.substr(0, 4) != "127.")
    return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return c == '.' || std::isdigit(static_cast<unsigned char>(c)); });
}

json optional_json(const std::optional<std::size_t>& v) { return v ? json(*v) : json(nullptr); }

double ms_since_epoch() {
  return std::chrono::duration<double, std::milli>(std::chrono::system_clock::now().time_since_epoch()).count();
}

} // namespace

std::string refuse_reason(const http::request& request, const std::vector<std::string>& allowed_hosts,
                          bool state_changing) {
  const std::string* host = find_header(request, "Host");
  if (!host || host->empty())
    return "a Host header is required";
  const std::string_view name = host_name(*host);
  const bool host_ok = is_loopback_name(name) || std::any_of(allowed_hosts.begin(), allowed_hosts.end(),
                                                             [&](const std::string& h) { return iequals(h, name); });
  if (!host_ok)
    return fmt::format("Host '{}' is not one this server answers to (see --allow-host)", *host);
  if (!state_changing)
    return {};
  // A browser sends Origin with every POST and Sec-Fetch-Site with every request; a page of
  // another origin cannot forge either. Requests with neither come from no browser (curl).
  if (const std::string* origin = find_header(request, "Origin"); origin && !iequals(*origin, "http://" + *host))
    return fmt::format("cross-origin request refused (Origin '{}')", *origin);
  if (const std::string* site = find_header(request, "Sec-Fetch-Site");
      site && !iequals(*site, "same-origin") && !iequals(*site, "none"))
    return fmt::format("cross-origin request refused (Sec-Fetch-Site '{}')", *site);
  return {};
}

// ---------------------------------------------------------------------------------------------
// One event-stream client: its own queue, so a slow one never holds up the sync or the others.

struct event_client {
  event_client(asio::ip::tcp::socket& s, std::size_t max) : socket(&s), wake(s.get_executor()), max_pending(max) {}
  asio::ip::tcp::socket* socket; // the server's session owns it; valid while stream_events runs
  asio::steady_timer wake;
  std::string out;        // formatted events not yet written
  std::size_t queued = 0; // events in `out`
  std::size_t max_pending;
  bool closed = false;    // flush what is queued, then end (the program stops)
  bool dropped = false;   // too slow: end without writing more
  bool peer_gone = false; // the reader saw the connection end
  bool reader_done = false;
  bool metrics = false;   // asked for the `metrics` events (?metrics=1)

  void push(std::string_view event) {
    if (closed)
      return;
    if (queued >= max_pending) {
      closed = dropped = true; // a browser reconnects, and gets the state
      out.clear();
      asio::error_code ec;
      socket->cancel(ec); // a write stuck on a full socket buffer ends too
    } else {
      out += event;
      ++queued;
    }
    wake.cancel();
  }
};

namespace {

// Reads (and ignores) whatever the client sends until the connection ends: that is how a
// vanished client is noticed while nothing is being written to it.
asio::awaitable<void> watch_peer(asio::ip::tcp::socket& socket, std::shared_ptr<event_client> c) {
  std::array<char, 512> buffer;
  for (;;) {
    auto [ec, n] = co_await socket.async_read_some(asio::buffer(buffer), as_tuple(use_awaitable));
    (void)n;
    if (ec)
      break;
  }
  c->peer_gone = true;
  c->reader_done = true;
  c->wake.cancel();
}

} // namespace

// ---------------------------------------------------------------------------------------------

// The completion of a run: a named type, not a lambda (see the gcc 12 note in run_sync).
struct sync_finished {
  controller* self;
  std::uint64_t run;
  std::shared_ptr<bool> alive;
  void operator()(std::exception_ptr) const {
    if (*alive)
      self->on_run_finished(run);
  }
};

namespace {
struct sink_to {
  std::function<void(std::uint64_t, const catalog_sync::sync_event&)> deliver;
  std::uint64_t run;
  void operator()(const catalog_sync::sync_event& e) const { deliver(run, e); }
};
} // namespace

controller::controller(asio::io_context& io, dashboard_options options, record_counter count_records)
    : io_(io), options_(std::move(options)), count_records_(std::move(count_records)),
      cancel_(std::make_unique<asio::cancellation_signal>()), heartbeat_timer_(io), stop_timer_(io) {
  if (options_.sources.empty())
    throw std::invalid_argument("dashboard: at least one source is needed");
  // A zero period would keep the loop busy with the heartbeat alone.
  if (options_.heartbeat_period.count() <= 0 || options_.metrics_interval.count() <= 0)
    throw std::invalid_argument("dashboard: heartbeat_period and metrics_interval must be positive");
  for (const auto& s : options_.sources) {
    if (std::count_if(options_.sources.begin(), options_.sources.end(),
                      [&](const source& o) { return o.name == s.name; }) != 1)
      throw std::invalid_argument("dashboard: two sources are named '" + s.name + "'");
    syncers_.push_back(std::make_unique<catalog_sync::catalog_syncer>(s.options));
    syncers_.back()->add_metrics_to(registry_, "sync '" + s.name + "'");
  }
  for (const auto& w : options_.pools)
    if (w.pool)
      registry_.add(w.name, *w.pool);
}

controller::~controller() { *alive_ = false; }

sqlite_search::route_handler controller::routes() {
  return [this](const http::request& request, asio::ip::tcp::socket& socket) { return route(request, socket); };
}

json controller::state() const {
  const auto& s = state_;
  json sources = json::array();
  for (const auto& src : options_.sources)
    sources.push_back({{"name", src.name}, {"url", src.options.url}});
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - s.began).count();
  return json{{"type", "state"},
              {"run", s.run},
              {"running", s.running},
              {"cancelling", s.cancelling},
              {"source", s.source},
              {"url", s.url},
              {"pages_done", s.pages_done},
              {"total_pages", optional_json(s.total_pages)},
              {"items_done", s.items_done},
              {"total_items", optional_json(s.total_items)},
              {"retries", s.retries},
              {"rate", s.running && seconds > 0 ? static_cast<double>(s.items_done) / seconds : 0.0},
              {"outcome", s.outcome},
              {"sources", std::move(sources)}};
}

asio::awaitable<std::optional<route_response>> controller::route(const http::request& request,
                                                                asio::ip::tcp::socket& socket) {
  const bool get = request.method == "GET" || request.method == "HEAD";
  const bool post = request.method == "POST";
  // Every request: the Host must be ours. POST (the only state-changing method): same origin.
  if (const std::string why = refuse_reason(request, options_.allowed_hosts, post); !why.empty())
    co_return error_response(403, why);

  const std::string& path = request.path;
  if (path == "/sync/events") {
    if (request.method != "GET")
      co_return error_response(405, "use GET", {{"Allow", "GET"}});
    const auto wants = request.query.find("metrics");
    co_await stream_events(socket, wants != request.query.end() && wants->second == "1");
    route_response streamed;
    streamed.streamed = true;
    co_return streamed;
  }
  if (path == "/sync") {
    if (post)
      co_return start_sync(request);
    if (get)
      co_return json_response(200, state());
    co_return error_response(405, "GET the state, POST to start a sync", {{"Allow", "GET, HEAD, POST"}});
  }
  if (path == "/sync/cancel") {
    if (!post)
      co_return error_response(405, "use POST", {{"Allow", "POST"}});
    co_return cancel_sync();
  }
  if (path == "/metrics") {
    if (!get)
      co_return error_response(405, "use GET or HEAD", {{"Allow", "GET, HEAD"}});
    route_response exposition;
    exposition.body = registry_.prometheus_text();
    exposition.content_type = std::string(smartasync::metrics_registry::content_type);
    co_return exposition;
  }
  if (path == "/metrics.json") {
    if (!get)
      co_return error_response(405, "use GET or HEAD", {{"Allow", "GET, HEAD"}});
    co_return json_response(200, metrics());
  }
  if (path == "/catalog") {
    if (!get)
      co_return error_response(405, "use GET or HEAD", {{"Allow", "GET, HEAD"}});
    std::size_t records = 0;
    std::string failure;
    try {
      records = co_await count_records_();
    } catch (const std::exception& e) {
      failure = e.what();
    }
    if (!failure.empty())
      co_return error_response(503, failure);
    co_return json_response(200, json{{"records", records}});
  }
  if (const asset* a = find_asset(path)) {
    if (!get)
      co_return error_response(405, "use GET or HEAD", {{"Allow", "GET, HEAD"}});
    // Everything the page needs comes from here: scripts, styles and connections from this
    // origin only, no framing.
    co_return route_response{200,
                             std::string(a->content_type),
                             std::string(a->body),
                             {{"Content-Security-Policy",
                               "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"},
                              {"X-Content-Type-Options", "nosniff"},
                              {"Referrer-Policy", "no-referrer"},
                              {"Cache-Control", "no-cache"}}};
  }
  co_return std::nullopt; // /search, /health, /ready, or 404: the search server's own
}

route_response controller::start_sync(const http::request& request) {
  if (stopping_)
    return error_response(503, "the server is shutting down");
  std::size_t index = 0;
  if (const auto s = request.query.find("source"); s != request.query.end()) {
    const auto it = std::find_if(options_.sources.begin(), options_.sources.end(),
                                 [&](const source& o) { return o.name == s->second; });
    if (it == options_.sources.end()) {
      std::string names;
      for (const auto& o : options_.sources)
        names += (names.empty() ? "" : ", ") + o.name;
      return error_response(400, fmt::format("no source named '{}' (configured: {})", s->second, names));
    }
    index = static_cast<std::size_t>(it - options_.sources.begin());
  }
  if (state_.running)
    return json_response(409, json{{"error", fmt::format("sync {} of '{}' is already running; one at a time",
                                                         state_.run, state_.source)},
                                   {"run", state_.run}});

  const source& src = options_.sources[index];
  syncer_shown_ = index;
  const std::uint64_t run = state_.run + 1;
  state_ = run_state{};
  state_.run = run;
  state_.source = src.name;
  state_.url = src.options.url;
  state_.running = true;
  state_.began = std::chrono::steady_clock::now();
  broadcast(json{{"type", "begin"}, {"run", run}, {"source", src.name}, {"url", src.options.url}});

  // A fresh signal per run: the previous run has completed, so nothing holds the old slot.
  cancel_ = std::make_unique<asio::cancellation_signal>();
  catalog_sync::event_sink sink =
      sink_to{[this](std::uint64_t r, const catalog_sync::sync_event& e) { on_sync_event(r, e); }, run};
  asio::co_spawn(io_, run_sync(*syncers_[index], options_.db, std::move(sink)),
                 asio::bind_cancellation_slot(cancel_->slot(), sync_finished{this, run, alive_}));
  return json_response(202, json{{"run", run}, {"source", src.name}, {"url", src.options.url}});
}

route_response controller::cancel_sync() {
  if (!state_.running)
    return error_response(409, "no sync is running");
  if (!state_.cancelling) {
    state_.cancelling = true;
    broadcast(json{{"type", "cancelling"}, {"run", state_.run}});
    // Terminal: requests in flight are aborted, the database work in progress finishes, the
    // open transaction rolls back. The run reports it as failed (cancelled) when it is over.
    cancel_->emit(asio::cancellation_type::terminal);
  }
  return json_response(202, json{{"run", state_.run}, {"cancelling", true}});
}

asio::awaitable<void> controller::run_sync(catalog_sync::catalog_syncer& syncer, std::filesystem::path db,
                                          catalog_sync::event_sink sink) {
  try {
    // HACK(gcc 12): the sink is a named parameter, not a lambda built inside this co_await
    // expression (see catalog_fetch.cpp, run_to_pump: its captures were released twice).
    (void)co_await syncer.run(std::move(db), std::move(sink));
  } catch (...) {
    // Reported through the sync_failed event.
  }
}

void controller::on_sync_event(std::uint64_t run, const catalog_sync::sync_event& event) {
  if (run != state_.run)
    return;
  auto& s = state_;
  const double seconds =
      std::max(1e-6, std::chrono::duration<double>(std::chrono::steady_clock::now() - s.began).count());
  std::visit(
      [&](const auto& e) {
        using E = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<E, catalog_sync::sync_started>) {
          s.total_items = e.total_items;
          s.total_pages = e.total_pages;
          broadcast(json{{"type", "started"},
                         {"run", run},
                         {"url", e.url},
                         {"style", std::string(catalog_sync::to_string(e.style))},
                         {"concurrency", e.concurrency},
                         {"total_items", optional_json(e.total_items)},
                         {"total_pages", optional_json(e.total_pages)},
                         {"page_size", e.page_size},
                         {"page_size_capped", e.page_size_capped},
                         {"until_empty_page", e.until_empty_page}});
        } else if constexpr (std::is_same_v<E, catalog_sync::page_done>) {
          s.pages_done = e.pages_done;
          s.items_done = e.items_done;
          s.total_pages = e.total_pages;
          s.total_items = e.total_items;
          broadcast(json{{"type", "page"},
                         {"run", run},
                         {"page", e.page},
                         {"items", e.items},
                         {"attempts", e.attempts},
                         {"pages_done", e.pages_done},
                         {"total_pages", optional_json(e.total_pages)},
                         {"items_done", e.items_done},
                         {"total_items", optional_json(e.total_items)},
                         {"rate", static_cast<double>(e.items_done) / seconds},
                         {"retries", s.retries},
                         {"t_ms", ms_since_epoch()}}); // when the server had the page: for the latency benchmark
        } else if constexpr (std::is_same_v<E, catalog_sync::page_retry>) {
          ++s.retries;
          broadcast(json{{"type", "retry"},
                         {"run", run},
                         {"page", e.page},
                         {"attempt", e.attempt},
                         {"delay_ms", e.delay.count()},
                         {"reason", e.reason},
                         {"retries", s.retries}});
        } else if constexpr (std::is_same_v<E, catalog_sync::sync_completed>) {
          // Held until the run is over (on_run_finished): a client told "completed" may start
          // the next sync at once.
          s.outcome = json{{"type", "completed"},
                           {"run", run},
                           {"added", e.counts.added},
                           {"updated", e.counts.updated},
                           {"deleted", e.counts.deleted},
                           {"unchanged", e.counts.unchanged},
                           {"items", e.items},
                           {"pages", e.pages},
                           {"retries", e.retries},
                           {"duplicates", e.duplicates},
                           {"elapsed_ms", e.elapsed.count()},
                           {"rate", e.items_per_second}};
        } else if constexpr (std::is_same_v<E, catalog_sync::sync_failed>) {
          s.outcome = json{{"type", "failed"},
                           {"run", run},
                           {"message", e.message},
                           {"cancelled", e.cancelled},
                           {"refused", e.refused}};
        }
      },
      event);
}

void controller::on_run_finished(std::uint64_t run) {
  if (run != state_.run)
    return;
  state_.running = false;
  state_.cancelling = false;
  if (state_.outcome.is_null())
    state_.outcome = json{{"type", "failed"},
                          {"run", run},
                          {"message", "the sync ended without a result; nothing was committed"},
                          {"cancelled", false},
                          {"refused", false}};
  broadcast(state_.outcome);
  if (stopping_)
    finish_stop();
}

void controller::broadcast(json event) {
  const std::string text = sse_event(event);
  log_.push_back(std::move(event));
  while (log_.size() > options_.log_size)
    log_.pop_front();
  for (const auto& c : clients_)
    c->push(text);
}

asio::awaitable<void> controller::stream_events(asio::ip::tcp::socket& socket, bool with_metrics) {
  auto c = std::make_shared<event_client>(socket, options_.max_pending);
  clients_.insert(c);
  if (with_metrics) {
    c->metrics = true;
    ++metrics_clients_;
    start_heartbeat();
  }
  // Events are small writes, one after the other: with Nagle's algorithm each waited for the
  // ACK of the previous one, which a delayed ACK holds back up to 40 ms (p50 37 ms measured).
  asio::error_code nodelay_error;
  socket.set_option(asio::ip::tcp::no_delay(true), nodelay_error);
  json first = state();
  first["log"] = json(log_);
  // No Content-Length: the stream ends when the connection does. `retry`: how soon a browser
  // reconnects after losing it.
  c->out = "HTTP/1.1 200 OK\r\n"
           "Server: smartasync-dashboard\r\n"
           "Content-Type: text/event-stream; charset=utf-8\r\n"
           "Cache-Control: no-store\r\n"
           "X-Content-Type-Options: nosniff\r\n"
           "Connection: close\r\n"
           "\r\n"
           "retry: 1000\n\n" +
           sse_event(first);
  if (stopping_)
    c->closed = true; // the state, then the end
  asio::co_spawn(socket.get_executor(), watch_peer(socket, c), asio::detached);
  try {
    while (!c->dropped) {
      if (!c->out.empty()) {
        const std::string batch = std::move(c->out);
        c->out.clear();
        c->queued = 0;
        co_await asio::async_write(socket, asio::buffer(batch), use_awaitable);
        continue;
      }
      if (c->closed || c->peer_gone)
        break;
      c->wake.expires_after(options_.heartbeat);
      auto [ec] = co_await c->wake.async_wait(as_tuple(use_awaitable));
      if (!ec)
        c->out += ": keep-alive\n\n";
    }
  } catch (const std::exception&) {
    // The write failed: the client went away, or was dropped.
  }
  clients_.erase(c);
  if (c->metrics)
    --metrics_clients_; // the heartbeat stops at its next tick when none is left
  // The reader uses the session's socket: end it, and wait for it, before giving the socket back.
  asio::error_code ec;
  socket.cancel(ec);
  while (!c->reader_done) {
    c->wake.expires_after(std::chrono::seconds(5));
    (void)co_await c->wake.async_wait(as_tuple(use_awaitable));
  }
  if (stopping_ && clients_.empty())
    stop_timer_.cancel();
}

void controller::stop(std::function<void()> then) {
  asio::post(io_, [this, alive = alive_, then = std::move(then)]() mutable {
    if (!*alive || stopping_)
      return;
    stopping_ = true;
    after_stop_ = std::move(then);
    if (!state_.running)
      return finish_stop();
    // The run reports "cancelled" to every client, then on_run_finished calls finish_stop.
    state_.cancelling = true;
    broadcast(json{{"type", "cancelling"}, {"run", state_.run}, {"reason", "the server is stopping"}});
    cancel_->emit(asio::cancellation_type::terminal);
  });
}

// ---------------------------------------------------------------------------------------------
// The live panel: what the pools and the lane are doing, and how late the loop runs a timer.

namespace {

double microseconds(std::chrono::nanoseconds d) { return static_cast<double>(d.count()) / 1e3; }

json pool_row(std::string_view name, const smartasync::pool_metrics& m) {
  const auto& c = m.counts;
  return json{{"name", name},
              {"kind", "pool"},
              {"threads", c.threads},
              {"running", c.running},
              {"queued", c.queued + c.parked},
              {"done", c.completed + c.failed},
              {"queue_wait_p50_us", microseconds(m.queue_wait.p50)},
              {"queue_wait_p99_us", microseconds(m.queue_wait.p99)},
              {"run_time_p50_us", microseconds(m.run_time.p50)},
              {"run_time_p99_us", microseconds(m.run_time.p99)},
              {"rejected", c.rejected},
              {"expired", c.expired}};
}

// A lane runs on a pool's threads (its row has none of its own) and has no deadlines; its
// queue wait is the wait for its turn, its run time is in its pool's.
json lane_row(std::string_view name, const smartasync::lane_metrics& m) {
  const auto& l = m.counts;
  return json{{"name", name},
              {"kind", "lane"},
              {"threads", nullptr},
              {"running", l.busy ? 1 : 0},
              {"queued", l.queued + l.blocked_submitters},
              {"done", l.submitted},
              {"queue_wait_p50_us", microseconds(m.turn_wait.p50)},
              {"queue_wait_p99_us", microseconds(m.turn_wait.p99)},
              {"run_time_p50_us", nullptr},
              {"run_time_p99_us", nullptr},
              {"rejected", l.rejected},
              {"expired", nullptr}};
}

} // namespace

json controller::metrics() {
  json pools = json::array();
  for (const auto& w : options_.pools)
    if (w.pool)
      pools.push_back(pool_row(w.name, w.pool->metrics()));
  const auto& syncer = *syncers_[syncer_shown_];
  const std::string& source = options_.sources[syncer_shown_].name;
  pools.push_back(pool_row(fmt::format("sync '{}': page requests and database", source), syncer.pool_metrics()));
  pools.push_back(lane_row(fmt::format("sync '{}': database lane", source), syncer.database_metrics()));

  // The heartbeat lag since the previous call: median and maximum of its ticks.
  json loop{{"threads", 1}, {"samples", lags_.size()}, {"lag_p50_us", nullptr}, {"lag_max_us", nullptr}};
  if (!lags_.empty()) {
    std::sort(lags_.begin(), lags_.end());
    loop["lag_p50_us"] = microseconds(lags_[lags_.size() / 2]);
    loop["lag_max_us"] = microseconds(lags_.back());
    lags_.clear();
  }
  return json{{"type", "metrics"},
              {"running", state_.running},
              {"run", state_.run},
              {"pools", std::move(pools)},
              {"loop", std::move(loop)},
              {"t_ms", ms_since_epoch()}};
}

void controller::start_heartbeat() {
  if (heartbeat_running_ || stopping_)
    return;
  heartbeat_running_ = true;
  lags_.clear();
  metrics_sent_ = std::chrono::steady_clock::now();
  arm_heartbeat(metrics_sent_);
}

void controller::arm_heartbeat(std::chrono::steady_clock::time_point now) {
  // A period after the last tick ran, so that a late tick is not followed by a burst.
  heartbeat_due_ = now + options_.heartbeat_period;
  heartbeat_timer_.expires_at(heartbeat_due_);
  heartbeat_timer_.async_wait([this, alive = alive_](asio::error_code ec) {
    if (!*alive)
      return;
    if (ec)
      heartbeat_running_ = false;
    else
      on_heartbeat();
  });
}

void controller::on_heartbeat() {
  const auto now = std::chrono::steady_clock::now();
  // How late the loop ran a handler that was due: what a search's reply would have waited.
  lags_.push_back(now - heartbeat_due_);
  if (now - metrics_sent_ >= options_.metrics_interval) {
    metrics_sent_ = now;
    const std::string text = sse_event(metrics());
    for (const auto& c : clients_)
      if (c->metrics)
        c->push(text);
  }
  if (metrics_clients_ == 0 || stopping_)
    heartbeat_running_ = false;
  else
    arm_heartbeat(now);
}

void controller::finish_stop() {
  heartbeat_timer_.cancel();
  for (const auto& c : clients_) {
    c->closed = true; // what is queued (the final event) is still written
    c->wake.cancel();
  }
  // A client that does not read does not hold the program up for long.
  if (!clients_.empty()) {
    stop_timer_.expires_after(std::chrono::seconds(2));
    stop_timer_.async_wait([this, alive = alive_](asio::error_code ec) {
      if (ec || !*alive)
        return;
      for (const auto& c : clients_) {
        asio::error_code ignored;
        c->socket->cancel(ignored);
      }
    });
  }
  if (auto then = std::move(after_stop_))
    then();
}

} // namespace dashboard
