// dashboard.test.cpp - the dashboard's routes and event stream over real sockets, against a real
// paginated API (paginated_server) and a real SQLite catalogue.
// Distributed under the Boost Software License, Version 1.0.
#include "dashboard.hpp"

#include "catalog_search.hpp"
#include "http_client.hpp"
#include "paginated_server.hpp"
#include "temp_dir.hpp"
// Records whose commit takes seconds, and a probe for the commit holding the write lock.
#include "../../catalog_sync/tests/slow_commit.hpp"

#include <catalog/catalog_db.hpp>
#include <catalog/connection_pool.hpp>
#include <catalog/generator.hpp>

#include <smartasync/smart_async.hpp>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/write.hpp>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <system_error>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

using json = nlohmann::json;
using sqlite_search::testing::http_client;
using sqlite_search::testing::http_response;

struct catalog_count {
  catalog::connection_pool* connections;
  std::size_t operator()() const { return connections->acquire()->size(); }
};

// POST with the headers given; Host: 127.0.0.1:PORT (as a browser sends it) unless one of them is a Host.
http_response post(std::uint16_t port, const std::string& target, const std::string& headers = "") {
  http_client c(port);
  const bool own_host = headers.find("Host:") != std::string::npos;
  const std::string host = "Host: 127.0.0.1:" + std::to_string(port) + "\r\n";
  c.send("POST " + target + " HTTP/1.1\r\n" + (own_host ? "" : host) + headers + "Content-Length: 0\r\n\r\n");
  return c.read_response();
}

json get_json(std::uint16_t port, const std::string& target) {
  http_client c(port);
  const auto r = c.get(target);
  REQUIRE(r.status == 200);
  return json::parse(r.body);
}

// /search for the phrase `name` (package names have hyphens, an FTS5 operator outside quotes).
json search_for(std::uint16_t port, const std::string& name) {
  return get_json(port, "/search?q=" + sqlite_search::http::percent_encode('"' + name + '"'));
}

