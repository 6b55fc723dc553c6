// server.test.cpp - the search server in-process, over real loopback HTTP.
#include "search_server.hpp"

#include "catalog/catalog_db.hpp"
#include "catalog/generator.hpp"
#include "catalog_search.hpp"
#include "http_client.hpp"
#include "temp_dir.hpp"

#include <smartasync/diagnostics.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <condition_variable>
#include <atomic>
#include <fstream>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace sqlite_search;
using sqlite_search::testing::http_client;
using json = nlohmann::json;

namespace {

// A catalogue with a few known records in a generated crowd.
std::filesystem::path make_catalogue(const catalog::testing::temp_dir& dir) {
  auto file = dir / "catalog.db";
  catalog::catalog_db db(file, catalog::open_mode::read_write);
  auto sync = db.begin_sync();
  sync.add(catalog::generate_catalog(500));
  sync.add({"asio", "1.22", "libs", "Ada <a@example.org>", "Cross-platform library for network programming"});
  sync.add({"netkit", "2.0", "net", "Ben <b@example.org>", "Tools using asio"});
  sync.commit();
  return file;
}

// The server on its own io_context thread, stopped and joined on destruction.
struct running_server {
  asio::io_context io{1};
  search_server server;
  std::thread thread;

  running_server(search_backend backend, server_options options = {})
      : server(io, std::move(backend), options) {
    server.start();
    thread = std::thread([this] { io.run(); });
  }
  ~running_server() {
    server.stop();
    thread.join();
  }
  std::uint16_t port() const { return server.port(); }
};

// The real catalogue search, offloaded to a pool.
struct catalogue_fixture {
  catalog::testing::temp_dir dir;
  catalog::connection_pool connections{make_catalogue(dir), 2};
  smartasync::blocking_pool pool{2, 64};
  smartasync::smart_async_function<catalog_search> search = make_catalog_search(pool, connections);
  running_server server{make_backend(search)};
};

} // namespace

TEST_CASE_METHOD(catalogue_fixture, "GET /search answers ranked JSON results", "[server]") {
  http_client client(server.port());
  auto r = client.get("/search?q=asio&limit=5");
  REQUIRE(r.status == 200);
  CHECK(r.keep_alive);
  const auto body = json::parse(r.body);
  CHECK(body["query"] == "asio");
  CHECK(body["count"] == 2);
  REQUIRE(body["results"].size() == 2);
  CHECK(body["results"][0]["name"] == "asio");
  CHECK(body["results"][1]["name"] == "netkit");
  CHECK(body["results"][1]["snippet"] == "Tools using [asio]");

  // Same connection (keep-alive), percent-encoded phrase query, limit honoured.
  r = client.get("/search?q=" + http::percent_encode("\"network programming\"") + "&limit=1");
  REQUIRE(r.status == 200);
  CHECK(json::parse(r.body)["results"][0]["name"] == "asio");
  r = client.get("/search?q=lib*&limit=3");
  REQUIRE(r.status == 200);
  CHECK(json::parse(r.body)["count"] == 3);

  CHECK(client.get("/health").status == 200);
}

TEST_CASE("each search logs its own request's id from inside the offloaded call", "[server][context]") {
  catalog::testing::temp_dir dir;
  catalog::connection_pool connections{make_catalogue(dir), 2};
  smartasync::blocking_pool pool{2, 64};
  std::mutex lines_mutex;
  std::vector<std::string> lines;
  std::set<std::thread::id> traced_on;
  auto search = make_catalog_search(pool, connections, [&](const std::string& line) {
    std::lock_guard lock(lines_mutex);
    lines.push_back(line);
    traced_on.insert(std::this_thread::get_id());
  });
  running_server server{make_backend(search)};
  http_client client(server.port());
  REQUIRE(client.get("/search?q=asio&limit=5").status == 200);
  REQUIRE(client.get("/search?q=netkit").status == 200);
  REQUIRE(client.get("/health").status == 200); // no search, no line
  REQUIRE(client.get("/search?q=lib*&limit=3").status == 200);
  // Written on a pool worker, where only the carried context can have told the request id.
  std::lock_guard lock(lines_mutex);
  CHECK(lines == std::vector<std::string>{R"(req-1: search "asio" (limit 5): 2 hits)",
                                          R"(req-2: search "netkit" (limit 10): 1 hits)",
                                          R"(req-4: search "lib*" (limit 3): 3 hits)"});
  CHECK_FALSE(traced_on.contains(server.thread.get_id()));
  CHECK(smartasync::request_id::current().empty()); // this thread's own context is untouched
}

TEST_CASE_METHOD(catalogue_fixture, "bad requests get 4xx and the server lives on", "[server]") {
  {
    http_client client(server.port());
    CHECK(client.get("/nowhere").status == 404);
    auto r = client.get("/search?q=%22unterminated");
    CHECK(r.status == 400);
    CHECK(json::parse(r.body)["error"].get<std::string>().starts_with("invalid search query: "));
    CHECK(client.get("/search?limit=3").status == 400);           // no q
    CHECK(client.get("/search?q=asio&limit=abc").status == 400);  // not a number
    CHECK(client.get("/search?q=asio&limit=0").status == 400);    // out of range
    CHECK(client.get("/search?q=asio&limit=100000").status == 400);
    CHECK(client.get("/search?q=").status == 400);                // empty
    client.send("DELETE /search?q=asio HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(client.read_response().status == 405);
    CHECK(client.get("/health").status == 200); // all of that on one connection
  }
  SECTION("garbage") {
    http_client client(server.port());
    client.send("this is not HTTP\r\n\r\n");
    auto r = client.read_response();
    CHECK(r.status == 400);
    CHECK_FALSE(r.keep_alive);
    CHECK(client.closed_by_server());
  }
  SECTION("bad escape in the target") {
    http_client client(server.port());
    client.send("GET /search?q=%Z1 HTTP/1.1\r\n\r\n");
    CHECK(client.read_response().status == 400);
  }
  SECTION("oversized request line") {
    http_client client(server.port());
    client.send("GET /search?q=" + std::string(64 * 1024, 'a') + " HTTP/1.1\r\n\r\n");
    CHECK(client.read_response().status == 413);
  }
  SECTION("oversized body") {
    http_client client(server.port());
    client.send("POST /search HTTP/1.1\r\nContent-Length: 10000000\r\n\r\n" + std::string(4096, 'x'));
    CHECK(client.read_response().status == 413);
  }
  SECTION("a client that vanishes mid-request") {
    http_client client(server.port());
    client.send("GET /sea");
  }
  http_client after(server.port());
  CHECK(after.get("/health").status == 200);
  CHECK(after.get("/search?q=asio").status == 200);
}

TEST_CASE_METHOD(catalogue_fixture, "HEAD gets headers without a body, and 405 says what is allowed", "[server]") {
  http_client client(server.port());
  // Pipelined: a body after the HEAD answer would be read as the start of the GET answer.
  client.send("HEAD /health HTTP/1.1\r\n\r\nHEAD /search?q=asio HTTP/1.1\r\n\r\nHEAD /nope HTTP/1.1\r\n\r\n"
              "GET /health HTTP/1.1\r\n\r\n");
  auto head = client.read_response(true);
  CHECK(head.status == 200);
  CHECK(head.body.empty());
  CHECK(head.keep_alive);
  auto get_length = [&] {
    auto r = client.read_response();
    REQUIRE(r.status == 200);
    return std::to_string(r.body.size());
  };
  auto search_head = client.read_response(true);
  CHECK(search_head.status == 200);
  CHECK(search_head.header("Content-Length") != "0");
  CHECK(client.read_response(true).status == 404);
  CHECK(head.header("Content-Length") == get_length()); // the GET answer's length, no bytes sent

  for (const char* method : {"DELETE", "POST", "PUT"}) {
    for (const char* path : {"/health", "/search?q=asio"}) {
      client.send(std::string(method) + " " + path + " HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
      auto r = client.read_response();
      CHECK(r.status == 405);
      CHECK(r.header("Allow") == "GET, HEAD");
    }
  }
  CHECK(client.get("/health").status == 200); // and the connection is still in step
}

TEST_CASE("a client trickling its request gets 408 however steady the trickle", "[server][limits]") {
  catalog::testing::temp_dir dir;
  catalog::connection_pool connections{make_catalogue(dir), 1};
  smartasync::blocking_pool pool{1, 16};
  auto search = make_catalog_search(pool, connections);
  // The idle timeout alone restarts on every byte: one byte per 20 ms never trips 30 s.
  running_server server(make_backend(search),
                        server_options{.idle_timeout = std::chrono::seconds(30),
                                       .request_timeout = std::chrono::milliseconds(300)});

  http_client client(server.port());
  const std::string request = "GET /search?q=asio HTTP/1.1\r\nHost: localhost\r\nX-Slow: " +
                              std::string(200, 'x') + "\r\n\r\n";
  std::atomic<std::size_t> sent{0};
  std::atomic<bool> answered{false};
  std::thread trickler([&] {
    try {
      for (char c : request) {
        if (answered)
          break;
        client.send(std::string_view(&c, 1));
        ++sent;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    } catch (const std::exception&) {
      // the server closed the connection: expected once it has answered
    }
  });
  const auto r = client.read_response();
  answered = true;
  trickler.join();
  CHECK(r.status == 408);
  CHECK_FALSE(r.keep_alive);
  CHECK(sent < request.size()); // answered mid-request, not after the request finally completed
  CHECK(client.closed_by_server());

  // Prompt requests, and a keep-alive connection that stays quiet for a while, are untouched.
  http_client prompt(server.port());
  CHECK(prompt.get("/health").status == 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  CHECK(prompt.get("/health").status == 200);
}

TEST_CASE_METHOD(catalogue_fixture, "pipelined requests are answered in order", "[server]") {
  http_client client(server.port());
  client.send("GET /health HTTP/1.1\r\n\r\nGET /search?q=netkit HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\n");
  CHECK(client.read_response().status == 200);
  auto r = client.read_response();
  CHECK(r.status == 200);
  CHECK(json::parse(r.body)["results"][0]["name"] == "netkit");
  CHECK(client.read_response().status == 404);
}

TEST_CASE_METHOD(catalogue_fixture, "concurrent clients are all served", "[server]") {
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 8; ++c)
    clients.emplace_back([&] {
      http_client client(server.port());
      for (int i = 0; i < 10; ++i)
        if (client.get("/search?q=network").status == 200)
          ++ok;
    });
  for (auto& t : clients)
    t.join();
  CHECK(ok == 80);
}

namespace {

// A search that blocks until the test opens the gate, and records the order of events.
struct gate {
  std::mutex mutex;
  std::condition_variable cv;
  bool started = false;
  bool released = false;
  bool finished = false;

  void release() {
    std::lock_guard lock(mutex);
    released = true;
    cv.notify_all();
  }
  bool wait_started() {
    std::unique_lock lock(mutex);
    return cv.wait_for(lock, std::chrono::seconds(10), [&] { return started; });
  }
  bool is_finished() {
    std::lock_guard lock(mutex);
    return finished;
  }
};

struct slow_search {
  std::shared_ptr<gate> g;
  search_result operator()(std::string query, int) const {
    if (query == "slow") {
      std::unique_lock lock(g->mutex);
      g->started = true;
      g->cv.notify_all();
      g->cv.wait_for(lock, std::chrono::seconds(10), [&] { return g->released; });
      g->finished = true;
    }
    return {catalog::search_hit{"hit", "1", "s", "[slow]", -1.0}};
  }
};

} // namespace

TEST_CASE("offloaded: /health is answered while a slow search runs", "[server][offload]") {
  auto g = std::make_shared<gate>();
  smartasync::blocking_pool pool{2, 16};
  auto search = smartasync::smart_async(pool, slow_search{g}, {.name = "slow test search"});
  running_server server(make_backend(search));

  http_client searcher(server.port());
  searcher.send("GET /search?q=slow HTTP/1.1\r\n\r\n");
  REQUIRE(g->wait_started());

  http_client prober(server.port());
  CHECK(prober.get("/health").status == 200);
  CHECK_FALSE(g->is_finished()); // answered before the search finished: the loop was free

  g->release();
  auto r = searcher.read_response();
  CHECK(r.status == 200);
  CHECK(json::parse(r.body)["results"][0]["name"] == "hit");
}

TEST_CASE("inline: the search blocks the loop and smartasync reports it", "[server][inline]") {
  std::mutex mutex;
  std::vector<smartasync::diagnostic> reports;
  auto previous = smartasync::set_diagnostics_handler([&](const smartasync::diagnostic& d) {
    std::lock_guard lock(mutex);
    reports.push_back(d);
  });

  auto g = std::make_shared<gate>();
  smartasync::blocking_pool pool{2, 16};
  auto search = smartasync::smart_async(pool, slow_search{g}, {.name = "slow test search"});
  {
    running_server server(make_backend(search), server_options{.inline_search = true});

    http_client searcher(server.port());
    searcher.send("GET /search?q=slow HTTP/1.1\r\n\r\n");
    REQUIRE(g->wait_started());

    http_client prober(server.port());
    prober.send("GET /health HTTP/1.1\r\n\r\n");
    // Give a free loop every chance to answer first, then open the gate from another thread.
    std::thread releaser([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      g->release();
    });
    CHECK(prober.read_response().status == 200);
    CHECK(g->is_finished()); // /health waited for the search: the loop was blocked
    releaser.join();
    CHECK(searcher.read_response().status == 200);
  }
  smartasync::set_diagnostics_handler(previous);

  std::lock_guard lock(mutex);
  REQUIRE(reports.size() == 1);
  CHECK(reports[0].kind == smartasync::diagnostic_kind::blocking_call_on_loop);
  CHECK(reports[0].name == "slow test search");
  CHECK(reports[0].duration > std::chrono::nanoseconds(0));
}

TEST_CASE("stop() ends the server while clients are connected", "[server]") {
  catalog::testing::temp_dir dir;
  catalog::connection_pool connections{make_catalogue(dir), 1};
  smartasync::blocking_pool pool{1, 16};
  auto search = make_catalog_search(pool, connections);
  asio::io_context io{1};
  search_server server(io, make_backend(search), {});
  server.start();
  std::thread thread([&] { io.run(); });

  http_client idle(server.port());
  http_client busy(server.port());
  CHECK(busy.get("/search?q=asio").status == 200);
  server.stop();
  thread.join(); // returns: every connection was closed
  CHECK(idle.closed_by_server());
  CHECK(busy.closed_by_server());
}

TEST_CASE("/ready fails when the database does, /health stays live", "[server][ready]") {
  catalog::testing::temp_dir dir;
  const auto file = make_catalogue(dir);
  catalog::connection_pool connections{file, 1};
  smartasync::blocking_pool pool{1, 16};
  auto search = make_catalog_search(pool, connections);
  auto probe = make_catalog_probe(pool, connections);
  running_server server(make_backend(search, probe));

  http_client client(server.port());
  auto r = client.get("/ready");
  CHECK(r.status == 200);
  CHECK(json::parse(r.body)["status"] == "ready");
  CHECK(client.get("/search?q=asio").status == 200);

  // Corrupt every page past the first two, under the running server.
  {
    const auto size = std::filesystem::file_size(file);
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(8192);
    const std::string junk(size - 8192, '\xab');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  CHECK(client.get("/search?q=network").status == 500);
  r = client.get("/ready");
  CHECK(r.status == 503);
  CHECK(json::parse(r.body)["status"] == "unavailable");
  CHECK_FALSE(json::parse(r.body)["error"].get<std::string>().empty()); // what SQLite said
  r = client.get("/health"); // liveness: the process serves; restarting it would not help
  CHECK(r.status == 200);
  CHECK(json::parse(r.body)["status"] == "ok");
}

namespace {

// Waits until the pool holds `n` queued operations (the test's searches are all in place).
bool wait_queued(const smartasync::blocking_pool& pool, std::size_t n) {
  for (int i = 0; i < 1000; ++i) {
    if (pool.stats().queued == n)
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

} // namespace

TEST_CASE("stop() answers queued searches 503 at once and lets the running one finish", "[server][shutdown]") {
  auto g = std::make_shared<gate>();
  smartasync::blocking_pool pool{1, 64};
  auto search = smartasync::smart_async(pool, slow_search{g}, {.name = "slow test search"});
  asio::io_context io{1};
  search_server server(io, make_backend(search), {.shutdown_grace = std::chrono::seconds(30)});
  server.start();
  std::thread thread([&] { io.run(); });

  http_client running(server.port());
  running.send("GET /search?q=slow HTTP/1.1\r\n\r\n");
  REQUIRE(g->wait_started());
  std::vector<std::unique_ptr<http_client>> queued;
  for (int i = 0; i < 5; ++i) {
    queued.push_back(std::make_unique<http_client>(server.port()));
    queued.back()->send("GET /search?q=slow HTTP/1.1\r\n\r\n");
  }
  REQUIRE(wait_queued(pool, 5));
  http_client idle(server.port());

  server.stop();
  // The queued searches are answered while the running one still holds the only pool thread:
  // before, they waited for it and then ran one by one.
  for (auto& c : queued) {
    auto r = c->read_response();
    CHECK(r.status == 503);
    CHECK_FALSE(r.keep_alive);
    CHECK(r.header("Retry-After") == "1");
  }
  CHECK_FALSE(g->is_finished());
  CHECK(idle.closed_by_server());
  CHECK_THROWS(http_client(server.port())); // no longer accepting

  g->release(); // within the grace: its client gets the real answer
  auto r = running.read_response();
  CHECK(r.status == 200);
  CHECK_FALSE(r.keep_alive);
  thread.join();
  const auto summary = server.shutdown_summary();
  CHECK(summary.finished == 1);
  CHECK(summary.cancelled_queued == 5);
  CHECK(summary.cancelled_running == 0);
  CHECK(pool.stats().cancelled == 5); // cancelled in the pool: never ran
}

TEST_CASE("a search running past the shutdown grace is answered 503 and run() returns", "[server][shutdown]") {
  auto g = std::make_shared<gate>();
  smartasync::blocking_pool pool{1, 64};
  // As make_catalog_search: a running search past the grace is abandoned (it owns its gate).
  auto search = smartasync::smart_async(pool, slow_search{g},
                                        {.name = "slow test search",
                                         .on_loop = smartasync::loop_call_policy::report,
                                         .on_cancel = smartasync::running_cancel::abandon});
  asio::io_context io{1};
  search_server server(io, make_backend(search), {.shutdown_grace = std::chrono::milliseconds(50)});
  server.start();
  std::thread thread([&] { io.run(); });

  http_client running(server.port());
  running.send("GET /search?q=slow HTTP/1.1\r\n\r\n");
  REQUIRE(g->wait_started());
  server.stop();
  auto r = running.read_response();
  CHECK(r.status == 503);
  thread.join(); // returns although the search is still running (the gate is closed)
  CHECK_FALSE(g->is_finished());
  const auto summary = server.shutdown_summary();
  CHECK(summary.finished == 0);
  CHECK(summary.cancelled_running == 1);
  g->release(); // the pool's destructor waits for the abandoned call
}

TEST_CASE("past max_connections, with every place answering a request, a client gets 503 with Retry-After",
          "[server][limits]") {
  auto g = std::make_shared<gate>();
  smartasync::blocking_pool pool{1, 16};
  auto search = smartasync::smart_async(pool, slow_search{g}, {.name = "slow test search"});
  running_server server(make_backend(search), server_options{.max_connections = 2});

  // Both places busy: one search running, one queued behind it.
  http_client first(server.port()), second(server.port());
  first.send("GET /search?q=slow HTTP/1.1\r\n\r\n");
  REQUIRE(g->wait_started());
  second.send("GET /search?q=slow HTTP/1.1\r\n\r\n");
  REQUIRE(wait_queued(pool, 1));

  http_client third(server.port());
  third.send("GET /health HTTP/1.1\r\n\r\n");
  auto r = third.read_response();
  CHECK(r.status == 503);
  CHECK(r.header("Retry-After") == "1");
  CHECK_FALSE(r.keep_alive);
  CHECK(third.closed_by_server());
  CHECK(server.server.rejected_connections() == 1);
  CHECK(server.server.shed_connections() == 0); // neither busy connection was touched

  g->release();
  CHECK(first.read_response().status == 200);
  CHECK(second.read_response().status == 200);
  // Once a place waits for a request, a new client is served.
  http_client next(server.port());
  CHECK(next.get("/health").status == 200);
}

TEST_CASE("silent connections filling max_connections give way: /health and searches are still served",
          "[server][limits]") {
  catalog::testing::temp_dir dir;
  catalog::connection_pool connections{make_catalogue(dir), 1};
  smartasync::blocking_pool pool{1, 16};
  auto search = make_catalog_search(pool, connections);
  // Deadlines far away: only making room can let a new client in.
  running_server server(make_backend(search), server_options{.idle_timeout = std::chrono::hours(1),
                                                             .first_byte_timeout = std::chrono::hours(1),
                                                             .max_connections = 4});

  // Connect and say nothing, as many as the cap (accepted in this order: one listen queue).
  std::vector<std::unique_ptr<http_client>> silent;
  for (int i = 0; i < 4; ++i)
    silent.push_back(std::make_unique<http_client>(server.port()));

  http_client prober(server.port());
  CHECK(prober.get("/health").status == 200);
  http_client searcher(server.port());
  auto r = searcher.get("/search?q=asio&limit=1");
  CHECK(r.status == 200);
  CHECK(json::parse(r.body)["results"][0]["name"] == "asio");
  CHECK(server.server.rejected_connections() == 0);
  CHECK(server.server.shed_connections() == 2);

  // The two silent the longest gave their places; the others still hold theirs.
  CHECK(silent[0]->closed_by_server());
  CHECK(silent[1]->closed_by_server());
  silent[2]->send("GET /health HTTP/1.1\r\n\r\n");
  CHECK(silent[2]->read_response().status == 200);
}

TEST_CASE("a connection that sends nothing is closed at first_byte_timeout, an idle keep-alive one is not",
          "[server][limits]") {
  catalog::testing::temp_dir dir;
  catalog::connection_pool connections{make_catalogue(dir), 1};
  smartasync::blocking_pool pool{1, 16};
  auto search = make_catalog_search(pool, connections);
  running_server server(make_backend(search), server_options{.idle_timeout = std::chrono::hours(1),
                                                             .first_byte_timeout = std::chrono::milliseconds(100)});

  http_client keep_alive(server.port());
  REQUIRE(keep_alive.get("/health").status == 200); // idle from here on, before `silent` connects
  http_client silent(server.port());
  CHECK(silent.closed_by_server()); // long before the hour of idle_timeout (the read gives up after 10 s)
  CHECK(server.server.silent_connections() == 1);
  // The keep-alive connection waited longer, but has spoken: the idle timeout is its own.
  CHECK(keep_alive.get("/health").status == 200);
  CHECK(server.server.silent_connections() == 1);
}

TEST_CASE("a search past --search-timeout-ms is cancelled and answered 504, and the server serves on", "[server][timeout]") {
  catalog::testing::temp_dir dir;
  {
    catalog::catalog_db db(dir / "big.db", catalog::open_mode::read_write);
    auto sync = db.begin_sync();
    sync.add(catalog::generate_catalog(20000));
    sync.commit();
  }
  catalog::connection_pool connections{dir / "big.db", 1};
  smartasync::blocking_pool pool{1, 16};
  auto search = make_catalog_search(pool, connections);
  server_options options;
  options.search_timeout = std::chrono::milliseconds(1); // shorter than any heavy search
  running_server server(make_backend(search), options);

  http_client client(server.port());
  // Removed from the queue or interrupted while running (sqlite3_interrupt): 504 either way.
  auto r = client.get("/search?q=a*+OR+s*+OR+lib*&limit=1000");
  CHECK(r.status == 504);
  CHECK(json::parse(r.body)["error"] == "search timed out after 1 ms and was cancelled");
  CHECK(server.server.timed_out() == 1);
  CHECK(client.get("/health").status == 200);
}

TEST_CASE("GET /metrics exposes the registered pool in the Prometheus text format", "[server][metrics]") {
  catalog::testing::temp_dir dir;
  catalog::connection_pool connections{make_catalogue(dir), 2};
  smartasync::blocking_pool pool{2, 64};
  smartasync::metrics_registry metrics;
  metrics.add("search", pool);
  smartasync::smart_async_function<catalog_search> search = make_catalog_search(pool, connections);
  running_server server{make_backend(search), server_options{.metrics = &metrics}};
  http_client client(server.port());
  REQUIRE(client.get("/search?q=asio").status == 200);
  REQUIRE(client.get("/search?q=netkit").status == 200);
  const auto r = client.get("/metrics");
  REQUIRE(r.status == 200);
  CHECK(r.header("Content-Type") == std::string(smartasync::metrics_registry::content_type));
  CHECK(r.body.find("# TYPE smartasync_pool_submitted_total counter\n") != std::string::npos);
  CHECK(r.body.find("\nsmartasync_pool_completed_total{pool=\"search\"} 2\n") != std::string::npos);
  CHECK(r.body.find("smartasync_pool_run_time_seconds_count{pool=\"search\"} 2\n") != std::string::npos);
}

TEST_CASE_METHOD(catalogue_fixture, "without a registry there is no /metrics", "[server][metrics]") {
  http_client client(server.port());
  CHECK(client.get("/metrics").status == 404);
}