/// A client of /sync/events: a blocking socket, every read bounded (a hang fails the test).
class event_stream {
public:
  explicit event_stream(std::uint16_t port, const std::string& target = "/sync/events") : socket_(io_) {
    socket_.connect({asio::ip::make_address("127.0.0.1"), port});
    timeval tv{20, 0};
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    asio::write(socket_, asio::buffer("GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
    std::size_t end;
    while ((end = buffer_.find("\r\n\r\n")) == std::string::npos)
      receive();
    headers_ = buffer_.substr(0, end + 4);
    buffer_.erase(0, end + 4);
  }
  const std::string& headers() const { return headers_; }

  /// The next event (comments and `retry:` skipped); throws when the stream ends or stalls.
  json next() {
    for (;;) {
      if (const auto end = buffer_.find("\n\n"); end != std::string::npos) {
        const std::string block = buffer_.substr(0, end);
        buffer_.erase(0, end + 2);
        if (block.rfind("data: ", 0) == 0)
          return json::parse(block.substr(6));
        continue;
      }
      receive();
    }
  }
  /// Skips to the next event of `type`.
  json next(const std::string& type) {
    for (;;)
      if (json e = next(); e["type"] == type)
        return e;
  }
  /// The `completed` or `failed` event that ends a run.
  json outcome() {
    for (;;)
      if (json e = next(); e["type"] == "completed" || e["type"] == "failed")
        return e;
  }
  /// Reads to the end of the stream: true when the server closes it, false when it stalls.
  bool ends() {
    try {
      for (;;)
        (void)next();
    } catch (const std::system_error& e) {
      return e.code() == asio::error::eof;
    }
  }

private:
  // recv(2) itself, not asio's read_some: on a blocking socket asio polls again when
  // SO_RCVTIMEO expires, so a stalled stream would hang the test instead of failing it.
  void receive() {
    char chunk[4096];
    const ssize_t n = ::recv(socket_.native_handle(), chunk, sizeof chunk, 0);
    if (n == 0)
      throw std::system_error(asio::error::eof, "event stream closed");
    if (n < 0)
      throw std::system_error(errno, std::generic_category(), "event stream stalled for 20 s, or failed");
    buffer_.append(chunk, static_cast<std::size_t>(n));
  }

  asio::io_context io_;
  asio::ip::tcp::socket socket_;
  std::string headers_;
  std::string buffer_;
};

/// A paginated API, a catalogue, and the dashboard serving both on its own loop thread.
struct dashboard_fixture {
  explicit dashboard_fixture(std::size_t n = 500, catalog_sync::server_options api_options = {},
                             std::function<void(dashboard::source&)> tweak = {})
      : records(catalog::generate_catalog(n, 3)), api(this->records, few_threads(api_options)),
        db(create(dir / "catalog.db")), connections(db, 2), pool(2, 64),
        search(sqlite_search::make_catalog_search(pool, connections)),
        count(smartasync::smart_async(pool, catalog_count{&connections})),
        controller(io, make_options(tweak),
                   [this]() -> asio::awaitable<std::size_t> { return count.async_call(); }),
        server(io, sqlite_search::make_backend(search), server_options()) {
    server.start();
    loop = std::thread([this] { io.run(); });
  }
  ~dashboard_fixture() { stop(); }

  void stop() {
    if (!loop.joinable())
      return;
    controller.stop([this] { server.stop(); });
    loop.join();
  }

  std::uint16_t port() const { return server.port(); }
  std::size_t catalogue_size() const { return catalog::catalog_db(db).size(); }

  // The client has 2 requests in flight: 8 handler threads are plenty (the default is 96).
  static catalog_sync::server_options few_threads(catalog_sync::server_options o) {
    o.threads = 8;
    return o;
  }
  static std::filesystem::path create(std::filesystem::path file) {
    const catalog::catalog_db db(file, catalog::open_mode::read_write);
    return file;
  }
  dashboard::dashboard_options make_options(const std::function<void(dashboard::source&)>& tweak) {
    dashboard::dashboard_options o;
    o.db = db;
    dashboard::source s{"api", {}};
    s.options.url = api.url(catalog_sync::pagination_style::offset);
    s.options.page_size = 50;
    s.options.concurrency = 2;
    s.options.retry_base_delay = std::chrono::milliseconds(10);
    s.options.seed = 1;
    if (tweak)
      tweak(s);
    o.sources.push_back(std::move(s));
    o.pools.push_back({"search", &pool});
    o.metrics_interval = std::chrono::milliseconds(50);
    return o;
  }
  sqlite_search::server_options server_options() {
    sqlite_search::server_options o;
    o.routes = controller.routes();
    o.log = {};
    return o;
  }

  catalog::testing::temp_dir dir;
  std::vector<catalog::catalog_record> records;
  catalog_sync::paginated_server api;
  std::filesystem::path db;
  catalog::connection_pool connections;
  smartasync::blocking_pool pool;
  smartasync::smart_async_function<sqlite_search::catalog_search> search;
  smartasync::smart_async_function<catalog_count> count;
  asio::io_context io{1};
  dashboard::controller controller;
  sqlite_search::search_server server;
  std::thread loop;
};

catalog_sync::server_options slow_api(int latency_ms) {
  catalog_sync::server_options o;
  o.latency = std::chrono::milliseconds(latency_ms);
  return o;
}

} // namespace

TEST_CASE("the page, its script and its style are served with a content security policy", "[dashboard]") {
  dashboard_fixture f(10);
  http_client c(f.port());
  const auto page = c.get("/");
  REQUIRE(page.status == 200);
  CHECK(page.header("Content-Type") == "text/html; charset=utf-8");
  CHECK(page.header("Content-Security-Policy").value_or("").find("default-src 'self'") != std::string::npos);
  CHECK(page.body.find("<title>Catalogue dashboard") != std::string::npos);
  CHECK(c.get("/app.js").header("Content-Type") == "text/javascript; charset=utf-8");
  CHECK(c.get("/app.css").status == 200);
  CHECK(c.get("/nosuch").status == 404);
}

TEST_CASE("a sync streams each page to the event stream, commits, and the search finds the records",
          "[dashboard]") {
  dashboard_fixture f(500);
  event_stream events(f.port());
  CHECK(events.headers().find("text/event-stream") != std::string::npos);
  const json state = events.next();
  CHECK(state["type"] == "state");
  CHECK(state["run"] == 0);
  CHECK(state["running"] == false);
  CHECK(state["sources"][0]["name"] == "api");

  const auto started = post(f.port(), "/sync");
  REQUIRE(started.status == 202);
  CHECK(json::parse(started.body)["run"] == 1);

  CHECK(events.next()["type"] == "begin");
  const json first = events.next("started");
  CHECK(first["total_items"] == 500);
  CHECK(first["total_pages"] == 10);
  std::size_t pages = 0, last_done = 0;
  json e;
  while ((e = events.next())["type"] != "completed") {
    REQUIRE(e["type"] != "failed");
    if (e["type"] == "page") {
      ++pages;
      CHECK(e["pages_done"].get<std::size_t>() == last_done + 1);
      last_done = e["pages_done"];
      CHECK(e["total_pages"] == 10);
      CHECK(e.contains("t_ms"));
      CHECK(e.contains("rate"));
    }
  }
  CHECK(pages == 10);
  CHECK(e["added"] == 500);
  CHECK(e["updated"] == 0);
  CHECK(e["deleted"] == 0);
  CHECK(e["unchanged"] == 0);
  CHECK(get_json(f.port(), "/catalog")["records"] == 500);
  CHECK(search_for(f.port(), f.records[7].name)["count"].get<int>() >= 1);
  const json after = get_json(f.port(), "/sync");
  CHECK(after["running"] == false);
  CHECK(after["outcome"]["type"] == "completed");
}

TEST_CASE("one sync at a time: a second POST /sync is answered 409, and a cancel without a sync too",
          "[dashboard]") {
  dashboard_fixture f(400, slow_api(100));
  CHECK(post(f.port(), "/sync/cancel").status == 409);
  event_stream events(f.port());
  REQUIRE(post(f.port(), "/sync").status == 202);
  const auto second = post(f.port(), "/sync");
  CHECK(second.status == 409);
  CHECK(json::parse(second.body)["error"].get<std::string>().find("already running") != std::string::npos);
  CHECK(events.outcome()["type"] == "completed");
  // Once the outcome is out, the next sync may start.
  CHECK(post(f.port(), "/sync").status == 202);
  CHECK(events.outcome()["type"] == "completed");
}

TEST_CASE("state changes are same-origin POSTs to a Host of ours, other requests are refused", "[dashboard]") {
  dashboard_fixture f(50);
  const auto port = std::to_string(f.port());
  auto refused = [&](const http_response& r, const std::string& why) {
    CHECK(r.status == 403);
    CHECK(json::parse(r.body)["error"].get<std::string>().find(why) != std::string::npos);
  };
  refused(post(f.port(), "/sync", "Origin: http://evil.example\r\n"), "cross-origin");
  refused(post(f.port(), "/sync", "Origin: null\r\n"), "cross-origin");
  refused(post(f.port(), "/sync", "Origin: http://127.0.0.1:" + std::to_string(f.port() + 1) + "\r\n"), "cross-origin");
  refused(post(f.port(), "/sync", "Sec-Fetch-Site: cross-site\r\n"), "cross-origin");
  refused(post(f.port(), "/sync", "Sec-Fetch-Site: same-site\r\n"), "cross-origin");
  refused(post(f.port(), "/sync/cancel", "Origin: http://evil.example\r\n"), "cross-origin");
  // DNS rebinding: a hostile name resolving to 127.0.0.1 is same-origin with itself.
  refused(post(f.port(), "/sync", "Host: evil.example:" + port + "\r\nOrigin: http://evil.example:" + port + "\r\n"),
          "Host");
  {
    http_client c(f.port());
    c.send("GET /search?q=a HTTP/1.1\r\nHost: evil.example\r\n\r\n");
    CHECK(c.read_response().status == 403);
  }
  CHECK(post(f.port(), "/sync?source=elsewhere").status == 400); // only configured sources
  {
    http_client c(f.port());
    CHECK(c.get("/sync/cancel").status == 405);
  }
  CHECK(get_json(f.port(), "/sync")["run"] == 0); // none of these started a sync

  // The page's own request, and curl's (no Origin at all), are accepted.
  event_stream events(f.port());
  CHECK(post(f.port(), "/sync", "Origin: http://127.0.0.1:" + port + "\r\nSec-Fetch-Site: same-origin\r\n").status ==
        202);
  CHECK(events.outcome()["type"] == "completed");
  CHECK(post(f.port(), "/sync", "Host: localhost:" + port + "\r\n").status == 202);
  CHECK(events.outcome()["type"] == "completed");
}

TEST_CASE("a client that disconnects does not stop the sync, a new one gets the current state, then the rest",
          "[dashboard]") {
  dashboard_fixture f(600, slow_api(40));
  {
    event_stream first(f.port());
    REQUIRE(post(f.port(), "/sync").status == 202);
    first.next("page");
    first.next("page");
  } // gone mid-sync
  event_stream second(f.port());
  const json state = second.next();
  REQUIRE(state["type"] == "state");
  CHECK(state["running"] == true);
  CHECK(state["run"] == 1);
  CHECK(state["pages_done"].get<std::size_t>() >= 2);
  CHECK(state["total_pages"] == 12);
  CHECK(state["log"][0]["type"] == "begin");
  const json done = second.outcome();
  CHECK(done["type"] == "completed");
  CHECK(done["added"] == 600);
  CHECK(f.catalogue_size() == 600);
}

TEST_CASE("a cancelled sync commits nothing, and every client is told", "[dashboard]") {
  dashboard_fixture f(500, slow_api(60));
  event_stream events(f.port());
  REQUIRE(post(f.port(), "/sync").status == 202);
  REQUIRE(events.outcome()["type"] == "completed");
  REQUIRE(f.catalogue_size() == 500);
  const auto before = search_for(f.port(), f.records[3].name);

  f.api.set_catalogue(catalog_sync::edit_catalogue(f.records).first);
  REQUIRE(post(f.port(), "/sync").status == 202);
  events.next("page");
  const auto cancel = post(f.port(), "/sync/cancel");
  CHECK(cancel.status == 202);
  const json outcome = events.outcome();
  CHECK(outcome["type"] == "failed");
  CHECK(outcome["cancelled"] == true);
  CHECK(outcome["message"].get<std::string>().find("nothing was committed") != std::string::npos);
  CHECK(f.catalogue_size() == 500);
  CHECK(search_for(f.port(), f.records[3].name)["results"] == before["results"]);
  CHECK(get_json(f.port(), "/sync")["outcome"]["cancelled"] == true);
}

TEST_CASE("each retry is an event with its reason", "[dashboard]") {
  catalog_sync::server_options api;
  api.retry_after_seconds = 0;
  api.script = {{2, {catalog_sync::fault::rate_limited, 1}}, {4, {catalog_sync::fault::server_error, 1}}};
  dashboard_fixture f(300, api);
  event_stream events(f.port());
  REQUIRE(post(f.port(), "/sync").status == 202);
  std::vector<json> retries;
  json e;
  while ((e = events.next())["type"] != "completed") {
    REQUIRE(e["type"] != "failed");
    if (e["type"] == "retry")
      retries.push_back(e);
  }
  REQUIRE(retries.size() == 2);
  std::sort(retries.begin(), retries.end(), [](const json& a, const json& b) {
    return a["page"].get<std::size_t>() < b["page"].get<std::size_t>();
  });
  CHECK(retries[0]["page"] == 2);
  CHECK(retries[0]["reason"].get<std::string>().find("429") != std::string::npos);
  CHECK(retries[1]["page"] == 4);
  CHECK(retries[1]["reason"].get<std::string>().find("HTTP 5") != std::string::npos);
  CHECK(e["retries"] == 2);
  CHECK(e["added"] == 300);
}

TEST_CASE("an unreachable source fails the sync with the reason, the catalogue unchanged", "[dashboard]") {
  dashboard_fixture f(20, {}, [](dashboard::source& s) {
    s.options.url = "http://127.0.0.1:1/offset/packages"; // nothing listens on port 1
    s.options.max_attempts = 2;
  });
  event_stream events(f.port());
  REQUIRE(post(f.port(), "/sync").status == 202);
  const json outcome = events.outcome();
  CHECK(outcome["type"] == "failed");
  CHECK(outcome["cancelled"] == false);
  CHECK(outcome["message"].get<std::string>().find("page 1") != std::string::npos);
  CHECK(f.catalogue_size() == 0);
  CHECK(post(f.port(), "/sync").status == 202); // and the next one may start
}

TEST_CASE("stopping the program during a sync cancels it: nothing committed, the streams end", "[dashboard]") {
  dashboard_fixture f(500, slow_api(80));
  event_stream events(f.port());
  REQUIRE(post(f.port(), "/sync").status == 202);
  events.next("page");
  f.controller.stop([&f] { f.server.stop(); }); // what SIGTERM does in catalog_dashboard
  const json cancelling = events.next("cancelling");
  CHECK(cancelling["reason"] == "the server is stopping");
  const json outcome = events.outcome();
  CHECK(outcome["type"] == "failed");
  CHECK(outcome["cancelled"] == true);
  CHECK(events.ends());
  f.loop.join(); // io_context::run returned: nothing is left behind
  CHECK(f.catalogue_size() == 0);
}

TEST_CASE("the metrics stream shows the pools, the lane and the loop's lag, and they move during a sync",
          "[dashboard][metrics]") {
  dashboard_fixture f(500, slow_api(40));
  event_stream plain(f.port());
  event_stream events(f.port(), "/sync/events?metrics=1");
  REQUIRE(events.next()["type"] == "state");

  // Before a sync: the search pool, the source's pool and its database lane, and the loop.
  const json idle = events.next("metrics");
  REQUIRE(idle["pools"].size() == 3);
  CHECK(idle["pools"][0]["name"] == "search");
  CHECK(idle["pools"][0]["threads"] == 2);
  CHECK(idle["pools"][1]["kind"] == "pool");
  CHECK(idle["pools"][1]["threads"] == 3); // concurrency 2, plus one for the database
  CHECK(idle["pools"][2]["kind"] == "lane");
  CHECK(idle["loop"]["threads"] == 1);
  CHECK(idle["loop"]["samples"].get<int>() > 0);
  CHECK(idle["loop"]["lag_max_us"].get<double>() >= idle["loop"]["lag_p50_us"].get<double>());

  // During the sync the sync pool's counts move from one event to the next, and it never runs
  // more than its threads.
  REQUIRE(post(f.port(), "/sync").status == 202);
  std::vector<std::uint64_t> done;
  std::size_t most_running = 0;
  for (;;) {
    const json m = events.next("metrics");
    if (m["run"] != 1)
      continue; // sent before the POST was answered
    if (!m["running"].get<bool>())
      break;
    done.push_back(m["pools"][1]["done"].get<std::uint64_t>());
    most_running = std::max(most_running, m["pools"][1]["running"].get<std::size_t>());
  }
  REQUIRE(done.size() >= 2);
  CHECK(std::adjacent_find(done.begin(), done.end(), std::not_equal_to<>()) != done.end());
  CHECK(most_running >= 1);
  CHECK(most_running <= 3);
  const json after = events.next("metrics");
  CHECK(after["pools"][1]["done"].get<std::uint64_t>() >= 11); // 10 pages and the database calls
  CHECK(after["pools"][2]["done"].get<std::uint64_t>() >= 10); // a staging call a page, the commit
  CHECK(after["pools"][1]["rejected"] == 0);

  // A client that did not ask gets no metrics, only the run's events.
  CHECK(plain.next()["type"] == "state");
  for (;;) {
    const json e = plain.next();
    CHECK(e["type"] != "metrics");
    if (e["type"] == "completed" || e["type"] == "failed")
      break;
  }
  const json snapshot = get_json(f.port(), "/metrics.json");
  CHECK(snapshot["type"] == "metrics");
  CHECK(snapshot["pools"].size() == 3);
}

TEST_CASE("GET /metrics exposes the search pool and each source's pool and lane to a Prometheus scraper",
          "[dashboard][metrics]") {
  dashboard_fixture f(10);
  http_client c(f.port());
  const auto r = c.get("/metrics");
  REQUIRE(r.status == 200);
  CHECK(r.header("Content-Type") == std::string(smartasync::metrics_registry::content_type));
  CHECK(r.body.find("\nsmartasync_pool_threads{pool=\"search\"} 2\n") != std::string::npos);
  CHECK(r.body.find("\nsmartasync_pool_threads{pool=\"sync 'api'\"} 3\n") != std::string::npos);
  CHECK(r.body.find("\nsmartasync_lane_submitted_total{lane=\"sync 'api' database\"} 0\n") != std::string::npos);
}

TEST_CASE("a heartbeat or metrics period that is not positive is refused at construction", "[dashboard][metrics]") {
  asio::io_context io{1};
  auto options = [](std::chrono::milliseconds heartbeat, std::chrono::milliseconds interval) {
    dashboard::dashboard_options o;
    o.sources.push_back({"api", {}});
    o.sources.back().options.url = "http://127.0.0.1:9/";
    o.heartbeat_period = heartbeat;
    o.metrics_interval = interval;
    return o;
  };
  auto none = []() -> asio::awaitable<std::size_t> { co_return 0; };
  using std::chrono::milliseconds;
  CHECK_THROWS_AS(dashboard::controller(io, options(milliseconds(0), milliseconds(500)), none), std::invalid_argument);
  CHECK_THROWS_AS(dashboard::controller(io, options(milliseconds(10), milliseconds(-1)), none), std::invalid_argument);
  CHECK_NOTHROW(dashboard::controller(io, options(milliseconds(10), milliseconds(500)), none));
}

TEST_CASE("a source that changes during the sync fails it: nothing committed, every client is told why",
          "[dashboard][snapshot]") {
  // Once its first page is out, the source inserts 10 records in front: every later offset
  // points 10 records earlier, so a page would repeat 10 names and the last 10 would be skipped.
  catalog_sync::server_options shifting_options;
  shifting_options.threads = 8;
  shifting_options.shift_after_first_page = 10;
  catalog_sync::paginated_server shifting(catalog::generate_catalog(500, 3), shifting_options);
  dashboard_fixture f(500, {}, [&shifting](dashboard::source& s) {
    s.options.url = shifting.url(catalog_sync::pagination_style::offset);
  });
  {
    catalog::catalog_db writer(f.db, catalog::open_mode::read_write);
    auto sync = writer.begin_sync();
    sync.add(f.records);
    REQUIRE(sync.commit().added == 500);
  }
  const auto before = search_for(f.port(), f.records.back().name);
  REQUIRE(before["results"].size() == 1);

  event_stream events(f.port());
  REQUIRE(post(f.port(), "/sync").status == 202);
  const json outcome = events.outcome();
  CHECK(outcome["type"] == "failed");
  CHECK(outcome["cancelled"] == false);
  const std::string message = outcome["message"].get<std::string>();
  CHECK(message.find("announced 510 items where the first page announced 500") != std::string::npos);
  CHECK(message.find("nothing was committed") != std::string::npos);
  CHECK(f.catalogue_size() == 500);
  CHECK(search_for(f.port(), f.records.back().name)["results"] == before["results"]);
  CHECK(get_json(f.port(), "/sync")["outcome"]["type"] == "failed");
}

TEST_CASE("stopping the program during a long commit interrupts it: nothing committed, the loop returns",
          "[dashboard][shutdown]") {
  dashboard_fixture f(100);
  event_stream events(f.port());
  REQUIRE(post(f.port(), "/sync").status == 202);
  REQUIRE(events.outcome()["type"] == "completed");
  REQUIRE(f.catalogue_size() == 100);

  auto heavier = f.records;
  for (auto& r : catalog_sync::testing::heavy_records(12)) // seconds of full-text indexing
    heavier.push_back(std::move(r));
  f.api.set_catalogue(heavier);
  REQUIRE(post(f.port(), "/sync").status == 202);
  REQUIRE(catalog_sync::testing::wait_for_commit(f.db));
  f.controller.stop([&f] { f.server.stop(); }); // what SIGTERM does in catalog_dashboard
  const json outcome = events.outcome();
  CHECK(outcome["type"] == "failed");
  CHECK(outcome["cancelled"] == true);
  CHECK(events.ends());
  f.loop.join(); // io_context::run returned
  CHECK(f.catalogue_size() == 100);
}
